"""One photo's task, the retry policy, the dead-letter record and a batch's progress,
on SQLite and PostgreSQL, without a broker (the engine's own tests: test_engine.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from service.config import Settings
from service.domain import batches, reanalysis
from service.domain.auth import Caller
from service.domain.reanalysis import Outcome
from service.jobs import work
from service.jobs.batch import run_here, start_reanalysis, status
from service.jobs.work import PhotoTask, WorkerContext
from service.persistence.db import Database, upgrade
from service.persistence.orm import AuditEntry, BatchFailure, Measurement, Study
from service.persistence.storage import PhotoNotFound, StorageError, open_store
from service.runtime.artifacts import installed_models
from service.runtime.inference import Segmenter
from tests.api.conftest import need_model
from tests.jobs.study import photos, seed_study


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgres":
        yield request.getfixturevalue("pg_database")
    else:
        url = f"sqlite:///{tmp_path / 'woundscope.db'}"
        upgrade(url)
        yield url


@pytest.fixture(scope="module")
def segmenter() -> Segmenter:
    need_model()
    return Segmenter(installed_models()[0][1], threads=1)


def _settings(tmp_path: Path, url: str) -> Settings:
    return Settings(data_dir=tmp_path, database_url=url, log_level="WARNING")


def _batch(url: str, study: str, segmenter: Segmenter) -> tuple[str, list[PhotoTask]]:
    db = Database(url)
    try:
        batch, tasks = start_reanalysis(
            db, Caller.cli("test"), study, segmenter.info(), engine="in_process"
        )
    finally:
        db.dispose()
    return batch.id, tasks


def _count(url: str, model: Any, *where: Any) -> int:
    db = Database(url)
    try:
        with db.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)
    finally:
        db.dispose()


class LockingSegmenter:
    """The real segmenter, but an admin locks the study (and commits) while the model
    runs: the race the writing transaction's lock check is there for."""

    def __init__(self, inner: Segmenter, db_url: str, study: str):
        self.inner, self.db_url, self.study = inner, db_url, study

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def segment(self, rgb: np.ndarray, *args: Any, **kwargs: Any) -> Any:
        out = self.inner.segment(rgb, *args, **kwargs)
        db = Database(self.db_url)
        try:
            with db.session() as session:
                row = session.get(Study, self.study)
                assert row is not None
                row.locked = True
        finally:
            db.dispose()
        return out


def test_a_lock_that_commits_while_the_model_runs_keeps_the_write_out(
    database: str, segmenter: Segmenter, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, database)
    study, ids = seed_study(database, settings.storage_url, photos(1))
    store = open_store(settings.storage_url)
    db = Database(database)
    try:
        with db.sessions() as session:
            outcome = reanalysis.ensure_measurement(
                session,
                store,
                LockingSegmenter(segmenter, database, study),
                Caller.cli("t"),
                ids[0],  # type: ignore[arg-type]
            )
    finally:
        db.dispose()
    assert outcome is Outcome.LOCKED
    assert _count(database, Measurement) == 0
    assert _count(database, AuditEntry, AuditEntry.action == "measurement.reanalyze") == 0
    # the mask stored before the lock was seen is an orphan, as an upload's would be
    assert len(list((tmp_path / "photos").rglob("*.png"))) <= 1


def test_ensure_is_idempotent_and_the_database_refuses_a_twin(
    database: str, segmenter: Segmenter, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, database)
    study, ids = seed_study(database, settings.storage_url, photos(1))
    store = open_store(settings.storage_url)
    db = Database(database)
    try:
        with db.sessions() as session:
            first = reanalysis.ensure_measurement(
                session, store, segmenter, Caller.cli("t"), ids[0]
            )
            again = reanalysis.ensure_measurement(
                session, store, segmenter, Caller.cli("t"), ids[0]
            )
        assert (first, again) == (Outcome.MEASURED, Outcome.ALREADY)
        with db.sessions() as session:  # a twin that raced past the check meets the unique key
            row = session.scalars(select(Measurement)).one()
            twin = Measurement(
                **{c: getattr(row, c) for c in ("assessment_id", "data", "mask_key", "created_by")},
                model_name=row.model_name,
                model_version=row.model_version,
                model_sha256=row.model_sha256,
                manual=False,
            )
            session.add(twin)
            with pytest.raises(IntegrityError):
                session.flush()
    finally:
        db.dispose()
    assert _count(database, Measurement) == 1


def test_progress_is_read_from_the_rows_and_a_failure_is_recorded_once(
    database: str, segmenter: Segmenter, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, database)
    study, ids = seed_study(database, settings.storage_url, photos(4))
    batch, tasks = _batch(database, study, segmenter)
    db = Database(database)
    try:
        first = status(db, batch)
        assert (first.total, first.pending, first.done, first.failed) == (4, 4, 0, 0)
        counts = run_here(settings, tasks[:2], segmenter=segmenter)
        assert counts == {"measured": 2}
        with db.sessions() as session:
            for _ in range(2):  # a duplicate delivery that fails again adds nothing
                batches.record_failure(
                    session,
                    batch,
                    ids[3],
                    code="photo_unreadable",
                    reason="x",
                    attempts=1,
                    worker="w",
                )
        after = status(db, batch)
        assert (after.pending, after.done, after.failed) == (1, 2, 1)
        assert [(f.assessment, f.code) for f in after.failures] == [(ids[3], "photo_unreadable")]
        with pytest.raises(ValueError, match="unregistered"), db.sessions() as session:
            batches.record_failure(
                session, batch, ids[2], code="nope", reason="", attempts=1, worker="w"
            )
        # a later success wins over an earlier failure: done, not failed
        run_here(settings, tasks[3:], segmenter=segmenter)
        last = status(db, batch)
        assert (last.pending, last.done, last.failed, last.failures) == (1, 3, 0, [])
    finally:
        db.dispose()


class OutageStoreFake:
    """The photo store, unreachable for its first ``outages`` reads (StorageError, as
    the S3 store raises when the endpoint does not answer). A fake: a real outage of
    the store cannot be made on demand here."""

    def __init__(self, inner: Any, outages: int):
        self.inner, self.outages = inner, outages

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get(self, key: str) -> bytes:
        if self.outages:
            self.outages -= 1
            raise StorageError("s3://bucket: endpoint did not answer")
        return bytes(self.inner.get(key))


def test_transient_errors_are_retried_with_backoff_then_dead_lettered(
    database: str, segmenter: Segmenter, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, database)
    study, ids = seed_study(database, settings.storage_url, photos(2))
    batch, tasks = _batch(database, study, segmenter)
    ctx = WorkerContext(settings)
    ctx.use(segmenter)
    try:
        slept: list[float] = []
        ctx.store = OutageStoreFake(ctx.store, outages=2)  # type: ignore[assignment]
        outcome = work.run_with_retries(ctx, tasks[0], worker="t", sleep=slept.append)
        assert outcome is Outcome.MEASURED and len(slept) == 2
        assert 1.0 <= slept[0] <= 1.5 and 2.0 <= slept[1] <= 3.0  # 1 s, then 2 s (+ jitter)
        slept.clear()
        ctx.store = OutageStoreFake(ctx.store, outages=99)  # type: ignore[assignment]
        assert work.run_with_retries(ctx, tasks[1], worker="t", sleep=slept.append) is None
        assert len(slept) == work.MAX_ATTEMPTS - 1
    finally:
        ctx.close()
    db = Database(database)
    try:
        with db.sessions() as session:
            dead = session.scalars(select(BatchFailure)).one()
    finally:
        db.dispose()
    assert (dead.assessment_id, dead.code, dead.attempts) == (ids[1], "gave_up", work.MAX_ATTEMPTS)
    assert "endpoint did not answer" in dead.reason


def test_backoff_and_what_counts_as_transient() -> None:
    assert [work.backoff_s(n, jitter=0) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert work.backoff_s(0, jitter=0.99) < 1.5
    assert work.is_transient(OperationalError("SELECT 1", {}, Exception("server closed")))
    assert work.is_transient(StorageError("timeout"))
    assert not work.is_transient(PhotoNotFound("gone"))
    assert not work.is_transient(ValueError("bug"))
    assert work.failure_of(PhotoNotFound("gone"))[0] == "photo_unreadable"
    assert work.failure_of(work.ModelMismatch("other weights"))[0] == "model_mismatch"
    from service.core.errors import NoModel

    assert work.failure_of(NoModel("not installed"))[0] == "model_not_installed"
    samples = [ValueError("bug"), StorageError("down"), NoModel("x"), PhotoNotFound("gone")]
    assert all(work.failure_of(e)[0] in batches.FAILURE_CODES for e in samples)


def test_a_worker_with_other_weights_refuses(
    database: str, segmenter: Segmenter, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, database)
    study, _ = seed_study(database, settings.storage_url, photos(1))
    _, tasks = _batch(database, study, segmenter)
    ctx = WorkerContext(settings)
    ctx.use(segmenter)
    try:
        other = PhotoTask(**{**tasks[0].message(), "model_sha256": "f" * 64})
        with pytest.raises(work.ModelMismatch):
            work.run_photo(ctx, other, worker="t")
        assert work.run_with_retries(ctx, other, worker="t") is None
    finally:
        ctx.close()
    assert _count(database, BatchFailure, BatchFailure.code == "model_mismatch") == 1
    assert _count(database, Measurement) == 0


def test_broker_url_is_checked() -> None:
    assert Settings(broker_url="amqp://guest:guest@h:5672//").broker_url.startswith("amqp")
    with pytest.raises(ValueError, match="amqp://"):
        Settings(broker_url="http://rabbit")
    with pytest.raises(ValueError):
        Settings(broker_queue="bad queue name")


def test_readme_lists_every_failure_code() -> None:
    from tests.jobs.study import ROOT

    readme = (ROOT / "README.md").read_text()
    assert all(f"| `{code}` |" in readme for code in batches.FAILURE_CODES)


def test_worker_needs_a_broker_and_status_names_an_unknown_batch(tmp_path: Path) -> None:
    from tests.jobs.study import Deployment

    url = f"sqlite:///{tmp_path / 'woundscope.db'}"
    dep = Deployment(tmp_path, url)  # no broker
    out = dep.run("worker")
    assert out.returncode == 1 and "WOUNDSCOPE_BROKER_URL is not set" in out.stderr
    out = dep.run("jobs", "status", "bat_000000000000")
    assert out.returncode == 1 and "batch bat_000000000000 not found" in out.stderr
