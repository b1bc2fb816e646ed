"""Load the resource the caller may see, or answer 404: the one place scope is checked.

A resource of another study or another site is ``NotFound`` (404), never 403, so
that a key cannot probe which ids exist elsewhere.
"""

from __future__ import annotations

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from service.core.errors import NotFound, StudyLocked
from service.domain.auth import Caller
from service.persistence.orm import Assessment, Site, Study, Subject, Wound


def load_study(session: Session, caller: Caller, study_id: str) -> Study:
    study = session.get(Study, study_id)
    if study is None or not caller.sees_study(study.id):
        raise NotFound("study", study_id)
    return study


def load_site(session: Session, caller: Caller, study_id: str, site_code: str) -> Site:
    load_study(session, caller, study_id)
    site = session.scalar(select(Site).where(Site.study_id == study_id, Site.code == site_code))
    if site is None or not caller.sees_site(site.pk):
        raise NotFound("site", f"{study_id}/{site_code}")
    return site


def _visible_subject(caller: Caller, subject: Subject | None) -> bool:
    return (
        subject is not None
        and caller.sees_study(subject.study_id)
        and caller.sees_site(subject.site_pk)
    )


def load_subject(session: Session, caller: Caller, subject_id: str) -> Subject:
    subject = session.get(Subject, subject_id)
    if subject is None or not _visible_subject(caller, subject):
        raise NotFound("subject", subject_id)
    return subject


def load_wound(session: Session, caller: Caller, wound_id: str) -> Wound:
    wound = session.get(Wound, wound_id)
    if wound is None or not _visible_subject(caller, wound.subject):
        raise NotFound("wound", wound_id)
    return wound


def load_assessment(session: Session, caller: Caller, assessment_id: str) -> Assessment:
    assessment = session.get(Assessment, assessment_id)
    if assessment is None or not _visible_subject(caller, assessment.wound.subject):
        raise NotFound("assessment", assessment_id)
    return assessment


def visible_subjects(caller: Caller, study_id: str) -> Select[Subject]:
    """Subjects of a study this caller may see (its site only, for site keys)."""
    stmt = select(Subject).where(Subject.study_id == study_id)
    if caller.site_pk is not None:
        stmt = stmt.where(Subject.site_pk == caller.site_pk)
    return stmt


def visible_studies(caller: Caller) -> Select[Study]:
    stmt = select(Study)
    if caller.study_id is not None:
        stmt = stmt.where(Study.id == caller.study_id)
    return stmt


def study_of(obj: Study | Subject | Wound | Assessment) -> Study:
    if isinstance(obj, Study):
        return obj
    if isinstance(obj, Subject):
        return obj.site.study
    if isinstance(obj, Wound):
        return obj.subject.site.study
    return obj.wound.subject.site.study


def ensure_writable(obj: Study | Subject | Wound | Assessment) -> Study:
    """The study the object belongs to; ``StudyLocked`` (423) when it is locked."""
    study = study_of(obj)
    if study.locked:
        raise StudyLocked(study.id)
    return study


def lock_study_for_write(session: Session, study_id: str) -> None:
    """Inside the transaction that writes, right before its rows are added and
    committed: hold the study row against a lock and refuse (``StudyLocked``, 423) if
    the study is locked *now*.

    ``ensure_writable`` at the start of a long write (an upload's analysis, a
    correction's mask, a re-analysis) reads a lock state that may be stale by the
    commit. This re-reads it under a lock that ``PATCH study {"locked": true}``'s
    UPDATE conflicts with: on PostgreSQL ``SELECT … FOR SHARE`` (it waits for a lock in
    flight and then reads the row as committed; writers do not wait on each other); on
    SQLite ``UPDATE studies SET locked = locked … RETURNING locked``, which takes the
    database's one write lock before reading. So a write either commits before the
    lock's commit or is refused after it, never after it. On a refusal the transaction
    is rolled back here (a photo already stored is an orphan that ``woundscope fsck
    --repair`` removes).
    """
    if session.get_bind().dialect.name == "sqlite":
        locked = session.execute(
            update(Study)
            .where(Study.id == study_id)
            .values(locked=Study.locked)
            .returning(Study.locked),
            execution_options={"synchronize_session": False},
        ).scalar_one_or_none()
    else:
        locked = session.execute(
            select(Study.locked).where(Study.id == study_id).with_for_update(read=True)
        ).scalar_one_or_none()
    if locked is None or locked:
        session.rollback()
        raise NotFound("study", study_id) if locked is None else StudyLocked(study_id)
