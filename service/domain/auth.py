"""API keys and the caller they identify: role, study/site scope, holder.

Keys are 256-bit random strings shown once and stored as their sha256. A key
belongs to a named person, so the audit log's "who" is a person; the name reaches
admins' terminals and the audit log, so control and bidirectional-override
characters are refused in it (a forged line, a cleared screen, reversed text).

Dashboard sessions live here too: sign-in trades a key for a random session id
(the cookie), stored as its sha256 with an expiry; sign-out revokes it, and revoking
the key ends every session made with it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.core.errors import Forbidden, InvalidKey, InvalidRequest, NotFound
from service.core.freetext import check_text, refused_character
from service.domain.roles import ADMIN, ROLES, SITE_ROLES
from service.persistence.orm import ApiKey, DashboardSession, Site, Study, utcnow

KEY_PREFIX = "ws_"
SESSION_TTL = timedelta(hours=8)
"""How long a dashboard sign-in lasts."""
SESSION_COOKIE = "ws_session"
SECURE_SESSION_COOKIE = "__Host-ws_session"


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key's role and scope, and the person holding it."""

    role: str
    holder: str
    study_id: str | None = None
    """None: every study (an admin key made without --study)."""
    site_pk: int | None = None
    """None: every site of the study."""
    site_code: str | None = None
    key_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    @property
    def sees_arm(self) -> bool:
        """Blinding: only admin keys set and see the arm."""
        return self.role == ADMIN

    def require(self, *roles: str) -> None:
        """Raise ``Forbidden`` unless the caller's role is one of ``roles``."""
        if self.role not in roles:
            raise Forbidden(
                f"a {self.role} key may not do this; it needs a key with role {' or '.join(roles)}"
            )

    def sees_study(self, study_id: str) -> bool:
        return self.study_id is None or self.study_id == study_id

    def sees_site(self, site_pk: int) -> bool:
        return self.site_pk is None or self.site_pk == site_pk

    @classmethod
    def cli(cls, holder: str | None = None) -> Caller:
        """The operator at the command line (an admin of everything)."""
        import getpass

        return cls(role=ADMIN, holder=holder or f"cli:{getpass.getuser()}")


def check_name(value: str, field: str = "holder") -> str:
    """``value`` stripped; ``UnsafeText`` (``unsafe_text``) when it holds a character that
    could forge or hide text where it is shown (controls, bidi overrides, zero-width and
    invisible look-alike characters) or starts a spreadsheet formula: the one rule of all
    free text, ``service.core.freetext.check_text``."""
    check_text(value, field)  # every character, before trimming could hide a CR
    return check_text(value.strip(), field)


def printable(value: str) -> str:
    """``value`` safe to print on a terminal (names stored before ``check_name``)."""
    if refused_character(value) is None:
        return value
    return value.encode("unicode_escape").decode("ascii")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def create_key(
    session: Session,
    *,
    role: str,
    holder: str,
    study_id: str | None = None,
    site_code: str | None = None,
) -> tuple[ApiKey, str]:
    """Make a key; returns the row and the key itself (shown once, never stored)."""
    if role not in ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    holder = check_name(holder)
    if not holder:
        raise InvalidRequest("a key belongs to a named person: give --holder 'name'")
    if role != ADMIN and not study_id:
        raise InvalidRequest(f"{role} keys need a study (--study)")
    if role in SITE_ROLES and not site_code:
        raise InvalidRequest(f"{role} keys are confined to one site: give --site")
    if role not in SITE_ROLES and site_code:
        raise InvalidRequest(f"{role} keys cover the whole study: leave out --site")
    site_pk = None
    if study_id is not None and session.get(Study, study_id) is None:
        raise NotFound("study", study_id)
    if site_code is not None:
        site = session.scalar(select(Site).where(Site.study_id == study_id, Site.code == site_code))
        if site is None:
            raise NotFound("site", f"{study_id}/{site_code}")
        site_pk = site.pk
    key = generate_key()
    row = ApiKey(
        key_hash=hash_key(key),
        prefix=key[:10],
        role=role,
        study_id=study_id,
        site_pk=site_pk,
        holder=holder.strip(),
    )
    session.add(row)
    session.flush()
    return row, key


def caller_of(row: ApiKey) -> Caller:
    return Caller(
        role=row.role,
        holder=row.holder,
        study_id=row.study_id,
        site_pk=row.site_pk,
        site_code=row.site.code if row.site is not None else None,
        key_id=row.id,
    )


def authenticate(session: Session, key: str) -> Caller:
    """The caller a key identifies; ``InvalidKey`` when unknown or revoked."""
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key.strip())))
    if row is None or row.revoked_at is not None:
        raise InvalidKey("this API key is unknown or revoked: ask your study admin for a key")
    return caller_of(row)


def revoke_key(session: Session, row: ApiKey) -> None:
    """Revoke the key (kept, with when) and end every session made with it. The domain's
    ``keys.revoke_key`` finds the key in the caller's scope and audits this."""
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    end_sessions_of(session, row)


# --- dashboard sessions -----------------------------------------------------------


def session_cookie_name(scheme: str) -> str:
    """The dashboard's session cookie: ``__Host-`` (Secure, Path=/) over https; over
    plain http, where browsers refuse ``__Host-`` cookies, ``ws_session``."""
    return SECURE_SESSION_COOKIE if scheme == "https" else SESSION_COOKIE


def start_session(session: Session, key: str) -> tuple[Caller, str, DashboardSession]:
    """Sign in with ``key``: (the caller, a new session id for the cookie, its row),
    added to the transaction (``service.domain.signin`` audits and commits). Only the
    id's sha256 is stored; the id is random, never derived from the key."""
    caller = authenticate(session, key)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = DashboardSession(
        token_hash=hash_key(token),
        key_id=caller.key_id,
        created_at=now,
        expires_at=now + SESSION_TTL,
    )
    session.add(row)
    session.flush()
    return caller, token, row


def _live_session(session: Session, token: str) -> DashboardSession | None:
    if not token:
        return None
    row = session.scalar(
        select(DashboardSession).where(DashboardSession.token_hash == hash_key(token))
    )
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    if row.key.revoked_at is not None:
        return None
    return row


def session_caller(session: Session, token: str) -> Caller:
    """The caller of a live dashboard session; ``InvalidKey`` when it is unknown,
    signed out, expired, or its key was revoked."""
    row = _live_session(session, token)
    if row is None:
        raise InvalidKey("the dashboard session ended (signed out, expired or revoked): sign in")
    return caller_of(row.key)


def end_session(session: Session, token: str) -> DashboardSession | None:
    """Sign out: the session id stops working on every replica at once (once the
    caller commits). Returns the session ended, None when it had already ended."""
    row = _live_session(session, token)
    if row is not None:
        row.revoked_at = utcnow()
    return row


def end_sessions_of(session: Session, key: ApiKey) -> int:
    """Revoke every live session of ``key`` (when the key is revoked)."""
    now = utcnow()
    rows = session.scalars(
        select(DashboardSession).where(
            DashboardSession.key_id == key.id, DashboardSession.revoked_at.is_(None)
        )
    ).all()
    for row in rows:
        row.revoked_at = now
    return len(rows)
