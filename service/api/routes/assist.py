"""Assisted outline: a box and/or points -> a suggested outline (nothing stored).

The API route takes an API key; the dashboard's editor calls the same domain function
with its sign-in cookie and CSRF token (header ``X-CSRF-Token``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request

from service.api.deps import CallerDep, RuntimeDep, SessionDep, VisibleAssessment
from service.api.sessions import check_csrf, signed_in
from service.domain import access
from service.domain.assist import OutlinePrompt, OutlineSuggestion, suggest_outline

router = APIRouter(tags=["assessments"])


@router.post(
    "/v1/assessments/{assessment}/outline",
    response_model=OutlineSuggestion,
    # The codes of every status come from service.api.openapi (error_codes): only
    # what they cannot say is written here.
    responses={
        403: {"description": "only clinicians and admins correct outlines"},
        404: {"description": "also another site's photo"},
    },
)
def suggest(
    assessment: VisibleAssessment,
    prompt: OutlinePrompt,
    session: SessionDep,
    caller: CallerDep,
    runtime: RuntimeDep,
) -> OutlineSuggestion:
    """A suggested outline for a box around the wound and/or points (1 = wound here,
    0 = not wound), in photo pixels as displayed. Nothing is stored or audited: save it
    with ``PUT /v1/assessments/{id}/mask`` (``polygon`` = the answer's ``polygon``, or
    its ``polygons`` for a wound in several parts, and a ``reason``)."""
    answer = suggest_outline(
        session, runtime, caller, assessment, box=prompt.box, points=prompt.points
    )
    return OutlineSuggestion(**answer)


@router.post(
    "/dashboard/assessments/{assessment}/suggest",
    response_model=OutlineSuggestion,
    include_in_schema=False,
)
def dashboard_suggest(
    assessment: str,
    prompt: OutlinePrompt,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    csrf: Annotated[str, Header(alias="X-CSRF-Token")] = "",
) -> OutlineSuggestion:
    """The dashboard editor's suggestion (signed-in cookie + the page's CSRF token)."""
    caller, key = signed_in(request, session)
    check_csrf(key, csrf)
    row = access.load_assessment(session, caller, assessment)
    answer = suggest_outline(session, runtime, caller, row, box=prompt.box, points=prompt.points)
    return OutlineSuggestion(**answer)
