"""Re-measuring a study's stored photos with another model version (``reanalyze``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.core.errors import NotFound
from service.domain import access, audit, shared
from service.domain.auth import Caller
from service.persistence.orm import Assessment, Measurement, Subject, Wound

if TYPE_CHECKING:
    from service.core.measure import QualityLimits
    from service.core.segmentation import WoundSegmenter
    from service.persistence.storage import PhotoStore


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


def reanalyze_assessment(
    session: Session,
    store: PhotoStore,
    segmenter: WoundSegmenter,
    caller: Caller,
    assessment_id: str,
    limits: QualityLimits | None = None,
) -> Measurement | None:
    """Measure a stored photo again with ``segmenter``'s model and add (never replace) the
    measurement. None when that model version already measured it (another run)."""
    from service.core.pipeline import reanalyse

    assessment = session.get(Assessment, assessment_id)
    if assessment is None:
        raise NotFound("assessment", assessment_id)
    study = access.ensure_writable(assessment)  # a locked study takes no new measurement
    png, result = reanalyse(
        store.get(assessment.photo_key),
        segmenter=segmenter,
        marker_mm=study.marker_mm,
        cal=shared.calibration_of(assessment),
        limits=limits,
    )
    mask_key = store.put(png, "png")
    row = shared.measurement_row(
        assessment, result, mask_key, segmenter.info(), created_by=caller.holder
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        return None
    audit.record(
        session,
        caller,
        "measurement.reanalyze",
        f"assessment/{assessment.id}",
        study_id=study.id,
        after={"measurement": row.id, "model": segmenter.info(), "area_cm2": row.area_cm2},
    )
    session.commit()
    return row
