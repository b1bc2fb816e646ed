"""Endpoint and export routes on a real app: SQLite in a temp dir, the bundled model,
uploads through the API, known areas through clinicians' polygon corrections."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.persistence.orm import AuditEntry
from tests.core.healing.seed import MODEL_DIR, SERIES, Trial, area_cm2, running_app, seed

WOUND_KEYS = {
    "baseline_area_cm2",
    "visits",
    "par_week4_pct",
    "healing_rate_cm2_per_week",
    "gilman_cm_per_week",
    "closure_confirmed",
    "closure_day",
    "time_to_closure_days",
    "censored",
    "recurrence",
    "recurrence_day",
    "healed_at_last_visit",
}
VISIT_KEYS = {"assessment", "captured_at", "day", "area_cm2", "par_pct", "closed", "counted"}


@pytest.fixture(scope="module")
def trial_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Trial]]:
    with running_app(tmp_path_factory) as (client, app):
        yield client, seed(client, app.state.db)


def get(client: TestClient, trial: Trial, role: str, path: str) -> Any:
    answer = client.get(path, headers=trial.auth(role))
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_wound_endpoints_over_http(trial_app: tuple[TestClient, Trial]) -> None:
    client, trial = trial_app
    answer = get(client, trial, "clinician", f"/v1/wounds/{trial.wounds['S01-W1']}/endpoints")
    assert answer.keys() >= WOUND_KEYS
    assert [v.keys() >= VISIT_KEYS for v in answer["visits"]] == [True] * 4
    assert [v["day"] for v in answer["visits"]] == [0, 14, 28, 42]
    assert all(v["counted"] for v in answer["visits"])
    assert [v["assessment"] for v in answer["visits"]] == trial.assessments["S01-W1"]
    a0, a14 = answer["visits"][0]["area_cm2"], answer["visits"][1]["area_cm2"]
    assert a0 == pytest.approx(area_cm2(100), rel=0.05)
    assert a14 == pytest.approx(area_cm2(70), rel=0.05)
    assert answer["visits"][2]["area_cm2"] == 0.0
    assert answer["baseline_area_cm2"] == a0
    assert answer["visits"][1]["par_pct"] == pytest.approx((a0 - a14) / a0 * 100)
    assert answer["par_week4_pct"] == pytest.approx(100.0)  # day 28: closed, area 0
    assert answer["healing_rate_cm2_per_week"] == pytest.approx(a0 / 42 * 7)
    assert answer["closure_confirmed"] is True
    assert answer["closure_day"] == 28
    assert answer["time_to_closure_days"] == 28
    assert answer["censored"] is False
    assert answer["healed_at_last_visit"] is True
    assert answer["closure_supported_by_area"] is True

    never = get(client, trial, "admin", f"/v1/wounds/{trial.wounds['S02-W1']}/endpoints")
    assert never["censored"] is True
    assert never["time_to_closure_days"] == 28
    assert never["par_week4_pct"] == pytest.approx(
        (area_cm2(120) - area_cm2(100)) / area_cm2(120) * 100, rel=0.05
    )


def test_subject_and_study_endpoints_and_blinding(trial_app: tuple[TestClient, Trial]) -> None:
    client, trial = trial_app
    subject = get(client, trial, "clinician", f"/v1/subjects/{trial.subjects['S01']}/endpoints")
    assert subject["all_wounds_healed"] is True
    assert subject["all_healed_day"] == 28
    assert [w["wound"] for w in subject["wounds"]] == [trial.wounds["S01-W1"]]

    admin = get(client, trial, "admin", f"/v1/studies/{trial.study}/endpoints?days=28&days=42")
    assert admin["subjects"] == 2
    assert admin["healed"] == 1
    assert set(admin["by_arm"]) == {"active", "control"}
    assert {r["arm"] for r in admin["subject_rows"]} == {"active", "control"}
    # Follow-up ends before day 42: no proportion is reported past the last time at risk.
    assert admin["last_time_at_risk_days"] < 42
    assert admin["proportion_healed"] == {"28": pytest.approx(0.5), "42": None}
    assert admin["at_risk"]["42"] == 0
    assert admin["km"]["survival"]

    monitor = get(client, trial, "monitor", f"/v1/studies/{trial.study}/endpoints")
    assert "by_arm" not in monitor
    text = json.dumps(monitor)
    assert "active" not in text and "control" not in text
    assert monitor["subjects"] == 2

    site_a = get(client, trial, "clinician", f"/v1/studies/{trial.study}/endpoints")
    assert site_a["subjects"] == 1
    assert site_a["scope"] == "A"


def test_another_sites_resources_answer_404(trial_app: tuple[TestClient, Trial]) -> None:
    client, trial = trial_app
    for path in (
        f"/v1/wounds/{trial.wounds['S02-W1']}/endpoints",
        f"/v1/subjects/{trial.subjects['S02']}/endpoints",
    ):
        answer = client.get(path, headers=trial.auth("clinician"))
        assert answer.status_code == 404
        assert answer.json()["code"] == "not_found"
    assert client.get(f"/v1/wounds/{trial.wounds['S01-W1']}/endpoints").status_code == 401


def test_csv_export_rows_provenance_blinding_and_audit(trial_app: tuple[TestClient, Trial]) -> None:
    client, trial = trial_app
    answer = client.get(f"/v1/studies/{trial.study}/export.csv", headers=trial.auth("monitor"))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    photos = sum(len(s) for s in SERIES.values())
    # Every photo: one automatic measurement and one manual correction.
    assert len(rows) == 2 * photos
    assert "arm" not in rows[0]
    manual = [r for r in rows if r["manual"] == "true"]
    automatic = [r for r in rows if r["manual"] == "false"]
    assert len(manual) == photos and all(r["current"] == "true" for r in manual)
    assert all(r["current"] == "false" for r in automatic)
    assert {r["model"] for r in automatic} == {MODEL_DIR.name}
    assert {r["calibration"] for r in rows} == {"px_per_mm"}
    assert all(r["reason"] for r in manual)

    admin = client.get(f"/v1/studies/{trial.study}/export.csv", headers=trial.auth("admin"))
    assert {r["arm"] for r in csv.DictReader(io.StringIO(admin.text))} == {"active", "control"}

    refused = client.get(f"/v1/studies/{trial.study}/export.csv", headers=trial.auth("clinician"))
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"

    db = client.app.state.db  # type: ignore[attr-defined]
    with db.sessions() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.action.like("export.%"))
        ).all()
    assert actions.count("export.csv") == 2


def test_fhir_and_cdisc_exports(trial_app: tuple[TestClient, Trial]) -> None:
    client, trial = trial_app
    answer = client.get(
        f"/v1/studies/{trial.study}/export.fhir.json", headers=trial.auth("monitor")
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/fhir+json")
    bundle = answer.json()
    observations = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
    ]
    assert len(observations) == sum(len(s) for s in SERIES.values())
    assert all(o["code"]["coding"][0]["code"] == "72287-6" for o in observations)
    # Without a configured FHIR base every reference is an entry's urn:uuid fullUrl.
    media_urls = {e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Media"}
    assert all(o["derivedFrom"][0]["reference"] in media_urls for o in observations)

    tu = client.get(f"/v1/studies/{trial.study}/export.tu.csv", headers=trial.auth("monitor"))
    assert len(list(csv.DictReader(io.StringIO(tu.text)))) == len(SERIES)
    tr = client.get(f"/v1/studies/{trial.study}/export.tr.csv", headers=trial.auth("admin"))
    records = list(csv.DictReader(io.StringIO(tr.text)))
    closures = [r for r in records if r["TRTESTCD"] == "WNDCLOSE"]
    assert len(closures) == sum(len(s) for s in SERIES.values())
    assert {r["USUBJID"] for r in records} == {"T1-S01", "T1-S02"}


def test_study_days_are_validated(trial_app: tuple[TestClient, Trial]) -> None:
    client, trial = trial_app
    answer = client.get(f"/v1/studies/{trial.study}/endpoints?days=-1", headers=trial.auth("admin"))
    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid_request"
    answer = client.get(
        f"/v1/studies/{trial.study}/endpoints?window_days=99", headers=trial.auth("admin")
    )
    assert answer.status_code == 422


def test_cdisc_dm_one_row_per_subject_arm_for_admins_only(
    trial_app: tuple[TestClient, Trial],
) -> None:
    client, trial = trial_app
    url = f"/v1/studies/{trial.study}/export.dm.csv"
    monitor = list(csv.DictReader(io.StringIO(client.get(url, headers=trial.auth("monitor")).text)))
    assert [r["USUBJID"] for r in monitor] == ["T1-S01", "T1-S02"]
    assert {r["DOMAIN"] for r in monitor} == {"DM"}
    assert all(r["SITEID"] and r["RFSTDTC"] for r in monitor)
    assert "ARM" not in monitor[0]  # blinded
    admin = list(csv.DictReader(io.StringIO(client.get(url, headers=trial.auth("admin")).text)))
    assert "ARM" in admin[0] and "ARMCD" in admin[0]
    # Every TR study day counts from the subject's RFSTDTC.
    tr = client.get(f"/v1/studies/{trial.study}/export.tr.csv", headers=trial.auth("admin"))
    start = {r["USUBJID"]: date.fromisoformat(r["RFSTDTC"][:10]) for r in admin}
    checked = 0
    for r in csv.DictReader(io.StringIO(tr.text)):
        if r["TRDTC"] and r["TRDY"]:
            days = (date.fromisoformat(r["TRDTC"][:10]) - start[r["USUBJID"]]).days
            assert int(r["TRDY"]) == days + (1 if days >= 0 else 0), r
            checked += 1
    assert checked > 0
