"""The persistent domain model (SQLAlchemy 2, typed). Changes go through Alembic.

study ─┬─ site
       └─ subject ─ wound ─ assessment ─ measurement (one per model version or
          manual correction)
api_key ─ dashboard_session; audit_log (append-only, a hash chain) ─ audit_head

Timestamps of the server (``created_at``, audit ``at``) are UTC. ``captured_at`` is
the clinic's wall-clock time as the client sent it (timezone dropped), because
healing days are counted between its calendar dates.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from service.core.freetext import check_optional
from service.core.healing import DEFAULT_PHOTOS_AFTER_WITHDRAWAL, PAR_WEEK4_WINDOW_DAYS
from service.core.marker import MARKER_MM


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """A server-made id: a short prefix naming the kind, then 12 random hex digits."""
    return f"{prefix}_{secrets.token_hex(6)}"


def _free_text(*columns: str, multiline: bool = False) -> Any:
    """A column validator running ``service.core.freetext.check_text`` on every value a
    person's text is set to: the backstop behind the wire schemas and form parsers, so no
    way in (API, dashboard, capture page, CLI, a future one) stores a formula or a bidi
    character. Rows read from the database are not re-checked."""

    def check(_: object, column: str, value: str | None) -> str | None:
        return check_optional(value, column, multiline=multiline)

    return validates(*columns)(check)


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC (SQLite has no time zones); read back as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: UTCDateTime}


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """The client's short code (e.g. ``REX-001``), unique on the server."""
    name: Mapped[str] = mapped_column(String(200))
    marker_mm: Mapped[float] = mapped_column(Float, default=MARKER_MM)
    """Side of the printed marker's outer black square (mm)."""
    model: Mapped[str | None] = mapped_column(String(100), default=None)
    """Pinned model id (``ulcerseg-1.2.0``); None = the server's default."""
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    review: Mapped[str] = mapped_column(String(16), default="flagged", server_default="flagged")
    """Review policy (``service.core.review``): ``flagged``, ``all`` (central reading) or ``none``."""
    closure_requires_drainage_recorded: Mapped[bool] = mapped_column(
        Boolean, default=True, server_default=sa.true()
    )
    """Closure needs drainage recorded as absent (the FDA reading); off: unrecorded
    drainage does not keep a wound open (``endpoints.is_closed``)."""
    par_week4_window_days: Mapped[int] = mapped_column(
        Integer, default=PAR_WEEK4_WINDOW_DAYS, server_default=str(PAR_WEEK4_WINDOW_DAYS)
    )
    """PAR at week 4: the visit nearest day 28 after a wound's baseline, within ± this."""
    control_arm: Mapped[str | None] = mapped_column(String(64), default=None)
    """The arm hazard ratios are read against (treatment vs control); None: the first
    arm alphabetically."""
    visit_schedule: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    """Expected visit days and their window (``schemas.VisitSchedule``); None: the
    default fortnightly visit ± 7 days (``domain.followup``)."""
    photos_after_withdrawal: Mapped[str] = mapped_column(
        String(16),
        default=DEFAULT_PHOTOS_AFTER_WITHDRAWAL,
        server_default=DEFAULT_PHOTOS_AFTER_WITHDRAWAL,
    )
    """A photo dated after the subject's withdrawal or loss to follow-up: ``refuse``d at
    upload (``after_subject_event``) or ``record``ed, never counted
    (``healing.refuses_photo_after``)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    sites: Mapped[list[Site]] = relationship(back_populates="study", order_by="Site.code")
    _check_text = _free_text("name", "control_arm")


class Site(Base):
    __tablename__ = "sites"
    __table_args__ = (UniqueConstraint("study_id", "code", name="uq_site_study_code"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    """The site's id on the wire, unique within its study."""
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    study: Mapped[Study] = relationship(back_populates="sites")
    _check_text = _free_text("name")


class Subject(Base):
    __tablename__ = "subjects"
    __table_args__ = (UniqueConstraint("study_id", "code", name="uq_subject_study_code"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("sub"))
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    """The trial's pseudonymous subject code, unique within the study."""
    site_pk: Mapped[int] = mapped_column(ForeignKey("sites.pk"), index=True)
    arm: Mapped[str | None] = mapped_column(String(64), default=None)
    """Arm or cohort: set and seen only by admin keys (blinding)."""
    randomized_on: Mapped[date | None] = mapped_column(Date, default=None)
    """The subject's time origin (day 0) when given (``endpoints.time_origin``); not
    blinded (the arm is)."""
    sex: Mapped[str | None] = mapped_column(String(16), default=None)
    """Optional, admin-set (CDISC DM SEX: F, M, U, UNDIFFERENTIATED); never guessed."""
    country: Mapped[str | None] = mapped_column(String(3), default=None)
    """Optional, admin-set: ISO 3166-1 alpha-3 (CDISC DM COUNTRY)."""
    age_years: Mapped[int | None] = mapped_column(Integer, default=None)
    """Optional, admin-set: age in years at the reference start (DM AGE)."""
    birth_date: Mapped[date | None] = mapped_column(Date, default=None)
    """Optional, admin-set (DM BRTHDTC); AGE follows from it when ``age_years`` is unset."""
    index_leg_side: Mapped[str | None] = mapped_column(String(8), default=None)
    """Optional, admin-set: LEFT or RIGHT, the side of the index leg (TU/PR laterality)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    site: Mapped[Site] = relationship()
    wounds: Mapped[list[Wound]] = relationship(back_populates="subject", order_by="Wound.label")
    events: Mapped[list[SubjectEvent]] = relationship(
        back_populates="subject", order_by="SubjectEvent.id"
    )
    _check_text = _free_text("arm")


class SubjectEvent(Base):
    """A dated clinical event of a subject (death, amputation, …); voided with a reason,
    never deleted (``endpoints.SubjectEvent`` is what the engine sees)."""

    __tablename__ = "subject_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    occurred_on: Mapped[date] = mapped_column(Date)
    leg: Mapped[str | None] = mapped_column(String(16), default=None)
    """``index`` or ``contralateral`` (amputations)."""
    note: Mapped[str | None] = mapped_column(Text, default=None)
    voided: Mapped[bool] = mapped_column(Boolean, default=False)
    void_reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    subject: Mapped[Subject] = relationship(back_populates="events")
    _check_text = _free_text("note", "void_reason", multiline=True)


class Wound(Base):
    __tablename__ = "wounds"
    __table_args__ = (UniqueConstraint("subject_id", "label", name="uq_wound_subject_label"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("wnd"))
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"), index=True)
    label: Mapped[str] = mapped_column(String(64))
    location: Mapped[str | None] = mapped_column(String(200), default=None)
    index_leg: Mapped[bool | None] = mapped_column(Boolean, default=None)
    """On the trial's index leg; None = not recorded."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    subject: Mapped[Subject] = relationship(back_populates="wounds")
    _check_text = _free_text("location")
    assessments: Mapped[list[Assessment]] = relationship(
        back_populates="wound", order_by="(Assessment.captured_at, Assessment.created_at)"
    )


class Assessment(Base):
    __tablename__ = "assessments"
    __table_args__ = (
        UniqueConstraint("wound_id", "idempotency_key", name="uq_assessment_idempotency"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("asm"))
    wound_id: Mapped[str] = mapped_column(ForeignKey("wounds.id"), index=True)
    photo_key: Mapped[str] = mapped_column(String(200))
    """Key in the photo store of the metadata-free JPEG that every measurement reads."""
    photo_sha256: Mapped[str] = mapped_column(String(64))
    upload_sha256: Mapped[str] = mapped_column(String(64))
    """sha256 of the bytes the client sent (to recognise a retry)."""
    photo_format: Mapped[str] = mapped_column(String(16))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    captured_at: Mapped[datetime] = mapped_column(DateTime)
    """Clinic wall-clock time as sent (naive)."""
    visit: Mapped[str | None] = mapped_column(String(64), default=None)
    epithelialized: Mapped[bool | None] = mapped_column(Boolean, default=None)
    drainage: Mapped[bool | None] = mapped_column(Boolean, default=None)
    accepted: Mapped[bool] = mapped_column(Boolean, default=False)
    """A clinician accepted the photo's measurement (flagged, or under central reading)."""
    accepted_measurement_id: Mapped[int | None] = mapped_column(Integer, default=None)
    """The measurement that was accepted: another one counting later (a re-pinned model)
    is not accepted. None on rows accepted before this was recorded (any counts)."""
    accepted_by: Mapped[str | None] = mapped_column(String(200), default=None)
    accepted_at: Mapped[datetime | None] = mapped_column(default=None)
    voided: Mapped[bool] = mapped_column(Boolean, default=False)
    void_reason: Mapped[str | None] = mapped_column(Text, default=None)
    px_per_mm: Mapped[float | None] = mapped_column(Float, default=None)
    """Scale given by the client (used when the photo has no marker)."""
    ruler: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    """Two ruler points and their distance: {"points": [[x,y],[x,y]], "mm": d}."""
    target_x: Mapped[float | None] = mapped_column(Float, default=None)
    target_y: Mapped[float | None] = mapped_column(Float, default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), default=None)
    uploaded_by: Mapped[str] = mapped_column(String(200))
    """Holder of the key that uploaded it (a person)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    wound: Mapped[Wound] = relationship(back_populates="assessments")
    measurements: Mapped[list[Measurement]] = relationship(
        back_populates="assessment", order_by="Measurement.id.desc()"
    )
    _check_text = _free_text("visit")
    _check_lines = _free_text("void_reason", multiline=True)

    @property
    def target_point(self) -> tuple[float, float] | None:
        if self.target_x is None or self.target_y is None:
            return None
        return (self.target_x, self.target_y)


class Measurement(Base):
    __tablename__ = "measurements"
    __table_args__ = (
        # One automatic measurement per model version: re-analysis is resumable and
        # two replicas cannot both add one.
        Index(
            "uq_measurement_model",
            "assessment_id",
            "model_name",
            "model_version",
            unique=True,
            sqlite_where=sa.text("manual = 0"),
            postgresql_where=sa.text("manual = false"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    assessment_id: Mapped[str] = mapped_column(ForeignKey("assessments.id"), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The keys of ``woundscope measure --json`` (area_cm2, ..., quality)."""
    area_cm2: Mapped[float | None] = mapped_column(Float, default=None)
    calibrated: Mapped[bool] = mapped_column(Boolean, default=False)
    severe: Mapped[bool] = mapped_column(Boolean, default=False)
    """Any severe quality flag: kept out of endpoints unless the assessment is accepted."""
    mask_key: Mapped[str] = mapped_column(String(200))
    """Key in the photo store of the 0/255 PNG mask this measurement was made from."""
    model_name: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(50))
    model_sha256: Mapped[str] = mapped_column(String(64))
    """For a manual correction: the model whose outline was corrected."""
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    assessment: Mapped[Assessment] = relationship(back_populates="measurements")
    _check_text = _free_text("reason", multiline=True)

    @property
    def model_id(self) -> str:
        return f"{self.model_name}-{self.model_version}"


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """sha256 of the key (keys are 256-bit random, so an unsalted hash is enough)."""
    prefix: Mapped[str] = mapped_column(String(16))
    """The first characters of the key, to tell keys apart in lists."""
    role: Mapped[str] = mapped_column(String(16))
    study_id: Mapped[str | None] = mapped_column(ForeignKey("studies.id"), default=None)
    """None: every study (admin keys only)."""
    site_pk: Mapped[int | None] = mapped_column(ForeignKey("sites.pk"), default=None)
    """None: the whole study."""
    holder: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    site: Mapped[Site | None] = relationship()
    _check_text = _free_text("holder")


class DashboardSession(Base):
    """A signed-in dashboard browser: the cookie holds a random id, the table its sha256.

    Valid while not revoked (sign-out), not expired and its key not revoked."""

    __tablename__ = "dashboard_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    key: Mapped[ApiKey] = relationship()


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    """The key holder (a person), or ``cli:<user>`` for command-line work."""
    key_id: Mapped[int | None] = mapped_column(Integer, default=None)
    action: Mapped[str] = mapped_column(String(64))
    """e.g. ``assessment.create``, ``measurement.correct``, ``export.csv``."""
    resource: Mapped[str] = mapped_column(String(200))
    """e.g. ``assessment/asm_0123456789ab``."""
    study_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    prev_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    """The ``hash`` of the entry before it (``auditchain``: the log is a hash chain)."""
    hash: Mapped[str | None] = mapped_column(String(64), default=None)
    """SHA-256 of ``prev_hash`` and this entry's canonical JSON (``auditchain.entry_hash``)."""


class AuditHead(Base):
    """One row: the audit chain's length and last hash (a cut-off tail shows), and the
    row ``auditchain.append`` locks so that entries are chained one at a time."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    entries: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class Batch(Base):
    """A batch of work handed to the job engine (``service.jobs``): today a study's
    re-analysis with one model version. Its progress is read from the rows it made:
    an item is done when its photo has that model's measurement, failed when it has
    a ``BatchFailure``, pending otherwise (``domain.batches.batch_status``)."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("bat"))
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    """``reanalyze``."""
    model_name: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(50))
    model_sha256: Mapped[str] = mapped_column(String(64))
    """The weights the batch was started with: a worker whose copy differs refuses."""
    engine: Mapped[str] = mapped_column(String(16))
    """``celery`` (sent to a broker) or ``in_process``."""
    total: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def model_id(self) -> str:
        return f"{self.model_name}-{self.model_version}"


class BatchItem(Base):
    """One photo of a batch (one task)."""

    __tablename__ = "batch_items"

    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), primary_key=True)
    assessment_id: Mapped[str] = mapped_column(ForeignKey("assessments.id"), primary_key=True)


class BatchFailure(Base):
    """The dead-letter record of a photo a batch could not measure for good: what
    stopped it (a stable code and a sentence) and after how many tries. One per
    (batch, photo): a duplicate delivery that fails again adds nothing."""

    __tablename__ = "batch_failures"
    __table_args__ = (UniqueConstraint("batch_id", "assessment_id", name="uq_batch_failure_item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), index=True)
    assessment_id: Mapped[str] = mapped_column(ForeignKey("assessments.id"))
    code: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    worker: Mapped[str] = mapped_column(String(200))
    """The host and process that gave up (``host:pid``, or ``in_process``)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
