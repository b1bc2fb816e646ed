"""Wire schemas: per entity an ``XCreate`` (what a client sends) and an ``XPublic``
(what it gets back), so internal columns never leak."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from service.core.freetext import SafeLine, SafeLines
from service.core.healing import (
    DEFAULT_PHOTOS_AFTER_WITHDRAWAL,
    PAR_WEEK4_WINDOW_DAYS,
    PhotosAfterWithdrawal,
)
from service.core.marker import MARKER_MM
from service.core.measure import CalibrationMethod
from service.core.review import DEFAULT_REVIEW_POLICY, ReviewPolicy

T = TypeVar("T")

REVIEW_POLICY_HELP = (
    "Review policy: flagged (a photo with a severe or review flag counts once a clinician"
    " accepts or corrects it), all (central reading: no model measurement counts until then)"
    " or none (review flags do not hold a photo back; severe flags still do)"
)

# The clinic's wall-clock time, ISO 8601 without a time zone (RFC 3339 "date-time"
# requires an offset, so the schema must not claim that format).
LocalDateTime = Annotated[
    datetime,
    WithJsonSchema(
        {
            "type": "string",
            "description": "clinic wall-clock time, ISO 8601 without time zone",
            "examples": ["2026-01-05T10:30:00"],
        }
    ),
]

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# Free text (names, visit labels, locations, reasons) is ``SafeLine``/``SafeLines``:
# ``service.core.freetext.check_text``, the one rule of every way in. The pattern only
# documents its first-character part in the OpenAPI document.
SAFE_TEXT_PATTERN = r"^($|[^=+\-@\t\r])"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class VisitSchedule(_In):
    """When a subject is expected: visits on the listed ``days`` from its day 0 (the
    time origin), then every ``interval_days``; each on time within ± ``window_days``.
    Without listed days, a visit is expected ``interval_days`` after the last one."""

    days: list[int] = Field(
        default_factory=list,
        max_length=200,
        description="Expected visit days from day 0, ascending (e.g. [0, 14, 28, 42, 84])",
    )
    interval_days: int = Field(
        default=14, ge=1, le=365, description="Days between visits after the listed ones"
    )
    window_days: int = Field(
        default=7, ge=0, le=90, description="A visit is on time within ± this many days"
    )

    @field_validator("days")
    @classmethod
    def _ascending(cls, days: list[int]) -> list[int]:
        if any(not 0 <= d <= 3650 for d in days) or days != sorted(set(days)):
            raise ValueError("days must be distinct, ascending, each 0-3650")
        return days


PAR_WEEK4_WINDOW_HELP = (
    "PAR at week 4: the counted visit nearest day 28 after each wound's baseline photo, "
    "within ± this many days"
)


PHOTOS_AFTER_WITHDRAWAL_HELP = (
    "A photo dated after the subject's withdrawal or loss to follow-up: refuse (409"
    " after_subject_event) or record (stored and measured, never counted: uncounted_reason"
    " after_subject_event); follow-up ends at the withdrawal either way, and a photo after"
    " a death or the major amputation of its leg is always refused"
)


class StudyCreate(_In):
    id: str = Field(pattern=CODE_PATTERN, examples=["REX-001"])
    name: SafeLine = Field(min_length=1, max_length=200, examples=["REX-001 CLTI ulcer healing"])
    marker_mm: float = Field(
        default=MARKER_MM, gt=1, lt=500, description="Printed marker side (mm)"
    )
    model: str | None = Field(
        default=None,
        description="Pinned model id; none = the server's default",
        examples=["ulcerseg-1.0.0"],
    )
    review: ReviewPolicy = Field(default=DEFAULT_REVIEW_POLICY, description=REVIEW_POLICY_HELP)
    closure_requires_drainage_recorded: bool = Field(
        default=True,
        description="Closure needs drainage recorded as absent (FDA reading); false: "
        "unrecorded drainage does not keep a wound open",
    )
    par_week4_window_days: int = Field(
        default=PAR_WEEK4_WINDOW_DAYS, ge=0, le=28, description=PAR_WEEK4_WINDOW_HELP
    )
    control_arm: SafeLine | None = Field(
        default=None,
        max_length=64,
        description="The control arm: hazard ratios read the other arm vs this one",
    )
    visit_schedule: VisitSchedule | None = Field(
        default=None, description="Expected visits; none: every 14 days ± 7"
    )
    photos_after_withdrawal: PhotosAfterWithdrawal = Field(
        default=DEFAULT_PHOTOS_AFTER_WITHDRAWAL, description=PHOTOS_AFTER_WITHDRAWAL_HELP
    )


class StudyUpdate(_In):
    name: SafeLine | None = Field(default=None, min_length=1, max_length=200)
    model: str | None = None
    locked: bool | None = None
    review: ReviewPolicy | None = Field(default=None, description=REVIEW_POLICY_HELP)
    closure_requires_drainage_recorded: bool | None = None
    par_week4_window_days: int | None = Field(
        default=None, ge=0, le=28, description=PAR_WEEK4_WINDOW_HELP
    )
    control_arm: SafeLine | None = Field(default=None, max_length=64)
    visit_schedule: VisitSchedule | None = None
    photos_after_withdrawal: PhotosAfterWithdrawal | None = Field(
        default=None, description=PHOTOS_AFTER_WITHDRAWAL_HELP
    )


class StudyPublic(BaseModel):
    id: str
    name: str
    marker_mm: float
    model: str | None
    locked: bool
    review: str = Field(default=DEFAULT_REVIEW_POLICY, description=REVIEW_POLICY_HELP)
    closure_requires_drainage_recorded: bool = True
    par_week4_window_days: int = PAR_WEEK4_WINDOW_DAYS
    control_arm: str | None = None
    visit_schedule: VisitSchedule | None = None
    photos_after_withdrawal: str = Field(
        default=DEFAULT_PHOTOS_AFTER_WITHDRAWAL, description=PHOTOS_AFTER_WITHDRAWAL_HELP
    )
    created_at: datetime


class SiteCreate(_In):
    id: str = Field(pattern=CODE_PATTERN, examples=["A"])
    name: SafeLine = Field(default="", max_length=200, examples=["Hôpital Nord"])


class SitePublic(BaseModel):
    id: str
    study: str
    name: str


class SubjectCreate(_In):
    code: str = Field(pattern=CODE_PATTERN, examples=["S01"])
    site: str | None = Field(default=None, description="Admin keys only; else the key's site")
    arm: SafeLine | None = Field(
        default=None, max_length=64, description="Admin keys only (blinding)"
    )
    randomized_on: date | None = Field(
        default=None, description="Time origin (day 0) of the subject's endpoints, when given"
    )


class SubjectUpdate(_In):
    """Admin keys only; a field left out is left as it is, ``null`` clears it. The
    demographics are optional (CDISC DM): never required, exported as missing when unset."""

    randomized_on: date | None = Field(
        default=None, description="Admin keys only: the subject's randomisation date (day 0)"
    )
    sex: Literal["F", "M", "U", "UNDIFFERENTIATED"] | None = Field(
        default=None, description="CDISC DM SEX"
    )
    country: str | None = Field(
        default=None, pattern=r"^[A-Z]{3}$", description="ISO 3166-1 alpha-3 (CDISC DM COUNTRY)"
    )
    age_years: int | None = Field(default=None, ge=0, le=130, description="Age at day 0, years")
    birth_date: date | None = Field(default=None, description="CDISC DM BRTHDTC")
    index_leg_side: Literal["LEFT", "RIGHT"] | None = Field(
        default=None, description="The side of the index leg (TU/PR laterality)"
    )


class SubjectPublic(BaseModel):
    id: str
    study: str
    code: str
    site: str
    arm: str | None = Field(default=None, description="Shown to admin keys only")
    randomized_on: date | None = None
    sex: str | None = None
    country: str | None = None
    age_years: int | None = None
    birth_date: date | None = None
    index_leg_side: str | None = None
    created_at: datetime


class WoundCreate(_In):
    label: str = Field(pattern=CODE_PATTERN, examples=["W1"])
    location: SafeLine | None = Field(
        default=None,
        max_length=200,
        pattern=SAFE_TEXT_PATTERN,
        examples=["left hallux, plantar"],
        description="Free text; may not start with = + - @ (spreadsheet formulas)",
    )
    index_leg: bool | None = None


class WoundPublic(BaseModel):
    id: str
    subject: str
    label: str
    location: str | None
    index_leg: bool | None
    created_at: datetime


class ModelInfo(BaseModel):
    name: str
    version: str
    sha256: str


class QualityFlagPublic(BaseModel):
    """A quality flag of a photo (``service.core.measure.QUALITY_CODES``; README table)."""

    code: str = Field(examples=["marker_not_found"])
    message: str
    severe: bool = Field(
        default=False, description="true: keeps the photo out of the endpoints until reviewed"
    )


class UncertaintyPublic(BaseModel):
    """The two 95 % half-widths of the area, % of it."""

    calibration_pct: float | None = Field(
        default=None, description="from the calibration (marker corners, scale, printer)"
    )
    segmentation_pct: float | None = Field(
        default=None,
        description="from the outline (the model's calibrated uncertainty); null for a"
        " clinician's outline or a model without calibrated constants",
    )


class MeasurementPublic(BaseModel):
    """The keys of ``woundscope measure --json`` plus provenance. cm values are null when
    the photo is not calibrated (area then in pixels only)."""

    model_config = ConfigDict(extra="allow")

    id: int
    area_cm2: float | None = Field(default=None, description="Wound area in the mm plane, cm²")
    area_cm2_low: float | None = Field(
        default=None, description="95 % interval of the true area, lower bound (cm²)"
    )
    area_cm2_high: float | None = Field(
        default=None, description="95 % interval of the true area, upper bound (cm²)"
    )
    area_px: int | None = Field(default=None, description="Wound pixels in the photo")
    components: int | None = Field(default=None, description="Separate wound regions measured")
    perimeter_cm: float | None = Field(default=None, description="Outline perimeter, cm")
    length_cm: float | None = Field(default=None, description="Longest length, cm")
    width_cm: float | None = Field(
        default=None, description="Greatest width perpendicular to the length, cm"
    )
    length_x_width_cm2: float | None = Field(
        default=None, description="length × width (for comparison with ruler methods), cm²"
    )
    tilt_deg: float | None = Field(
        default=None, description="Camera tilt from the marker's plane, degrees"
    )
    px_per_mm: float | None = Field(
        default=None, description="Pixel density at the marker, or the given scale"
    )
    calibrated: bool = False
    calibration: CalibrationMethod | None = Field(
        default=None, description="marker, px_per_mm, ruler or none"
    )
    uncertainty: UncertaintyPublic | None = None
    quality: list[QualityFlagPublic] = Field(default_factory=list)
    model: ModelInfo
    manual: bool = Field(description="A clinician's outline (a correction)")
    reason: str | None = Field(description="Why a clinician corrected the outline")
    created_by: str
    created_at: datetime
    mask_url: str


ReviewStatus = Literal["awaiting", "accepted", "corrected", "not_needed"]


class ReviewPublic(BaseModel):
    """Where a photo stands with the clinician's review (``service.core.review``)."""

    status: ReviewStatus = Field(
        description="awaiting: in the review queue; accepted: a clinician accepted the"
        " measurement that counts; corrected: it is a clinician's outline; not_needed"
    )
    reasons: list[dict[str, Any]] = Field(
        default_factory=list,
        description="{code, message, severe} of every flag that sends the photo to review"
        " (severe and review quality flags, series flags)",
    )
    series_flags: list[dict[str, Any]] = Field(
        default_factory=list,
        description="implausible_change, closure_area_mismatch: flags that compare the photo"
        " with its wound's series and observation (derived, not in measurement.quality)",
    )
    policy: str = Field(description=REVIEW_POLICY_HELP)
    accepted_by: str | None = None
    accepted_at: datetime | None = None
    accepted_measurement: int | None = None


class AssessmentPublic(BaseModel):
    id: str
    wound: str
    subject: str
    captured_at: LocalDateTime
    day: int = Field(description="Calendar days since the wound's first (baseline) assessment")
    visit: str | None
    epithelialized: bool | None
    drainage: bool | None
    accepted: bool
    voided: bool
    void_reason: str | None
    px_per_mm: float | None
    target_point: tuple[float, float] | None
    width: int
    height: int
    uploaded_by: str
    created_at: datetime
    photo_url: str
    mask_url: str
    overlay_url: str
    counted: bool = Field(description="Whether the current measurement counts toward endpoints")
    review: ReviewPublic
    measurement: MeasurementPublic | None
    measurements: list[MeasurementPublic]


class ReviewItem(BaseModel):
    """An assessment awaiting review, with where it belongs and why it waits."""

    site: str
    subject_code: str
    wound_label: str
    reasons: list[dict[str, Any]] = Field(description="{code, message, severe}: why it waits")
    assessment: AssessmentPublic


class AssessmentUpdate(_In):
    epithelialized: bool | None = None
    drainage: bool | None = None
    accepted: bool | None = Field(
        default=None,
        description="true: accept the measurement that counts now (a flagged photo, or any"
        " under central reading); false: undo an acceptance",
    )
    voided: bool | None = Field(default=None, description="Void a misfiled photo (needs reason)")
    reason: SafeLines | None = Field(default=None, max_length=2000)


class AuditPublic(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    resource: str
    study: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class KeyCreate(_In):
    role: str = Field(examples=["uploader"])
    holder: SafeLine = Field(min_length=1, max_length=200, examples=["Nurse Ada Example"])
    study: str | None = None
    site: str | None = None


class KeyPublic(BaseModel):
    id: int
    prefix: str
    role: str
    holder: str
    study: str | None
    site: str | None
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyPublic):
    key: str = Field(description="Shown once; store it now")


class BatchFailurePublic(BaseModel):
    assessment: str
    code: str = Field(description="why the photo was not measured (README, 'Batch work')")
    reason: str
    attempts: int
    worker: str = Field(description="host:pid of the process that gave up, or in_process")
    at: datetime


class BatchPublic(BaseModel):
    """A batch's progress: an item is done when its photo has the batch model's
    measurement, failed when it has a dead-letter record; pending + done + failed = total."""

    id: str
    study: str
    kind: str = Field(examples=["reanalyze"])
    model: str = Field(examples=["ulcerseg-2.0.0"])
    engine: str = Field(description="celery (sent to the workers) or in_process")
    total: int
    pending: int
    done: int
    failed: int
    failures: list[BatchFailurePublic] = Field(description="the first 100 failed photos")
    created_by: str
    created_at: datetime
