"""Re-measuring a study's stored photos with another model version (``reanalyze``):
which photos a version has not measured yet, and one photo's idempotent *ensure*,
the task the job engine (``service.jobs``) runs in a worker or in process.

Delivery of a task is at least once; the effect is once: the database holds one
automatic measurement per (photo, model version) (``uq_measurement_model``), so a
task delivered twice, or retried after it wrote, adds nothing.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.core.errors import NotFound
from service.domain import access, audit, shared
from service.domain.auth import Caller
from service.persistence.orm import Assessment, Measurement, Study, Subject, Wound
from service.persistence.storage import make_key

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
        shared.calibration_of(assessment),
    )
    session.commit()  # the model runs outside any transaction (and holds no connection)

    png, result = reanalyse(photo, segmenter=segmenter, marker_mm=marker_mm, cal=cal, limits=limits)
    mask_key = make_key(hashlib.sha256(png).hexdigest(), "png")
    row = shared.measurement_row(assessment, result, mask_key, model, created_by=caller.holder)
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
