"""The one set of handlers that answers every error as ``{"code", "detail"}``.

Domain errors (``service.core.errors``; unusable photos, ``imaging.ImageError``, are one), request
validation, the web stack's HTTP errors and an unavailable database or photo store
each map to a registered code and its status; anything else is a logged 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import InterfaceError as DBAPIInterfaceError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.core.errors import DomainError, error_body

log = logging.getLogger("woundscope.errors")


class JSONAnswer(JSONResponse):
    """Every JSON answer of the API (the app's default response class): compact JSON
    ending with a newline, so answers printed one after another (curl in a shell)
    do not run together."""

    def render(self, content: Any) -> bytes:
        return super().render(content) + b"\n"


def _json(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONAnswer(error_body(code, detail), status_code=status, headers=headers)


def _validation_detail(exc: RequestValidationError) -> tuple[str, str]:
    parts = []
    code = "invalid_request"
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
        if loc.endswith("captured_at"):
            code = "invalid_date"
        elif err.get("type") == "unsafe_text":  # service.core.freetext's rule
            code = "unsafe_text"
    return code, "; ".join(parts) or "invalid request"


def install_handlers(app: FastAPI) -> None:
    """Map domain, image, validation and HTTP errors to ``{"code", "detail"}`` bodies."""

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return _json(exc.status, exc.code, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        code, detail = _validation_detail(exc)
        return _json(422, code, detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code < 400:  # a redirect raised as an exception (e.g. to a login page)
            return Response(status_code=exc.status_code, headers=getattr(exc, "headers", None))
        code = {
            404: "not_found",
            405: "method_not_allowed",
            408: "request_timeout",
            413: "payload_too_large",
        }.get(exc.status_code, "invalid_request" if exc.status_code < 500 else "internal_error")
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        headers: Any = getattr(exc, "headers", None)
        return _json(exc.status_code, code, detail, headers)

    @app.exception_handler(SQLAlchemyTimeout)
    @app.exception_handler(OperationalError)
    @app.exception_handler(DBAPIInterfaceError)
    async def _database(_: Request, exc: Exception) -> JSONResponse:
        # Pool exhausted, database restarting or unreachable: the transaction did not
        # commit, so the client may safely retry (with the same Idempotency-Key).
        log.error("database unavailable: %s", type(exc).__name__)
        return _json(
            503,
            "database_unavailable",
            "the database is busy or unreachable; nothing was saved: retry shortly",
            {"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error: %s", type(exc).__name__)
        return _json(500, "internal_error", "an unexpected error occurred; it was logged")


def install_storage_handler(app: FastAPI) -> None:
    from service.persistence.storage import StorageError

    @app.exception_handler(StorageError)
    async def _storage(_: Request, exc: StorageError) -> JSONResponse:
        log.error("photo store error: %s", exc)
        return _json(
            503, "storage_unavailable", f"the photo store failed: {exc}", {"Retry-After": "5"}
        )
