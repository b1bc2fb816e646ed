"""Domain errors with a stable ``code``, and the one set of handlers that answers them.

Every error body is ``{"code": "...", "detail": "..."}``. ``ERROR_CODES`` is the
single registry of every code the API can answer (the README table is generated
from it); a test checks that every raised code is registered.
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

from service.imaging import ImageError

log = logging.getLogger("woundscope.errors")

# code -> (HTTP status, what it means and what the caller can do)
ERROR_CODES: dict[str, tuple[int, str]] = {
    # requests
    "invalid_request": (422, "A field is missing or malformed; the detail names it."),
    "invalid_date": (422, "captured_at is not an ISO date (2026-01-05) or datetime."),
    "invalid_target_point": (422, "target_point is not 'x,y' inside the photo."),
    "invalid_ruler": (
        422,
        "ruler must be 'x1,y1,x2,y2,mm': two points in the photo and their distance in mm (> 0).",
    ),
    "invalid_scale": (422, "px_per_mm must be a positive number."),
    "invalid_mask": (
        422,
        "The mask must be a PNG (0/255) the size of the photo, or a polygon of 3+ points.",
    ),
    "reason_required": (422, "A correction or a void needs a reason."),
    "not_found": (404, "No such resource, or not visible with this key."),
    "method_not_allowed": (405, "This path does not take this HTTP method."),
    "payload_too_large": (413, "The request body is larger than the limit."),
    # photos (raised by service.imaging)
    "empty_file": (422, "The photo file is empty: send the photo."),
    "photo_too_large": (413, "The photo file is larger than the byte limit."),
    "too_many_pixels": (
        413,
        "The photo has more pixels than the limit (possible decompression bomb).",
    ),
    "unsupported_format": (415, "Not a supported photo: send JPEG, PNG, WebP or HEIC."),
    "animated_image": (415, "An animated image: send one photo."),
    "corrupt_image": (422, "The photo is damaged or truncated and cannot be decoded."),
    "unreadable_file": (422, "The file cannot be read."),
    "mask_size_mismatch": (422, "The mask is not the same size as the photo."),
    # auth
    "missing_key": (401, "No API key: send 'Authorization: Bearer <key>'."),
    "invalid_key": (401, "The API key is unknown or revoked."),
    "forbidden": (403, "This key's role may not do this."),
    # state
    "already_exists": (409, "A resource with this id or code already exists."),
    "idempotency_conflict": (
        409,
        "This Idempotency-Key was already used for a different photo of this wound.",
    ),
    "study_locked": (423, "The study is locked: no writes until an admin unlocks it."),
    "already_voided": (409, "The assessment is voided; it cannot be changed."),
    "event_already_voided": (409, "The subject event is already voided."),
    "after_subject_event": (
        409,
        "The photo is dated after the subject's death or the major amputation of that leg: "
        "check the date, or void the event if it was recorded in error.",
    ),
    # service
    "model_not_installed": (422, "The named model version is not installed on this server."),
    "no_model": (503, "No segmentation model is installed or loaded yet."),
    "not_ready": (
        503,
        "/readyz: the database, the photo store or the model is not ready; the detail says which.",
    ),
    "busy": (503, "All workers are busy: retry after the Retry-After seconds."),
    "storage_unavailable": (503, "The photo store cannot be reached; retry later."),
    "database_unavailable": (
        503,
        "The database is busy or cannot be reached; nothing was saved: retry after Retry-After.",
    ),
    "database_behind": (
        503,
        "The database schema is older than the code: run `woundscope db upgrade`.",
    ),
    "internal_error": (500, "An unexpected error; it was logged. Retry, or report it."),
}


class DomainError(Exception):
    """An error with a stable code; the status comes from ``ERROR_CODES``."""

    code = "internal_error"

    def __init__(
        self, detail: str, *, code: str | None = None, headers: dict[str, str] | None = None
    ):
        super().__init__(detail)
        if code is not None:
            self.code = code
        if self.code not in ERROR_CODES:
            raise ValueError(f"unregistered error code {self.code!r}")
        self.detail = detail
        self.headers = headers or {}

    @property
    def status(self) -> int:
        return ERROR_CODES[self.code][0]


class InvalidRequest(DomainError):
    code = "invalid_request"


class NotFound(DomainError):
    code = "not_found"

    def __init__(self, kind: str, ident: object):
        super().__init__(f"{kind} {ident!s} not found (or not visible with this key)")


class MissingKey(DomainError):
    code = "missing_key"


class InvalidKey(DomainError):
    code = "invalid_key"


class Forbidden(DomainError):
    code = "forbidden"


class AlreadyExists(DomainError):
    code = "already_exists"


class StudyLocked(DomainError):
    code = "study_locked"

    def __init__(self, study_id: str):
        super().__init__(f"study {study_id} is locked; an admin can unlock it")


class Busy(DomainError):
    code = "busy"

    def __init__(self, retry_after_s: int):
        super().__init__(
            f"all workers are busy; retry in {retry_after_s} s",
            headers={"Retry-After": str(retry_after_s)},
        )


class NoModel(DomainError):
    code = "no_model"


class DatabaseBehind(DomainError):
    code = "database_behind"


def error_body(code: str, detail: str) -> dict[str, str]:
    return {"code": code, "detail": detail}


def _json(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, detail), status_code=status, headers=headers)


def _validation_detail(exc: RequestValidationError) -> tuple[str, str]:
    parts = []
    code = "invalid_request"
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
        if loc.endswith("captured_at"):
            code = "invalid_date"
    return code, "; ".join(parts) or "invalid request"


def install_handlers(app: FastAPI) -> None:
    """Map domain, image, validation and HTTP errors to ``{"code", "detail"}`` bodies."""

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return _json(exc.status, exc.code, exc.detail, exc.headers)

    @app.exception_handler(ImageError)
    async def _image(_: Request, exc: ImageError) -> JSONResponse:
        code = exc.code if exc.code in ERROR_CODES else "corrupt_image"
        return _json(exc.status, code, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        code, detail = _validation_detail(exc)
        return _json(422, code, detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code < 400:  # a redirect raised as an exception (e.g. to a login page)
            return Response(status_code=exc.status_code, headers=getattr(exc, "headers", None))
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "invalid_request" if exc.status_code < 500 else "internal_error"
        )
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
    from service.storage import StorageError

    @app.exception_handler(StorageError)
    async def _storage(_: Request, exc: StorageError) -> JSONResponse:
        log.error("photo store error: %s", exc)
        return _json(
            503, "storage_unavailable", f"the photo store failed: {exc}", {"Retry-After": "5"}
        )


ERROR_BODY_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["code", "detail"],
    "properties": {
        "code": {"type": "string", "description": "stable snake_case code (see the README)"},
        "detail": {"type": "string", "description": "what went wrong and what to do"},
    },
}


def document_error_body(app: FastAPI) -> None:
    """Make the OpenAPI schema tell the truth about 422s: our ``{code, detail}`` body,
    not FastAPI's default list of validation errors."""
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = default_openapi()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["HTTPValidationError"] = ERROR_BODY_SCHEMA
        components.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
