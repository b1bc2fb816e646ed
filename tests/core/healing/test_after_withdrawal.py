"""Issue 26: photos after a withdrawal or loss to follow-up, a study setting
(``photos_after_withdrawal``): refused (the default) or stored and never counted; a
photo after a death or the major amputation of its leg is refused either way, and
follow-up ends at the withdrawal whatever the setting."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.core.healing import LEAVES_STUDY, refuses_photo_after
from service.domain.auth import create_key
from tests.core.healing.seed import PHOTO, PX_PER_MM, running_app, square


@pytest.mark.parametrize("kind", LEAVES_STUDY)
def test_the_rule_refuses_after_leaving_unless_the_study_records(kind: str) -> None:
    assert refuses_photo_after(kind) is True
    assert refuses_photo_after(kind, "refuse") is True
    assert refuses_photo_after(kind, "record") is False


@pytest.mark.parametrize("kind", ["death", "major_amputation"])
def test_the_rule_always_refuses_after_a_death_or_the_legs_amputation(kind: str) -> None:
    assert refuses_photo_after(kind, "refuse") is True
    assert refuses_photo_after(kind, "record") is True


class Api:
    """A server admin's client: it makes its own studies, so each test sets its own."""

    def __init__(self, client: TestClient, key: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {key}"}

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=self.headers, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.client.post(path, headers=self.headers, **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.client.patch(path, headers=self.headers, **kw)

    def study(self, study: str, **settings: Any) -> str:
        made = self.post("/v1/studies", json={"id": study, "name": study, **settings})
        assert made.status_code == 201, made.text
        assert self.post(f"/v1/studies/{study}/sites", json={"id": "A"}).status_code == 201
        return study

    def wound(self, study: str, code: str) -> tuple[str, str]:
        made = self.post(
            f"/v1/studies/{study}/subjects",
            json={"code": code, "site": "A", "randomized_on": "2026-03-01"},
        )
        assert made.status_code == 201, made.text
        subject = made.json()["id"]
        wound = self.post(f"/v1/subjects/{subject}/wounds", json={"label": "W1", "index_leg": True})
        assert wound.status_code == 201, wound.text
        return subject, wound.json()["id"]

    def upload(self, wound: str, on: str, *, closed: bool = False) -> Any:
        return self.post(
            f"/v1/wounds/{wound}/assessments",
            data={
                "captured_at": on,
                "px_per_mm": str(PX_PER_MM),
                "epithelialized": str(closed).lower(),
                "drainage": "false" if closed else "true",
            },
            files={"photo": ("photo.jpg", PHOTO.read_bytes(), "image/jpeg")},
        )

    def measured(self, wound: str, on: str, side_px: int) -> None:
        """A photo with a known area: the clinician's outline (a square)."""
        made = self.upload(wound, on)
        assert made.status_code == 201, made.text
        outline = self.client.put(
            f"/v1/assessments/{made.json()['id']}/mask",
            data={"polygon": square(side_px), "reason": "outline"},
            headers=self.headers,
        )
        assert outline.status_code == 201, outline.text

    def event(self, subject: str, kind: str, on: str, **extra: str) -> None:
        made = self.post(f"/v1/subjects/{subject}/events", json={"kind": kind, "date": on, **extra})
        assert made.status_code == 201, made.text


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with running_app(tmp_path_factory) as (client, app):
        with app.state.db.session() as session:
            _, key = create_key(session, role="admin", holder="Server admin")
        yield Api(client, key)


def visits_of(api: Api, wound: str) -> dict[str, dict[str, Any]]:
    answer = api.get(f"/v1/wounds/{wound}/endpoints")
    assert answer.status_code == 200, answer.text
    return {v["captured_at"]: v for v in answer.json()["visits"]}


def test_by_default_a_photo_after_a_withdrawal_is_refused(api: Api) -> None:
    study = api.study("AW-DEFAULT")
    assert api.get(f"/v1/studies/{study}").json()["photos_after_withdrawal"] == "refuse"
    subject, wound = api.wound(study, "S1")
    api.measured(wound, "2026-03-01", 100)
    api.event(subject, "withdrawal", "2026-03-21")
    refused = api.upload(wound, "2026-03-29", closed=True)
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["code"] == "after_subject_event"
    assert "after the subject's withdrawal on 2026-03-21" in body["detail"]
    listed = api.get(f"/v1/wounds/{wound}/assessments").json()["items"]
    assert [a["captured_at"][:10] for a in listed] == ["2026-03-01"]  # nothing stored


def test_a_recording_study_stores_the_photo_and_never_counts_it(api: Api) -> None:
    """Healing on day 28 after a day-20 withdrawal: stored and measured, listed as
    uncounted (``after_subject_event``), no healing event, and follow-up, last contact
    and the censoring all stop at the withdrawal."""
    study = api.study("AW-RECORD", photos_after_withdrawal="record")
    assert api.get(f"/v1/studies/{study}").json()["photos_after_withdrawal"] == "record"
    subject, wound = api.wound(study, "S1")
    api.measured(wound, "2026-03-01", 100)
    api.measured(wound, "2026-03-15", 70)
    api.event(subject, "withdrawal", "2026-03-21")
    for on in ("2026-03-29", "2026-04-12"):  # closed on days 28 and 42: healed, if it counted
        made = api.upload(wound, on, closed=True)
        assert made.status_code == 201, made.text
        assert made.json()["counted"] is False and made.json()["measurement"] is not None

    listed = api.get(f"/v1/wounds/{wound}/assessments").json()["items"]
    counted = {a["captured_at"][:10]: a["counted"] for a in listed}
    assert counted == {
        "2026-03-01": True,
        "2026-03-15": True,
        "2026-03-29": False,
        "2026-04-12": False,
    }
    visits = visits_of(api, wound)
    for on in ("2026-03-29", "2026-04-12"):
        assert visits[on]["counted"] is False
        assert visits[on]["uncounted_reason"] == "after_subject_event"
        assert visits[on]["closed"] is False
    answer = api.get(f"/v1/subjects/{subject}/endpoints").json()
    assert answer["healing_event"] is False and answer["last_visit_day"] == 14

    endpoints = api.get(f"/v1/studies/{study}/endpoints").json()
    row = next(r for r in endpoints["subject_rows"] if r["subject"] == subject)
    assert row["healing_event"] is False and row["censored"] is True
    assert row["time_to_closure_days"] == 14  # the last visit in follow-up
    assert row["follow_up_end_day"] == 20 and row["last_contact_day"] == 20
    assert row["afs_time_days"] == 20 and row["afs_event"] is False

    adtte = api.get(f"/v1/studies/{study}/export.adtte.csv")
    assert adtte.status_code == 200, adtte.text
    params = {r["PARAMCD"]: r for r in csv.DictReader(io.StringIO(adtte.text))}
    assert (params["TTHEAL"]["CNSR"], params["TTHEAL"]["AVAL"]) == ("1", "14")
    assert (params["AFS"]["CNSR"], params["AFS"]["ADT"]) == ("1", "2026-03-21")

    export = api.get(f"/v1/studies/{study}/export.csv")
    assert export.status_code == 200, export.text
    rows = [r for r in csv.DictReader(io.StringIO(export.text)) if r["current"] == "true"]
    late = [r for r in rows if r["captured_at"][:10] in ("2026-03-29", "2026-04-12")]
    assert len(late) == 2
    assert all(r["counted"] == "false" for r in late), late
    tr = api.get(f"/v1/studies/{study}/export.tr.csv")
    assert tr.status_code == 200, tr.text
    after = [r for r in csv.DictReader(io.StringIO(tr.text)) if r["TRDTC"][:10] >= "2026-03-29"]
    assert "WNDCLOSE" in {r["TRTESTCD"] for r in after}  # recorded closed: no part of closure
    assert all(r["TRSTAT"] == "NOT DONE" and not r["TRORRES"] for r in after), after
    assert {r["TRREASND"] for r in after} == {"AFTER SUBJECT EVENT"}


def test_a_recording_study_still_refuses_a_photo_after_a_death(api: Api) -> None:
    study = api.study("AW-DEATH", photos_after_withdrawal="record")
    subject, wound = api.wound(study, "S1")
    api.measured(wound, "2026-03-01", 100)
    api.event(subject, "lost_to_follow_up", "2026-03-10")
    api.event(subject, "death", "2026-03-20")
    assert api.upload(wound, "2026-03-15").status_code == 201  # after the loss only
    refused = api.upload(wound, "2026-03-25")
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "after_subject_event"
    assert "after the subject's death on 2026-03-20" in refused.json()["detail"]


def test_a_recording_study_still_refuses_a_photo_after_the_legs_amputation(api: Api) -> None:
    study = api.study("AW-AMP", photos_after_withdrawal="record")
    subject, wound = api.wound(study, "S1")
    api.measured(wound, "2026-03-01", 100)
    api.event(subject, "major_amputation", "2026-03-10", leg="index")
    refused = api.upload(wound, "2026-03-15")
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "after_subject_event"


def test_the_setting_is_an_admins_change_refused_on_a_locked_study(api: Api) -> None:
    """Switching back to refuse refuses new uploads; photos recorded meanwhile stay
    stored and uncounted."""
    study = api.study("AW-SWITCH")
    subject, wound = api.wound(study, "S1")
    api.measured(wound, "2026-03-01", 100)
    api.event(subject, "withdrawal", "2026-03-21")
    bad = api.patch(f"/v1/studies/{study}", json={"photos_after_withdrawal": "keep"})
    assert bad.status_code == 422
    changed = api.patch(f"/v1/studies/{study}", json={"photos_after_withdrawal": "record"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["photos_after_withdrawal"] == "record"
    assert api.upload(wound, "2026-03-29", closed=True).status_code == 201
    back = api.patch(f"/v1/studies/{study}", json={"photos_after_withdrawal": "refuse"})
    assert back.json()["photos_after_withdrawal"] == "refuse"
    refused = api.upload(wound, "2026-04-12", closed=True)
    assert refused.status_code == 409 and refused.json()["code"] == "after_subject_event"
    assert visits_of(api, wound)["2026-03-29"]["uncounted_reason"] == "after_subject_event"
    # null leaves it as it is; a locked study takes no change.
    kept = api.patch(f"/v1/studies/{study}", json={"photos_after_withdrawal": None})
    assert kept.json()["photos_after_withdrawal"] == "refuse"
    assert api.patch(f"/v1/studies/{study}", json={"locked": True}).status_code == 200
    locked = api.patch(f"/v1/studies/{study}", json={"photos_after_withdrawal": "record"})
    assert locked.status_code == 423, locked.text
    assert api.get(f"/v1/studies/{study}").json()["photos_after_withdrawal"] == "refuse"
