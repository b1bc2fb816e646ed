"""Wounds of a subject: create and list; list a wound's assessments."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.domain import access, shared
from service.domain.auth import Caller
from service.domain.roles import WRITERS
from service.persistence.orm import Assessment, Subject, Wound

if TYPE_CHECKING:
    from service.domain.schemas import WoundCreate


def create_wound(session: Session, caller: Caller, subject: Subject, data: WoundCreate) -> Wound:
    caller.require(*WRITERS)
    access.ensure_writable(subject)
    wound = Wound(
        subject_id=subject.id, label=data.label, location=data.location, index_leg=data.index_leg
    )
    what = f"wound {data.label} of this subject"
    shared.insert(session, caller, wound, kind="wound", what=what, study_id=subject.study_id)
    return wound


def list_wounds(
    session: Session, subject: Subject, *, limit: int | None = None, offset: int = 0
) -> tuple[list[Wound], int]:
    stmt = select(Wound).where(Wound.subject_id == subject.id)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Wound.label).limit(limit).offset(offset))
    return list(rows), total


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
