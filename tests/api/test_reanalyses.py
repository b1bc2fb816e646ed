"""GET /v1/studies/{study}/reanalyses/{batch}: a batch's progress and failures (admin)."""

from __future__ import annotations

from service.domain import batches
from service.domain.auth import Caller
from tests.api.conftest import Trial, make_trial, sample_photo

MODEL = {"name": "ulcerseg", "version": "0.0.9", "sha256": "a" * 64}
"""A version nothing measured with: every photo of the study is pending."""


def test_an_admin_reads_a_batch_progress_and_its_failures(trial: Trial) -> None:
    wound = trial.wound()
    ids = [
        trial.upload(
            wound, sample_photo(n), captured_at=f"2026-01-0{i + 1}", px_per_mm="10"
        ).json()["id"]
        for i, n in enumerate(("0078", "0082"))
    ]
    db = trial.service.db
    with db.sessions() as session:
        batch, todo = batches.start_reanalysis(
            session, Caller.cli("t"), trial.study, MODEL, engine="celery"
        )
        assert todo == ids
        batches.record_failure(
            session,
            batch.id,
            ids[1],
            code="photo_unreadable",
            reason="corrupt",
            attempts=1,
            worker="h:1",
        )
    path = f"/v1/studies/{trial.study}/reanalyses/{batch.id}"
    r = trial.client.get(path, headers=trial.keys["admin"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert {k: body[k] for k in ("id", "model", "total", "pending", "done", "failed")} == {
        "id": batch.id,
        "model": "ulcerseg-0.0.9",
        "total": 2,
        "pending": 1,
        "done": 0,
        "failed": 1,
    }
    assert [(f["assessment"], f["code"], f["reason"]) for f in body["failures"]] == [
        (ids[1], "photo_unreadable", "corrupt")
    ]
    monitor = trial.client.get(path, headers=trial.keys["monitor"])
    assert monitor.status_code == 403 and monitor.json()["code"] == "forbidden"
    missing = trial.client.get(
        f"/v1/studies/{trial.study}/reanalyses/bat_000000000000", headers=trial.keys["admin"]
    )
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    other = make_trial(trial.service)  # another study's admin cannot read it, even by its id
    elsewhere = trial.client.get(
        f"/v1/studies/{other.study}/reanalyses/{batch.id}", headers=other.keys["admin"]
    )
    assert elsewhere.status_code == 404
    audit = trial.client.get(
        "/v1/audit", params={"study": trial.study}, headers=trial.keys["admin"]
    ).json()
    assert any(e["action"] == "reanalysis.start" for e in audit["items"])


def test_the_dashboard_shows_an_admin_the_progress_of_a_reanalysis(trial: Trial) -> None:
    from tests.api.dashboard.test_pages import sign_in

    wound = trial.wound()
    trial.upload(wound, sample_photo("0078"), px_per_mm="10")
    with trial.service.db.sessions() as session:
        batch, _ = batches.start_reanalysis(
            session, Caller.cli("t"), trial.study, MODEL, engine="celery"
        )
    client = trial.client
    try:
        sign_in(client, trial.keys["admin"]["Authorization"].removeprefix("Bearer "))
        page = client.get(f"/dashboard/studies/{trial.study}").text
        assert f'data-batch="{batch.id}"' in page and 'progress max="1" value="0"' in page
        sign_in(client, trial.keys["monitor"]["Authorization"].removeprefix("Bearer "))
        assert batch.id not in client.get(f"/dashboard/studies/{trial.study}").text
    finally:
        client.cookies.clear()
