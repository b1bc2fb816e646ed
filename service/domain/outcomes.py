"""The trial's healing endpoints from the database: stored wounds, subjects and studies
as the inputs of the engine (``service.core.healing``), and its answers for each.

The one place that turns stored assessments into the engine's visits: which
measurement counts (``counting.current_measurement``) and why a photo does not
(``counting.uncounted_reason``). The endpoint routes, the dashboard and the ADTTE export
read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session, selectinload

from service.core import healing as engine
from service.domain import access, counting, events, subjects
from service.domain.auth import Caller
from service.persistence.orm import Assessment, Study, Subject, Wound


def _visit(assessment: Assessment, study: Study, series: list[dict[str, Any]]) -> engine.Visit:
    """One photo as the engine's visit: the measurement that counts, and whether (or
    why not) it counts in the cm² endpoints; one dated after the end of its wound's
    follow-up (``after_subject_event``) is outside follow-up for the engine too."""
    measurement = counting.current_measurement(assessment, study)
    data: dict[str, Any] = measurement.data if measurement is not None else {}
    reason = counting.uncounted_reason(assessment, measurement, series)
    in_follow_up = reason != engine.AFTER_SUBJECT_EVENT
    return engine.Visit(
        assessment_id=assessment.id,
        captured_at=assessment.captured_at.date(),
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
        in_follow_up=in_follow_up,
    )


def wound_input(wound: Wound, study: Study) -> engine.Wound:
    """A stored wound as the engine's input; voided photos are left out."""
    series = counting.series_flags_of(wound, study)
    visits = [
        _visit(assessment, study, series.get(assessment.id, []))
        for assessment in wound.assessments
        if not assessment.voided
    ]
    return engine.Wound(wound.id, visits, label=wound.label, index_leg=wound.index_leg)


def subject_input(subject: Subject, study: Study) -> engine.Subject:
    """A stored subject as the engine's input: its wounds, randomisation, site and its
    live (not voided) events."""
    return engine.Subject(
        subject.id,
        [wound_input(w, study) for w in subject.wounds],
        code=subject.code,
        arm=subject.arm,
        randomized_on=subject.randomized_on,
        site=subject.site.code,
        events=live_events(subject),
    )


def live_events(subject: Subject) -> list[engine.SubjectEvent]:
    """The subject's live (not voided) events as the engine reads them."""
    return [engine.SubjectEvent(e.kind, e.occurred_on, e.leg) for e in events.live_events(subject)]


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


def endpoint_options(study: Study, window_days: int | None = None) -> engine.EndpointOptions:
    """The study's endpoint settings as the engine takes them: its week-4 PAR window
    (``window_days`` overrides it) and closure rule."""
    return {
        "week4_window_days": study.par_week4_window_days if window_days is None else window_days,
        "closure_requires_drainage_recorded": study.closure_requires_drainage_recorded,
    }


def wound_answer(wound: Wound, *, window_days: int | None = None) -> dict[str, Any]:
    """Baseline area, PAR, healing rates, closure, recurrence of one wound."""
    study = access.study_of(wound)
    answer = engine.wound_endpoints(
        wound_input(wound, study).visits,
        origin=subjects.day_zero(wound.subject),
        **endpoint_options(study, window_days),
    )
    return {"wound": wound.id, "subject": wound.subject_id, "label": wound.label, **answer}


def subject_answer(subject: Subject, *, window_days: int | None = None) -> dict[str, Any]:
    """Every wound's endpoints and whether (and when) all the subject's ulcers healed."""
    study = access.study_of(subject)
    answer = engine.subject_endpoints(
        subject_input(subject, study).wounds,
        randomized_on=subject.randomized_on,
        **endpoint_options(study, window_days),
    )
    return {"subject": subject.id, "code": subject.code, "study": subject.study_id, **answer}


def study_answer(
    session: Session,
    caller: Caller,
    study: Study,
    *,
    window_days: int | None = None,
    proportion_days: Sequence[int] = engine.PROPORTION_HEALED_DAYS,
) -> dict[str, Any]:
    """The study's endpoints over the subjects this caller sees (per arm for admins)."""
    subjects = [subject_input(s, study) for s in load_visible_subjects(session, caller, study)]
    answer = engine.study_endpoints(
        subjects,
        by_arm=caller.sees_arm,
        proportion_days=proportion_days,
        control_arm=study.control_arm,
        **endpoint_options(study, window_days),
    )
    return {"study": study.id, "scope": caller.site_code or "study", **answer}
