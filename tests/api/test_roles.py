"""Every role against every route, on its own site and on the other site.

Site keys (uploader, clinician) see only site A here: site B's resources answer
404 (never 403, so ids elsewhere cannot be probed). Within what a key sees, a role
that may not do something answers 403.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.api.conftest import Service, Trial, make_trial, sample_photo

ROLES = ("uploader", "clinician", "monitor", "admin")
SITE_ROLES = ("uploader", "clinician")


@dataclass
class Site:
    subject: str
    wound: str
    assessment: str


@dataclass
class World:
    trial: Trial
    sites: dict[str, Site]


@pytest.fixture(scope="module")
def world(service: Service) -> World:
    trial = make_trial(service)
    sites = {}
    for site in ("A", "B"):
        wound = trial.wound(site)
        subject = trial.client.get(f"/v1/wounds/{wound}", headers=trial.keys["admin"]).json()[
            "subject"
        ]
        r = trial.upload(wound, sample_photo("0078"), px_per_mm="10")
        assert r.status_code == 201, r.text
        sites[site] = Site(subject=subject, wound=wound, assessment=r.json()["id"])
    return World(trial=trial, sites=sites)


Call = Callable[[World, Site, str], Any]

SQUARE = "[[10,10],[60,10],[60,60],[10,60]]"


def _get(path: str) -> Call:
    return lambda w, s, role: w.trial.client.get(
        path.format(study=w.trial.study, **vars(s)), headers=w.trial.keys[role]
    )


ROUTES: dict[str, tuple[Call, tuple[str, ...], bool]] = {
    # name: (call, roles allowed, whether it concerns a site's resource)
    "get study": (_get("/v1/studies/{study}"), ROLES, False),
    "list sites": (_get("/v1/studies/{study}/sites"), ROLES, False),
    "list subjects": (_get("/v1/studies/{study}/subjects"), ROLES, False),
    "get subject": (_get("/v1/subjects/{subject}"), ROLES, True),
    "list wounds": (_get("/v1/subjects/{subject}/wounds"), ROLES, True),
    "get wound": (_get("/v1/wounds/{wound}"), ROLES, True),
    "list assessments": (_get("/v1/wounds/{wound}/assessments"), ROLES, True),
    "get assessment": (_get("/v1/assessments/{assessment}"), ROLES, True),
    "photo": (_get("/v1/assessments/{assessment}/photo.jpg"), ROLES, True),
    "mask": (_get("/v1/assessments/{assessment}/mask.png"), ROLES, True),
    "overlay": (_get("/v1/assessments/{assessment}/overlay.jpg"), ROLES, True),
    "audit": (_get("/v1/audit"), ("admin",), False),
    "keys": (_get("/v1/keys"), ("admin",), False),
    "create site": (
        lambda w, s, role: w.trial.client.post(
            f"/v1/studies/{w.trial.study}/sites",
            json={"id": f"X{secrets.token_hex(3)}"},
            headers=w.trial.keys[role],
        ),
        ("admin",),
        False,
    ),
    "update study": (
        lambda w, s, role: w.trial.client.patch(
            f"/v1/studies/{w.trial.study}", json={"name": "renamed"}, headers=w.trial.keys[role]
        ),
        ("admin",),
        False,
    ),
    "create subject": (
        lambda w, s, role: w.trial.client.post(
            f"/v1/studies/{w.trial.study}/subjects",
            json={
                "code": f"S{secrets.token_hex(3)}",
                **({} if role in SITE_ROLES else {"site": "A"}),
            },
            headers=w.trial.keys[role],
        ),
        ("uploader", "admin"),
        False,
    ),
    "create wound": (
        lambda w, s, role: w.trial.client.post(
            f"/v1/subjects/{s.subject}/wounds",
            json={"label": f"W{secrets.token_hex(3)}"},
            headers=w.trial.keys[role],
        ),
        ("uploader", "admin"),
        True,
    ),
    "upload": (
        lambda w, s, role: w.trial.client.post(
            f"/v1/wounds/{s.wound}/assessments",
            files={"photo": ("p.jpg", sample_photo("0082"), "image/jpeg")},
            data={"captured_at": "2026-02-01", "px_per_mm": "10"},
            headers=w.trial.keys[role],
        ),
        ("uploader", "admin"),
        True,
    ),
    "record closure": (
        lambda w, s, role: w.trial.client.patch(
            f"/v1/assessments/{s.assessment}",
            json={"epithelialized": False, "drainage": True},
            headers=w.trial.keys[role],
        ),
        ("clinician", "admin"),
        True,
    ),
    "correct mask": (
        lambda w, s, role: w.trial.client.put(
            f"/v1/assessments/{s.assessment}/mask",
            data={"polygon": SQUARE, "reason": "test"},
            headers=w.trial.keys[role],
        ),
        ("clinician", "admin"),
        True,
    ),
}


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize("role", ROLES)
def test_role_against_route(world: World, route: str, role: str) -> None:
    call, allowed, per_site = ROUTES[route]
    for site in ("A", "B") if per_site else ("A",):
        r = call(world, world.sites[site], role)
        if per_site and site == "B" and role in SITE_ROLES:
            expected = 404
        elif role in allowed:
            expected = 201 if r.request.method in ("POST", "PUT") else 200
        else:
            expected = 403
        assert r.status_code == expected, (
            f"{role} {route} site {site}: {r.status_code} {r.text[:200]}"
        )
        if expected >= 400:
            assert r.json()["code"] == {404: "not_found", 403: "forbidden"}[expected]


def test_site_keys_list_only_their_site(world: World) -> None:
    c, study = world.trial.client, world.trial.study
    for role, site in (("uploader", "A"), ("clinician_B", "B")):
        subjects = c.get(f"/v1/studies/{study}/subjects", headers=world.trial.keys[role]).json()[
            "items"
        ]
        assert subjects and {s["site"] for s in subjects} == {site}
        sites = c.get(f"/v1/studies/{study}/sites", headers=world.trial.keys[role]).json()
        assert [s["id"] for s in sites] == [site]
    monitor = c.get(f"/v1/studies/{study}/subjects", headers=world.trial.keys["monitor"]).json()[
        "items"
    ]
    assert {s["site"] for s in monitor} == {"A", "B"}


def test_other_study_is_invisible(world: World, service: Service) -> None:
    other = make_trial(service)
    c = world.trial.client
    for role in ROLES:
        r = c.get(f"/v1/studies/{world.trial.study}", headers=other.keys[role])
        assert (r.status_code, r.json()["code"]) == (404, "not_found")
        assert (
            c.get(
                f"/v1/assessments/{world.sites['A'].assessment}", headers=other.keys[role]
            ).status_code
            == 404
        )
        assert [s["id"] for s in c.get("/v1/studies", headers=other.keys[role]).json()] == [
            other.study
        ]


def test_uploader_cannot_place_a_subject_at_another_site(world: World) -> None:
    r = world.trial.client.post(
        f"/v1/studies/{world.trial.study}/subjects",
        json={"code": "Z1", "site": "B"},
        headers=world.trial.keys["uploader"],
    )
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")
