"""The phone capture page, its session-backed JSON calls, and the preview pre-check.

``GET /capture/`` is a page shell (no data in it); its script signs in through the
dashboard (same session cookie, read by ``service.api.sessions.signed_in``) and talks
to ``/dashboard/capture/api/...``: under ``/dashboard`` because that is where the
session cookie travels. Those calls go through the same domain functions and the
API's own upload (``service.api.uploads``) as ``/v1``, so roles, site scopes,
idempotency and error codes are the API's. Writes carry the dashboard's CSRF token in ``X-CSRF-Token``.

``POST /v1/precheck`` (bearer key) and its session twin answer the live guidance
of ``service.core.precheck`` for one downscaled preview frame; nothing is stored.

Every asset is local (``service/api/capture/static``, the vendored js-aruco2 marker detector in
``static/vendor``, see its ``SOURCE.md``): no CDN, nothing sent elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, HTTPException, Request, Response, UploadFile
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from service.api import views
from service.api.assets import asset_url
from service.api.deps import CallerDep, RuntimeDep, SessionDep
from service.api.openapi import ERROR_REF
from service.api.sessions import SECURITY_HEADERS, check_csrf, csrf_token, signed_in
from service.api.uploads import upload_form, upload_photo
from service.api.wording import plain_flags
from service.core import precheck
from service.core.errors import InvalidKey
from service.core.marker import MARKER_MM
from service.domain import access, retake
from service.domain import subjects as domain_subjects
from service.domain import wounds as domain_wounds
from service.domain.auth import Caller
from service.domain.roles import WRITERS
from service.domain.schemas import StudyPublic, SubjectCreate, WoundCreate
from service.persistence.orm import Assessment
from service.runtime.context import Runtime

router = APIRouter()

CAPTURE_DIR = Path(__file__).resolve().parent.parent / "capture"
STATIC_DIR = CAPTURE_DIR / "static"
templates = Jinja2Templates(directory=str(CAPTURE_DIR / "templates"))
SESSION_API = "/dashboard/capture/api"
CAPTURE_HEADERS = {
    **SECURITY_HEADERS,
    # The camera preview: getUserMedia needs camera permission on this origin.
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
}


def _session_caller(request: Request, session: Session) -> tuple[Caller, str]:
    """The dashboard session's caller; a JSON 401 (not a redirect) when signed out."""
    try:
        return signed_in(request, session)
    except HTTPException:
        raise InvalidKey(
            "not signed in: sign in at /dashboard/login, then open /capture/"
        ) from None


def _writer(request: Request, session: Session, csrf: str | None) -> Caller:
    caller, token = _session_caller(request, session)
    check_csrf(token, csrf or "")
    return caller


def _limiter(request: Request) -> precheck.RateLimiter:
    limiter: precheck.RateLimiter | None = getattr(request.app.state, "precheck_limiter", None)
    if limiter is None:
        limiter = request.app.state.precheck_limiter = precheck.RateLimiter()
    return limiter


def _precheck(
    request: Request,
    session: Session,
    runtime: Runtime,
    caller: Caller,
    frame: UploadFile,
    study: str | None,
) -> dict[str, Any]:
    _limiter(request).take(caller.key_id if caller.key_id is not None else caller.holder)
    marker_mm = access.load_study(session, caller, study).marker_mm if study else MARKER_MM
    data = frame.file.read(precheck.PRECHECK_MAX_BYTES + 1)
    result: dict[str, Any] = runtime.pool.run(
        precheck.precheck_frame, data, marker_mm=marker_mm, limits=runtime.settings.quality
    )
    return result


# --- the page ---------------------------------------------------------------------


@router.get("/capture/", include_in_schema=False, response_class=HTMLResponse)
def capture_page(request: Request) -> HTMLResponse:
    context = {"api": SESSION_API, "favicon": asset_url("favicon.svg")}
    response = templates.TemplateResponse(request, "capture.html", context)
    response.headers.update(CAPTURE_HEADERS)
    return response


def _static_file(folder: Path, name: str) -> FileResponse:
    files = {p.name: p for p in folder.iterdir() if p.is_file()}
    if name not in files:
        raise HTTPException(status_code=404, detail=f"no static file {name}")
    return FileResponse(files[name], headers={"Cache-Control": "no-cache"})


@router.get("/capture/static/{name}", include_in_schema=False)
def capture_static(name: str) -> FileResponse:
    return _static_file(STATIC_DIR, name)


@router.get("/capture/static/vendor/{name}", include_in_schema=False)
def capture_vendor(name: str) -> FileResponse:
    """The vendored in-browser marker detector (js-aruco2, see vendor/SOURCE.md)."""
    return _static_file(STATIC_DIR / "vendor", name)


# --- the pre-check (API) ----------------------------------------------------------


@router.post(
    "/v1/precheck",
    tags=["capture"],
    responses={
        413: {"description": "photo_too_large, too_many_pixels: send a downscaled frame"},
        429: {
            "description": "`rate_limited`: more frames than the key may send; see Retry-After",
            "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
        },
    },
)
def precheck_route(
    request: Request,
    session: SessionDep,
    caller: CallerDep,
    runtime: RuntimeDep,
    frame: Annotated[UploadFile, File(description="A preview frame, JPEG, at most 1920x1080")],
    study: Annotated[str | None, Form(description="The study (its marker size)")] = None,
) -> dict[str, Any]:
    """Live guidance for one downscaled camera preview frame: marker found, its size,
    tilt, blur and exposure, as the upload's quality codes. Nothing is stored."""
    return _precheck(request, session, runtime, caller, frame, study)


# --- the page's calls (dashboard session) -----------------------------------------


@router.get(f"{SESSION_API}/session", include_in_schema=False)
def whoami(request: Request, session: SessionDep, runtime: RuntimeDep) -> dict[str, Any]:
    caller, token = _session_caller(request, session)
    return {
        "holder": caller.holder,
        "role": caller.role,
        "site": caller.site_code,
        "csrf": csrf_token(token),
        "may_create": caller.role in WRITERS,
        "may_upload": caller.role in WRITERS,
        # The in-browser marker check judges "too small" by the upload's own limit.
        "marker_min_side_px": runtime.settings.quality.marker_min_side_px,
        # Times on the page are the clinic's wall clock (empty: the phone's own zone).
        "timezone": runtime.settings.clinic_timezone or None,
    }


@router.get(f"{SESSION_API}/studies", include_in_schema=False, response_model=list[StudyPublic])
def studies(request: Request, session: SessionDep) -> list[StudyPublic]:
    caller, _ = _session_caller(request, session)
    rows = session.scalars(access.visible_studies(caller).order_by("id"))
    return [views.study_public(s) for s in rows]


@router.get(f"{SESSION_API}/studies/{{study}}/subjects", include_in_schema=False)
def subjects(study: str, request: Request, session: SessionDep) -> list[dict[str, Any]]:
    caller, _ = _session_caller(request, session)
    row = access.load_study(session, caller, study)
    rows, _ = domain_subjects.list_subjects(session, caller, row, site=None, limit=10_000, offset=0)
    return [views.subject_public(s, caller).model_dump(mode="json") for s in rows]


@router.post(f"{SESSION_API}/studies/{{study}}/subjects", include_in_schema=False, status_code=201)
def create_subject(
    study: str,
    data: SubjectCreate,
    request: Request,
    session: SessionDep,
    x_csrf_token: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    caller = _writer(request, session, x_csrf_token)
    row = access.load_study(session, caller, study)
    subject = domain_subjects.create_subject(session, caller, row, data)
    return views.subject_public(subject, caller).model_dump(mode="json")


@router.get(f"{SESSION_API}/subjects/{{subject}}/wounds", include_in_schema=False)
def wounds(subject: str, request: Request, session: SessionDep) -> list[dict[str, Any]]:
    caller, _ = _session_caller(request, session)
    row = access.load_subject(session, caller, subject)
    rows, _ = domain_wounds.list_wounds(session, row)
    return [views.wound_public(w).model_dump(mode="json") for w in rows]


@router.post(f"{SESSION_API}/subjects/{{subject}}/wounds", include_in_schema=False, status_code=201)
def create_wound(
    subject: str,
    data: WoundCreate,
    request: Request,
    session: SessionDep,
    x_csrf_token: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    caller = _writer(request, session, x_csrf_token)
    row = access.load_subject(session, caller, subject)
    return views.wound_public(domain_wounds.create_wound(session, caller, row, data)).model_dump(
        mode="json"
    )


@router.post(
    f"{SESSION_API}/wounds/{{wound}}/assessments", include_in_schema=False, status_code=201
)
def upload(
    wound: str,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
    photo: Annotated[UploadFile, File()],
    captured_at: Annotated[str, Form()],
    visit: Annotated[str | None, Form(max_length=64)] = None,
    epithelialized: Annotated[bool | None, Form()] = None,
    drainage: Annotated[bool | None, Form()] = None,
    target_point: Annotated[str | None, Form()] = None,
    replaces: Annotated[str | None, Form(max_length=64)] = None,
    replace_reason: Annotated[str, Form(max_length=2000)] = "",
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
    x_csrf_token: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """The API's upload with the session's caller (same idempotency, codes), and its
    answer's flags in the dashboard's words (``advice``), so the phone says what the
    stored photo says. ``replaces``: the photo this one retakes, voided with
    ``replace_reason`` once this one is stored (``domain.retake``)."""
    caller = _writer(request, session, x_csrf_token)
    row = access.load_wound(session, caller, wound)
    form = upload_form(
        captured_at=captured_at,
        target_point=target_point,
        visit=visit,
        epithelialized=epithelialized,
        drainage=drainage,
        idempotency_key=idempotency_key,
    )
    earlier = access.load_assessment(session, caller, replaces) if replaces else None
    reason = (
        retake.check_retake(caller, earlier, row, form.captured_at, replace_reason)
        if earlier is not None
        else ""
    )
    public = upload_photo(request, session, runtime, caller, row, response, photo, form)
    if earlier is not None:
        later = session.get(Assessment, public.id)
        if later is not None:
            retake.supersede(session, caller, earlier, later, reason)
    answer = public.model_dump(mode="json")
    quality = (answer.get("measurement") or {}).get("quality") or []
    series = (answer.get("review") or {}).get("series_flags") or []
    return {
        **answer,
        "advice": plain_flags([*quality, *series]),
        "replaced": earlier.id if earlier is not None else None,
    }


@router.post(f"{SESSION_API}/precheck", include_in_schema=False)
def session_precheck(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    frame: Annotated[UploadFile, File()],
    study: Annotated[str | None, Form()] = None,
) -> dict[str, Any]:
    """``POST /v1/precheck`` for the signed-in page (read-only: no CSRF token needed)."""
    caller, _ = _session_caller(request, session)
    return _precheck(request, session, runtime, caller, frame, study)
