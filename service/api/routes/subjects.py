"""Subjects (pseudonymous codes) of a study: site keys see their own site only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.api import views
from service.api.deps import CallerDep, PagingDep, SessionDep, VisibleStudy, VisibleSubject
from service.core.answers import EventCreate, EventPublic, EventVoid
from service.domain import events, subjects
from service.domain.schemas import Page, SubjectCreate, SubjectPublic, SubjectUpdate

router = APIRouter(tags=["subjects"])


@router.post("/v1/studies/{study}/subjects", status_code=201, response_model=SubjectPublic)
def create_subject(
    study: VisibleStudy, data: SubjectCreate, session: SessionDep, caller: CallerDep
) -> SubjectPublic:
    """Create a subject; the site comes from the key (or is given by an admin)."""
    return views.subject_public(subjects.create_subject(session, caller, study, data), caller)


@router.get("/v1/studies/{study}/subjects", response_model=Page[SubjectPublic])
def list_subjects(
    study: VisibleStudy,
    session: SessionDep,
    caller: CallerDep,
    paging: PagingDep,
    site: Annotated[str | None, Query(description="Only this site's subjects")] = None,
) -> Page[SubjectPublic]:
    rows, total = subjects.list_subjects(
        session, caller, study, site=site, limit=paging.limit, offset=paging.offset
    )
    return Page(
        items=[views.subject_public(s, caller) for s in rows],
        total=total,
        limit=paging.limit,
        offset=paging.offset,
    )


@router.get("/v1/subjects/{subject}", response_model=SubjectPublic)
def get_subject(subject: VisibleSubject, caller: CallerDep) -> SubjectPublic:
    return views.subject_public(subject, caller)


@router.patch("/v1/subjects/{subject}", response_model=SubjectPublic)
def update_subject(
    subject: VisibleSubject, data: SubjectUpdate, session: SessionDep, caller: CallerDep
) -> SubjectPublic:
    """Admin: set the subject's ``randomized_on`` (day 0 of its endpoints), audited."""
    return views.subject_public(subjects.update_subject(session, caller, subject, data), caller)


@router.post("/v1/subjects/{subject}/events", status_code=201, response_model=EventPublic)
def create_event(
    subject: VisibleSubject, data: EventCreate, session: SessionDep, caller: CallerDep
) -> EventPublic:
    """Clinician or admin: record a dated event (death, major amputation of the index or
    contralateral leg, minor amputation, revascularisation, withdrawal, lost to
    follow-up). Death and index-leg major amputation compete with healing in the study
    answer; photos dated after death or the amputation of that leg are refused."""
    return views.event_public(events.create_event(session, caller, subject, data))


@router.get("/v1/subjects/{subject}/events", response_model=list[EventPublic])
def list_events(subject: VisibleSubject) -> list[EventPublic]:
    """Every event of the subject, voided ones included (never deleted), oldest first."""
    return [views.event_public(e) for e in subject.events]


@router.patch("/v1/subjects/{subject}/events/{event_id}", response_model=EventPublic)
def void_event(
    subject: VisibleSubject,
    event_id: int,
    data: EventVoid,
    session: SessionDep,
    caller: CallerDep,
) -> EventPublic:
    """Clinician or admin: void an event recorded in error, with a reason (audited)."""
    return views.event_public(events.void_event(session, caller, subject, event_id, data.reason))
