"""Assessments: the photo upload, corrections, and what the model saw."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile

from service.api import limits, uploads, views
from service.api.deps import (
    CallerDep,
    PagingDep,
    RuntimeDep,
    SessionDep,
    VisibleAssessment,
    VisibleWound,
)
from service.core import pipeline
from service.core.errors import DomainError
from service.domain import corrections, counting, reviewing, wounds
from service.domain.schemas import (
    AssessmentPublic,
    AssessmentUpdate,
    MeasurementPublic,
    Page,
)

router = APIRouter(tags=["assessments"])

IMMUTABLE = {"Cache-Control": "private, max-age=31536000, immutable"}


@router.post(
    "/v1/wounds/{wound}/assessments",
    status_code=201,
    response_model=AssessmentPublic,
    responses={
        413: {"description": "photo_too_large, too_many_pixels"},
        415: {"description": "unsupported_format"},
        422: {"description": "corrupt_image, invalid_date, invalid_target_point, …"},
        503: {"description": "busy (see Retry-After), no_model"},
    },
)
def upload_assessment(
    request: Request,
    wound: VisibleWound,
    session: SessionDep,
    caller: CallerDep,
    runtime: RuntimeDep,
    response: Response,
    photo: Annotated[UploadFile, File(description="JPEG, PNG, WebP or HEIC/HEIF")],
    captured_at: Annotated[str, Form(description="ISO date or datetime", examples=["2026-01-05"])],
    px_per_mm: Annotated[str | None, Form(description="Scale when no marker is in view")] = None,
    ruler: Annotated[
        str | None,
        Form(
            description="Two ruler points and their distance 'x1,y1,x2,y2,mm' (photo pixels"
            " as displayed, then mm); or the four coordinates here and the mm in ruler_mm",
            examples=["120,840,620,845,50"],
        ),
    ] = None,
    ruler_mm: Annotated[
        str | None,
        Form(description="Distance between the ruler points (mm) when ruler has four numbers"),
    ] = None,
    visit: Annotated[
        str | None,
        Form(
            max_length=64,
            examples=["V3"],
            description="Visit label: printable text that does not start with = + - @"
            " (spreadsheet formulas); otherwise `unsafe_text`",
        ),
    ] = None,
    epithelialized: Annotated[
        bool | None, Form(description="Clinician: fully re-epithelialised")
    ] = None,
    drainage: Annotated[bool | None, Form(description="Clinician: any drainage")] = None,
    target_point: Annotated[
        str | None, Form(description="'x,y' in the photo as displayed: picks this wound")
    ] = None,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", max_length=200, description="Retry-safe upload")
    ] = None,
) -> AssessmentPublic:
    """Upload a photo of the wound with the marker beside it; answers the measurement.

    A photo that decodes is stored and answered 201 even when flagged: the quality
    flags are the retake advice. A retry with the same ``Idempotency-Key`` answers
    the first result (header ``Idempotent-Replayed: true``).
    """
    form = uploads.upload_form(
        captured_at=captured_at,
        px_per_mm=px_per_mm,
        ruler=ruler,
        ruler_mm=ruler_mm,
        target_point=target_point,
        visit=visit,
        epithelialized=epithelialized,
        drainage=drainage,
        idempotency_key=idempotency_key,
    )
    return uploads.upload_photo(request, session, runtime, caller, wound, response, photo, form)


@router.get("/v1/wounds/{wound}/assessments", response_model=Page[AssessmentPublic])
def list_assessments(
    wound: VisibleWound,
    session: SessionDep,
    paging: PagingDep,
    include_voided: Annotated[bool, Query(description="Also list voided assessments")] = False,
) -> Page[AssessmentPublic]:
    """The wound's assessments in capture order, each with its measurement history."""
    rows, total = wounds.list_assessments(
        session, wound, include_voided=include_voided, limit=paging.limit, offset=paging.offset
    )
    return Page(
        items=views.assessments_public(session, rows),
        total=total,
        limit=paging.limit,
        offset=paging.offset,
    )


@router.get("/v1/assessments/{assessment}", response_model=AssessmentPublic)
def get_assessment(assessment: VisibleAssessment, session: SessionDep) -> AssessmentPublic:
    return views.assessment_public(session, assessment)


@router.patch("/v1/assessments/{assessment}", response_model=AssessmentPublic)
def update_assessment(
    assessment: VisibleAssessment, data: AssessmentUpdate, session: SessionDep, caller: CallerDep
) -> AssessmentPublic:
    """Clinician: record closure (epithelialized, drainage), accept a flagged photo, or
    void a misfiled photo (``voided: true`` with a ``reason``)."""
    reviewing.update_assessment(session, caller, assessment, data)
    return views.assessment_public(session, assessment)


@router.put("/v1/assessments/{assessment}/mask", status_code=201, response_model=MeasurementPublic)
def correct_mask(
    assessment: VisibleAssessment,
    session: SessionDep,
    caller: CallerDep,
    runtime: RuntimeDep,
    reason: Annotated[str, Form(description="Why the outline was corrected")] = "",
    mask: Annotated[UploadFile | None, File(description="PNG, photo size, 0/255")] = None,
    polygon: Annotated[
        str | None,
        Form(
            description="JSON [[x, y], ...] in photo pixels", examples=["[[10,10],[80,12],[40,70]]"]
        ),
    ] = None,
    px_per_mm: Annotated[
        str | None,
        Form(
            description="The clinician's scale (pixels per mm): used instead of the photo's "
            "own and over a disagreeing marker (lifts scale_conflict)"
        ),
    ] = None,
    ruler: Annotated[
        str | None, Form(description="x1,y1,x2,y2,mm: the clinician's ruler, as px_per_mm")
    ] = None,
) -> MeasurementPublic:
    """A clinician's outline (PNG mask or polygon) + reason -> a new manual measurement.
    The automatic measurement stays in the history. Without ``px_per_mm`` or ``ruler``
    the photo's own calibration is measured again: a severe calibration flag keeps the
    correction out of the endpoints."""
    mask_png = (
        uploads.read_limited(mask, runtime.settings.max_upload_bytes) if mask is not None else None
    )
    if mask_png is not None and len(mask_png) > runtime.settings.max_upload_bytes:
        raise DomainError("the mask file is larger than the upload limit", code="payload_too_large")
    scale = pipeline.parse_calibration(px_per_mm, ruler, None)
    row = corrections.correct_mask(
        session,
        runtime,
        caller,
        assessment,
        mask_png=mask_png,
        polygon=polygon,
        reason=reason,
        scale=scale,
    )
    return views.measurement_public(row)


@router.get("/v1/assessments/{assessment}/photo.jpg", response_class=Response)
def photo_jpg(assessment: VisibleAssessment, runtime: RuntimeDep) -> Response:
    """The stored photo: EXIF orientation applied, no metadata (no GPS, no device)."""
    return Response(
        runtime.store.get(assessment.photo_key), media_type="image/jpeg", headers=IMMUTABLE
    )


@router.get("/v1/assessments/{assessment}/mask.png", response_class=Response)
def mask_png(
    assessment: VisibleAssessment,
    runtime: RuntimeDep,
    measurement: Annotated[
        int | None,
        Query(ge=1, le=2**62, description="A measurement id; default the current one"),
    ] = None,
) -> Response:
    """The mask (0/255, photo size) of the current measurement, or of ``measurement``."""
    row = counting.find_measurement(assessment, measurement, assessment.wound.subject.site.study)
    return Response(runtime.store.get(row.mask_key), media_type="image/png", headers=IMMUTABLE)


@router.get("/v1/assessments/{assessment}/overlay.jpg", response_class=Response)
def overlay_jpg(
    request: Request,
    assessment: VisibleAssessment,
    caller: CallerDep,
    runtime: RuntimeDep,
    measurement: Annotated[
        int | None,
        Query(ge=1, le=2**62, description="A measurement id; default the current one"),
    ] = None,
) -> Response:
    """The photo with the measured outline drawn on it."""
    row = counting.find_measurement(assessment, measurement, assessment.wound.subject.site.study)
    limits.check_overlay_rate(request, caller)
    jpeg = runtime.overlay_of(assessment.photo_key, row.mask_key)
    return Response(jpeg, media_type="image/jpeg", headers=IMMUTABLE)
