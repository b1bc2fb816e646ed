"""Re-measuring a study's stored photos with another model version (``reanalyze``):
which photos a version has not measured yet, and one photo's idempotent *ensure*,
the task the job engine (``service.jobs``) runs in a worker or in process.

Delivery of a task is at least once; the effect is once: the database holds one
automatic measurement per (photo, model version) (``uq_measurement_model``), so a
task delivered twice, or retried after it wrote, adds nothing.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.core.errors import NotFound, StudyLocked
from service.domain import access, audit, shared
from service.domain.auth import Caller
from service.persistence.orm import Assessment, Measurement, Subject, Wound

if TYPE_CHECKING:
    from service.core.measure import QualityLimits
    from service.core.segmentation import WoundSegmenter
    from service.persistence.storage import PhotoStore


class Outcome(StrEnum):
    """What one photo's task did."""

    MEASURED = "measured"
    ALREADY = "already"
    """That model version had measured it (an earlier run, or a duplicate delivery)."""
    LOCKED = "study_locked"
    VOIDED = "already_voided"


def pending_reanalysis(session: Session, study_id: str, model: dict[str, str]) -> list[str]:
    """Ids of the study's (non-voided) assessments without an automatic measurement by
    this model version, in upload order: what ``reanalyze`` still has to do."""
    done = (
        select(Measurement.assessment_id)
        .where(
            Measurement.manual.is_(False),
            Measurement.model_name == model["name"],
            Measurement.model_version == model["version"],
        )
        .scalar_subquery()
    )
    stmt = (
        select(Assessment.id)
        .join(Wound, Wound.id == Assessment.wound_id)
        .join(Subject, Subject.id == Wound.subject_id)
        .where(
            Subject.study_id == study_id, Assessment.voided.is_(False), Assessment.id.not_in(done)
        )
        .order_by(Assessment.created_at, Assessment.id)
    )
    return list(session.scalars(stmt))


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
    audit entry, in one transaction that checks the study lock under the study row's
    write lock (``access.lock_study_for_write``) before it writes.

    Idempotent: a photo that model already measured is left alone before the model
    runs, and a concurrent twin that lost the race on the database's unique key
    rolls back. A locked study or a voided photo ends without a measurement or an
    audit entry (a study locked while the model ran leaves the stored mask an orphan,
    as an upload does: ``woundscope fsck --repair``).
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
        shared.calibration_of(assessment),
    )
    session.commit()  # the model runs outside any transaction (and holds no connection)

    png, result = reanalyse(photo, segmenter=segmenter, marker_mm=marker_mm, cal=cal, limits=limits)
    # Durable before the row that names it; if the lock wins below, an orphan that
    # `woundscope fsck --repair` removes (the uploads' order).
    mask_key = store.put(png, "png")
    try:  # the lock re-read under the study row's write lock, in this transaction
        access.lock_study_for_write(session, study.id)
    except StudyLocked:  # locked while the model ran: nothing commits (rolled back)
        return Outcome.LOCKED
    row = shared.measurement_row(assessment, result, mask_key, model, created_by=caller.holder)
    session.add(row)
    try:
        session.flush()
    except IntegrityError:  # a twin delivery measured it meanwhile
        session.rollback()
        return Outcome.ALREADY
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
