"""A subject's dated events (death, withdrawal, major amputation, …): record, void,
and which event rules out a photo taken after it."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from service.core.errors import DomainError, InvalidRequest, NotFound
from service.core.healing import ENDS_SUBJECT_FOLLOW_UP, refuses_photo_after
from service.domain import access, audit, shared
from service.domain.auth import Caller
from service.domain.roles import CORRECTORS
from service.persistence.orm import Study, Subject, SubjectEvent, Wound

if TYPE_CHECKING:
    from service.core.answers import EventCreate


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
    shared.insert(session, caller, row, kind="event", what="this event", study_id=subject.study_id)
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


def ending_events(wound: Wound, captured_on: date) -> list[SubjectEvent]:
    """The live events that ended this wound's follow-up before ``captured_on``, earliest
    first: the subject's death, withdrawal or loss to follow-up
    (``healing.ENDS_SUBJECT_FOLLOW_UP``), or a major amputation of the wound's leg (a
    wound not marked ``index_leg: false`` is on the index leg)."""
    leg = "contralateral" if wound.index_leg is False else "index"
    ending = [
        event
        for event in live_events(wound.subject)
        if event.occurred_on < captured_on
        and (
            event.kind in ENDS_SUBJECT_FOLLOW_UP
            or (event.kind == "major_amputation" and event.leg == leg)
        )
    ]
    return sorted(ending, key=lambda e: e.occurred_on)


def blocking_event(wound: Wound, captured_on: date) -> SubjectEvent | None:
    """The event that ends this wound's follow-up before ``captured_on``: the earliest of
    ``ending_events``, or None. A photo after it is never counted
    (``counting.uncounted_reason``: ``after_subject_event``), whether it was stored
    before the event was recorded or recorded under the study's
    ``photos_after_withdrawal: record`` (``refusing_event``)."""
    ending = ending_events(wound, captured_on)
    return ending[0] if ending else None


def refusing_event(wound: Wound, captured_on: date, study: Study) -> SubjectEvent | None:
    """The event that refuses an upload dated ``captured_on`` (``after_subject_event``):
    the earliest of ``ending_events`` that ``healing.refuses_photo_after`` under the
    study's ``photos_after_withdrawal`` (a death or the leg's major amputation always; a
    withdrawal or loss to follow-up unless the study records such photos), or None."""
    return next(
        (
            event
            for event in ending_events(wound, captured_on)
            if refuses_photo_after(event.kind, study.photos_after_withdrawal)
        ),
        None,
    )
