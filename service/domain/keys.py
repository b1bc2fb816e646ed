"""API keys made, listed and revoked by an admin (the API, the ``keys`` command, the
demo), audited."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.core.errors import Forbidden, NotFound
from service.domain import access, audit, auth
from service.domain.auth import Caller
from service.domain.roles import ADMIN
from service.persistence.orm import ApiKey


def issue_key(
    session: Session,
    caller: Caller,
    *,
    role: str,
    holder: str,
    study_id: str | None = None,
    site_code: str | None = None,
) -> tuple[ApiKey, str]:
    """An admin makes a key (the API, the ``keys create`` command, the demo); a study
    admin only within its study, never a server admin. Returns the row and the key
    itself (shown once). Audited as ``key.create``."""
    caller.require(ADMIN)
    if caller.study_id is not None:
        if study_id is None:
            raise Forbidden("this admin key is confined to one study: give 'study'")
        access.load_study(session, caller, study_id)
    row, key = auth.create_key(
        session, role=role, holder=holder, study_id=study_id, site_code=site_code
    )
    audit.record(
        session,
        caller,
        "key.create",
        f"key/{row.id}",
        study_id=study_id,
        after=audit.snapshot(row, exclude=("key_hash",)),
    )
    session.commit()
    return row, key


def _key_scope(caller: Caller) -> Any:
    stmt = select(ApiKey)
    if caller.study_id is not None:
        stmt = stmt.where(ApiKey.study_id == caller.study_id)
    return stmt


def list_keys(session: Session, caller: Caller) -> list[ApiKey]:
    caller.require(ADMIN)
    return list(session.scalars(_key_scope(caller).order_by(ApiKey.id)))


def revoke_key(session: Session, caller: Caller, key: int | str) -> ApiKey:
    """Revoke a key by its id, or by its printed prefix (the ``keys revoke`` command):
    it answers 401 from now on and its dashboard sessions end. A study admin reaches
    its study's keys only. Audited as ``key.revoke``."""
    caller.require(ADMIN)
    numeric = str(key).isdecimal() and len(str(key)) <= 18  # beyond: no such id (not an overflow)
    by = ApiKey.id == int(key) if numeric else ApiKey.prefix == str(key)
    row = session.scalar(_key_scope(caller).where(by))
    if row is None:
        raise NotFound("key", key)
    before = audit.snapshot(row, exclude=("key_hash",))
    auth.revoke_key(session, row)
    audit.record(
        session,
        caller,
        "key.revoke",
        f"key/{row.id}",
        study_id=row.study_id,
        before=before,
        after=audit.snapshot(row, exclude=("key_hash",)),
    )
    session.commit()
    return row
