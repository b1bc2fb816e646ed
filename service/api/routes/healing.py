"""Healing endpoints over HTTP: per wound, per subject, per study.

The answers are ``service.domain.outcomes``' (stored photos as the engine's inputs);
this module reads the query and answers them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from service.api.deps import CallerDep, SessionDep, VisibleStudy, VisibleSubject, VisibleWound
from service.core import healing as engine
from service.core.answers import StudyAnswer, SubjectAnswer, WoundAnswer
from service.core.errors import InvalidRequest
from service.domain.outcomes import study_answer, subject_answer, wound_answer

router = APIRouter(tags=["endpoints"])

WindowDays = Annotated[
    int | None,
    Query(
        ge=0,
        le=28,
        description="PAR at week 4: the window around day 28 after each wound's baseline "
        "(days); default the study's par_week4_window_days",
    ),
]
ProportionDays = Annotated[
    list[int] | None,
    Query(description="Days at which to report the proportion healed (default 84, 182, 365)"),
]


@router.get(
    "/v1/wounds/{wound}/endpoints",
    summary="Wound-level healing endpoints",
    response_model=WoundAnswer,
)
def get_wound_endpoints(wound: VisibleWound, window_days: WindowDays = None) -> dict[str, Any]:
    """Baseline area, PAR per visit and at week 4, healing rates (cm²/week, Gilman
    cm/week, log-linear), confirmed closure, time to closure with censoring, recurrence."""
    return wound_answer(wound, window_days=window_days)


@router.get(
    "/v1/subjects/{subject}/endpoints",
    summary="Subject-level healing endpoints",
    response_model=SubjectAnswer,
)
def get_subject_endpoints(
    subject: VisibleSubject, window_days: WindowDays = None
) -> dict[str, Any]:
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
    window_days: WindowDays = None,
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
