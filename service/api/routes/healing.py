"""Healing endpoints over HTTP: per wound, per subject, per study.

Also the one place that turns stored assessments into the engine's inputs
(``wound_input``, ``current_measurement``, ``is_counted``), shared by the export
and dashboard routes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session, selectinload

from service.api.deps import CallerDep, SessionDep, VisibleStudy, VisibleSubject, VisibleWound
from service.core import healing as engine
from service.core.answers import StudyAnswer, SubjectAnswer, WoundAnswer
from service.core.errors import InvalidRequest
from service.domain import access, trial
from service.domain.auth import Caller
from service.persistence.orm import Assessment, Measurement, Study, Subject, Wound

router = APIRouter(tags=["endpoints"])

WindowDays = Annotated[
    int,
    Query(ge=0, le=28, description="PAR at week 4: the window around day 28 (days)"),
]
ProportionDays = Annotated[
    list[int] | None,
    Query(description="Days at which to report the proportion healed (default 84, 182, 365)"),
]


def current_measurement(assessment: Assessment, study: Study) -> Measurement | None:
    """The measurement that counts for a photo (``trial.current_measurement``)."""
    return trial.current_measurement(assessment, study)


def uncounted_reason(
    assessment: Assessment,
    measurement: Measurement | None,
    series: list[dict[str, Any]] | None = None,
) -> str | None:
    """Why a photo stays out of the cm² endpoints (``trial.uncounted_reason``)."""
    return trial.uncounted_reason(assessment, measurement, series)


def captured_on(assessment: Assessment) -> date:
    return assessment.captured_at.date()


def wound_input(wound: Wound, study: Study) -> engine.Wound:
    """A stored wound as the engine's input; voided photos are left out."""
    visits = []
    series = trial.series_flags_of(wound, study)
    for assessment in wound.assessments:
        if assessment.voided:
            continue
        measurement = current_measurement(assessment, study)
        data: dict[str, Any] = measurement.data if measurement is not None else {}
        reason = uncounted_reason(assessment, measurement, series.get(assessment.id, []))
        visits.append(
            engine.Visit(
                assessment_id=assessment.id,
                captured_at=captured_on(assessment),
                area_cm2=measurement.area_cm2 if measurement is not None else None,
                perimeter_cm=data.get("perimeter_cm"),
                counted=reason is None,
                epithelialized=assessment.epithelialized,
                drainage=assessment.drainage,
                uploaded_at=assessment.created_at,
                area_cm2_low=data.get("area_cm2_low"),
                area_cm2_high=data.get("area_cm2_high"),
                uncounted_reason=reason,
                model=measurement.model_id if measurement is not None else None,
                manual=bool(measurement is not None and measurement.manual),
            )
        )
    return engine.Wound(wound.id, visits, label=wound.label, index_leg=wound.index_leg)


def subject_input(subject: Subject, study: Study) -> engine.Subject:
    return engine.Subject(
        subject.id,
        [wound_input(w, study) for w in subject.wounds],
        code=subject.code,
        arm=subject.arm,
        randomized_on=subject.randomized_on,
        site=subject.site.code,
        events=[
            engine.SubjectEvent(e.kind, e.occurred_on, e.leg) for e in trial.live_events(subject)
        ],
    )


def load_visible_subjects(session: Session, caller: Caller, study: Study) -> Sequence[Subject]:
    """The study's subjects this caller sees, with wounds, assessments and measurements."""
    stmt = (
        access.visible_subjects(caller, study.id)
        .options(
            selectinload(Subject.site),
            selectinload(Subject.events),
            selectinload(Subject.wounds)
            .selectinload(Wound.assessments)
            .selectinload(Assessment.measurements),
        )
        .order_by(Subject.code)
    )
    return session.scalars(stmt).all()


def wound_answer(
    wound: Wound, *, window_days: int = engine.PAR_WEEK4_WINDOW_DAYS
) -> dict[str, Any]:
    study = access.study_of(wound)
    answer = engine.wound_endpoints(
        wound_input(wound, study).visits,
        origin=trial.day_zero(wound.subject),
        week4_window_days=window_days,
        closure_requires_drainage_recorded=study.closure_requires_drainage_recorded,
    )
    return {"wound": wound.id, "subject": wound.subject_id, "label": wound.label, **answer}


def subject_answer(
    subject: Subject, *, window_days: int = engine.PAR_WEEK4_WINDOW_DAYS
) -> dict[str, Any]:
    study = access.study_of(subject)
    answer = engine.subject_endpoints(
        subject_input(subject, study).wounds,
        randomized_on=subject.randomized_on,
        week4_window_days=window_days,
        closure_requires_drainage_recorded=study.closure_requires_drainage_recorded,
    )
    return {"subject": subject.id, "code": subject.code, "study": subject.study_id, **answer}


def study_answer(
    session: Session,
    caller: Caller,
    study: Study,
    *,
    window_days: int = engine.PAR_WEEK4_WINDOW_DAYS,
    proportion_days: Sequence[int] = engine.PROPORTION_HEALED_DAYS,
) -> dict[str, Any]:
    subjects = [subject_input(s, study) for s in load_visible_subjects(session, caller, study)]
    answer = engine.study_endpoints(
        subjects,
        by_arm=caller.sees_arm,
        proportion_days=proportion_days,
        week4_window_days=window_days,
        closure_requires_drainage_recorded=study.closure_requires_drainage_recorded,
    )
    return {"study": study.id, "scope": caller.site_code or "study", **answer}


@router.get(
    "/v1/wounds/{wound}/endpoints",
    summary="Wound-level healing endpoints",
    response_model=WoundAnswer,
)
def get_wound_endpoints(wound: VisibleWound, window_days: WindowDays = 7) -> dict[str, Any]:
    """Baseline area, PAR per visit and at week 4, healing rates (cm²/week, Gilman
    cm/week, log-linear), confirmed closure, time to closure with censoring, recurrence."""
    return wound_answer(wound, window_days=window_days)


@router.get(
    "/v1/subjects/{subject}/endpoints",
    summary="Subject-level healing endpoints",
    response_model=SubjectAnswer,
)
def get_subject_endpoints(subject: VisibleSubject, window_days: WindowDays = 7) -> dict[str, Any]:
    """Every wound's endpoints, and whether all ulcers (of the index leg, where recorded)
    are healed, and on which day."""
    return subject_answer(subject, window_days=window_days)


@router.get(
    "/v1/studies/{study}/endpoints",
    summary="Study-level healing endpoints",
    response_model=StudyAnswer,
    response_model_exclude_unset=True,
)
def get_study_endpoints(
    study: VisibleStudy,
    session: SessionDep,
    caller: CallerDep,
    window_days: WindowDays = 7,
    days: ProportionDays = None,
) -> dict[str, Any]:
    """Kaplan–Meier time to closure of all ulcers (per subject) with the median and its
    95 % CI, proportion healed at ``days``, PAR-at-week-4 distribution. Per arm only
    for admin keys (blinding); site keys see their site's subjects."""
    if days is not None and (len(days) > 20 or any(not 0 <= d <= 3650 for d in days)):
        raise InvalidRequest("days: give at most 20 days, each between 0 and 3650")
    return study_answer(
        session,
        caller,
        study,
        window_days=window_days,
        proportion_days=days or engine.PROPORTION_HEALED_DAYS,
    )
