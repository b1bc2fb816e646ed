"""ORM rows -> wire schemas (what a caller may see of them: the arm for admins only)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from service.core.answers import EventPublic
from service.domain import access, counting, subjects
from service.domain.auth import Caller
from service.domain.batches import BatchStatus
from service.domain.schemas import (
    AssessmentPublic,
    AuditPublic,
    BatchPublic,
    KeyPublic,
    MeasurementPublic,
    ModelInfo,
    ReviewPublic,
    ReviewStatus,
    SitePublic,
    StudyPublic,
    SubjectPublic,
    VisitSchedule,
    WoundPublic,
)
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
)

# Keys of the measurement JSON that provenance fields must not be overwritten by.
_PROVENANCE = {"id", "model", "manual", "reason", "created_by", "created_at", "mask_url"}


def study_public(study: Study) -> StudyPublic:
    return StudyPublic(
        id=study.id,
        name=study.name,
        marker_mm=study.marker_mm,
        model=study.model,
        locked=study.locked,
        review=study.review,
        closure_requires_drainage_recorded=study.closure_requires_drainage_recorded,
        par_week4_window_days=study.par_week4_window_days,
        control_arm=study.control_arm,
        visit_schedule=VisitSchedule.model_validate(study.visit_schedule)
        if study.visit_schedule
        else None,
        photos_after_withdrawal=study.photos_after_withdrawal,
        created_at=study.created_at,
    )


def site_public(site: Site) -> SitePublic:
    return SitePublic(id=site.code, study=site.study_id, name=site.name)


def subject_public(subject: Subject, caller: Caller) -> SubjectPublic:
    return SubjectPublic(
        id=subject.id,
        study=subject.study_id,
        code=subject.code,
        site=subject.site.code,
        arm=subject.arm if caller.sees_arm else None,
        randomized_on=subject.randomized_on,
        sex=subject.sex,
        country=subject.country,
        age_years=subject.age_years,
        birth_date=subject.birth_date,
        index_leg_side=subject.index_leg_side,
        created_at=subject.created_at,
    )


def wound_public(wound: Wound) -> WoundPublic:
    return WoundPublic(
        id=wound.id,
        subject=wound.subject_id,
        label=wound.label,
        location=wound.location,
        index_leg=wound.index_leg,
        created_at=wound.created_at,
    )


def measurement_public(m: Measurement) -> MeasurementPublic:
    data = {k: v for k, v in m.data.items() if k not in _PROVENANCE}
    return MeasurementPublic(
        **data,
        id=m.id,
        model=ModelInfo(name=m.model_name, version=m.model_version, sha256=m.model_sha256),
        manual=m.manual,
        reason=m.reason,
        created_by=m.created_by,
        created_at=m.created_at,
        mask_url=f"/v1/assessments/{m.assessment_id}/mask.png?measurement={m.id}",
    )


def review_public(
    a: Assessment, current: Measurement | None, study: Study, series: list[dict[str, Any]]
) -> ReviewPublic:
    """Where the photo stands with the clinician's review."""
    status: ReviewStatus
    if current is not None and current.manual:
        status = "corrected"
    elif counting.is_reviewed(a, current):
        status = "accepted"
    elif counting.awaiting_review(a, current, study, series):
        status = "awaiting"
    else:
        status = "not_needed"
    accepted = status == "accepted"
    return ReviewPublic(
        status=status,
        reasons=counting.review_reasons(a, current, series),
        series_flags=series,
        policy=study.review,
        accepted_by=a.accepted_by if accepted else None,
        accepted_at=a.accepted_at if accepted else None,
        accepted_measurement=a.accepted_measurement_id if accepted else None,
    )


def assessments_public(session: Session, rows: list[Assessment]) -> list[AssessmentPublic]:
    """Several assessments, with their day counted from the subject's time origin
    (``subjects.day_zero``)."""
    origins: dict[str, date | None] = {}
    series_by_wound: dict[str, dict[str, list[dict[str, Any]]]] = {}
    out = []
    for a in rows:
        study = access.study_of(a)
        current = counting.current_measurement(a, study)
        if a.wound_id not in series_by_wound:
            series_by_wound[a.wound_id] = counting.series_flags_of(a.wound, study)
        series = series_by_wound[a.wound_id].get(a.id, [])
        subject = a.wound.subject
        if subject.id not in origins:
            origins[subject.id] = subjects.day_zero(subject)
        origin = origins[subject.id] or a.captured_at.date()
        day = (a.captured_at.date() - origin).days
        url = f"/v1/assessments/{a.id}"
        out.append(
            AssessmentPublic(
                id=a.id,
                wound=a.wound_id,
                subject=a.wound.subject_id,
                captured_at=a.captured_at,
                day=day,
                visit=a.visit,
                epithelialized=a.epithelialized,
                drainage=a.drainage,
                accepted=a.accepted,
                voided=a.voided,
                void_reason=a.void_reason,
                px_per_mm=a.px_per_mm,
                target_point=a.target_point,
                width=a.width,
                height=a.height,
                uploaded_by=a.uploaded_by,
                created_at=a.created_at,
                photo_url=f"{url}/photo.jpg",
                mask_url=f"{url}/mask.png",
                overlay_url=f"{url}/overlay.jpg",
                counted=counting.is_counted(a, current, series),
                review=review_public(a, current, study, series),
                measurement=measurement_public(current) if current else None,
                measurements=[
                    measurement_public(m) for m in sorted(a.measurements, key=lambda m: -m.id)
                ],
            )
        )
    return out


def assessment_public(session: Session, assessment: Assessment) -> AssessmentPublic:
    return assessments_public(session, [assessment])[0]


def audit_public(entry: AuditEntry) -> AuditPublic:
    return AuditPublic(
        id=entry.id,
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        resource=entry.resource,
        study=entry.study_id,
        before=entry.before,
        after=entry.after,
    )


def key_public(key: ApiKey) -> KeyPublic:
    return KeyPublic(
        id=key.id,
        prefix=key.prefix,
        role=key.role,
        holder=key.holder,
        study=key.study_id,
        site=key.site.code if key.site is not None else None,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


def event_public(row: SubjectEvent) -> EventPublic:
    return EventPublic(
        id=row.id,
        subject=row.subject_id,
        kind=row.kind,
        date=row.occurred_on,
        leg=row.leg,
        note=row.note,
        voided=row.voided,
        void_reason=row.void_reason,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def batch_public(status: BatchStatus) -> BatchPublic:
    """The domain's progress as the API's answer (the same fields, by name)."""
    return BatchPublic.model_validate(asdict(status))
