"""The photo upload over HTTP: its form fields parsed into the domain's ``UploadForm``,
the photo read up to the limit, the upload done, and the answer's headers.

The API's ``POST /v1/wounds/{id}/assessments`` and the capture page's session twin
both go through ``upload_photo``, so idempotency, metrics and error codes are one.
"""

from __future__ import annotations

from contextlib import nullcontext

from fastapi import Request, Response, UploadFile
from sqlalchemy.orm import Session

from service.api import limits, views
from service.core import pipeline
from service.core.errors import DomainError
from service.core.freetext import check_optional
from service.domain import uploads
from service.domain.auth import Caller
from service.domain.schemas import AssessmentPublic
from service.persistence.orm import Wound
from service.runtime.context import Runtime


def read_limited(upload: UploadFile, limit: int) -> bytes:
    """At most ``limit + 1`` bytes (enough for decode_photo to say 'too large')."""
    data: bytes = upload.file.read(limit + 1)
    return data


def ruler_text(ruler: str | None, ruler_mm: str | None) -> str | None:
    """The ruler as ``Ruler.parse`` reads it: ``ruler`` alone (five numbers), or its
    four coordinates with the distance sent apart in ``ruler_mm``."""
    if ruler_mm in (None, ""):
        return ruler
    if ruler in (None, ""):
        raise DomainError("ruler_mm needs the ruler's points in 'ruler'", code="invalid_ruler")
    return f"{ruler},{ruler_mm}"


def upload_form(
    *,
    captured_at: str,
    px_per_mm: str | None = None,
    ruler: str | None = None,
    ruler_mm: str | None = None,
    target_point: str | None = None,
    visit: str | None = None,
    epithelialized: bool | None = None,
    drainage: bool | None = None,
    idempotency_key: str | None = None,
) -> uploads.UploadForm:
    """The form's text fields parsed (date, calibration, the visit label through the free
    text rule, before any photo is stored); empty strings are not given."""
    return uploads.UploadForm(
        captured_at=pipeline.parse_captured_at(captured_at),
        cal=pipeline.parse_calibration(px_per_mm, ruler_text(ruler, ruler_mm), target_point),
        visit=check_optional(visit or None, "visit"),
        epithelialized=epithelialized,
        drainage=drainage,
        idempotency_key=idempotency_key or None,
    )


def upload_photo(
    request: Request,
    session: Session,
    runtime: Runtime,
    caller: Caller,
    wound: Wound,
    response: Response,
    photo: UploadFile,
    form: uploads.UploadForm,
) -> AssessmentPublic:
    """Upload ``photo`` of ``wound`` (``uploads.upload_assessment``); a replayed
    Idempotency-Key answers ``Idempotent-Replayed: true``, and ``Location`` names it."""
    data = read_limited(photo, runtime.settings.max_upload_bytes)
    cost = limits.upload_megapixels(data, runtime.settings.max_pixels)
    limits.key_rates(request).uploads.take(limits.rate_key(caller), cost)
    lane = runtime.large_photos if cost > limits.LARGE_PHOTO_MEGAPIXELS else nullcontext()
    with lane:
        assessment, replayed = uploads.upload_assessment(
            session, runtime, caller, wound, data, form, name=photo.filename or "photo"
        )
    runtime.metrics.uploads.labels("replayed" if replayed else "created").inc()
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/v1/assessments/{assessment.id}"
    return views.assessment_public(session, assessment)
