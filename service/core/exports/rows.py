"""The rows every export is written from (one per stored measurement, one per subject),
the one time convention of the exports, and what counts in the words of each standard."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

SdtmValue = str | int | float | None
"""One value of an SDTM (or ADaM) record: text, a number, or missing (None)."""
SdtmRecord = dict[str, SdtmValue]
"""One record of an SDTM domain or of ADTTE: variable name -> value."""


@dataclass(frozen=True)
class MeasurementRow:
    """One stored measurement of one assessment, with everything needed to trace it."""

    study: str
    site: str
    subject_id: str
    subject_code: str
    wound_id: str
    wound_label: str
    assessment_id: str
    captured_at: datetime | date
    measurement_id: str
    model: str
    """Model id ``name-version`` that made (or, for a manual one, proposed) the outline."""
    manual: bool
    current: bool
    """This is the measurement that counts for its photo."""
    counted: bool
    """The photo's current measurement enters the cm² endpoints (calibrated, no
    unaccepted severe flag, not voided)."""
    calibration: str
    calibrated: bool
    area_cm2: float | None = None
    area_cm2_low: float | None = None
    area_cm2_high: float | None = None
    area_px: int | None = None
    perimeter_cm: float | None = None
    length_cm: float | None = None
    width_cm: float | None = None
    length_x_width_cm2: float | None = None
    px_per_mm: float | None = None
    tilt_deg: float | None = None
    components: int | None = None
    quality: Sequence[dict[str, Any]] = field(default_factory=tuple)
    model_sha256: str | None = None
    measured_at: datetime | None = None
    measured_by: str | None = None
    reason: str | None = None
    day: int | None = None
    visit: str | None = None
    wound_location: str | None = None
    index_leg: bool | None = None
    epithelialized: bool | None = None
    drainage: bool | None = None
    accepted: bool = False
    voided: bool = False
    void_reason: str | None = None
    """Why a clinician voided the photo (shown and exported; the photo is never deleted)."""
    uploaded_at: datetime | None = None
    photo_sha256: str | None = None
    photo_url: str | None = None
    arm: str | None = None
    uncounted_reason: str | None = None
    """Why the photo's current measurement stays out of the endpoints (the API's
    ``uncounted_reason``: ``uncalibrated``, ``severe_quality_flag``, …); None when counted."""
    reference_start: date | None = None
    """The subject's time origin (SDTM RFSTDTC): study days count from it."""


@dataclass(frozen=True)
class EventRow:
    """One live (not voided) subject event: ``kind`` one of the engine's ``EVENT_KINDS``,
    ``leg`` ``index``/``contralateral`` (amputations) or None."""

    kind: str
    on: date
    leg: str | None = None


@dataclass(frozen=True)
class SubjectRow:
    """One subject of the study, photographed or not (DM, DS, PR and ADSL list them all).

    The demographic fields are optional and admin-set: absent ones are exported as
    missing, never guessed."""

    study: str
    subject_id: str
    subject_code: str
    site: str
    reference_start: date | None = None
    arm: str | None = None
    randomized_on: date | None = None
    events: Sequence[EventRow] = ()
    """Live events only: the caller leaves voided ones out."""
    sex: str | None = None
    country: str | None = None
    age_years: int | None = None
    birth_date: date | None = None
    index_leg_side: str | None = None
    """LEFT or RIGHT: the side of the index leg, from which TU/PR laterality follow."""
    study_locked: bool = False
    """The study is locked: a subject without a disposition event has COMPLETED."""


def capture_time(
    value: datetime | date, clinic_tz: tzinfo | None = None, *, utc: bool = True
) -> str:
    """A capture date/time as the exports write it (ISO 8601): the one convention of
    every export is a date when only the day is known, else a time with its offset.

    The service stores the clinic's wall-clock time without a zone. A date alone when
    only the day is known (a date upload is stored as midnight) or when the clinic's
    zone is not configured: a time without an offset is not a valid FHIR dateTime, and
    a guessed zone could move the photo to another day. With the zone known, the
    instant in UTC (``+00:00``, as ``uploaded_at`` and ``measured_at``); with
    ``utc=False`` (SDTM --DTC) the same instant at the clinic's offset, so that the
    date part stays the clinic's calendar day, from which SDTM study days count."""
    if not isinstance(value, datetime):
        return value.isoformat()
    if value.tzinfo is None:
        if value.time() == time(0) or clinic_tz is None:
            return value.date().isoformat()
        value = value.replace(tzinfo=clinic_tz)
    if utc:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="seconds")


def utc_instant(value: datetime) -> str:
    """A server-made time (stored as UTC) in UTC with its offset: ``...+00:00``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


# --- what counts, in the words of each standard -------------------------------------

_NOT_DONE = {
    "uncalibrated": "NOT CALIBRATED",
    "severe_quality_flag": "SEVERE QUALITY FLAG",
    "no_measurement": "NOT MEASURED",
    "awaiting_review": "AWAITING REVIEW",
    "after_subject_event": "AFTER SUBJECT EVENT",
    "implausible_measurement": "IMPLAUSIBLE MEASUREMENT",
}


def not_done_reason(row: MeasurementRow, value: float | None) -> str | None:
    """Why a value of this photo is not reported (SDTM TRREASND; FHIR dataAbsentReason
    text), or None when it is: a photo kept out of the endpoints reports no value at
    all, never its area (a severe ``no_wound_found`` photo measures 0.0, which would
    read as healed).

    The reason is the caller's (``uncounted_reason``, the one "counted" rule,
    ``counting.uncounted_reason``): an export does not guess it, so a row not counted
    without one is refused."""
    if not row.counted:
        code = row.uncounted_reason
        if code is None:
            raise ValueError(
                f"measurement {row.measurement_id} of {row.assessment_id} is not counted"
                " but carries no uncounted_reason"
            )
        return _NOT_DONE.get(code, code.replace("_", " ").upper())
    return "NOT MEASURED" if value is None else None


def awaiting_clinician(row: MeasurementRow) -> bool:
    """Not counted for a reason a clinician can lift (accept or correct the outline)."""
    return not row.counted and not row.voided and row.calibrated
