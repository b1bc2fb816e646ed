"""Which measurement counts for a photo and why one does not (DESIGN): the current
measurement, review status, series flags, ``uncounted_reason``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.core import review
from service.core.errors import NotFound
from service.core.healing import AFTER_SUBJECT_EVENT, is_closed
from service.core.measure import IMPLAUSIBLE, calibration_uncounted_reason
from service.domain import access, events
from service.persistence.orm import Assessment, Measurement, Study, Wound

NOT_PINNED_MODEL = "not measured with the pinned model: run reanalyze"


def current_measurement(assessment: Assessment, study: Study | None = None) -> Measurement | None:
    """Which measurement counts for a photo (DESIGN): the latest manual correction, else
    the measurement of the study's pinned model (none from another model: None), else,
    in a study that pins none, the newest automatic one."""
    rows = sorted(assessment.measurements, key=lambda m: m.id, reverse=True)
    for row in rows:
        if row.manual:
            return row
    study = study or access.study_of(assessment)
    if study.model:
        return next((row for row in rows if row.model_id == study.model), None)
    return rows[0] if rows else None


def is_reviewed(assessment: Assessment, measurement: Measurement | None) -> bool:
    """A clinician drew this measurement (manual correction) or accepted it."""
    if measurement is None:
        return False
    if measurement.manual:
        return True
    return assessment.accepted and assessment.accepted_measurement_id in (None, measurement.id)


def in_capture_order(wound: Wound) -> list[Assessment]:
    """The wound's non-voided assessments by capture time, then upload time."""
    return sorted(
        (a for a in wound.assessments if not a.voided), key=lambda a: (a.captured_at, a.created_at)
    )


def is_superseded(assessment: Assessment) -> bool:
    """A later upload of the same wound and day replaced this photo (DESIGN: the last one
    uploaded counts)."""
    rows = in_capture_order(assessment.wound)
    later = rows[rows.index(assessment) + 1 :] if assessment in rows else []
    return bool(later) and later[0].captured_at.date() == assessment.captured_at.date()


def series_flags_of(wound: Wound, study: Study) -> dict[str, list[dict[str, Any]]]:
    """The series flags (``review.series_flags``: implausible_change,
    closure_area_mismatch) of the wound's non-voided assessments, by assessment id."""
    rows = in_capture_order(wound)
    points = []
    for i, a in enumerate(rows):
        m = current_measurement(a, study)
        reviewed = is_reviewed(a, m)
        calibrated = m is not None and m.calibrated
        points.append(
            review.SeriesPoint(
                assessment_id=a.id,
                captured_on=a.captured_at.date(),
                area_cm2=m.area_cm2 if m is not None and calibrated else None,
                area_px=m.data.get("area_px") if m is not None else None,
                comparable=calibrated and (m is not None and not m.severe or reviewed),
                reviewed=reviewed,
                epithelialized=a.epithelialized,
                drainage=a.drainage,
                superseded=i + 1 < len(rows)
                and rows[i + 1].captured_at.date() == a.captured_at.date(),
                requires_drainage_recorded=study.closure_requires_drainage_recorded,
            )
        )
    return review.series_flags(points)


def review_reasons(
    assessment: Assessment, measurement: Measurement | None, series: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The flags that send a photo to review: its own (``review.own_review_flags``),
    then its series flags."""
    quality = (measurement.data.get("quality") or []) if measurement is not None else []
    closed = is_closed(
        assessment.epithelialized,
        assessment.drainage,
        requires_drainage_recorded=access.study_of(assessment).closure_requires_drainage_recorded,
    )
    own = review.own_review_flags(quality, recorded_closed=closed)
    return [*own, *series]


def awaiting_review(
    assessment: Assessment,
    measurement: Measurement | None,
    study: Study,
    series: Sequence[dict[str, Any]],
) -> bool:
    """Whether the review queue lists this photo (``review.awaiting_review``); never a
    voided or superseded one, or one after the end of follow-up (it cannot count
    whatever a clinician says). One whose calibration keeps it out
    (``calibration_block``) stays listed until a correction gives the scale."""
    if (
        assessment.voided
        or measurement is None
        or is_superseded(assessment)
        or after_follow_up(assessment)
    ):
        return False
    reviewed = is_reviewed(assessment, measurement) and (
        not measurement.calibrated or calibration_block(assessment, measurement) is None
    )
    return review.awaiting_review(
        study.review,
        reviewed=reviewed,
        severe=measurement.severe,
        review_flagged=review.review_flagged(review_reasons(assessment, measurement, series)),
    )


def uncounted_reason(
    assessment: Assessment,
    measurement: Measurement | None,
    series: Sequence[dict[str, Any]] | None = None,
) -> str | None:
    """The one "counted" rule (DESIGN): why this photo's ``measurement`` (its
    ``current_measurement``) stays out of the cm² endpoints, or None when it counts.
    Not voided, not dated after the end of follow-up (``events.blocking_event``:
    ``after_subject_event``), measured by the pinned model (or corrected by hand),
    calibrated (else ``uncalibrated``, and only then: ``calibrated`` and this reason
    never contradict), free of a calibration flag that no review lifts
    (``calibration_block``), with a physical area, and counted under the study's review
    policy (``review.counts_under_review_policy``).
    ``series``: the photo's series flags (``series_flags_of``; computed when not given)."""
    if assessment.voided:
        return "voided"
    if after_follow_up(assessment):
        return AFTER_SUBJECT_EVENT
    if measurement is None:
        study = access.study_of(assessment)
        return NOT_PINNED_MODEL if study.model and assessment.measurements else "no_measurement"
    if not measurement.calibrated:
        return "uncalibrated"
    blocked = calibration_block(assessment, measurement)
    if blocked is not None:
        return blocked
    if measurement.area_cm2 is None:  # calibrated without an area: not a physical value
        return IMPLAUSIBLE
    study = access.study_of(assessment)
    if series is None:
        series = series_flags_of(assessment.wound, study).get(assessment.id, [])
    if review.counts_under_review_policy(
        study.review,
        reviewed=is_reviewed(assessment, measurement),
        severe=measurement.severe,
        review_flagged=review.review_flagged(review_reasons(assessment, measurement, series)),
    ):
        return None
    return "severe_quality_flag" if measurement.severe else "awaiting_review"


def after_follow_up(assessment: Assessment) -> bool:
    """The photo is dated after the event that ended its wound's follow-up."""
    return events.blocking_event(assessment.wound, assessment.captured_at.date()) is not None


def calibration_block(assessment: Assessment, measurement: Measurement) -> str | None:
    """A calibration flag that keeps ``measurement`` out whatever the review says
    (``measure.calibration_uncounted_reason``): ``implausible_measurement``,
    ``scale_conflict``, or an unreadable marker on a correction no clinician accepted."""
    accepted = assessment.accepted and assessment.accepted_measurement_id == measurement.id
    return calibration_uncounted_reason(
        measurement.data.get("quality") or [], manual=measurement.manual, accepted=accepted
    )


def is_counted(
    assessment: Assessment,
    measurement: Measurement | None,
    series: Sequence[dict[str, Any]] | None = None,
) -> bool:
    """Whether this photo's measurement enters cm² endpoints (``uncounted_reason``)."""
    return uncounted_reason(assessment, measurement, series) is None


def find_measurement(
    assessment: Assessment, measurement_id: int | None, study: Study
) -> Measurement:
    if measurement_id is None:
        found = current_measurement(assessment, study)
    else:
        found = next((m for m in assessment.measurements if m.id == measurement_id), None)
    if found is None:
        raise NotFound(
            "measurement", measurement_id if measurement_id is not None else f"of {assessment.id}"
        )
    return found
