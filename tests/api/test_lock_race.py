"""Writes after a lock, through the service (issue 28, medium: an upload, a mask
correction and a re-analysis started before ``PATCH study {"locked": true}`` committed
after it, 3 races of 3).

Each write is held in flight (its analysis done, its rows not yet added: the photo
store's ``put`` waits) while the study is locked, then let go: it answers
``study_locked`` and the study's audit log has nothing after the lock. On SQLite and
PostgreSQL (the ``service`` fixture's two backends).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from service.domain.auth import Caller
from tests.api.conftest import Service, Trial, make_trial, sample_photo

# --- the three writes through the service ---------------------------------------------


class _HeldStore:
    """The service's photo store, whose next ``put`` waits until released: the write is
    in flight (analysis done, rows not yet added) while the test locks the study."""

    def __init__(self, store: object):
        self.store = store
        self.reached = threading.Event()
        self.release = threading.Event()

    def put(self, data: bytes, ext: str) -> str:
        self.reached.set()
        assert self.release.wait(30)
        return self.store.put(data, ext)  # type: ignore[attr-defined,no-any-return]

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


class _HeldSegmenter:
    """A segmenter whose next ``segment`` waits until released (a re-analysis in flight)."""

    def __init__(self, segmenter: object):
        self.segmenter = segmenter
        self.reached = threading.Event()
        self.release = threading.Event()

    def segment(self, rgb: object) -> object:
        self.reached.set()
        assert self.release.wait(30)
        return self.segmenter.segment(rgb)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.segmenter, name)


def _race(
    service: Service,  # noqa: F811
    trial: Trial,
    write: Callable[[], object],
    held: _HeldStore | _HeldSegmenter | None = None,
) -> tuple[object, list[str]]:
    """Run ``write`` until it is held (its store put, or ``held``), lock the study
    meanwhile, then let it finish; returns its answer and the study's audit actions in
    commit order."""
    runtime = service.app.state.runtime
    real_store = runtime.store
    if held is None:
        held = _HeldStore(runtime.store)
        runtime.store = held
    answer: list[object] = []
    thread = threading.Thread(target=lambda: answer.append(write()))
    try:
        thread.start()
        assert held.reached.wait(120), "the write never reached the store"
        runtime.store = real_store  # the lock's own request uses the real store
        r = trial.client.patch(
            f"/v1/studies/{trial.study}", json={"locked": True}, headers=trial.keys["admin"]
        )
        assert r.status_code == 200, r.text
        held.release.set()
        thread.join(120)
    finally:
        held.release.set()
        runtime.store = real_store
    r = trial.client.get(
        "/v1/audit", params={"study": trial.study, "limit": 200}, headers=trial.keys["admin"]
    )
    assert r.status_code == 200, r.text
    actions = [e["action"] for e in reversed(r.json()["items"])]
    return answer[0], actions


@pytest.fixture
def race_trial(service: Service) -> tuple[Trial, str, str]:  # noqa: F811
    trial = make_trial(service)
    wound = trial.wound("A")
    r = trial.upload(wound, sample_photo("0078"), px_per_mm="10")
    assert r.status_code == 201, r.text
    return trial, wound, r.json()["id"]


def _nothing_after_the_lock(actions: list[str]) -> None:
    assert "study.lock" in actions or "study.update" in actions, actions
    last = max(i for i, a in enumerate(actions) if a in ("study.lock", "study.update"))
    assert actions[last + 1 :] == [], f"written after the lock: {actions}"


def test_an_upload_in_flight_does_not_commit_after_the_lock(
    service: Service,  # noqa: F811
    race_trial: tuple[Trial, str, str],
) -> None:
    trial, wound, _ = race_trial
    r, actions = _race(
        service, trial, lambda: trial.upload(wound, sample_photo("0078"), px_per_mm="10")
    )
    assert r.status_code == 423 and r.json()["code"] == "study_locked", r.text  # type: ignore[attr-defined]
    _nothing_after_the_lock(actions)


def test_a_correction_in_flight_does_not_commit_after_the_lock(
    service: Service,  # noqa: F811
    race_trial: tuple[Trial, str, str],
) -> None:
    trial, _, assessment = race_trial
    r, actions = _race(
        service,
        trial,
        lambda: trial.client.put(
            f"/v1/assessments/{assessment}/mask",
            data={"reason": "edge", "polygon": "[[10,10],[80,12],[40,70]]"},
            headers=trial.keys["clinician"],
        ),
    )
    assert r.status_code == 423 and r.json()["code"] == "study_locked", r.text  # type: ignore[attr-defined]
    _nothing_after_the_lock(actions)


def test_a_reanalysis_in_flight_does_not_commit_after_the_lock(
    service: Service,  # noqa: F811
    race_trial: tuple[Trial, str, str],
) -> None:
    from sqlalchemy import delete

    from service.domain.reanalysis import Outcome, ensure_measurement
    from service.persistence.orm import Measurement

    trial, _, assessment = race_trial
    runtime = service.app.state.runtime
    held = _HeldSegmenter(runtime.models.get(None))
    # a photo that model had measured is skipped before it runs: start from none
    with service.db.session() as s:
        s.execute(delete(Measurement).where(Measurement.assessment_id == assessment))

    def reanalyze() -> object:
        with service.db.sessions() as session:
            return ensure_measurement(session, runtime.store, held, Caller.cli("race"), assessment)  # type: ignore[arg-type]

    result, actions = _race(service, trial, reanalyze, held)
    _nothing_after_the_lock(actions)
    assert result == Outcome.LOCKED, result
