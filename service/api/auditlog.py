"""What the audit page shows (admin, as ``GET /v1/audit``): the entries, filtered and
paged, each with what it is about in words — the subject, the wound and the photo's
day — instead of an opaque resource id.

The entries come from ``audit.list_audit`` (its access rule: admin keys; a study admin
sees its study); this module only names their resources.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from service.api import views
from service.core.errors import NotFound
from service.domain import access, audit, subjects
from service.domain.auth import Caller
from service.persistence.orm import Assessment, Subject, SubjectEvent, Wound

AUDIT_PAGE_SIZE = 50


def _audit_resources(
    session: Session, caller: Caller, code_or_id: str, study: str | None
) -> list[str]:
    """The audit resources about one subject (by id, or by code within the study):
    the subject, its wounds, their assessments and its events."""
    row = session.get(Subject, code_or_id)
    if row is None and study:
        row = session.scalar(
            access.visible_subjects(caller, study).where(Subject.code == code_or_id)
        )
    if row is None or not caller.sees_study(row.study_id):
        raise NotFound("subject", code_or_id)
    return [
        f"subject/{row.id}",
        *(f"wound/{w.id}" for w in row.wounds),
        *(f"assessment/{a.id}" for w in row.wounds for a in w.assessments),
        *(f"event/{e.id}" for e in row.events),
    ]


def _photo_about(row: Assessment) -> dict[str, Any]:
    """A photo's subject, wound, capture date and day from the subject's day 0."""
    wound = row.wound
    origin = subjects.day_zero(wound.subject)
    captured = row.captured_at.date()
    return {
        "subject": wound.subject.code,
        "wound": wound.label,
        "date": captured.isoformat(),
        "day": None if origin is None else (captured - origin).days,
        "link": f"/dashboard/wounds/{wound.id}#{row.id}",
    }


def resource_about(session: Session, resource: str) -> dict[str, Any] | None:
    """What an audit entry's resource (``kind/id``) is about, in the trial's words:
    ``subject`` code, ``wound`` label, photo ``date`` and ``day``, and a ``link`` to its
    page; None for a resource that is not a subject's (a study, a key, an export)."""
    kind, _, ident = resource.partition("/")
    if kind == "assessment":
        photo = session.get(Assessment, ident)
        return None if photo is None else _photo_about(photo)
    if kind == "wound":
        wound = session.get(Wound, ident)
        if wound is None:
            return None
        return {
            "subject": wound.subject.code,
            "wound": wound.label,
            "link": f"/dashboard/wounds/{wound.id}",
        }
    subject: Subject | None = None
    if kind == "subject":
        subject = session.get(Subject, ident)
    elif kind == "event" and ident.isdigit():
        event = session.get(SubjectEvent, int(ident))
        subject = None if event is None else session.get(Subject, event.subject_id)
    if subject is None:
        return None
    return {"subject": subject.code, "link": f"/dashboard/subjects/{subject.id}"}


def audit_context(
    session: Session, caller: Caller, *, study: str, action: str, subject: str, page: int
) -> dict[str, Any]:
    """The audit page: entries (``audit.list_audit``: admin keys; a study admin sees its
    study) filtered by study, action prefix and subject, ``AUDIT_PAGE_SIZE`` a page,
    newest first, each with what it is about (``resource_about``), and the links to the
    pages either side."""
    resources = (
        _audit_resources(session, caller, subject.strip(), study or caller.study_id)
        if subject.strip()
        else None
    )
    rows, total = audit.list_audit(
        session,
        caller,
        study_id=study or None,
        action=action.strip() or None,
        resources=resources,
        limit=AUDIT_PAGE_SIZE,
        offset=page * AUDIT_PAGE_SIZE,
    )
    query = {k: v for k, v in (("study", study), ("action", action), ("subject", subject)) if v}
    return {
        "entries": [
            {"entry": views.audit_public(e), "about": resource_about(session, e.resource)}
            for e in rows
        ],
        "total": total,
        "page": page,
        "pages": max(1, -(-total // AUDIT_PAGE_SIZE)),
        "filters": {"study": study, "action": action, "subject": subject},
        "prev_query": urlencode({**query, "page": page - 1}) if page > 0 else None,
        "next_query": urlencode({**query, "page": page + 1})
        if (page + 1) * AUDIT_PAGE_SIZE < total
        else None,
    }
