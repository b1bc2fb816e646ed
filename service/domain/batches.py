"""Batches of work for the job engine: a study's re-analysis as a batch of photos,
what one photo's task does, its progress read back from what it wrote, and the
dead-letter record of the photos that failed for good.

Re-analysis is an idempotent *ensure*: every counted photo of the study gets a
measurement by model V. The database enforces one automatic measurement per
(photo, model version) (``uq_measurement_model``), so a task delivered twice, or
retried after it wrote, adds nothing. Progress is not a counter the workers
update: an item is done when its photo has the batch model's measurement, failed
when it has a ``BatchFailure``, pending otherwise; a crash cannot make the two
disagree.

The engine (Celery or the in-process loop) lives in ``service.jobs``; this module
is what both call.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.core.errors import NotFound
from service.domain import access, audit
from service.domain.auth import Caller
from service.domain.roles import ADMIN
from service.domain.trial import _measurement_row, calibration_of, pending_reanalysis
from service.persistence.orm import (
    Assessment,
    Batch,
    BatchFailure,
    BatchItem,
    Measurement,
    Study,
)
from service.persistence.storage import make_key

if TYPE_CHECKING:
    from service.core.measure import QualityLimits
    from service.core.segmentation import WoundSegmenter
    from service.persistence.storage import PhotoStore

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


class Outcome(StrEnum):
    """What one photo's task did."""

    MEASURED = "measured"
    ALREADY = "already"
    """That model version had measured it (an earlier run, or a duplicate delivery)."""
    LOCKED = "study_locked"
    VOIDED = "already_voided"


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


# --- one photo ---------------------------------------------------------------------


def _measured_by(session: Session, assessment_id: str, model: dict[str, str]) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(
                    Measurement.assessment_id == assessment_id,
                    Measurement.manual.is_(False),
                    Measurement.model_name == model["name"],
                    Measurement.model_version == model["version"],
                )
            )
        )
    )


def study_locked_for_write(session: Session, study_id: str) -> bool:
    """Whether the study is locked, read inside the writing transaction so that the
    answer holds until it commits: on PostgreSQL the study row is held ``FOR SHARE``
    (a lock's UPDATE waits for this commit, or this read waits for the lock's commit
    and sees it; two workers' writes do not wait on each other); on SQLite the
    caller has already written in this transaction, so it holds the database's one
    write lock and no lock can commit in between.

    To be unified with the domain's study-lock helper for every write (issue 28)."""
    stmt = select(Study.locked).where(Study.id == study_id).with_for_update(read=True)
    return bool(session.scalar(stmt))


def ensure_measurement(
    session: Session,
    store: PhotoStore,
    segmenter: WoundSegmenter,
    caller: Caller,
    assessment_id: str,
    limits: QualityLimits | None = None,
) -> Outcome:
    """Make sure the photo has a measurement by ``segmenter``'s model version: measure
    the stored photo and add the measurement (never replace one), with its mask and
    audit entry, in one transaction that checks the study lock before it commits.

    Idempotent: a photo that model already measured is left alone before the model
    runs, and a concurrent twin that lost the race on the database's unique key
    rolls back. A locked study or a voided photo ends without writing anything.
    Raises ``NotFound`` for an unknown photo, ``StorageError``/``ImageError`` for one
    that cannot be read, and the database's errors as they come (the engine retries
    the transient ones)."""
    from service.core.pipeline import reanalyse

    model = segmenter.info()
    assessment = session.get(Assessment, assessment_id)
    if assessment is None:
        raise NotFound("assessment", assessment_id)
    if assessment.voided:
        return Outcome.VOIDED
    if _measured_by(session, assessment_id, model):
        return Outcome.ALREADY
    study = access.study_of(assessment)
    if study.locked:  # before the model runs: a locked study costs nothing
        return Outcome.LOCKED
    photo, marker_mm, cal = (
        store.get(assessment.photo_key),
        study.marker_mm,
        calibration_of(assessment),
    )
    session.commit()  # the model runs outside any transaction (and holds no connection)

    png, result = reanalyse(photo, segmenter=segmenter, marker_mm=marker_mm, cal=cal, limits=limits)
    mask_key = make_key(hashlib.sha256(png).hexdigest(), "png")
    row = _measurement_row(assessment, result, mask_key, model, created_by=caller.holder)
    session.add(row)
    try:
        session.flush()
    except IntegrityError:  # a twin delivery measured it meanwhile
        session.rollback()
        return Outcome.ALREADY
    if study_locked_for_write(session, study.id):
        session.rollback()
        return Outcome.LOCKED
    store.put(png, "png")  # before the commit: a committed row's mask is always there
    audit.record(
        session,
        caller,
        "measurement.reanalyze",
        f"assessment/{assessment_id}",
        study_id=study.id,
        after={"measurement": row.id, "model": model, "area_cm2": row.area_cm2},
    )
    session.commit()
    return Outcome.MEASURED


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
