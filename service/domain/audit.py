"""The append-only audit log: every write and every export (who, when, what, before/after).

``record`` adds the entry to the caller's transaction, so the change and its audit
entry are committed together or not at all. The database refuses UPDATE and DELETE
on ``audit_log`` (triggers in the first migration), and the entries form a hash chain
(``service.persistence.auditchain``) that ``woundscope audit verify`` and ``fsck`` check.
``list_audit`` reads it back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.core.errors import AlreadyExists, NotFound
from service.domain.auth import Caller
from service.domain.roles import ADMIN
from service.persistence import auditchain
from service.persistence.orm import AuditEntry, Base


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def snapshot(obj: Base, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """The column values of a row, JSON-ready (for before/after)."""
    mapper = inspect(type(obj))
    return {
        col.key: _plain(getattr(obj, col.key))
        for col in mapper.column_attrs
        if col.key not in exclude
    }


def record(
    session: Session,
    caller: Caller,
    action: str,
    resource: str,
    *,
    study_id: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add one audit entry to the session's transaction (committed with the change),
    chained to the entry before it (``auditchain.append``). The change is flushed first
    (a duplicate answers ``already_exists`` here rather than at the commit)."""
    entry = AuditEntry(
        actor=caller.holder,
        key_id=caller.key_id,
        action=action,
        resource=resource,
        study_id=study_id,
        before=before,
        after=after,
    )
    try:
        # The change first, the chain's lock after it: the audit head is the last lock a
        # writing transaction takes, so its order against a row lock (the study's, see
        # ``access.lock_study_for_write``) is the same in every transaction (no deadlock).
        session.flush()
    except IntegrityError:
        session.rollback()
        raise AlreadyExists(f"{resource} already exists") from None
    return auditchain.append(session, entry)


def list_audit(
    session: Session,
    caller: Caller,
    *,
    study_id: str | None,
    limit: int,
    offset: int,
    action: str | None = None,
    resources: Sequence[str] | None = None,
) -> tuple[list[AuditEntry], int]:
    """The audit log, newest first (admin; a study admin sees its study only).
    ``action``: entries whose action starts with it (``event`` or ``event.void``);
    ``resources``: only entries about these (``subject/…``, ``assessment/…``)."""
    caller.require(ADMIN)
    if caller.study_id is not None:
        if study_id not in (None, caller.study_id):
            raise NotFound("study", study_id)
        study_id = caller.study_id
    stmt = select(AuditEntry)
    if study_id is not None:
        stmt = stmt.where(AuditEntry.study_id == study_id)
    if action:
        stmt = stmt.where(AuditEntry.action.startswith(action, autoescape=True))
    if resources is not None:
        stmt = stmt.where(AuditEntry.resource.in_(list(resources)))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit).offset(offset))
    return list(rows), total
