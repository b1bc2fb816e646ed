"""Subject events, time origin and typed endpoint answers over HTTP (issue 14): a real
app on SQLite in a temp dir, the bundled model, the seeded two-subject trial."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.persistence.orm import AuditEntry
from tests.core.healing.seed import PHOTO, PX_PER_MM, Trial, running_app, seed


@pytest.fixture(scope="module")
def trial_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Trial, Any]]:
    with running_app(tmp_path_factory) as (client, app):
        yield client, seed(client, app.state.db), app.state.db


def upload(client: TestClient, trial: Trial, wound: str, captured_at: str) -> Any:
    return client.post(
        f"/v1/wounds/{trial.wounds[wound]}/assessments",
        data={"captured_at": captured_at, "px_per_mm": str(PX_PER_MM)},
        files={"photo": ("photo.jpg", PHOTO.read_bytes(), "image/jpeg")},
        headers=trial.auth("admin"),
    )


def test_randomized_on_events_and_competing_incidence(
    trial_app: tuple[TestClient, Trial, Any],
) -> None:
    client, trial, db = trial_app
    s02 = trial.subjects["S02"]
    # Only admins set randomized_on after creation.
    refused = client.patch(
        f"/v1/subjects/{s02}", json={"randomized_on": "2026-01-01"}, headers=trial.auth("monitor")
    )
    assert refused.status_code == 403
    set_on = client.patch(
        f"/v1/subjects/{s02}", json={"randomized_on": "2026-01-01"}, headers=trial.auth("admin")
    )
    assert set_on.status_code == 200, set_on.text
    assert set_on.json()["randomized_on"] == "2026-01-01"
    # Randomised, never photographed: in the analysis, censored at day 0.
    made = client.post(
        f"/v1/studies/{trial.study}/subjects",
        json={"code": "S03", "site": "A", "randomized_on": "2026-01-10"},
        headers=trial.auth("admin"),
    )
    assert made.status_code == 201, made.text

    # Death of S02 on 2026-02-10 (day 40 from its randomisation), recorded at site B.
    wrong_site = client.post(
        f"/v1/subjects/{s02}/events",
        json={"kind": "death", "date": "2026-02-10"},
        headers=trial.auth("clinician"),
    )
    assert wrong_site.status_code == 404
    no_leg = client.post(
        f"/v1/subjects/{s02}/events",
        json={"kind": "major_amputation", "date": "2026-02-10"},
        headers=trial.auth("clinician_b"),
    )
    assert no_leg.status_code == 422
    death = client.post(
        f"/v1/subjects/{s02}/events",
        json={"kind": "death", "date": "2026-02-10", "note": "cardiac"},
        headers=trial.auth("clinician_b"),
    )
    assert death.status_code == 201, death.text
    event = death.json()
    listed = client.get(f"/v1/subjects/{s02}/events", headers=trial.auth("monitor")).json()
    assert [e["id"] for e in listed] == [event["id"]]

    after = upload(client, trial, "S02-W1", "2026-02-20")
    assert after.status_code == 409
    assert after.json()["code"] == "after_subject_event"

    study = client.get(f"/v1/studies/{trial.study}/endpoints", headers=trial.auth("monitor")).json()
    rows = {r["code"]: r for r in study["subject_rows"]}
    assert rows["S02"]["time_origin"] == "2026-01-01"
    assert rows["S02"]["time_to_closure_days"] == 33  # last photo 2026-02-03
    assert rows["S02"]["cr_cause"] == 2 and rows["S02"]["cr_time_days"] == 40
    assert rows["S03"]["time_to_closure_days"] == 0 and rows["S03"]["censored"] is True
    assert "never photographed" in rows["S03"]["reason"]
    assert study["subjects_in_analysis"] == 3
    cif = study["cumulative_incidence"]
    assert (cif["healed"], cif["competing"], cif["censored"]) == (1, 1, 1)
    assert study["amputation_free_survival"]["events"] == 1
    assert "by_arm" not in study

    voided = client.patch(
        f"/v1/subjects/{s02}/events/{event['id']}",
        json={"reason": "wrong subject"},
        headers=trial.auth("clinician_b"),
    )
    assert voided.status_code == 200, voided.text
    assert voided.json()["voided"] is True
    again = client.patch(
        f"/v1/subjects/{s02}/events/{event['id']}",
        json={"reason": "twice"},
        headers=trial.auth("clinician_b"),
    )
    assert again.json()["code"] == "event_already_voided"
    still_listed = client.get(f"/v1/subjects/{s02}/events", headers=trial.auth("admin")).json()
    assert still_listed[0]["voided"] is True and still_listed[0]["void_reason"] == "wrong subject"
    study = client.get(f"/v1/studies/{trial.study}/endpoints", headers=trial.auth("admin")).json()
    assert study["cumulative_incidence"]["competing"] == 0
    assert set(study["by_arm"]) >= {"active", "control"}
    assert upload(client, trial, "S02-W1", "2026-02-20").status_code == 201

    with db.session() as session:
        actions = set(session.scalars(select(AuditEntry.action)))
    assert {"event.create", "event.void", "subject.update"} <= actions


def test_openapi_documents_the_endpoint_answers(trial_app: tuple[TestClient, Trial, Any]) -> None:
    client, _, _ = trial_app
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    study = spec["paths"]["/v1/studies/{study}/endpoints"]["get"]["responses"]["200"]
    assert study["content"]["application/json"]["schema"]["$ref"].endswith("/StudyAnswer")
    assert {"cumulative_incidence", "median_ci_method", "at_risk"} <= set(
        schemas["StudyAnswer"]["properties"]
    )
    assert "model" in schemas["VisitAnswer"]["properties"]
    assert "/v1/subjects/{subject}/events" in spec["paths"]


def test_adtte_export_route_blinding_and_audit(trial_app: tuple[TestClient, Trial, Any]) -> None:
    import csv
    import io

    client, trial, db = trial_app
    path = f"/v1/studies/{trial.study}/export.adtte.csv"
    assert client.get(path, headers=trial.auth("uploader")).status_code == 403
    monitor = client.get(path, headers=trial.auth("monitor"))
    assert monitor.status_code == 200, monitor.text
    assert monitor.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(monitor.text)))
    assert "TRTP" not in rows[0]
    heal = {r["SUBJID"]: r for r in rows if r["PARAMCD"] == "TTHEAL"}
    study = client.get(f"/v1/studies/{trial.study}/endpoints", headers=trial.auth("monitor")).json()
    for r in study["subject_rows"]:
        if r["time_to_closure_days"] is not None:
            assert int(heal[r["code"]]["AVAL"]) == r["time_to_closure_days"]
            assert heal[r["code"]]["CNSR"] == ("1" if r["censored"] else "0")
            assert heal[r["code"]]["USUBJID"] == f"{trial.study}-{r['code']}"
    admin = list(csv.DictReader(io.StringIO(client.get(path, headers=trial.auth("admin")).text)))
    assert {r["TRTP"] for r in admin if r["SUBJID"] == "S01"} == {"active"}
    with db.session() as session:
        assert (
            session.scalar(select(AuditEntry.id).where(AuditEntry.action == "export.adtte"))
            is not None
        )
    # The same rows as SAS transport (v5), read back by an independent reader.
    from tests.core.healing.test_exports import assert_xpt_matches_csv

    for role in ("monitor", "admin"):
        xpt = client.get(path.replace(".csv", ".xpt"), headers=trial.auth(role))
        assert xpt.status_code == 200, xpt.text
        assert xpt.headers["content-type"] == "application/x-sas-xport"
        text = client.get(path, headers=trial.auth(role)).text
        assert_xpt_matches_csv(xpt.content, text, "ADTTE")
