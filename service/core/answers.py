"""Typed answers of the endpoint routes (wound, subject, study), so OpenAPI documents
every key the engine (``service.core.healing``) returns.

The engine stays pure and returns dicts; these models only describe them. They forbid
extra keys, and a test checks the engine's keys against them, so a new endpoint key
cannot ship undocumented.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.core.freetext import SafeLines


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EndpointFlag(_Answer):
    code: str
    message: str


class VisitAnswer(_Answer):
    assessment: str
    captured_at: str = Field(description="ISO date of the photo")
    day: int = Field(description="Calendar days from the subject's time origin")
    area_cm2: float | None
    area_cm2_low: float | None
    area_cm2_high: float | None
    perimeter_cm: float | None
    par_pct: float | None = Field(description="Percent area reduction from baseline")
    closed: bool = Field(description="Clinician-observed closure (drainage rule applied)")
    closure_note: str | None = Field(
        description="Why an epithelialised visit is not closed: 'not closed (drainage not "
        "recorded)'"
    )
    counted: bool
    uncounted_reason: str | None
    model: str | None = Field(description="Model id of the measurement that counts")
    manual: bool = Field(description="The counted measurement is a clinician's correction")


class WoundEndpoints(_Answer):
    baseline_assessment: str | None
    baseline_date: str | None
    time_origin: str | None = Field(description="Day 0 of this answer (ISO date)")
    baseline_area_cm2: float | None
    visits: list[VisitAnswer]
    par_week4_pct: float | None = Field(
        description="PAR of the counted visit nearest day 28 after the wound's baseline "
        "photo, within the study's par_week4_window_days (default ±7)"
    )
    par_week4_day: int | None = Field(description="That visit's day from the time origin")
    par_week4_days_from_baseline: int | None = Field(
        description="That visit's day from the wound's baseline photo"
    )
    healing_rate_cm2_per_week: float | None
    gilman_cm_per_week: float | None
    log_linear_rate_per_day: float | None
    half_life_days: float | None
    par50_day: float | None
    closure_confirmed: bool
    closure_day: int | None = Field(description="Day of the first confirmed closure")
    closure_supported_by_area: bool | None
    time_to_closure_days: int | None
    censored: bool
    recurrence: bool
    recurrence_day: int | None
    healed_at_last_visit: bool
    healed_day: int | None
    healed_spells: list[list[int | None]] = Field(
        description="[closure day, re-opening day or null] of every confirmed closure"
    )
    last_visit_day: int | None
    flags: list[EndpointFlag]


class WoundAnswer(WoundEndpoints):
    wound: str
    subject: str
    label: str | None


class SubjectWound(WoundEndpoints):
    wound: str
    label: str | None
    index_leg: bool | None


class SubjectAnswer(_Answer):
    subject: str
    code: str | None
    study: str
    wounds: list[SubjectWound]
    wounds_considered: list[str] = Field(description="Wounds not marked index_leg false")
    time_origin: str | None
    time_origin_source: str | None = Field(description="'randomized_on' or 'first_photo'")
    baseline_date: str | None
    healing_event: bool | None = Field(
        description="Every considered wound confirmed closed at once, at least once (the "
        "study's event; a later recurrence does not erase it)"
    )
    first_healed_day: int | None
    recurrence: bool | None = Field(
        description="A considered wound re-opened after the subject's healing event"
    )
    recurrence_day: int | None
    all_wounds_healed: bool | None = Field(description="Healed at the last visit (durable)")
    all_healed_day: int | None
    last_visit_day: int | None
    last_photo_day: int | None = Field(
        description="The latest photo in follow-up of any wound, either leg"
    )
    reason: str | None = Field(description="Why the answer is null (no index-leg wound)")


class KaplanMeier(_Answer):
    timeline_days: list[float]
    survival: list[float | None]
    ci95_low: list[float | None]
    ci95_high: list[float | None]


class CumulativeIncidence(_Answer):
    method: str
    healed: int
    competing: int = Field(description="Death or major amputation of the index leg first")
    censored: int
    proportion_healed: dict[str, float | None] = Field(
        description="Cumulative incidence of healing by day; null past the last time at risk"
    )
    timeline_days: list[float]
    cumulative_incidence: list[float | None]
    ci95_low: list[float | None]
    ci95_high: list[float | None]


class AmputationFreeSurvival(_Answer):
    subjects: int
    events: int = Field(description="Major amputation of the index leg or death")
    median_days: float | None
    median_days_ci95: list[float | None] | None = None
    km: KaplanMeier


class DurableHealing(AmputationFreeSurvival):
    """Kaplan–Meier of durable healing: the event is healing that lasted to the last
    visit (on ``all_healed_day``), else censored at the last visit."""


class TimeToHealing(_Answer):
    subjects: int
    healed: int = Field(description="Subjects with the event (first confirmed healing)")
    durably_healed: int = Field(description="Subjects healed at their last visit")
    recurred: int
    median_time_to_closure_days: float | None
    median_time_to_closure_days_ci95: list[float | None]
    median_definition: str
    median_ci_method: str
    proportion_healed: dict[str, float | None] = Field(
        description="1 − KM survival by day; null past the last time at risk"
    )
    at_risk: dict[str, int] = Field(description="Number at risk at each reported day")
    last_time_at_risk_days: float | None
    km: KaplanMeier
    cumulative_incidence: CumulativeIncidence
    amputation_free_survival: AmputationFreeSurvival = Field(
        description="Every subject with a time origin, whatever its wounds"
    )
    durable_healing: DurableHealing
    par_week4: ParDistribution | None = Field(
        default=None, description="PAR at week 4 of the considered wounds (per arm too)"
    )
    par_last_visit: ParDistribution | None = Field(
        default=None, description="PAR at each considered wound's last counted visit"
    )


class SubjectRow(_Answer):
    subject: str
    code: str | None
    healing_event: bool
    first_healed_day: int | None
    all_wounds_healed: bool | None
    all_healed_day: int | None
    recurrence: bool | None
    recurrence_day: int | None
    time_to_closure_days: int | None
    censored: bool
    time_origin: str | None
    photographed: bool
    reason: str | None
    cr_time_days: int | None = Field(description="Competing-risk time (days)")
    cr_cause: int = Field(description="1 healed, 2 death / index-leg major amputation, 0 censored")
    afs_time_days: int | None
    afs_event: bool
    durable_time_days: int | None
    durable_event: bool
    log_baseline_area: float | None = Field(
        description="ln of the sum of the considered wounds' baseline areas (cm²)"
    )
    last_contact_day: int | None = Field(
        description="The latest photo (either leg) or event in follow-up: where a subject "
        "without an event is censored"
    )
    follow_up_end_day: int | None = Field(
        description="Death, withdrawal or loss to follow-up: nothing after it is analysed"
    )
    arm: str | None = Field(default=None, description="Admin keys only")


class LeftOut(_Answer):
    subject: str
    code: str | None
    reason: str | None


class ParDistribution(_Answer):
    wounds: int
    available: int
    missing: int
    at_least_50_pct: int
    values_pct: list[float | None]
    q1_pct: float | None
    median_pct: float | None
    q3_pct: float | None
    mean_pct: float | None


class LogRank(_Answer):
    method: str
    statistic: float | None
    p_value: float | None


class HazardRatio(_Answer):
    hazard_ratio: float | None
    ci95: list[float | None]


class CoxHazardRatio(HazardRatio):
    method: str
    subjects: int | None = None
    warning: str | None = Field(description="The fitter's warning (e.g. separation), if any")
    log_baseline_area: HazardRatio | None = Field(
        default=None, description="Adjusted model: HR per unit of ln baseline area"
    )


class GrayTest(LogRank):
    df: int
    score: float | None = Field(description="The compared arm's score (positive: more healing)")
    variance: float | None
    rho: float = Field(description="Weight (1 - F(t-))^rho, F the pooled incidence")


class ArmComparison(_Answer):
    reference_arm: str = Field(description="The control arm: ratios read compared vs it")
    compared_arm: str
    reference_source: str = Field(description="'control_arm' (the study's) or alphabetical")
    logrank: LogRank
    cox: CoxHazardRatio
    cox_adjusted: CoxHazardRatio = Field(
        description="Sensitivity: stratified by site and adjusted for log baseline area"
    )
    cumulative_incidence_test: GrayTest = Field(
        description="Gray's test of the cumulative incidence of healing (death and major "
        "amputation competing), stratified by site"
    )
    fine_gray: CoxHazardRatio = Field(
        description="Fine-Gray subdistribution hazard ratio of healing, stratified by site"
    )
    durable_logrank: LogRank = Field(description="Durable healing, stratified by site")
    afs_logrank: LogRank = Field(description="Amputation-free survival, stratified by site")


class StudyAnswer(TimeToHealing):
    study: str
    scope: str = Field(description="'study', or the site of a site key")
    subjects_in_analysis: int
    subjects_without_visits: int
    subjects_left_out: list[LeftOut]
    par_week4: ParDistribution
    par_last_visit: ParDistribution
    subject_rows: list[SubjectRow]
    by_arm: dict[str, TimeToHealing] | None = Field(
        default=None, description="Admin keys only (blinding)"
    )
    arm_comparison: ArmComparison | None = Field(
        default=None,
        description="Admin keys only, two arms: stratified log-rank, Cox HR, Gray, Fine-Gray",
    )


# --- subject events (the competing events' input) -------------------------------------

EventKind = Literal[
    "death",
    "major_amputation",
    "minor_amputation",
    "revascularisation",
    "withdrawal",
    "lost_to_follow_up",
]


class EventCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: EventKind
    date: dt.date = Field(description="The day it happened")
    leg: Literal["index", "contralateral"] | None = Field(
        default=None, description="Which leg (amputations and revascularisation)"
    )
    note: SafeLines | None = Field(default=None, max_length=2000)


class EventVoid(BaseModel):
    model_config = ConfigDict(extra="forbid")

    voided: Literal[True] = True
    reason: SafeLines = Field(
        min_length=1, max_length=2000, description="Why it was recorded in error"
    )


class EventPublic(BaseModel):
    id: int
    subject: str
    kind: str
    date: dt.date
    leg: str | None
    note: str | None
    voided: bool
    void_reason: str | None
    created_by: str
    created_at: dt.datetime
