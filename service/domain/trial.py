"""The trial's domain operations: one function per thing a route does.

Each write checks the caller's role and the study lock, changes the rows, adds its
audit entry and commits, in one transaction. Duplicates are caught by the
database's unique constraints (safe with several replicas), not by a read first.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from service.core import review
from service.core.errors import AlreadyExists, DomainError, Forbidden, InvalidRequest, NotFound
from service.core.healing import is_closed, time_origin
from service.core.pipeline import Analysis, Calibration, ruler_from_json, ruler_json
from service.domain import access, audit, auth
from service.domain.auth import Caller
from service.domain.roles import ADMIN, CORRECTORS, WRITERS
from service.persistence.orm import (
    ApiKey,
    Assessment,
    AuditEntry,
    Measurement,
    Site,
    Study,
    Subject,
    SubjectEvent,
    Wound,
    utcnow,
)

if TYPE_CHECKING:
    from service.core.answers import EventCreate
    from service.core.measure import QualityLimits
    from service.core.segmentation import WoundSegmenter
    from service.domain.schemas import (
        AssessmentUpdate,
        SiteCreate,
        StudyCreate,
        StudyUpdate,
        SubjectCreate,
        SubjectUpdate,
        WoundCreate,
    )
    from service.persistence.storage import PhotoStore
    from service.runtime.context import Runtime

log = logging.getLogger("woundscope.trial")


def _commit_or_conflict(session: Session, what: str) -> None:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise AlreadyExists(f"{what} already exists") from None


def _insert(
    session: Session, caller: Caller, row: Any, *, kind: str, what: str, study_id: str
) -> None:
    """Add a new ``row`` (its id made by the database), audit ``<kind>.create`` and
    commit; a duplicate answers ``already_exists`` naming ``what``."""
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise AlreadyExists(f"{what} already exists") from None
    audit.record(
        session,
        caller,
        f"{kind}.create",
        f"{kind}/{row.id}",
        study_id=study_id,
        after=audit.snapshot(row),
    )
    _commit_or_conflict(session, what)


# --- studies and sites ----------------------------------------------------------------


def create_study(
    session: Session,
    caller: Caller,
    data: StudyCreate,
    *,
    model_ok: Callable[[str], bool] | None = None,
) -> Study:
    caller.require(ADMIN)
    if caller.study_id is not None:
        raise Forbidden("this admin key is confined to one study; a study needs a server admin key")
    if data.model and model_ok is not None and not model_ok(data.model):
        raise DomainError(
            f"model {data.model} is not installed on this server", code="model_not_installed"
        )
    if session.get(Study, data.id) is not None:
        raise AlreadyExists(f"study {data.id} already exists")
    study = Study(
        id=data.id,
        name=data.name,
        marker_mm=data.marker_mm,
        model=data.model,
        review=data.review,
        closure_requires_drainage_recorded=data.closure_requires_drainage_recorded,
    )
    session.add(study)
    audit.record(
        session,
        caller,
        "study.create",
        f"study/{data.id}",
        study_id=data.id,
        after=data.model_dump(),
    )
    _commit_or_conflict(session, f"study {data.id}")
    return study


def update_study(
    session: Session,
    caller: Caller,
    study: Study,
    data: StudyUpdate,
    *,
    model_ok: Callable[[str], bool] | None = None,
) -> Study:
    """Rename, pin a model, lock or unlock (admin). A locked study takes only an unlock."""
    caller.require(ADMIN)
    changes = data.model_dump(exclude_unset=True)
    if study.locked and set(changes) - {"locked"}:
        access.ensure_writable(study)
    if changes.get("model") and model_ok is not None and not model_ok(changes["model"]):
        raise DomainError(
            f"model {changes['model']} is not installed on this server", code="model_not_installed"
        )
    before = audit.snapshot(study)
    for key, value in changes.items():
        if key in ("name", "review", "locked", "closure_requires_drainage_recorded") and (
            value is None
        ):
            continue  # null means "leave as it is" for fields that cannot be empty
        setattr(study, key, value)
    action = (
        "study.lock"
        if changes.get("locked")
        else "study.unlock"
        if changes.get("locked") is False
        else "study.update"
    )
    audit.record(
        session,
        caller,
        action,
        f"study/{study.id}",
        study_id=study.id,
        before=before,
        after=audit.snapshot(study),
    )
    session.commit()
    return study


def create_site(session: Session, caller: Caller, study: Study, data: SiteCreate) -> Site:
    caller.require(ADMIN)
    access.ensure_writable(study)
    site = Site(study_id=study.id, code=data.id, name=data.name)
    session.add(site)
    audit.record(
        session,
        caller,
        "site.create",
        f"site/{study.id}/{data.id}",
        study_id=study.id,
        after=data.model_dump(),
    )
    _commit_or_conflict(session, f"site {data.id} of study {study.id}")
    return site


def list_sites(session: Session, caller: Caller, study: Study) -> list[Site]:
    stmt = select(Site).where(Site.study_id == study.id).order_by(Site.code)
    if caller.site_pk is not None:
        stmt = stmt.where(Site.pk == caller.site_pk)
    return list(session.scalars(stmt))


# --- subjects and wounds --------------------------------------------------------------


def create_subject(session: Session, caller: Caller, study: Study, data: SubjectCreate) -> Subject:
    caller.require(*WRITERS)
    access.ensure_writable(study)
    if data.arm is not None and not caller.sees_arm:
        raise Forbidden("only admin keys set the arm (blinding): leave 'arm' out")
    if caller.site_pk is not None:
        if data.site is not None and data.site != caller.site_code:
            raise Forbidden(f"this key belongs to site {caller.site_code}: leave 'site' out")
        site_pk = caller.site_pk
    else:
        if data.site is None:
            raise InvalidRequest("give the subject's 'site' (this key is not tied to one site)")
        site_pk = access.load_site(session, caller, study.id, data.site).pk
    subject = Subject(
        study_id=study.id,
        code=data.code,
        site_pk=site_pk,
        arm=data.arm,
        randomized_on=data.randomized_on,
    )
    what = f"subject {data.code} in study {study.id}"
    _insert(session, caller, subject, kind="subject", what=what, study_id=study.id)
    return subject


def update_subject(
    session: Session, caller: Caller, subject: Subject, data: SubjectUpdate
) -> Subject:
    """Admin: set or clear the subject's ``randomized_on`` (its time origin), audited."""
    caller.require(ADMIN)
    access.ensure_writable(subject)
    before = audit.snapshot(subject)
    if "randomized_on" in data.model_dump(exclude_unset=True):
        subject.randomized_on = data.randomized_on
    audit.record(
        session,
        caller,
        "subject.update",
        f"subject/{subject.id}",
        study_id=subject.study_id,
        before=before,
        after=audit.snapshot(subject),
    )
    session.commit()
    return subject


def list_subjects(
    session: Session, caller: Caller, study: Study, *, site: str | None, limit: int, offset: int
) -> tuple[list[Subject], int]:
    stmt = access.visible_subjects(caller, study.id)
    if site is not None:
        stmt = stmt.join(Site, Site.pk == Subject.site_pk).where(Site.code == site)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Subject.code).limit(limit).offset(offset))
    return list(rows), total


# --- subject events -------------------------------------------------------------------

MAJOR_AMPUTATION_LEGS = ("index", "contralateral")


def create_event(
    session: Session, caller: Caller, subject: Subject, data: EventCreate
) -> SubjectEvent:
    """Clinician or admin records a dated event (audited; voided, never deleted)."""
    caller.require(*CORRECTORS)
    access.ensure_writable(subject)
    if data.kind == "major_amputation" and data.leg is None:
        raise InvalidRequest("a major amputation needs its 'leg': 'index' or 'contralateral'")
    row = SubjectEvent(
        subject_id=subject.id,
        kind=data.kind,
        occurred_on=data.date,
        leg=data.leg,
        note=data.note,
        created_by=caller.holder,
    )
    _insert(session, caller, row, kind="event", what="this event", study_id=subject.study_id)
    return row


def void_event(
    session: Session, caller: Caller, subject: Subject, event_id: int, reason: str
) -> SubjectEvent:
    caller.require(*CORRECTORS)
    access.ensure_writable(subject)
    row = next((e for e in subject.events if e.id == event_id), None)
    if row is None:
        raise NotFound("event", event_id)
    if row.voided:
        raise DomainError(f"event {event_id} is already voided", code="event_already_voided")
    before = audit.snapshot(row)
    row.voided = True
    row.void_reason = reason.strip()
    audit.record(
        session,
        caller,
        "event.void",
        f"event/{row.id}",
        study_id=subject.study_id,
        before=before,
        after=audit.snapshot(row),
    )
    session.commit()
    return row


def live_events(subject: Subject) -> list[SubjectEvent]:
    return [e for e in subject.events if not e.voided]


def blocking_event(wound: Wound, captured_on: date) -> SubjectEvent | None:
    """The event that rules out a photo of this wound on ``captured_on``: the subject's
    death before it, or a major amputation of the wound's leg before it (a wound not
    marked ``index_leg: false`` is on the index leg)."""
    leg = "contralateral" if wound.index_leg is False else "index"
    for event in live_events(wound.subject):
        if event.occurred_on >= captured_on:
            continue
        if event.kind == "death" or (event.kind == "major_amputation" and event.leg == leg):
            return event
    return None


def create_wound(session: Session, caller: Caller, subject: Subject, data: WoundCreate) -> Wound:
    caller.require(*WRITERS)
    access.ensure_writable(subject)
    wound = Wound(
        subject_id=subject.id, label=data.label, location=data.location, index_leg=data.index_leg
    )
    what = f"wound {data.label} of this subject"
    _insert(session, caller, wound, kind="wound", what=what, study_id=subject.study_id)
    return wound


def list_wounds(
    session: Session, subject: Subject, *, limit: int | None = None, offset: int = 0
) -> tuple[list[Wound], int]:
    stmt = select(Wound).where(Wound.subject_id == subject.id)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Wound.label).limit(limit).offset(offset))
    return list(rows), total


# --- assessments ----------------------------------------------------------------------


@dataclass(frozen=True)
class UploadForm:
    """The upload's fields other than the photo, already parsed."""

    captured_at: datetime
    cal: Calibration
    visit: str | None = None
    epithelialized: bool | None = None
    drainage: bool | None = None
    idempotency_key: str | None = None


def _replay(
    session: Session, wound: Wound, key: str, upload_sha256: str | None
) -> Assessment | None:
    """The assessment an earlier upload with this Idempotency-Key made, if any."""
    found = session.scalar(
        select(Assessment).where(Assessment.wound_id == wound.id, Assessment.idempotency_key == key)
    )
    if found is not None and upload_sha256 is not None and found.upload_sha256 != upload_sha256:
        raise DomainError(
            "this Idempotency-Key was already used for a different photo: use a new key per photo",
            code="idempotency_conflict",
        )
    return found


def upload_assessment(
    session: Session,
    runtime: Runtime,
    caller: Caller,
    wound: Wound,
    data: bytes,
    form: UploadForm,
    *,
    name: str = "photo",
) -> tuple[Assessment, bool]:
    """Decode, measure, store the photo, then record the assessment. Returns (row, replayed).

    Order matters: nothing is stored before the photo is known good (a refused upload
    leaves nothing), and the photo and mask are durable before the row that names them
    is committed (a crash leaves at worst an unreferenced photo, never a row without
    its photo).
    """
    caller.require(*WRITERS)
    study = access.ensure_writable(wound)
    _refuse_after_subject_event(wound, form.captured_at.date())
    upload_sha256 = hashlib.sha256(data).hexdigest()
    if form.idempotency_key:
        found = _replay(session, wound, form.idempotency_key, upload_sha256)
        if found is not None:
            return found, True
    analysis = _analyse_upload(session, runtime, study, data, form.cal, name)
    photo_key = runtime.store.put(analysis.photo_jpeg, "jpg")
    mask_key = runtime.store.put(analysis.mask_png, "png")
    assessment = _assessment_row(wound, caller, form, analysis, photo_key, upload_sha256)
    session.add(assessment)
    first = _replay_on_conflict(session, wound, form, upload_sha256, session.flush)
    if first is not None:
        return first, True
    _record_upload(session, caller, study, assessment, analysis, mask_key)
    first = _replay_on_conflict(session, wound, form, upload_sha256, session.commit)
    if first is not None:
        return first, True
    return assessment, False


def _refuse_after_subject_event(wound: Wound, captured_on: date) -> None:
    """A photo dated after the subject's death, withdrawal, … (``blocking_event``) is
    refused before anything is measured or stored: most often the date is wrong."""
    blocked = blocking_event(wound, captured_on)
    if blocked is None:
        return
    raise DomainError(
        f"this photo is dated {captured_on.isoformat()}, after the subject's "
        f"{blocked.kind.replace('_', ' ')} on {blocked.occurred_on.isoformat()}"
        + (f" ({blocked.leg} leg)" if blocked.leg else "")
        + ": check the date, or void the event if it was recorded in error",
        code="after_subject_event",
    )


def _analyse_upload(
    session: Session, runtime: Runtime, study: Study, data: bytes, cal: Calibration, name: str
) -> Analysis:
    """Decode and measure the photo in the worker pool with the study's model. The read
    transaction ends first, so no database connection is held during the work."""
    segmenter = runtime.models.get(study.model)
    marker_mm = study.marker_mm
    session.commit()
    analysis: Analysis = runtime.pool.run(
        runtime.analyse, data, name=name, segmenter=segmenter, marker_mm=marker_mm, cal=cal
    )
    runtime.metrics.inference.labels(segmenter.id).observe(analysis.segment_s)
    return analysis


def _assessment_row(
    wound: Wound,
    caller: Caller,
    form: UploadForm,
    analysis: Analysis,
    photo_key: str,
    upload_sha256: str,
) -> Assessment:
    """The new assessment of a stored photo: its fields, the calibration sent with it."""
    cal = form.cal
    return Assessment(
        wound_id=wound.id,
        photo_key=photo_key,
        photo_sha256=hashlib.sha256(analysis.photo_jpeg).hexdigest(),
        upload_sha256=upload_sha256,
        photo_format=analysis.photo_format,
        width=analysis.width,
        height=analysis.height,
        captured_at=form.captured_at,
        visit=form.visit,
        epithelialized=form.epithelialized,
        drainage=form.drainage,
        px_per_mm=cal.px_per_mm,
        ruler=ruler_json(cal.ruler),
        target_x=cal.target_point[0] if cal.target_point else None,
        target_y=cal.target_point[1] if cal.target_point else None,
        idempotency_key=form.idempotency_key,
        uploaded_by=caller.holder,
    )


def _record_upload(
    session: Session,
    caller: Caller,
    study: Study,
    assessment: Assessment,
    analysis: Analysis,
    mask_key: str,
) -> None:
    """The upload's automatic measurement and its ``assessment.create`` audit entry."""
    session.add(
        _measurement_row(
            assessment, analysis.result, mask_key, analysis.model, created_by=caller.holder
        )
    )
    audit.record(
        session,
        caller,
        "assessment.create",
        f"assessment/{assessment.id}",
        study_id=study.id,
        after={
            **audit.snapshot(assessment),
            "measurement": analysis.result,
            "model": analysis.model,
        },
    )


def _replay_on_conflict(
    session: Session,
    wound: Wound,
    form: UploadForm,
    upload_sha256: str,
    write: Callable[[], None],
) -> Assessment | None:
    """Run ``write`` (the flush or the commit). When a unique constraint refuses it and
    the upload carries an Idempotency-Key, it is the same upload retried concurrently:
    answer the first one's row. Any other conflict is raised."""
    try:
        write()
    except IntegrityError:
        session.rollback()
        if form.idempotency_key:
            found = _replay(session, wound, form.idempotency_key, upload_sha256)
            if found is not None:
                return found
        raise
    return None


def _measurement_row(
    assessment: Assessment,
    result: dict[str, Any],
    mask_key: str,
    model: dict[str, str],
    *,
    created_by: str,
    manual: bool = False,
    reason: str | None = None,
) -> Measurement:
    return Measurement(
        assessment_id=assessment.id,
        data=result,
        area_cm2=result.get("area_cm2"),
        calibrated=bool(result.get("calibrated")),
        severe=any(q.get("severe") for q in result.get("quality", [])),
        mask_key=mask_key,
        model_name=model["name"],
        model_version=model["version"],
        model_sha256=model["sha256"],
        manual=manual,
        reason=reason,
        created_by=created_by,
    )


def calibration_of(assessment: Assessment) -> Calibration:
    return Calibration(
        px_per_mm=assessment.px_per_mm,
        ruler=ruler_from_json(assessment.ruler),
        target_point=assessment.target_point,
    )


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


def _in_capture_order(wound: Wound) -> list[Assessment]:
    """The wound's non-voided assessments by capture time, then upload time."""
    return sorted(
        (a for a in wound.assessments if not a.voided), key=lambda a: (a.captured_at, a.created_at)
    )


def is_superseded(assessment: Assessment) -> bool:
    """A later upload of the same wound and day replaced this photo (DESIGN: the last one
    uploaded counts)."""
    rows = _in_capture_order(assessment.wound)
    later = rows[rows.index(assessment) + 1 :] if assessment in rows else []
    return bool(later) and later[0].captured_at.date() == assessment.captured_at.date()


def series_flags_of(wound: Wound, study: Study) -> dict[str, list[dict[str, Any]]]:
    """The series flags (``review.series_flags``: implausible_change,
    closure_area_mismatch) of the wound's non-voided assessments, by assessment id."""
    rows = _in_capture_order(wound)
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
    voided or superseded one (it cannot count whatever a clinician says)."""
    if assessment.voided or measurement is None or is_superseded(assessment):
        return False
    return review.awaiting_review(
        study.review,
        reviewed=is_reviewed(assessment, measurement),
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
    Not voided, measured by the pinned model (or corrected by hand), calibrated, and
    counted under the study's review policy (``review.counts_under_review_policy``).
    ``series``: the photo's series flags (``series_flags_of``; computed when not given)."""
    if assessment.voided:
        return "voided"
    if measurement is None:
        study = access.study_of(assessment)
        return NOT_PINNED_MODEL if study.model and assessment.measurements else "no_measurement"
    if not measurement.calibrated or measurement.area_cm2 is None:
        return "uncalibrated"
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


def is_counted(
    assessment: Assessment,
    measurement: Measurement | None,
    series: Sequence[dict[str, Any]] | None = None,
) -> bool:
    """Whether this photo's measurement enters cm² endpoints (``uncounted_reason``)."""
    return uncounted_reason(assessment, measurement, series) is None


def day_zero(subject: Subject) -> date | None:
    """The subject's time origin (``endpoints.time_origin``): ``randomized_on`` when
    given, else the date of its first (non-voided) photo of any wound."""
    firsts = [
        min(a.captured_at for a in w.assessments if not a.voided).date().isoformat()
        for w in subject.wounds
        if any(not a.voided for a in w.assessments)
    ]
    return time_origin(subject.randomized_on, firsts)


def list_assessments(
    session: Session, wound: Wound, *, include_voided: bool, limit: int, offset: int
) -> tuple[list[Assessment], int]:
    stmt = select(Assessment).where(Assessment.wound_id == wound.id)
    if not include_voided:
        stmt = stmt.where(Assessment.voided.is_(False))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(Assessment.captured_at, Assessment.created_at).limit(limit).offset(offset)
    )
    return list(rows), total


def review_queue(
    session: Session, caller: Caller, study: Study, *, limit: int, offset: int
) -> tuple[list[Assessment], int]:
    """The study's assessments awaiting a clinician's review that this caller may see
    (site keys: their site), the longest waiting (earliest uploaded) first."""
    stmt = access.visible_subjects(caller, study.id).options(
        selectinload(Subject.site),
        selectinload(Subject.wounds)
        .selectinload(Wound.assessments)
        .selectinload(Assessment.measurements),
    )
    waiting = []
    for subject in session.scalars(stmt):
        for wound in subject.wounds:
            series = series_flags_of(wound, study)
            for a in _in_capture_order(wound):
                current = current_measurement(a, study)
                if awaiting_review(a, current, study, series.get(a.id, [])):
                    waiting.append(a)
    waiting.sort(key=lambda a: (a.created_at, a.id))
    return waiting[offset : offset + limit], len(waiting)


def update_assessment(
    session: Session, caller: Caller, assessment: Assessment, data: AssessmentUpdate
) -> Assessment:
    """Clinician: closure observation, accept a flagged photo, void a misfiled one."""
    caller.require(*CORRECTORS)
    study = access.ensure_writable(assessment)
    _refuse_if_voided(assessment)
    changes = data.model_dump(exclude_unset=True)
    reason = (changes.pop("reason", None) or "").strip()
    if changes.get("voided") is False:
        changes.pop("voided")
    if changes.get("voided") and not reason:
        raise DomainError("voiding an assessment needs a 'reason'", code="reason_required")
    before = audit.snapshot(assessment)
    for key in ("epithelialized", "drainage", "voided"):
        if key in changes and changes[key] is not None:
            setattr(assessment, key, changes[key])
    accepted = changes.get("accepted")
    if accepted is not None:
        _set_accepted(assessment, study, caller, accepted)
    if assessment.voided:
        assessment.void_reason = reason
    action = (
        "assessment.void"
        if assessment.voided
        else "assessment.accept"
        if accepted is True
        else "assessment.unaccept"
        if accepted is False
        else "assessment.update"
    )
    audit.record(
        session,
        caller,
        action,
        f"assessment/{assessment.id}",
        study_id=study.id,
        before=before,
        after={**audit.snapshot(assessment), **({"reason": reason} if reason else {})},
    )
    session.commit()
    return assessment


def _set_accepted(assessment: Assessment, study: Study, caller: Caller, accepted: bool) -> None:
    """Accept the measurement that counts now (recording which, by whom, when), or undo."""
    if not accepted:
        assessment.accepted = False
        assessment.accepted_measurement_id = None
        assessment.accepted_by = None
        assessment.accepted_at = None
        return
    current = current_measurement(assessment, study)
    if current is None:
        raise DomainError(
            f"assessment {assessment.id} has no measurement to accept", code="invalid_request"
        )
    assessment.accepted = True
    assessment.accepted_measurement_id = current.id
    assessment.accepted_by = caller.holder
    assessment.accepted_at = utcnow()


def correct_mask(
    session: Session,
    runtime: Runtime,
    caller: Caller,
    assessment: Assessment,
    *,
    mask_png: bytes | None,
    polygon: str | None,
    reason: str,
) -> Measurement:
    """A clinician's outline becomes a new manual measurement; earlier ones stay."""
    caller.require(*CORRECTORS)
    study = access.ensure_writable(assessment)
    _refuse_if_voided(assessment)
    if not reason.strip():
        raise DomainError("a correction needs a 'reason'", code="reason_required")
    corrected = current_measurement(assessment, study)
    photo = runtime.store.get(assessment.photo_key)
    cal = calibration_of(assessment)
    marker_mm = study.marker_mm
    session.commit()
    png, result = runtime.pool.run(
        runtime.manual_mask, photo, mask_png=mask_png, polygon=polygon, marker_mm=marker_mm, cal=cal
    )
    mask_key = runtime.store.put(png, "png")
    row = _measurement_row(
        assessment,
        result,
        mask_key,
        _model_of(corrected),
        created_by=caller.holder,
        manual=True,
        reason=reason.strip(),
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
        },
    )
    session.commit()
    return row


def _refuse_if_voided(assessment: Assessment) -> None:
    """A voided photo is kept as it was: no observation, acceptance or correction."""
    if assessment.voided:
        raise DomainError(
            f"assessment {assessment.id} is voided and cannot be changed", code="already_voided"
        )


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


# --- audit log ------------------------------------------------------------------------


def list_audit(
    session: Session,
    caller: Caller,
    *,
    study_id: str | None,
    limit: int,
    offset: int,
    action: str | None = None,
    resources: Sequence[str] | None = None,
) -> tuple[list[AuditEntry], int]:
    """The audit log, newest first (admin; a study admin sees its study only).
    ``action``: entries whose action starts with it (``event`` or ``event.void``);
    ``resources``: only entries about these (``subject/…``, ``assessment/…``)."""
    caller.require(ADMIN)
    if caller.study_id is not None:
        if study_id not in (None, caller.study_id):
            raise NotFound("study", study_id)
        study_id = caller.study_id
    stmt = select(AuditEntry)
    if study_id is not None:
        stmt = stmt.where(AuditEntry.study_id == study_id)
    if action:
        stmt = stmt.where(AuditEntry.action.startswith(action, autoescape=True))
    if resources is not None:
        stmt = stmt.where(AuditEntry.resource.in_(list(resources)))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit).offset(offset))
    return list(rows), total


# --- keys -----------------------------------------------------------------------------


def issue_key(
    session: Session,
    caller: Caller,
    *,
    role: str,
    holder: str,
    study_id: str | None = None,
    site_code: str | None = None,
) -> tuple[ApiKey, str]:
    """An admin makes a key (the API, the ``keys create`` command, the demo); a study
    admin only within its study, never a server admin. Returns the row and the key
    itself (shown once). Audited as ``key.create``."""
    caller.require(ADMIN)
    if caller.study_id is not None:
        if study_id is None:
            raise Forbidden("this admin key is confined to one study: give 'study'")
        access.load_study(session, caller, study_id)
    row, key = auth.create_key(
        session, role=role, holder=holder, study_id=study_id, site_code=site_code
    )
    audit.record(
        session,
        caller,
        "key.create",
        f"key/{row.id}",
        study_id=study_id,
        after=audit.snapshot(row, exclude=("key_hash",)),
    )
    session.commit()
    return row, key


def _key_scope(caller: Caller) -> Any:
    stmt = select(ApiKey)
    if caller.study_id is not None:
        stmt = stmt.where(ApiKey.study_id == caller.study_id)
    return stmt


def list_keys(session: Session, caller: Caller) -> list[ApiKey]:
    caller.require(ADMIN)
    return list(session.scalars(_key_scope(caller).order_by(ApiKey.id)))


def revoke_key(session: Session, caller: Caller, key: int | str) -> ApiKey:
    """Revoke a key by its id, or by its printed prefix (the ``keys revoke`` command):
    it answers 401 from now on and its dashboard sessions end. A study admin reaches
    its study's keys only. Audited as ``key.revoke``."""
    caller.require(ADMIN)
    by = ApiKey.id == int(key) if str(key).isdecimal() else ApiKey.prefix == key
    row = session.scalar(_key_scope(caller).where(by))
    if row is None:
        raise NotFound("key", key)
    before = audit.snapshot(row, exclude=("key_hash",))
    auth.revoke_key(session, row)
    audit.record(
        session,
        caller,
        "key.revoke",
        f"key/{row.id}",
        study_id=row.study_id,
        before=before,
        after=audit.snapshot(row, exclude=("key_hash",)),
    )
    session.commit()
    return row


# --- re-analysis ----------------------------------------------------------------------


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
        cal=calibration_of(assessment),
        limits=limits,
    )
    mask_key = store.put(png, "png")
    row = _measurement_row(assessment, result, mask_key, segmenter.info(), created_by=caller.holder)
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
