"""Domain errors with a stable ``code``: the one registry of codes and their statuses.

Every error body is ``{"code": "...", "detail": "..."}``. ``ERROR_CODES`` is the
single registry of every code the API can answer (the README table is generated
from it); a test checks that every raised code is registered. Pure: no web framework
or database here, so the domain can raise these anywhere; ``service.api.handlers``
turns them (and the web stack's own errors) into answers.
"""

from __future__ import annotations

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
    "invalid_scale": (422, "px_per_mm must be a number of pixels per mm, 0.1-1000."),
    "invalid_mask": (
        422,
        "The mask must be a PNG (0/255) the size of the photo, or a polygon of 3+ points "
        "(or a list of such polygons).",
    ),
    "reason_required": (422, "A correction or a void needs a reason."),
    "unsafe_text": (
        422,
        "A text field starts a spreadsheet formula (= + - @) or holds a control, bidi or"
        " invisible character: send printable text that starts with a letter or digit.",
    ),
    "invalid_prompt": (
        422,
        "An outline prompt is a 'box' [x0, y0, x1, y1] inside the photo and/or 'points' "
        "[[x, y, 1|0], …] inside it: the detail names what is wrong.",
    ),
    "too_many_points": (422, "At most 20 points in one outline prompt: draw a box instead."),
    "not_found": (404, "No such resource, or not visible with this key."),
    "method_not_allowed": (405, "This path does not take this HTTP method."),
    "not_comparable": (
        422,
        "Two photos cannot be compared side by side: pick two measured, calibrated photos "
        "of the same wound.",
    ),
    "payload_too_large": (413, "The request body is larger than the limit."),
    "request_timeout": (408, "The request body stopped arriving for 30 s: send it again."),
    # photos (raised by service.core.imaging)
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
    "idempotency_key_reused": (
        409,
        "This Idempotency-Key was already used for the same photo with other fields: send a"
        " new key for a new upload.",
    ),
    "study_locked": (423, "The study is locked: no writes until an admin unlocks it."),
    "already_voided": (409, "The assessment is voided; it cannot be changed."),
    "event_already_voided": (409, "The subject event is already voided."),
    "after_subject_event": (
        409,
        "The photo is dated after the subject's death, withdrawal, loss to follow-up or the "
        "major amputation of that leg (follow-up ended): check the date, or void the event "
        "if it was recorded in error.",
    ),
    # service
    "model_not_installed": (422, "The named model version is not installed on this server."),
    "no_model": (503, "No segmentation model is installed or loaded yet."),
    "not_ready": (
        503,
        "/readyz: the database, the photo store or the model is not ready; the detail says which.",
    ),
    "rate_limited": (429, "Too many requests from this key: retry after the Retry-After seconds."),
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
