"""Signing in to the dashboard (and the capture page, which signs in through it), and
the API's bearer keys: audited, and throttled per client.

Every sign-in, sign-out and refused sign-in is an audit entry (``session.start``,
``session.end``, ``session.refused``) naming the person (or, for a refusal, the
client's address and why), never the key. A client whose sign-ins were refused
``MAX_REFUSALS`` times within ``REFUSAL_WINDOW`` is refused at once (``rate_limited``,
429 with ``Retry-After``) until the oldest of them leaves the window, and the moment it
crosses the line is an entry of its own (``session.throttled``): key guessing shows in
the log. The count is read from the audit log itself, so every replica sees the same.

An API request with an unknown or revoked bearer key is the same kind of guess
(``key.refused``, counted apart from the sign-ins), and the ``MAX_REFUSALS``-th within
the window is followed by ``key.guessing``; past it a wrong key is still answered 401
but no longer written (a bounded write rate on a path without a key). The API does not
answer 429 to a guesser: a key has 256 random bits, so slowing guesses buys nothing the
log does not, and a 429 would also stop a site behind the same proxy address or a
script looping on a revoked key from hearing why (``invalid_key``).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.core.errors import DomainError, InvalidKey
from service.domain import audit, auth
from service.domain.auth import Caller
from service.persistence.orm import AuditEntry, utcnow

MAX_REFUSALS = 10
"""Refused sign-ins a client may have within ``REFUSAL_WINDOW``."""
REFUSAL_WINDOW = timedelta(minutes=10)
UNKNOWN = Caller(role="none", holder="(unknown: sign-in refused)")
"""The actor of a refused sign-in: nobody is known, and the key is never recorded."""


def _resource(client: str) -> str:
    return f"client/{client[:180]}"


def _recent_refusals(
    session: Session, client: str, action: str = "session.refused"
) -> tuple[int, datetime | None]:
    """How many attempts of ``client`` (sign-ins, or API keys: ``action``) were refused
    within the window, and the oldest."""
    since = utcnow() - REFUSAL_WINDOW
    count, oldest = session.execute(
        select(func.count(), func.min(AuditEntry.at)).where(
            AuditEntry.action == action,
            AuditEntry.resource == _resource(client),
            AuditEntry.at > since,
        )
    ).one()
    return int(count or 0), oldest


def _refuse_if_throttled(session: Session, client: str) -> None:
    count, oldest = _recent_refusals(session, client)
    if count < MAX_REFUSALS or oldest is None:
        return
    wait_s = max(1, math.ceil((oldest + REFUSAL_WINDOW - utcnow()).total_seconds()))
    raise DomainError(
        f"{count} sign-ins from this address were refused in the last"
        f" {int(REFUSAL_WINDOW.total_seconds() // 60)} minutes: wait {wait_s} s, then sign"
        " in with your own key (ask your study admin for one)",
        code="rate_limited",
        headers={"Retry-After": str(wait_s)},
    )


def _record_refusal(
    session: Session,
    client: str,
    why: str,
    action: str = "session.refused",
    crossing: str = "session.throttled",
) -> None:
    """A refused sign-in or API key (committed), and ``crossing`` when it is the one
    that reaches ``MAX_REFUSALS``."""
    resource = _resource(client)
    audit.record(session, UNKNOWN, action, resource, after={"reason": why})
    session.flush()
    if _recent_refusals(session, client, action)[0] == MAX_REFUSALS:
        audit.record(
            session,
            UNKNOWN,
            crossing,
            resource,
            after={"refusals": MAX_REFUSALS, "window_s": REFUSAL_WINDOW.total_seconds()},
        )
    session.commit()


def sign_in(session: Session, key: str, client: str) -> tuple[Caller, str]:
    """Trade ``key`` for a dashboard session id (``auth.start_session``), audited;
    ``InvalidKey`` (audited) or ``rate_limited`` otherwise."""
    _refuse_if_throttled(session, client)
    try:
        caller, token, row = auth.start_session(session, key)
    except InvalidKey as exc:
        session.rollback()
        _record_refusal(session, client, exc.detail)
        raise
    audit.record(
        session,
        caller,
        "session.start",
        f"session/{row.id}",
        study_id=caller.study_id,
        after={"client": client, "role": caller.role, "expires_at": row.expires_at.isoformat()},
    )
    session.commit()
    return caller, token


def sign_out(session: Session, token: str, client: str) -> None:
    """End the session of ``token`` (``auth.end_session``), audited."""
    row = auth.end_session(session, token)
    if row is not None:
        caller = auth.caller_of(row.key)
        audit.record(
            session,
            caller,
            "session.end",
            f"session/{row.id}",
            study_id=caller.study_id,
            after={"client": client},
        )
    session.commit()


def api_caller(session: Session, key: str, client: str) -> Caller:
    """The caller of an API request's bearer ``key``; ``InvalidKey`` for a wrong one,
    audited (``key.refused``: the client's address, never the key) up to
    ``MAX_REFUSALS`` within the window, the last of them followed by ``key.guessing``;
    beyond that, refused without a write."""
    try:
        return auth.authenticate(session, key)
    except InvalidKey as exc:
        session.rollback()
        if _recent_refusals(session, client, "key.refused")[0] < MAX_REFUSALS:
            _record_refusal(session, client, exc.detail, "key.refused", "key.guessing")
        raise
