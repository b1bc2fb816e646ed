"""A clinician's corrected outline of a photo, added as a new manual measurement."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from service.core.errors import DomainError
from service.core.freetext import check_text
from service.core.pipeline import ruler_json
from service.domain import access, audit, counting, shared
from service.domain.auth import Caller
from service.domain.roles import CORRECTORS
from service.persistence.orm import Assessment, Measurement

if TYPE_CHECKING:
    from service.core.pipeline import Calibration
    from service.runtime.context import Runtime


def correct_mask(
    session: Session,
    runtime: Runtime,
    caller: Caller,
    assessment: Assessment,
    *,
    mask_png: bytes | None,
    polygon: str | None,
    reason: str,
    scale: Calibration | None = None,
) -> Measurement:
    """A clinician's outline becomes a new manual measurement; earlier ones stay.

    ``scale``: the scale (``px_per_mm`` or ``ruler``) the clinician gives with it, which
    is used instead of the photo's own and overrules a disagreeing marker; without it the
    photo's calibration is measured again, so a severe calibration flag
    (``scale_conflict``, ``marker_unreadable``) keeps the correction out of the endpoints
    (``counting.calibration_block``).

    The study's lock is checked again in the writing transaction
    (``access.lock_study_for_write``): a lock set while the outline was measured wins."""
    caller.require(*CORRECTORS)
    study = access.ensure_writable(assessment)
    shared.refuse_if_voided(assessment)
    if not reason.strip():
        raise DomainError("a correction needs a 'reason'", code="reason_required")
    reason = check_text(reason.strip(), "reason", multiline=True)
    corrected = counting.current_measurement(assessment, study)
    photo = runtime.store.get(assessment.photo_key)
    cal = shared.calibration_of(assessment)
    marker_mm = study.marker_mm
    session.commit()
    given = scale if scale is not None and (scale.px_per_mm or scale.ruler) else None
    png, result = runtime.pool.run(
        runtime.manual_mask,
        photo,
        mask_png=mask_png,
        polygon=polygon,
        marker_mm=marker_mm,
        cal=cal,
        clinician_scale=given,
    )
    mask_key = runtime.store.put(png, "png")
    access.lock_study_for_write(session, study.id)  # locked meanwhile: nothing commits
    row = shared.measurement_row(
        assessment,
        result,
        mask_key,
        _model_of(corrected),
        created_by=caller.holder,
        manual=True,
        reason=reason,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        caller,
        "measurement.correct",
        f"assessment/{assessment.id}",
        study_id=study.id,
        before={
            "measurement": corrected.id if corrected else None,
            "area_cm2": corrected.area_cm2 if corrected else None,
        },
        after={
            "measurement": row.id,
            "area_cm2": row.area_cm2,
            "reason": row.reason,
            "mask_key": mask_key,
            "px_per_mm": given.px_per_mm if given else None,
            "ruler": ruler_json(given.ruler) if given else None,
        },
    )
    session.commit()
    return row


def _model_of(corrected: Measurement | None) -> dict[str, str]:
    """The model a correction is filed under: that of the measurement it corrects (so a
    corrected photo stays with its model version), or ``manual`` when there was none."""
    if corrected is None:
        return {"name": "manual", "version": "0", "sha256": ""}
    return {
        "name": corrected.model_name,
        "version": corrected.model_version,
        "sha256": corrected.model_sha256,
    }
