"""Subjects: enrol (with site and, for admins, the arm), set ``randomized_on`` and the
optional demographics, list;
a subject's time origin (``day_zero``)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.core.errors import Forbidden, InvalidRequest
from service.core.healing import time_origin
from service.domain import access, audit, shared
from service.domain.auth import Caller
from service.domain.roles import ADMIN, WRITERS
from service.persistence.orm import Site, Study, Subject

if TYPE_CHECKING:
    from service.domain.schemas import SubjectCreate, SubjectUpdate


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
    shared.insert(session, caller, subject, kind="subject", what=what, study_id=study.id)
    return subject


def update_subject(
    session: Session, caller: Caller, subject: Subject, data: SubjectUpdate
) -> Subject:
    """Admin: set or clear the subject's ``randomized_on`` (its time origin) and its
    optional demographics (every field of ``SubjectUpdate`` the request gives), audited."""
    caller.require(ADMIN)
    access.ensure_writable(subject)
    before = audit.snapshot(subject)
    for name, value in data.model_dump(exclude_unset=True).items():
        setattr(subject, name, value)
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


def day_zero(subject: Subject) -> date | None:
    """The subject's time origin (``endpoints.time_origin``): ``randomized_on`` when
    given, else the date of its first (non-voided) photo of any wound."""
    firsts = [
        min(a.captured_at for a in w.assessments if not a.voided).date().isoformat()
        for w in subject.wounds
        if any(not a.voided for a in w.assessments)
    ]
    return time_origin(subject.randomized_on, firsts)
