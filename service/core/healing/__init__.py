"""Wound-healing endpoints: pure functions from visit series to the wire answers.

The package is the engine's one import point; each module holds one use case:
``inputs`` (what the engine reads, the closure rule, the settings), ``wound``,
``subject`` and ``study`` (the three answers), ``survival`` (Kaplan–Meier,
Aalen–Johansen) and ``comparisons`` (between arms).

Implements the "Endpoints" table of DESIGN.md. Inputs are plain dataclasses (no
database, no HTTP); outputs are JSON-ready dicts carrying the wire-contract keys.

Conventions:

- Days are calendar days between ``captured_at`` dates; the baseline visit is day 0.
- A visit is *counted* (enters the cm² endpoints) only when the caller says so
  (calibrated, not severe-flagged, or accepted/corrected by a clinician) and it has
  an area. Several assessments on one date: the last uploaded one is the visit; the
  others are listed with ``counted: false`` and take no part in closure either.
- A visit is *closed* when the clinician observed full re-epithelialisation and
  drainage recorded as absent (``is_closed``; a study may turn
  ``closure_requires_drainage_recorded`` off, and then unrecorded drainage does not
  keep a wound open). It is *open* only on an explicit observation
  (``epithelialized is False`` or ``drainage is True``); a visit without an
  observation is neither, and breaks a closure confirmation.
- A segmented area of zero never closes a wound; it is reported as a flag.
- The study's time-to-event is the **first** confirmed healing of all the wounds
  considered (a later recurrence does not erase it); durable healing (healed at the
  last visit) and recurrence are reported beside it.
- Median: the smallest t with S(t) <= 0.5 (within ``MEDIAN_TOLERANCE``), its 95 %
  CI by Brookmeyer–Crowley inversion of the log(−log) Greenwood band.
"""

from service.core.healing.comparisons import (
    arm_comparison,
    cox_hazard_ratio,
    stratified_logrank,
)
from service.core.healing.inputs import (
    AFTER_SUBJECT_EVENT,
    CLOSURE_CONFIRM_DAYS,
    DEFAULT_PHOTOS_AFTER_WITHDRAWAL,
    DRAINAGE_NOT_RECORDED,
    ENDS_SUBJECT_FOLLOW_UP,
    EVENT_KINDS,
    LEAVES_STUDY,
    LEGS,
    NO_INDEX_LEG_WOUND,
    PAR_RESPONSE_PCT,
    PAR_WEEK4_TARGET_DAYS,
    PAR_WEEK4_WINDOW_DAYS,
    PROPORTION_HEALED_DAYS,
    WEEK_DAYS,
    EndpointOptions,
    PhotosAfterWithdrawal,
    Subject,
    SubjectEvent,
    Visit,
    Wound,
    follow_up_end,
    followed_events,
    is_closed,
    last_contact_on,
    refuses_photo_after,
)
from service.core.healing.study import (
    par_distribution,
    study_endpoints,
)
from service.core.healing.subject import (
    BASE_DATE,
    first_all_healed,
    subject_endpoints,
    time_origin,
)
from service.core.healing.survival import (
    CIF_METHOD,
    MEDIAN_CI_METHOD,
    MEDIAN_DEFINITION,
    MEDIAN_TOLERANCE,
    Z_95,
    aalen_johansen,
)
from service.core.healing.wound import (
    absolute_healing_rate_cm2_per_week,
    first_day_par_at_least,
    gilman_cm_per_week,
    log_linear_rate_per_day,
    par_at_target,
    percent_area_reduction_pct,
    wound_endpoints,
)

__all__ = [
    "AFTER_SUBJECT_EVENT",
    "ENDS_SUBJECT_FOLLOW_UP",
    "follow_up_end",
    "last_contact_on",
    "followed_events",
    "BASE_DATE",
    "CIF_METHOD",
    "CLOSURE_CONFIRM_DAYS",
    "DEFAULT_PHOTOS_AFTER_WITHDRAWAL",
    "DRAINAGE_NOT_RECORDED",
    "EVENT_KINDS",
    "EndpointOptions",
    "LEAVES_STUDY",
    "LEGS",
    "MEDIAN_CI_METHOD",
    "MEDIAN_DEFINITION",
    "MEDIAN_TOLERANCE",
    "NO_INDEX_LEG_WOUND",
    "PAR_RESPONSE_PCT",
    "PAR_WEEK4_TARGET_DAYS",
    "PAR_WEEK4_WINDOW_DAYS",
    "PROPORTION_HEALED_DAYS",
    "PhotosAfterWithdrawal",
    "Subject",
    "SubjectEvent",
    "Visit",
    "WEEK_DAYS",
    "Wound",
    "Z_95",
    "aalen_johansen",
    "absolute_healing_rate_cm2_per_week",
    "arm_comparison",
    "cox_hazard_ratio",
    "first_all_healed",
    "first_day_par_at_least",
    "gilman_cm_per_week",
    "is_closed",
    "log_linear_rate_per_day",
    "par_at_target",
    "par_distribution",
    "percent_area_reduction_pct",
    "refuses_photo_after",
    "stratified_logrank",
    "study_endpoints",
    "subject_endpoints",
    "time_origin",
    "wound_endpoints",
]
