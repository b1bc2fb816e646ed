"""Browser sessions over HTTP: the dashboard's and the capture page's sign-in cookie,
their CSRF tokens, and the security headers of their pages.

Sign-in: the person pastes their API key once; the server answers a random session
id in an HttpOnly, SameSite=Strict cookie (the key never travels again). The
database holds the id's sha256, its expiry and the key it came from
(``service.domain.auth``), so sign-out, expiry and revoking the key end it on every
replica at once. The cookie is ``__Host-ws_session`` (Secure, Path=/) when served over
https and ``ws_session`` (Path=/dashboard) over plain http, where browsers refuse
``__Host-`` cookies (local runs, the tests). Forms carry a CSRF token bound to the
session (an HMAC of the session id), the sign-in form a double-submit token.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import HTTPException, Request, Response
from sqlalchemy.orm import Session

from service.core.errors import DomainError, Forbidden
from service.domain import auth
from service.domain.auth import Caller

session_cookie_name = auth.session_cookie_name
LOGIN_CSRF_COOKIE = "ws_login_csrf"
SESSION_MAX_AGE_S = int(auth.SESSION_TTL.total_seconds())
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
"""Every dashboard page's headers: local scripts only, never framed, never cached."""


def csrf_token(session_id: str) -> str:
    """The form token of a signed-in browser: an HMAC of its session id, so a token
    works only with the session it was issued to."""
    return hmac.new(session_id.encode(), b"woundscope-dashboard-csrf", hashlib.sha256).hexdigest()


def check_csrf(session_id: str, token: str) -> None:
    """``Forbidden`` unless ``token`` is this session's form token."""
    if not hmac.compare_digest(csrf_token(session_id), token or ""):
        raise Forbidden("the form expired or did not come from this dashboard: reload the page")


def cookie_path(request: Request) -> str:
    """``/`` for the ``__Host-`` cookie over https; ``/dashboard`` over plain http."""
    return "/" if request.url.scheme == "https" else "/dashboard"


def set_session_cookie(request: Request, response: Response, session_id: str) -> None:
    response.set_cookie(
        session_cookie_name(request.url.scheme),
        session_id,
        max_age=SESSION_MAX_AGE_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=cookie_path(request),
    )


def delete_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        session_cookie_name(request.url.scheme),
        path=cookie_path(request),
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def signed_in(request: Request, session: Session) -> tuple[Caller, str]:
    """(The caller, the session id) of the session cookie, or a redirect to sign-in."""
    session_id = request.cookies.get(session_cookie_name(request.url.scheme), "")
    if session_id:
        try:
            return auth.session_caller(session, session_id), session_id
        except DomainError:
            pass
    raise HTTPException(status_code=303, headers={"Location": "/dashboard/login"})
