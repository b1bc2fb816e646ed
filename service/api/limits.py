"""Request limits enforced on the byte stream, and the headers every answer carries.

Why an ASGI middleware and not a route dependency: FastAPI parses the whole body
(spooling multipart files to disk) *before* any dependency runs, so a check in a
route sees a 300 MB chunked upload only after it was written to disk. Here, before
one byte of the body is read:

- a request with a body to ``/v1/...`` must carry a valid API key (401 otherwise,
  ``missing_key`` / ``invalid_key``); a dashboard form post must carry a live
  dashboard session (otherwise the sign-in page); anything else with a body (the
  sign-in form) gets a small limit;
- a JSON body has a limit of its own (``JSON_BODY_BYTES``, 1 MB), far below a photo's;
- a declared ``Content-Length`` over the limit answers 413 at once, and a body sent
  without one (``Transfer-Encoding: chunked``) is counted as it streams and cut off
  with 413 ``payload_too_large`` the moment it passes the limit.

Every answer gets ``X-Content-Type-Options: nosniff``; every 401 gets
``WWW-Authenticate: Bearer``.

``KeyRates`` (below) are the per-key token buckets of uploads (in megapixels), exports
and overlays.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from fastapi import HTTPException, Request

from service.api.deps import CallerDep
from service.core.imaging import WORKING_MAX_PIXELS
from service.domain.auth import Caller, session_cookie_name

if TYPE_CHECKING:
    from service.persistence.db import Database

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ANONYMOUS_BODY_BYTES = 64 * 1024
"""The most an unauthenticated request may send (the dashboard's sign-in form)."""
MULTIPART_OVERHEAD_BYTES = 1024 * 1024
"""Room for the form fields and part headers beside the photo itself."""
WWW_AUTHENTICATE = b'Bearer realm="woundscope"'
ANSWER_SECURITY_HEADERS = (
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)
"""The headers of a refusal sent here (401, 413, 503) before any route ran."""


JSON_BODY_BYTES = 1024 * 1024
"""The most a JSON body may hold: the largest request (a study's settings, an outline's
points) is a few kB; the photo limit is for photos (a 37 MB JSON body cost 760 MB)."""


def _is_json(scope: Scope) -> bool:
    """A JSON body (``application/json``, ``application/…+json``), by its content type."""
    kind = (_header(scope, b"content-type") or b"").split(b";")[0].strip().lower()
    return kind == b"application/json" or (
        kind.startswith(b"application/") and kind.endswith(b"+json")
    )


def body_limit_bytes(max_upload_bytes: int) -> int:
    """The largest request body an authenticated caller may send."""
    return max_upload_bytes + MULTIPART_OVERHEAD_BYTES


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when the stream passes the limit; FastAPI re-raises
    HTTPExceptions met while parsing a body, and the handlers answer 413."""

    def __init__(self, limit: int):
        super().__init__(status_code=413, detail=too_large_detail(limit))


def too_large_detail(limit: int) -> str:
    if limit == JSON_BODY_BYTES:
        return f"the request body is larger than {limit / 1e6:.1f} MB, the limit of a JSON body"
    return (
        f"the request body is larger than {limit / 1e6:.1f} MB: send a smaller photo"
        " (the limit is WOUNDSCOPE_MAX_UPLOAD_BYTES)"
    )


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value)
    return None


def _has_body(scope: Scope) -> bool:
    length = _header(scope, b"content-length")
    if length is not None:
        return length.strip() not in (b"", b"0")
    return _header(scope, b"transfer-encoding") is not None


def _bearer(scope: Scope) -> str:
    value = (_header(scope, b"authorization") or b"").decode("latin-1").strip()
    scheme, _, key = value.partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


def _cookie(scope: Scope, names: tuple[str, ...]) -> str:
    from http.cookies import SimpleCookie

    raw = (_header(scope, b"cookie") or b"").decode("latin-1")
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # noqa: BLE001 - a malformed cookie header is no session
        return ""
    for name in names:
        if name in jar:
            return jar[name].value
    return ""


async def _json(
    send: Send,
    status: int,
    code: str,
    detail: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    body = json.dumps({"code": code, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *ANSWER_SECURITY_HEADERS,
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class LimitsMiddleware:
    """Authenticate before the body, count the body as it streams, add the headers."""

    def __init__(self, app: ASGIApp, max_upload_bytes: int):
        self.app = app
        self.limit = body_limit_bytes(max_upload_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send_with_headers = _SendWithHeaders(send)
        if not _has_body(scope):
            await self.app(scope, receive, send_with_headers)
            return
        limit = await self._admit(scope, send_with_headers)
        if limit is None:
            return  # already answered (401, sign-in page, 413)
        if _is_json(scope):
            limit = min(limit, JSON_BODY_BYTES)
        length = _header(scope, b"content-length")
        if length is not None and length.strip().isdigit() and int(length) > limit:
            await _json(send_with_headers, 413, "payload_too_large", too_large_detail(limit))
            return
        try:
            await self.app(scope, _counted(receive, limit), send_with_headers)
        except BodyTooLarge:
            # Read outside a route (a middleware or a handler reading the stream itself).
            if send_with_headers.started:
                raise
            await _json(send_with_headers, 413, "payload_too_large", too_large_detail(limit))
        except BodyTimeout:
            if send_with_headers.started:
                raise
            await _json(send_with_headers, 408, "request_timeout", TIMEOUT_DETAIL)

    async def _admit(self, scope: Scope, send: Send) -> int | None:
        """The body limit for this caller, or None once a refusal was sent."""
        path: str = scope.get("path", "")
        app = scope.get("app")
        db = getattr(getattr(app, "state", None), "db", None)
        if path.startswith("/v1/"):
            return await self._admit_api_key(scope, send, db)
        if path.startswith("/dashboard/") and path != "/dashboard/login":
            return await self._admit_dashboard_session(scope, send, db)
        return ANONYMOUS_BODY_BYTES

    async def _admit_api_key(self, scope: Scope, send: Send, db: Database | None) -> int | None:
        """``/v1/``: a valid API key (401 ``missing_key`` / ``invalid_key`` otherwise)."""
        key = _bearer(scope)
        if not key:
            await _json(
                send,
                401,
                "missing_key",
                "no API key: send the header 'Authorization: Bearer <your key>'",
            )
            return None
        if db is None:
            return self.limit  # not started yet: the route answers not_ready
        problem = await anyio.to_thread.run_sync(_key_problem, db, key)
        if problem is _UNAVAILABLE:
            await _unavailable(send)
            return None
        if problem is not None:
            await _json(send, 401, "invalid_key", problem)
            return None
        return self.limit

    async def _admit_dashboard_session(
        self, scope: Scope, send: Send, db: Database | None
    ) -> int | None:
        """A dashboard form post: a live session, else a redirect to the sign-in page."""
        token = _cookie(scope, (session_cookie_name(scope.get("scheme", "http")),))
        ok: bool | None = False
        if token and db is not None:
            ok = await anyio.to_thread.run_sync(_session_ok, db, token)
        if ok is None:
            await _unavailable(send)
            return None
        if not ok:
            await send(
                {
                    "type": "http.response.start",
                    "status": 303,
                    "headers": [
                        (b"location", b"/dashboard/login"),
                        (b"content-length", b"0"),
                        (b"connection", b"close"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return None
        return self.limit


class _SendWithHeaders:
    """``send`` adding the headers every answer carries (``nosniff``; ``WWW-Authenticate``
    on a 401), and noting whether the answer has started (then a late 413 cannot be sent)."""

    def __init__(self, send: Send):
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            headers = list(message.get("headers") or [])
            names = {k.lower() for k, _ in headers}
            if b"x-content-type-options" not in names:
                headers.append((b"x-content-type-options", b"nosniff"))
            if message["status"] == 401 and b"www-authenticate" not in names:
                headers.append((b"www-authenticate", WWW_AUTHENTICATE))
            message = {**message, "headers": headers}
        await self.send(message)


BODY_IDLE_TIMEOUT_S = 30.0
"""The longest a request body may go without a byte (a slow-body attack holds a
connection and a worker's spool file open for as long as the client likes)."""


class BodyTimeout(HTTPException):
    """Raised from ``receive`` when the body stalls; answered 408 ``request_timeout``."""

    def __init__(self) -> None:
        super().__init__(status_code=408, detail=TIMEOUT_DETAIL)


TIMEOUT_DETAIL = f"the request body stopped arriving for {BODY_IDLE_TIMEOUT_S:.0f} s: send it again"


def _counted(receive: Receive, limit: int) -> Receive:
    """``receive`` counting the body as it streams: past ``limit`` it raises
    ``BodyTooLarge`` (a chunked body declares no length to check up front), and a body
    that stalls for ``BODY_IDLE_TIMEOUT_S`` raises ``BodyTimeout``."""
    received = 0

    async def counted_receive() -> Message:
        nonlocal received
        try:
            with anyio.fail_after(BODY_IDLE_TIMEOUT_S):
                message = await receive()
        except TimeoutError:
            raise BodyTimeout() from None
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
        return message

    return counted_receive


_UNAVAILABLE = "database unavailable"


async def _unavailable(send: Send) -> None:
    await _json(
        send,
        503,
        "database_unavailable",
        "the database is busy or unreachable; nothing was saved: retry shortly",
        [(b"retry-after", b"5")],
    )


def _key_problem(db: Database, key: str) -> str | None:
    """None when ``key`` is valid, else why not (``_UNAVAILABLE``: cannot tell now)."""
    from sqlalchemy.exc import SQLAlchemyError

    from service.core.errors import DomainError
    from service.domain.auth import authenticate

    try:
        with db.sessions() as session:
            authenticate(session, key)
    except DomainError as exc:
        return exc.detail
    except SQLAlchemyError:
        return _UNAVAILABLE
    return None


def _session_ok(db: Database, token: str) -> bool | None:
    """Whether ``token`` is a live dashboard session (None: cannot tell now)."""
    from sqlalchemy.exc import SQLAlchemyError

    from service.core.errors import DomainError
    from service.domain.auth import session_caller

    try:
        with db.sessions() as session:
            session_caller(session, token)
    except DomainError:
        return False
    except SQLAlchemyError:
        return None
    return True


# --- per-key rates ----------------------------------------------------------------

UPLOAD_MEGAPIXELS_PER_S = 8.0
"""A key's sustained upload rate in megapixels a second (a 12 MP photo every 1.5 s)."""
UPLOAD_MEGAPIXELS_BURST = 240
"""The megapixels a key may upload at once (twenty 12 MP photos of a visit)."""
LARGE_PHOTO_MEGAPIXELS = WORKING_MAX_PIXELS / 1e6
"""Uploads above the working resolution (beyond a phone's 12-24 MP: decoded reduced)
are measured one at a time (``Runtime.large_photos``): however many keys send them,
they hold at most one of the worker pool's threads, and a phone-sized photo never
queues behind several of them."""
EXPORTS_PER_S, EXPORTS_BURST = 0.5, 60
OVERLAYS_PER_S, OVERLAYS_BURST = 5.0, 60


class KeyRates:
    """Token buckets per key (``precheck.RateLimiter``, as ``/v1/precheck`` has): photo
    megapixels uploaded, exports, overlays. One key cannot take the CPU from the other
    sites' keys: past its rate it answers 429 ``rate_limited`` with ``Retry-After``.
    Per process: behind a load balancer each replica counts its own share."""

    def __init__(self) -> None:
        from service.core.precheck import RateLimiter

        self.uploads = RateLimiter(
            rate_per_s=UPLOAD_MEGAPIXELS_PER_S,
            burst=UPLOAD_MEGAPIXELS_BURST,
            what="photo megapixels",
        )
        self.exports = RateLimiter(rate_per_s=EXPORTS_PER_S, burst=EXPORTS_BURST, what="exports")
        self.overlays = RateLimiter(
            rate_per_s=OVERLAYS_PER_S, burst=OVERLAYS_BURST, what="overlays"
        )


def key_rates_of(app: Any) -> KeyRates:
    """The app's ``KeyRates`` (made on first use)."""
    rates: KeyRates | None = getattr(app.state, "key_rates", None)
    if rates is None:
        rates = app.state.key_rates = KeyRates()
    return rates


def key_rates(request: Request) -> KeyRates:
    return key_rates_of(request.app)


def rate_key(caller: Caller) -> object:
    """Whose bucket: the key (a dashboard session counts as its key)."""
    return caller.key_id if caller.key_id is not None else caller.holder


def upload_megapixels(data: bytes, max_pixels: int) -> float:
    """What an upload costs: its megapixels as sent (read from the header), at least 1.
    A header over ``max_pixels`` costs 1: it is refused from the header, undecoded."""
    from service.core.imaging import sent_size

    size = sent_size(data, oriented=False)
    if size is None or size[0] * size[1] > max_pixels:
        return 1.0
    return max(1.0, size[0] * size[1] / 1e6)


def check_export_rate(request: Request, caller: CallerDep) -> None:
    """A dependency of the export routes: ``rate_limited`` past the key's export rate."""
    key_rates(request).exports.take(rate_key(caller))


def check_overlay_rate(request: Request, caller: Caller) -> None:
    key_rates(request).overlays.take(rate_key(caller))
