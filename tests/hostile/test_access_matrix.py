"""The access matrix: every operation of the live OpenAPI schema x every role x own
site / other site / other study, plus no key, a malformed key and a revoked key.

Only the allowed cells succeed. A resource of another site or another study answers
404 ``not_found`` (never 403: ids elsewhere cannot be probed); a role that may not do
something to what it can see answers 403 ``forbidden``; without a valid key, 401.
``test_every_operation_is_in_the_matrix`` fails when a route is added without a row
here, so this table stays the single authoritative one.

Roles (DESIGN.md): uploader (one site: create subjects, wounds, assessments; read
them), clinician (one site: read, correct masks, record closure), monitor (whole
study: read, export), admin (a study admin here: everything within the study, keys,
sites). Creating a study needs a server admin key.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from service.core.exports.metadata import DATASETS
from tests.api.conftest import Service, Trial, make_trial, sample_photo

ROLES = ("uploader", "clinician", "monitor", "admin")
READ = ROLES
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/v1/marker.pdf"),
    ("GET", "/v1/marker.png"),
}
SQUARE = "[[10,10],[60,10],[60,60],[10,60]]"


@dataclass
class Ids:
    study: str
    site: str
    subject: str
    wound: str
    assessment: str
    key_id: int


@dataclass
class World:
    trial: Trial
    own: Ids
    other_site: Ids
    other_study: Ids


def _ids(trial: Trial, site: str) -> Ids:
    wound = trial.wound(site)
    admin = trial.keys["admin"]
    subject = trial.client.get(f"/v1/wounds/{wound}", headers=admin).json()["subject"]
    r = trial.upload(wound, sample_photo("0078"), px_per_mm="10")
    assert r.status_code == 201, r.text
    key = trial.client.post(
        "/v1/keys",
        json={"role": "uploader", "holder": "spare", "study": trial.study, "site": site},
        headers=admin,
    )
    assert key.status_code == 201, key.text
    return Ids(trial.study, site, subject, wound, r.json()["id"], int(key.json()["id"]))


@pytest.fixture(scope="module")
def world(service: Service) -> World:
    trial = make_trial(service)
    other = make_trial(service)
    return World(trial, _ids(trial, "A"), _ids(trial, "B"), _ids(other, "A"))


Request = Callable[[Trial, Ids, dict[str, str]], Any]


def _call(method: str, path: str, **kw: Callable[[Ids], Any]) -> Request:
    def run(trial: Trial, ids: Ids, headers: dict[str, str]) -> Any:
        args = {name: make(ids) for name, make in kw.items()}
        return trial.client.request(method, path.format(**vars(ids)), headers=headers, **args)

    return run


def _upload(ids: Ids) -> dict[str, Any]:
    return {"photo": ("p.jpg", sample_photo("0082"), "image/jpeg")}


def _void_event(trial: Trial, ids: Ids, headers: dict[str, str]) -> Any:
    """Void a fresh event (made with the study admin's key; id 0 where it cannot see the
    subject, which every role then answers 404)."""
    made = trial.client.post(
        f"/v1/subjects/{ids.subject}/events",
        json={"kind": "revascularisation", "date": "2026-01-01", "leg": "index"},
        headers=trial.keys["admin"],
    )
    event_id = made.json()["id"] if made.status_code == 201 else 0
    return trial.client.patch(
        f"/v1/subjects/{ids.subject}/events/{event_id}",
        json={"reason": "recorded in error"},
        headers=headers,
    )


def _reanalysis(trial: Trial, ids: Ids, headers: dict[str, str]) -> Any:
    """Read a fresh re-analysis batch of the study of ``ids`` (recorded, not run)."""
    from service.domain.auth import Caller
    from service.domain.batches import start_reanalysis

    model = {"name": "ulcerseg", "version": "0.0.1", "sha256": "0" * 64}
    with trial.service.db.sessions() as session:
        batch, _ = start_reanalysis(
            session, Caller.cli("matrix"), ids.study, model, engine="celery"
        )
    return trial.client.get(f"/v1/studies/{ids.study}/reanalyses/{batch.id}", headers=headers)


def _new(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"


# (method, path): (request, roles allowed on own-site resources, scope)
# scope: "site" (a resource of one site), "study" (of the study), "server" (no study),
# "keys" (the study is in the body or behind a key id: a role that may not manage keys
# at all answers 403 whatever the study; an admin of another study gets 404)
MATRIX: dict[tuple[str, str], tuple[Request, tuple[str, ...], str]] = {
    ("GET", "/v1/studies"): (_call("GET", "/v1/studies"), READ, "server"),
    ("POST", "/v1/studies"): (
        _call("POST", "/v1/studies", json=lambda i: {"id": _new("X"), "name": "x"}),
        (),  # a server admin key only; no study-scoped key may create a study
        "server",
    ),
    ("GET", "/v1/studies/{study}"): (_call("GET", "/v1/studies/{study}"), READ, "study"),
    ("PATCH", "/v1/studies/{study}"): (
        _call("PATCH", "/v1/studies/{study}", json=lambda i: {"name": "renamed"}),
        ("admin",),
        "study",
    ),
    ("POST", "/v1/studies/{study}/sites"): (
        _call("POST", "/v1/studies/{study}/sites", json=lambda i: {"id": _new("S")}),
        ("admin",),
        "study",
    ),
    ("GET", "/v1/studies/{study}/sites"): (
        _call("GET", "/v1/studies/{study}/sites"),
        READ,
        "study",
    ),
    ("POST", "/v1/studies/{study}/subjects"): (
        _call(
            "POST", "/v1/studies/{study}/subjects", json=lambda i: {"code": _new("C"), "site": "A"}
        ),
        ("uploader", "admin"),
        "study",
    ),
    ("GET", "/v1/studies/{study}/subjects"): (
        _call("GET", "/v1/studies/{study}/subjects"),
        READ,
        "study",
    ),
    ("GET", "/v1/subjects/{subject}"): (_call("GET", "/v1/subjects/{subject}"), READ, "site"),
    ("PATCH", "/v1/subjects/{subject}"): (
        _call("PATCH", "/v1/subjects/{subject}", json=lambda i: {"randomized_on": "2026-01-01"}),
        ("admin",),
        "site",
    ),
    ("POST", "/v1/subjects/{subject}/events"): (
        _call(
            "POST",
            "/v1/subjects/{subject}/events",
            json=lambda i: {"kind": "revascularisation", "date": "2026-01-01", "leg": "index"},
        ),
        ("clinician", "admin"),
        "site",
    ),
    ("GET", "/v1/subjects/{subject}/events"): (
        _call("GET", "/v1/subjects/{subject}/events"),
        READ,
        "site",
    ),
    ("PATCH", "/v1/subjects/{subject}/events/{event_id}"): (
        _void_event,
        ("clinician", "admin"),
        "site",
    ),
    ("POST", "/v1/subjects/{subject}/wounds"): (
        _call("POST", "/v1/subjects/{subject}/wounds", json=lambda i: {"label": _new("W")}),
        ("uploader", "admin"),
        "site",
    ),
    ("GET", "/v1/subjects/{subject}/wounds"): (
        _call("GET", "/v1/subjects/{subject}/wounds"),
        READ,
        "site",
    ),
    ("GET", "/v1/wounds/{wound}"): (_call("GET", "/v1/wounds/{wound}"), READ, "site"),
    ("POST", "/v1/wounds/{wound}/assessments"): (
        _call(
            "POST",
            "/v1/wounds/{wound}/assessments",
            files=_upload,
            data=lambda i: {"captured_at": "2026-02-01", "px_per_mm": "10"},
        ),
        ("uploader", "admin"),
        "site",
    ),
    ("GET", "/v1/wounds/{wound}/assessments"): (
        _call("GET", "/v1/wounds/{wound}/assessments"),
        READ,
        "site",
    ),
    ("GET", "/v1/assessments/{assessment}"): (
        _call("GET", "/v1/assessments/{assessment}"),
        READ,
        "site",
    ),
    ("PATCH", "/v1/assessments/{assessment}"): (
        _call(
            "PATCH",
            "/v1/assessments/{assessment}",
            json=lambda i: {"epithelialized": False, "drainage": True},
        ),
        ("clinician", "admin"),
        "site",
    ),
    ("PUT", "/v1/assessments/{assessment}/mask"): (
        _call(
            "PUT",
            "/v1/assessments/{assessment}/mask",
            data=lambda i: {"polygon": SQUARE, "reason": "matrix"},
        ),
        ("clinician", "admin"),
        "site",
    ),
    ("POST", "/v1/assessments/{assessment}/outline"): (
        _call(
            "POST",
            "/v1/assessments/{assessment}/outline",
            json=lambda i: {"box": [2, 2, 40, 40]},
        ),
        ("clinician", "admin"),
        "site",
    ),
    ("GET", "/v1/assessments/{assessment}/photo.jpg"): (
        _call("GET", "/v1/assessments/{assessment}/photo.jpg"),
        READ,
        "site",
    ),
    ("GET", "/v1/assessments/{assessment}/mask.png"): (
        _call("GET", "/v1/assessments/{assessment}/mask.png"),
        READ,
        "site",
    ),
    ("GET", "/v1/assessments/{assessment}/overlay.jpg"): (
        _call("GET", "/v1/assessments/{assessment}/overlay.jpg"),
        READ,
        "site",
    ),
    ("GET", "/v1/wounds/{wound}/endpoints"): (
        _call("GET", "/v1/wounds/{wound}/endpoints"),
        READ,
        "site",
    ),
    ("GET", "/v1/subjects/{subject}/endpoints"): (
        _call("GET", "/v1/subjects/{subject}/endpoints"),
        READ,
        "site",
    ),
    ("GET", "/v1/studies/{study}/endpoints"): (
        _call("GET", "/v1/studies/{study}/endpoints"),
        READ,
        "study",
    ),
    ("GET", "/v1/studies/{study}/review"): (
        _call("GET", "/v1/studies/{study}/review"),
        READ,
        "study",
    ),
    ("GET", "/v1/studies/{study}/export.csv"): (
        _call("GET", "/v1/studies/{study}/export.csv"),
        ("monitor", "admin"),
        "study",
    ),
    ("GET", "/v1/studies/{study}/export.fhir.json"): (
        _call("GET", "/v1/studies/{study}/export.fhir.json"),
        ("monitor", "admin"),
        "study",
    ),
    **{
        ("GET", f"/v1/studies/{{study}}/export.{name}"): (
            _call("GET", f"/v1/studies/{{study}}/export.{name}"),
            ("monitor", "admin"),
            "study",
        )
        for name in [
            *(f"{d.lower()}.{ext}" for d in DATASETS for ext in ("csv", "xpt")),
            "define.xml",
            "package.zip",
        ]
    },
    ("POST", "/v1/precheck"): (
        _call(
            "POST",
            "/v1/precheck",
            files=lambda i: {"frame": ("f.jpg", sample_photo("0078"), "image/jpeg")},
            data=lambda i: {"study": i.study},
        ),
        ROLES,
        "study",
    ),
    ("GET", "/v1/studies/{study}/reanalyses/{batch}"): (_reanalysis, ("admin",), "study"),
    ("GET", "/v1/audit"): (_call("GET", "/v1/audit"), ("admin",), "server"),
    ("GET", "/v1/keys"): (_call("GET", "/v1/keys"), ("admin",), "server"),
    ("POST", "/v1/keys"): (
        _call(
            "POST",
            "/v1/keys",
            json=lambda i: {"role": "monitor", "holder": "new", "study": i.study},
        ),
        ("admin",),
        "keys",
    ),
    ("DELETE", "/v1/keys/{key_id}"): (_call("DELETE", "/v1/keys/{key_id}"), ("admin",), "keys"),
}


def test_every_operation_is_in_the_matrix(service: Service) -> None:
    schema = service.client.get("/openapi.json").json()
    operations = {
        (method.upper(), path)
        for path, ops in schema["paths"].items()
        for method in ops
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert operations - set(MATRIX) - PUBLIC == set(), "add these routes to MATRIX"
    assert set(MATRIX) - operations == set(), "these MATRIX routes no longer exist"


def _expected(role: str, allowed: tuple[str, ...], scope: str, where: str) -> int:
    """The status a cell must answer (before mapping successes to 200/201)."""
    if where == "other study" and scope == "keys":
        return 404 if role in allowed else 403
    if where == "other study" and scope != "server":
        return 404
    if where == "other site" and scope == "site" and role in ("uploader", "clinician"):
        return 404
    return 200 if role in allowed else 403


@pytest.mark.parametrize("where", ["own site", "other site", "other study"])
@pytest.mark.parametrize("role", ROLES)
def test_matrix(world: World, role: str, where: str) -> None:
    ids = {"own site": world.own, "other site": world.other_site, "other study": world.other_study}[
        where
    ]
    wrong = []
    for (method, path), (request, allowed, scope) in sorted(MATRIX.items()):
        if where != "own site" and scope == "server":
            continue  # nothing site- or study-specific in the path
        if method == "DELETE" and role == "admin" and where != "other study":
            continue  # revoking is checked in test_revoked_key_is_refused_everywhere
        r = request(world.trial, ids, world.trial.keys[role])
        expected = _expected(role, allowed, scope, where)
        ok = (r.status_code in (200, 201) if expected == 200 else r.status_code == expected) and (
            expected == 200
            or r.json().get("code") == {403: "forbidden", 404: "not_found"}[expected]
        )
        if not ok:
            wrong.append(f"{method} {path}: {r.status_code} (expected {expected}) {r.text[:150]}")
    assert not wrong, f"{role} on {where}:\n" + "\n".join(wrong)


def _every_request(world: World, headers: dict[str, str]) -> list[str]:
    wrong = []
    for (method, path), (request, _, _) in sorted(MATRIX.items()):
        r = request(world.trial, world.own, headers)
        code = (
            r.json().get("code")
            if r.headers.get("content-type", "").startswith("application/json")
            else None
        )
        if r.status_code != 401 or code not in ("missing_key", "invalid_key"):
            wrong.append(f"{method} {path}: {r.status_code} {code}")
    return wrong


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
    ],
    ids=["no key", "unknown key", "basic auth", "empty bearer"],
)
def test_without_a_valid_key_every_route_answers_401(world: World, headers: dict[str, str]) -> None:
    assert _every_request(world, headers) == []


def test_revoked_key_is_refused_everywhere(world: World) -> None:
    trial = world.trial
    made = trial.client.post(
        "/v1/keys",
        json={"role": "admin", "holder": "soon revoked", "study": trial.study},
        headers=trial.keys["admin"],
    )
    assert made.status_code == 201, made.text
    key = {"Authorization": f"Bearer {made.json()['key']}"}
    assert trial.client.get(f"/v1/studies/{trial.study}", headers=key).status_code == 200
    revoked = trial.client.delete(f"/v1/keys/{made.json()['id']}", headers=trial.keys["admin"])
    assert revoked.status_code == 200, revoked.text
    assert _every_request(world, key) == []
    other = trial.client.delete(f"/v1/keys/{world.other_study.key_id}", headers=trial.keys["admin"])
    assert (other.status_code, other.json()["code"]) == (404, "not_found")


def test_public_routes_need_no_key(service: Service) -> None:
    for method, path in sorted(PUBLIC):
        r = service.client.request(method, path)
        assert r.status_code == 200, f"{method} {path}: {r.status_code}"
