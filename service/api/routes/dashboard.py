"""The clinicians' dashboard: server-rendered pages over the same domain functions as the API.

Only the HTTP handlers: each parses the request, loads what the caller may see
(``service.domain.access``), calls the domain and renders. Sign-in trades the person's
API key for a session cookie once (``service.api.sessions``: the cookie, the forms'
CSRF tokens, the pages' security headers). Answers come from
``service.domain.outcomes``, corrections go through ``corrections.correct_mask``, and the
downloads are the API's exports (``service.api.downloads``). What a page shows is built
in ``service.api.overview`` (its plots in ``figures``, its words in ``wording``) and
rendered through ``service.api.pages``.

Every asset is local: plotly.js (its basic build, vendored in static/vendor), gzipped
and cached by content hash (``service.api.assets``).
"""

from __future__ import annotations

import hmac
import json
import secrets
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from service.api import assets, auditlog, comparison, limits, overview
from service.api.deps import RuntimeDep, SessionDep, client_address
from service.api.downloads import download
from service.api.pages import error_page, render, render_page
from service.api.sessions import (
    LOGIN_CSRF_COOKIE,
    check_csrf,
    csrf_token,
    delete_session_cookie,
    set_session_cookie,
    signed_in,
)
from service.core import pipeline
from service.core.answers import EventCreate
from service.core.errors import DomainError, InvalidRequest
from service.domain import access, corrections, counting, events, reviewing, signin
from service.domain.auth import Caller
from service.domain.schemas import AssessmentUpdate
from service.persistence.orm import Assessment, Study, Subject
from service.runtime.context import Runtime

router = APIRouter(prefix="/dashboard", include_in_schema=False)
M = TypeVar("M", bound=BaseModel)


# --- sign in / out --------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", {"csrf": token, "error": None, "caller": None})
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/dashboard",
    )
    return response


@router.post("/login", response_model=None)
def login(
    request: Request,
    session: SessionDep,
    key: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    error, status, headers = None, 401, {}
    if not expected or not hmac.compare_digest(expected, csrf):
        error = "The sign-in form expired: reload the page and try again."
    else:
        try:
            _, session_id = signin.sign_in(session, key.strip(), client_address(request))
        except DomainError as exc:  # invalid_key (audited) or rate_limited (429)
            error, status, headers = exc.detail, exc.status, exc.headers
    if error is not None:
        page = render(
            request, "login.html", {"csrf": expected, "error": error, "caller": None}, status
        )
        page.headers.update(headers)
        return page
    response = RedirectResponse("/dashboard/", status_code=303)
    set_session_cookie(request, response, session_id)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/dashboard")
    return response


@router.post("/logout")
def logout(
    request: Request, session: SessionDep, csrf: Annotated[str, Form()] = ""
) -> RedirectResponse:
    _, session_id = signed_in(request, session)
    check_csrf(session_id, csrf)
    signin.sign_out(session, session_id, client_address(request))
    response = RedirectResponse("/dashboard/login", status_code=303)
    delete_session_cookie(request, response)
    return response


# --- pages ----------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def index(request: Request, session: SessionDep) -> HTMLResponse:
    def build(caller: Caller, _: str) -> tuple[str, dict[str, Any]]:
        studies = session.scalars(access.visible_studies(caller).order_by(Study.id)).all()
        return "index.html", {"studies": studies}

    return render_page(request, session, build)


@router.get("/studies/{study}", response_class=HTMLResponse)
def study_page(study: str, request: Request, session: SessionDep) -> HTMLResponse:
    def build(caller: Caller, _: str) -> tuple[str, dict[str, Any]]:
        row = access.load_study(session, caller, study)
        return "study.html", overview.study_context(
            session, caller, row, dict(request.query_params)
        )

    return render_page(request, session, build)


@router.get("/subjects/{subject}", response_class=HTMLResponse)
def subject_page(subject: str, request: Request, session: SessionDep) -> HTMLResponse:
    def build(caller: Caller, _: str) -> tuple[str, dict[str, Any]]:
        return "subject.html", overview.subject_context(
            caller, access.load_subject(session, caller, subject), None
        )

    return render_page(request, session, build)


@router.get("/wounds/{wound}", response_class=HTMLResponse)
def wound_page(wound: str, request: Request, session: SessionDep) -> HTMLResponse:
    def build(caller: Caller, _: str) -> tuple[str, dict[str, Any]]:
        return "wound.html", overview.wound_context(
            caller, access.load_wound(session, caller, wound), None
        )

    return render_page(request, session, build)


def _refused_form(
    request: Request,
    session: Session,
    caller: Caller,
    key: str,
    exc: DomainError,
    row: Assessment | None,
    back: str,
    form: dict[str, Any],
) -> HTMLResponse:
    """A refused action re-renders the page it came from with the person's input kept
    and the error beside the form (not a bare error page that loses what they typed)."""
    if row is None:
        return error_page(request, caller, key, exc)
    form = {**form, "assessment": row.id, "code": exc.code, "detail": exc.detail}
    base = {"caller": caller, "csrf": csrf_token(key)}
    if back == "review":
        context = overview.review_context(session, caller, access.study_of(row), 0, form)
        return render(request, "review.html", {**base, **context}, exc.status)
    context = overview.wound_context(caller, row.wound, form)
    return render(request, "wound.html", {**base, **context}, exc.status)


def _back_to(row: Assessment, back: str) -> RedirectResponse:
    """Where an action returns: the review queue or the wound (never a caller's URL)."""
    if back == "review":
        study = access.study_of(row)
        return RedirectResponse(f"/dashboard/studies/{study.id}/review", status_code=303)
    return RedirectResponse(f"/dashboard/wounds/{row.wound_id}#{row.id}", status_code=303)


@router.get("/studies/{study}/review", response_class=HTMLResponse)
def review_page(
    study: str,
    request: Request,
    session: SessionDep,
    offset: Annotated[int, Query(ge=0, le=10**6)] = 0,
) -> HTMLResponse:
    """Photos awaiting a clinician's review, the longest waiting first."""

    def build(caller: Caller, _: str) -> tuple[str, dict[str, Any]]:
        row = access.load_study(session, caller, study)
        return "review.html", overview.review_context(session, caller, row, offset, None)

    return render_page(request, session, build)


@router.post("/assessments/{assessment}/accept", response_model=None)
def accept(
    assessment: str,
    request: Request,
    session: SessionDep,
    accepted: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Accept the measurement that counts now, or undo it: ``PATCH /v1/assessments/{id}``
    ``{"accepted": true|false}`` (the same domain function, audited)."""
    caller, key = signed_in(request, session)
    row: Assessment | None = None
    try:
        check_csrf(key, csrf)
        row = access.load_assessment(session, caller, assessment)
        if accepted not in ("yes", "no"):
            raise InvalidRequest("accepted: give 'yes' or 'no'")
        reviewing.update_assessment(
            session, caller, row, AssessmentUpdate(accepted=accepted == "yes")
        )
    except DomainError as exc:
        return _refused_form(request, session, caller, key, exc, row, back, {})
    return _back_to(row, back)


@router.post("/assessments/{assessment}/void", response_model=None)
def void(
    assessment: str,
    request: Request,
    session: SessionDep,
    reason: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Void a misfiled photo with a reason: ``PATCH /v1/assessments/{id}``
    ``{"voided": true, "reason": …}`` (kept, audited, left out of every endpoint)."""
    caller, key = signed_in(request, session)
    row: Assessment | None = None
    try:
        check_csrf(key, csrf)
        row = access.load_assessment(session, caller, assessment)
        update = _form_input(AssessmentUpdate, voided=True, reason=reason)
        reviewing.update_assessment(session, caller, row, update)
    except DomainError as exc:
        form = {"action": "void", "reason": reason}
        return _refused_form(request, session, caller, key, exc, row, back, form)
    return _back_to(row, back)


@router.get("/assessments/{assessment}/overlay.jpg")
def overlay(
    assessment: str,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    measurement: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    """The photo with the outline of the measurement that counts (or ``measurement``)."""
    caller, _ = signed_in(request, session)
    row = access.load_assessment(session, caller, assessment)
    chosen = counting.find_measurement(row, measurement, access.study_of(row))
    limits.check_overlay_rate(request, caller)
    jpeg = runtime.overlay_of(row.photo_key, chosen.mask_key)
    # A URL with the measurement id names one image for good; without it, the image
    # follows whichever measurement counts now, so it must not be cached.
    cache = "private, max-age=86400, immutable" if measurement is not None else "no-store"
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": cache})


@router.post("/assessments/{assessment}/correct", response_model=None)
def correct(
    assessment: str,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    reason: Annotated[str, Form()] = "",
    polygon: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    mask: Annotated[UploadFile | None, File()] = None,
    back: Annotated[str, Form()] = "",
    px_per_mm: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """A clinician's corrected outline (polygon in photo pixels, or a mask PNG) + reason,
    and optionally the scale the clinician measured (``px_per_mm``: over a wrong or
    unreadable marker, it lets the correction count): the same domain function as
    ``PUT /v1/assessments/{id}/mask``."""
    caller, key = signed_in(request, session)
    row: Assessment | None = None
    try:
        check_csrf(key, csrf)
        row = access.load_assessment(session, caller, assessment)
        mask_png = None
        if mask is not None and mask.filename:
            limit = runtime.settings.max_upload_bytes
            mask_png = mask.file.read(limit + 1)
            if len(mask_png) > limit:
                raise DomainError(
                    f"the mask file is larger than {limit / 1e6:.0f} MB", code="payload_too_large"
                )
        corrections.correct_mask(
            session,
            runtime,
            caller,
            row,
            mask_png=mask_png,
            polygon=polygon.strip() or None,
            reason=reason,
            scale=pipeline.parse_calibration(px_per_mm.strip() or None, None, None),
        )
    except DomainError as exc:
        form = {
            "action": "correct",
            "polygon": polygon,
            "reason": reason,
            "back": back,
            "px_per_mm": px_per_mm,
        }
        return _refused_form(request, session, caller, key, exc, row, "", form)
    return _back_to(row, back)


def _tri_state(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


@router.post("/assessments/{assessment}/observe", response_model=None)
def observe(
    assessment: str,
    request: Request,
    session: SessionDep,
    epithelialized: Annotated[str, Form()] = "",
    drainage: Annotated[str, Form()] = "",
    accept: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """A clinician's closure observation (and acceptance of a flagged photo): the same
    domain function as ``PATCH /v1/assessments/{id}``."""
    caller, key = signed_in(request, session)
    row: Assessment | None = None
    try:
        check_csrf(key, csrf)
        row = access.load_assessment(session, caller, assessment)
        changes: dict[str, Any] = {
            "epithelialized": _tri_state(epithelialized),
            "drainage": _tri_state(drainage),
        }
        if accept == "yes":
            changes["accepted"] = True
        reviewing.update_assessment(session, caller, row, AssessmentUpdate(**changes))
    except DomainError as exc:
        session.rollback()
        form = {"action": "observe", "epithelialized": epithelialized, "drainage": drainage}
        return _refused_form(request, session, caller, key, exc, row, "", form)
    return RedirectResponse(f"/dashboard/wounds/{row.wound_id}#{row.id}", status_code=303)


# A refused form is answered at its POST URL (the page again, the input kept, the error
# beside the control). Reloading that URL, or opening it from the history, is a GET:
# it goes back to the page the form is on, never to a bare "method not allowed".


@router.get("/assessments/{assessment}/accept", include_in_schema=False)
@router.get("/assessments/{assessment}/void", include_in_schema=False)
@router.get("/assessments/{assessment}/correct", include_in_schema=False)
@router.get("/assessments/{assessment}/observe", include_in_schema=False)
def assessment_form_url(assessment: str) -> RedirectResponse:
    """The page of the photo a form (accept, void, correct, observe) was about."""
    return RedirectResponse(f"/dashboard/photos/{assessment}", status_code=303)


@router.get("/photos/{assessment}", include_in_schema=False)
def photo_page(assessment: str, request: Request, session: SessionDep) -> Response:
    """A photo's place: its wound page at its row (the sign-in and site checks apply)."""
    caller, key = signed_in(request, session)
    try:
        row = access.load_assessment(session, caller, assessment)
    except DomainError as exc:
        return error_page(request, caller, key, exc)
    return RedirectResponse(f"/dashboard/wounds/{row.wound_id}#{row.id}", status_code=303)


@router.get("/subjects/{subject}/events", include_in_schema=False)
@router.get("/subjects/{subject}/events/{event_id}/void", include_in_schema=False)
def event_form_url(subject: str) -> RedirectResponse:
    """The subject page the event forms are on (see ``assessment_form_url``)."""
    return RedirectResponse(f"/dashboard/subjects/{subject}#events", status_code=303)


@router.get("/logout", include_in_schema=False)
def logout_url() -> RedirectResponse:
    """Signing out is a POST (CSRF-checked); its URL opened again goes to the studies."""
    return RedirectResponse("/dashboard/", status_code=303)


DASHBOARD_EXPORTS = ("csv", "fhir.json", "tu.csv", "tr.csv", "dm.csv")
"""The exports the study page links (``exporting.EXPORTS``' names)."""


@router.get("/studies/{study}/export.{kind}")
def export(study: str, kind: str, request: Request, session: SessionDep) -> Response:
    """The API's exports for a signed-in monitor or admin: the API's own download, so the
    files and their audit entries are the same."""
    caller, key = signed_in(request, session)
    try:
        row = access.load_study(session, caller, study)
        if kind not in DASHBOARD_EXPORTS:
            raise HTTPException(status_code=404, detail=f"no export {kind}")
        limits.key_rates(request).exports.take(limits.rate_key(caller))
        return download(session, caller, row, kind, request.app.state.settings)
    except DomainError as exc:
        return error_page(request, caller, key, exc)


@router.get("/studies/{study}/quality", response_class=HTMLResponse)
def quality_page(study: str, request: Request, session: SessionDep) -> HTMLResponse:
    """Data quality per site for monitors (site keys see their own site)."""

    def build(caller: Caller, _: str) -> tuple[str, dict[str, Any]]:
        row = access.load_study(session, caller, study)
        return "quality.html", overview.quality_context(session, caller, row)

    return render_page(request, session, build)


# --- subject events (issue 14's dashboard form) ----------------------------------------


def _event_form_error(
    request: Request, caller: Caller, key: str, row: Subject, exc: DomainError, form: dict[str, Any]
) -> HTMLResponse:
    """A refused event form: the subject page again, the typed values kept, the error
    beside the form."""
    form = {**form, "code": exc.code, "detail": exc.detail}
    context = {
        "caller": caller,
        "csrf": csrf_token(key),
        **overview.subject_context(caller, row, form),
    }
    return render(request, "subject.html", context, exc.status)


def _form_input(model: type[M], **fields: Any) -> M:
    """A form's fields as the API's request model (its validation, the free-text rule
    included), a refusal as a ``DomainError`` with the API's code (``unsafe_text`` or
    ``invalid_request``) that the page shows beside the form."""
    try:
        return model(**fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in exc.errors()
        )
        unsafe = any(e["type"] == "unsafe_text" for e in exc.errors())
        raise DomainError(problems, code="unsafe_text" if unsafe else "invalid_request") from None


def _event_input(kind: str, on: str, leg: str, note: str) -> EventCreate:
    """The form's fields as the API's ``EventCreate`` (its validation, in words)."""
    return _form_input(EventCreate, kind=kind, date=on, leg=leg or None, note=note.strip() or None)


@router.post("/subjects/{subject}/events", response_model=None)
def record_event(
    subject: str,
    request: Request,
    session: SessionDep,
    kind: Annotated[str, Form()] = "",
    on: Annotated[str, Form()] = "",
    leg: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Record a dated subject event: ``POST /v1/subjects/{id}/events`` (the same domain
    function, clinician or admin, audited)."""
    caller, key = signed_in(request, session)
    try:
        check_csrf(key, csrf)
        row = access.load_subject(session, caller, subject)
    except DomainError as exc:
        return error_page(request, caller, key, exc)
    try:
        events.create_event(session, caller, row, _event_input(kind, on, leg, note))
    except DomainError as exc:
        session.rollback()
        form = {"action": "record", "kind": kind, "on": on, "leg": leg, "note": note}
        return _event_form_error(request, caller, key, row, exc, form)
    return RedirectResponse(f"/dashboard/subjects/{row.id}#events", status_code=303)


@router.post("/subjects/{subject}/events/{event_id}/void", response_model=None)
def void_subject_event(
    subject: str,
    event_id: int,
    request: Request,
    session: SessionDep,
    reason: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Void an event recorded in error, with a reason: ``PATCH
    /v1/subjects/{id}/events/{event}`` (kept, audited, left out of the endpoints)."""
    caller, key = signed_in(request, session)
    try:
        check_csrf(key, csrf)
        row = access.load_subject(session, caller, subject)
    except DomainError as exc:
        return error_page(request, caller, key, exc)
    try:
        if not reason.strip():
            raise InvalidRequest("reason: say why the event was recorded in error")
        events.void_event(session, caller, row, event_id, reason)
    except DomainError as exc:
        session.rollback()
        form = {"action": "void", "event": event_id, "reason": reason}
        return _event_form_error(request, caller, key, row, exc, form)
    return RedirectResponse(f"/dashboard/subjects/{row.id}#events", status_code=303)


# --- audit log (admin, as GET /v1/audit) -----------------------------------------------


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    session: SessionDep,
    study: Annotated[str, Query()] = "",
    action: Annotated[str, Query()] = "",
    subject: Annotated[str, Query()] = "",
    page: Annotated[int, Query(ge=0, le=10**6)] = 0,
) -> HTMLResponse:
    """Recent audit entries (``audit.list_audit``: admin keys; a study admin sees its
    study), filtered by action prefix and subject, 50 a page, newest first."""

    def build(caller: Caller, _: str) -> tuple[str, dict[str, Any]]:
        return "audit.html", auditlog.audit_context(
            session, caller, study=study, action=action, subject=subject, page=page
        )

    return render_page(request, session, build)


# ---------------------------------------------------------------- outline editor, compare
# (dash3) The editor's starting outline, and two visits side by side rectified to the
# marker plane. The pixels are worked in the worker pool by ``service.core.rectify``.


@router.get("/assessments/{assessment}/outline.json")
def outline_json(
    assessment: str,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    measurement: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    """The outline of the measurement that counts (or ``measurement``) as polygons in
    photo pixels: where the live editor starts."""
    from service.core import rectify

    caller, _ = signed_in(request, session)
    row = access.load_assessment(session, caller, assessment)
    chosen = counting.find_measurement(row, measurement, access.study_of(row))
    answer = runtime.pool.run(rectify.outline_of, runtime.store.get(chosen.mask_key))
    answer["measurement"] = chosen.id
    cache = "private, max-age=86400, immutable" if measurement is not None else "no-store"
    return Response(
        json.dumps(answer), media_type="application/json", headers={"Cache-Control": cache}
    )


@router.get("/wounds/{wound}/compare", response_class=HTMLResponse)
def compare_page(
    wound: str,
    request: Request,
    session: SessionDep,
    first: Annotated[str, Query(max_length=64)] = "",
    second: Annotated[str, Query(max_length=64)] = "",
) -> HTMLResponse:
    """Two visits side by side, rectified to the marker plane at one mm scale (default:
    the first and the latest calibrated photos)."""

    def build(caller: Caller, _: str) -> tuple[str, dict[str, Any]]:
        row = access.load_wound(session, caller, wound)
        return "compare.html", comparison.compare_context(row, first, second)

    return render_page(request, session, build)


def _stored_visit(
    session: Session, runtime: Runtime, caller: Caller, assessment: str, measurement: int
) -> tuple[Assessment, Any]:
    """A photo the caller may see, with the stored files of one of its measurements."""
    from service.core import rectify

    row = access.load_assessment(session, caller, assessment)
    chosen = counting.find_measurement(row, measurement, access.study_of(row))
    data: dict[str, Any] = chosen.data or {}
    return row, rectify.StoredVisit(
        photo_jpeg=runtime.store.get(row.photo_key),
        mask_png=runtime.store.get(chosen.mask_key),
        calibration=str(data.get("calibration") or "none"),
        px_per_mm=data.get("px_per_mm"),
    )


@router.get("/assessments/{assessment}/rectified.jpg")
def rectified(
    assessment: str,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    measurement: Annotated[int, Query(ge=1, le=2**62)],
    side_mm: Annotated[float, Query(ge=5, le=1000)],
    px_per_mm: Annotated[float, Query(gt=0, le=50)],
    align_to: Annotated[str, Query(max_length=64)] = "",
    align_measurement: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    """The photo warped to the marker plane: a ``side_mm`` square around the wound at
    ``px_per_mm`` pixels per mm, with the outline of ``measurement`` (the compare page
    asks both visits for the same window and scale); with ``align_to`` (a photo of the
    same wound, and its ``align_measurement``), turned to line up with that visit.
    ``X-Px-Per-Mm`` says the scale, ``X-Rotated-Deg`` the turn."""
    from service.core import rectify

    caller, _ = signed_in(request, session)
    row, visit = _stored_visit(session, runtime, caller, assessment, measurement)
    if round(side_mm * px_per_mm) > 2 * rectify.RECTIFIED_MAX_SIDE_PX:
        raise InvalidRequest(
            f"side_mm × px_per_mm: at most {2 * rectify.RECTIFIED_MAX_SIDE_PX} pixels a side"
        )
    reference = None
    if align_to:
        if align_measurement is None:
            raise InvalidRequest("align_measurement: give the measurement of align_to")
        other, reference = _stored_visit(session, runtime, caller, align_to, align_measurement)
        if other.wound_id != row.wound_id:
            raise InvalidRequest("align_to: give a photo of the same wound")
    answer = runtime.pool.run(
        rectify.rectified_jpeg,
        visit,
        marker_mm=access.study_of(row).marker_mm,
        side_mm=side_mm,
        out_px_per_mm=px_per_mm,
        align_to=reference,
    )
    if answer is None:
        raise DomainError(
            f"assessment {row.id} is not calibrated: it cannot be rectified",
            code="not_comparable",
        )
    jpeg, turn_deg = answer
    return Response(
        jpeg,
        media_type="image/jpeg",
        headers={
            "Cache-Control": "private, max-age=86400, immutable",
            "X-Px-Per-Mm": f"{px_per_mm:g}",
            "X-Side-Mm": f"{side_mm:g}",
            "X-Rotated-Deg": f"{turn_deg:g}",
        },
    )


@router.get("/static/{name}")
def static(name: str, request: Request) -> Response:
    """Local assets only (no CDN): the dashboard's own files and plotly.js, by bare name
    (short cache) or by content-hashed name (immutable); a stale hash is 404."""
    found, cache = assets.resolve(name)
    headers = {
        "Cache-Control": cache,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if assets.accepts_gzip(request.headers.get("accept-encoding", "")):
        headers["Content-Encoding"] = "gzip"
        return Response(found.gzip_body, media_type=found.media_type, headers=headers)
    return Response(found.body, media_type=found.media_type, headers=headers)
