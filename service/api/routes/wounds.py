"""Wounds of a subject (each ulcer followed on its own)."""

from __future__ import annotations

from fastapi import APIRouter

from service.api import views
from service.api.deps import CallerDep, PagingDep, SessionDep, VisibleSubject, VisibleWound
from service.domain import wounds
from service.domain.schemas import Page, WoundCreate, WoundPublic

router = APIRouter(tags=["wounds"])


@router.post("/v1/subjects/{subject}/wounds", status_code=201, response_model=WoundPublic)
def create_wound(
    subject: VisibleSubject, data: WoundCreate, session: SessionDep, caller: CallerDep
) -> WoundPublic:
    return views.wound_public(wounds.create_wound(session, caller, subject, data))


@router.get("/v1/subjects/{subject}/wounds", response_model=Page[WoundPublic])
def list_wounds(
    subject: VisibleSubject, session: SessionDep, paging: PagingDep
) -> Page[WoundPublic]:
    rows, total = wounds.list_wounds(session, subject, limit=paging.limit, offset=paging.offset)
    return Page(
        items=[views.wound_public(w) for w in rows],
        total=total,
        limit=paging.limit,
        offset=paging.offset,
    )


@router.get("/v1/wounds/{wound}", response_model=WoundPublic)
def get_wound(wound: VisibleWound) -> WoundPublic:
    return views.wound_public(wound)
