"""Batches of work for the job engine: a study's re-analysis as a batch of photos
(each photo's task: ``reanalysis.ensure_measurement``), its progress read back from
what it wrote, and the dead-letter record of the photos that failed for good.

Progress is not a counter the workers update: an item is done when its photo has
the batch model's measurement, failed when it has a ``BatchFailure``, pending
otherwise; a crash cannot make the two disagree.

The engine (Celery or the in-process loop) lives in ``service.jobs``; this module
is what both call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, exists, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.core.errors import NotFound
from service.domain import access, audit
from service.domain.auth import Caller
from service.domain.reanalysis import pending_reanalysis
from service.domain.roles import ADMIN
from service.persistence.orm import (
    Batch,
    BatchFailure,
    BatchItem,
    Measurement,
    Study,
)

REANALYZE = "reanalyze"

# code of a dead-letter record -> what it means and what the admin can do
FAILURE_CODES: dict[str, str] = {
    "study_locked": "The study was locked before this photo was measured: nothing was written."
    " Unlock it and run reanalyze again to measure what is left.",
    "already_voided": "The photo was voided after the batch started: it needs no measurement.",
    "photo_unreadable": "The stored photo is missing, corrupt or cannot be decoded: run"
    " `woundscope fsck`.",
    "model_not_installed": "The worker that took the task has no such model installed:"
    " install it on every worker host (WOUNDSCOPE_MODELS_DIR), then run reanalyze again.",
    "model_mismatch": "The worker's copy of the model has other weights (sha256) than the one"
    " the batch was started with: install the same release on every worker host.",
    "gave_up": "A transient error (database, photo store) outlasted every retry: check the"
    " service named in the reason, then run reanalyze again.",
    "internal_error": "An unexpected error; the reason names it. Report it with the batch id.",
}


# --- starting a batch --------------------------------------------------------------


def start_reanalysis(
    session: Session, caller: Caller, study_id: str, model: dict[str, str], *, engine: str
) -> tuple[Batch, list[str]]:
    """Record a batch of the study's photos that ``model`` has not measured yet (in
    upload order) and return it with their ids, for the engine to measure. An
    unknown study is ``NotFound``, a locked one ``StudyLocked``: refused before any
    work. Audited as ``reanalysis.start``."""
    caller.require(ADMIN)
    study = access.load_study(session, caller, study_id)
    access.ensure_writable(study)
    todo = pending_reanalysis(session, study.id, model)
    batch = Batch(
        study_id=study.id,
        kind=REANALYZE,
        model_name=model["name"],
        model_version=model["version"],
        model_sha256=model["sha256"],
        engine=engine,
        total=len(todo),
        created_by=caller.holder,
    )
    session.add(batch)
    session.flush()
    if todo:
        session.execute(
            insert(BatchItem), [{"batch_id": batch.id, "assessment_id": a} for a in todo]
        )
    audit.record(
        session,
        caller,
        "reanalysis.start",
        f"batch/{batch.id}",
        study_id=study.id,
        after={"model": model, "photos": len(todo), "engine": engine},
    )
    session.commit()
    return batch, todo


def load_batch(session: Session, batch_id: str) -> Batch:
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise NotFound("batch", batch_id)
    return batch


def record_failure(
    session: Session,
    batch_id: str,
    assessment_id: str,
    *,
    code: str,
    reason: str,
    attempts: int,
    worker: str,
) -> bool:
    """Add the dead-letter record of a photo the batch could not measure; False when it
    already has one (a duplicate delivery failed again). ``code`` is one of
    ``FAILURE_CODES``."""
    if code not in FAILURE_CODES:
        raise ValueError(f"unregistered failure code {code!r}")
    session.add(
        BatchFailure(
            batch_id=batch_id,
            assessment_id=assessment_id,
            code=code,
            reason=reason[:2000],
            attempts=attempts,
            worker=worker[:200],
        )
    )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return True


# --- progress ----------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    assessment: str
    code: str
    reason: str
    attempts: int
    worker: str
    at: Any


@dataclass(frozen=True)
class BatchStatus:
    """A batch's progress: ``pending + done + failed == total``."""

    id: str
    study: str
    kind: str
    model: str
    engine: str
    total: int
    pending: int
    done: int
    failed: int
    created_by: str
    created_at: Any
    failures: list[Failure] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.pending == 0


def _progress(session: Session, batch: Batch) -> tuple[int, int]:
    """(done, failed) of a batch: items whose photo has the batch model's automatic
    measurement, and items with a dead-letter record that are not done."""
    measured = exists().where(
        Measurement.assessment_id == BatchItem.assessment_id,
        Measurement.manual.is_(False),
        Measurement.model_name == batch.model_name,
        Measurement.model_version == batch.model_version,
    )
    dead = exists().where(
        BatchFailure.batch_id == BatchItem.batch_id,
        BatchFailure.assessment_id == BatchItem.assessment_id,
    )
    row = session.execute(
        select(
            func.count().filter(measured),
            func.count().filter(and_(~measured, dead)),
        ).where(BatchItem.batch_id == batch.id)
    ).one()
    return int(row[0]), int(row[1])


def status_of(session: Session, batch: Batch, *, failures_limit: int = 100) -> BatchStatus:
    """The progress of ``batch`` (no access check: for the engine and the CLI)."""
    done, failed = _progress(session, batch)
    rows = session.scalars(
        select(BatchFailure)
        .where(BatchFailure.batch_id == batch.id, ~_done_clause(batch))
        .order_by(BatchFailure.id)
        .limit(failures_limit)
    )
    return BatchStatus(
        id=batch.id,
        study=batch.study_id,
        kind=batch.kind,
        model=batch.model_id,
        engine=batch.engine,
        total=batch.total,
        pending=batch.total - done - failed,
        done=done,
        failed=failed,
        created_by=batch.created_by,
        created_at=batch.created_at,
        failures=[
            Failure(r.assessment_id, r.code, r.reason, r.attempts, r.worker, r.created_at)
            for r in rows
        ],
    )


def _done_clause(batch: Batch) -> Any:
    return exists().where(
        Measurement.assessment_id == BatchFailure.assessment_id,
        Measurement.manual.is_(False),
        Measurement.model_name == batch.model_name,
        Measurement.model_version == batch.model_version,
    )


def batch_status(session: Session, caller: Caller, study: Study, batch_id: str) -> BatchStatus:
    """The progress of one of the study's batches, for an admin (another study's batch
    is ``NotFound``)."""
    caller.require(ADMIN)
    batch = session.get(Batch, batch_id)
    if batch is None or batch.study_id != study.id:
        raise NotFound("batch", batch_id)
    return status_of(session, batch)


def recent_batches(
    session: Session, caller: Caller, study: Study, limit: int = 5
) -> list[BatchStatus]:
    """The study's latest batches with their progress, newest first, for an admin (the
    dashboard's study page); none for other roles."""
    if caller.role != ADMIN:
        return []
    rows = session.scalars(
        select(Batch)
        .where(Batch.study_id == study.id)
        .order_by(Batch.created_at.desc())
        .limit(limit)
    )
    return [status_of(session, b, failures_limit=0) for b in rows]
