"""The clinicians' dashboard: server-rendered pages over the same domain functions as the API.

Sign-in: the person pastes their API key once; the server answers a random session
id in an HttpOnly, SameSite=Strict cookie (the key never travels again). The
database holds the id's sha256, its expiry and the key it came from
(``service.auth``), so sign-out, expiry and revoking the key end it on every replica
at once. The cookie is ``__Host-ws_session`` (Secure, Path=/) when served over https
and ``ws_session`` (Path=/dashboard) over plain http, where browsers refuse
``__Host-`` cookies (local runs, the tests). Forms carry a CSRF token bound to the
session (an HMAC of the session id), the sign-in form a double-submit token. Roles and site scopes are the API's: pages load resources
through ``service.access``, corrections go through ``trial.correct_mask``.

Every asset is local: plotly.js is served from the installed plotly package.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from service import access, auth, trial
from service.auth import Caller
from service.deps import RuntimeDep, SessionDep
from service.errors import DomainError, Forbidden
from service.orm import Study, Wound
from service.routes import exports as export_routes
from service.routes.endpoints import (
    load_visible_subjects,
    study_answer,
    subject_answer,
    uncounted_reason,
    wound_answer,
)
from service.schemas import AssessmentUpdate

router = APIRouter(prefix="/dashboard", include_in_schema=False)

DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "dashboard"
STATIC_DIR = DASHBOARD_DIR / "static"
templates = Jinja2Templates(directory=str(DASHBOARD_DIR / "templates"))

SESSION_COOKIE = auth.SESSION_COOKIE
SECURE_SESSION_COOKIE = auth.SECURE_SESSION_COOKIE
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


def plotly_js_path() -> Path:
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


def csrf_token(session_id: str) -> str:
    """The form token of a signed-in browser: an HMAC of its session id, so a token
    works only with the session it was issued to."""
    return hmac.new(session_id.encode(), b"woundscope-dashboard-csrf", hashlib.sha256).hexdigest()


def _set_session_cookie(request: Request, response: Response, session_id: str) -> None:
    secure = request.url.scheme == "https"
    response.set_cookie(
        session_cookie_name(request.url.scheme),
        session_id,
        max_age=SESSION_MAX_AGE_S,
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/" if secure else "/dashboard",
    )


def _signed_in(request: Request, session: Session) -> tuple[Caller, str]:
    """(The caller, the session id) of the session cookie, or a redirect to sign-in."""
    session_id = request.cookies.get(session_cookie_name(request.url.scheme), "")
    if session_id:
        try:
            return auth.session_caller(session, session_id), session_id
        except DomainError:
            pass
    raise HTTPException(status_code=303, headers={"Location": "/dashboard/login"})


def _check_csrf(key: str, token: str) -> None:
    if not hmac.compare_digest(csrf_token(key), token or ""):
        raise Forbidden("the form expired or did not come from this dashboard: reload the page")


def _error_page(request: Request, caller: Caller, key: str, exc: DomainError) -> HTMLResponse:
    """A refused dashboard action: the same code and detail the API would answer."""
    context = {"caller": caller, "csrf": csrf_token(key), "code": exc.code, "detail": exc.detail}
    return _render(request, "error.html", context, exc.status)


def _render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def _page(
    request: Request,
    session: Session,
    build: Callable[[Caller, str], tuple[str, dict[str, Any]]],
) -> HTMLResponse:
    """Sign-in check, then ``build`` (template, context); domain errors become a page."""
    caller, key = _signed_in(request, session)
    base = {"caller": caller, "csrf": csrf_token(key)}
    try:
        name, context = build(caller, key)
    except DomainError as exc:
        return _render(
            request, "error.html", {**base, "code": exc.code, "detail": exc.detail}, exc.status
        )
    return _render(request, name, {**base, **context})


def figure_json(figure: dict[str, Any]) -> str:
    """JSON safe to embed in a <script type="application/json"> element."""
    text = json.dumps(figure, separators=(",", ":"), default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def km_figure(answer: dict[str, Any], *, title: str) -> dict[str, Any]:
    """Kaplan–Meier step curves of time to closure (pooled, or per arm for admins)."""
    groups = answer.get("by_arm") or {"all subjects": answer}
    data: list[dict[str, Any]] = []
    for name, group in groups.items():
        km = group["km"]
        if not km["timeline_days"]:
            continue
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{name}: 95% CI",
                "x": km["timeline_days"] + km["timeline_days"][::-1],
                "y": km["ci95_high"] + km["ci95_low"][::-1],
                "line": {"shape": "hv", "width": 0},
                "fill": "toself",
                "opacity": 0.2,
                "hoverinfo": "skip",
                "showlegend": False,
            }
        )
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": str(name),
                "x": km["timeline_days"],
                "y": km["survival"],
                "line": {"shape": "hv"},
                "hovertemplate": "day %{x}: %{y:.2f} not yet healed<extra></extra>",
            }
        )
    return {
        "data": data,
        "layout": {
            "title": {"text": title},
            "xaxis": {"title": {"text": "days from baseline"}, "rangemode": "tozero"},
            "yaxis": {"title": {"text": "proportion not yet healed"}, "range": [0, 1.05]},
            "margin": {"t": 50, "r": 20},
        },
    }


AREA_TRACE = "area (cm²)"


def area_figure(answer: dict[str, Any], *, title: str) -> dict[str, Any]:
    """Area over time: one point per assessment with an area (open markers: not counted),
    the uncertainty band, clinician closure observations and the confirmed closure."""
    visits = answer["visits"]
    measured = [v for v in visits if v["area_cm2"] is not None]
    banded = [
        v for v in measured if v["area_cm2_low"] is not None and v["area_cm2_high"] is not None
    ]
    data: list[dict[str, Any]] = []
    if banded:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "uncertainty",
                "x": [v["captured_at"] for v in banded] + [v["captured_at"] for v in banded[::-1]],
                "y": [v["area_cm2_high"] for v in banded]
                + [v["area_cm2_low"] for v in banded[::-1]],
                "fill": "toself",
                "line": {"width": 0},
                "opacity": 0.25,
                "hoverinfo": "skip",
            }
        )
    data.append(
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": AREA_TRACE,
            "x": [v["captured_at"] for v in measured],
            "y": [v["area_cm2"] for v in measured],
            "customdata": [
                [v["day"], v["par_pct"], v["assessment"], "" if v["counted"] else "not counted"]
                for v in measured
            ],
            "marker": {
                "size": 9,
                "symbol": ["circle" if v["counted"] else "circle-open" for v in measured],
            },
            "hovertemplate": "day %{customdata[0]}: %{y:.2f} cm² (PAR %{customdata[1]:.0f} %)"
            " %{customdata[3]}<extra>%{customdata[2]}</extra>",
        }
    )
    closed = [v for v in visits if v["closed"]]
    if closed:
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "closed (clinician)",
                "x": [v["captured_at"] for v in closed],
                "y": [0 for _ in closed],
                "marker": {"symbol": "star", "size": 12, "color": "#2a9d4b"},
                "hovertemplate": "day %{text}: closed<extra></extra>",
                "text": [str(v["day"]) for v in closed],
            }
        )
    shapes: list[dict[str, Any]] = []
    day_to_date = {v["day"]: v["captured_at"] for v in visits}
    for day, color, label in (
        (answer.get("closure_day"), "#2a9d4b", "closure confirmed"),
        (answer.get("recurrence_day"), "#c0392b", "recurrence"),
    ):
        if day is not None and day in day_to_date:
            shapes.append(
                {
                    "type": "line",
                    "xref": "x",
                    "yref": "paper",
                    "x0": day_to_date[day],
                    "x1": day_to_date[day],
                    "y0": 0,
                    "y1": 1,
                    "line": {"color": color, "dash": "dash"},
                    "name": label,
                }
            )
    return {
        "data": data,
        "layout": {
            "title": {"text": title},
            "xaxis": {"title": {"text": "captured"}, "type": "date"},
            "yaxis": {"title": {"text": "area (cm²)"}, "rangemode": "tozero"},
            "shapes": shapes,
            "margin": {"t": 50, "r": 20},
        },
    }


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


templates.env.filters["fmt"] = _fmt


# --- sign in / out --------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = _render(request, "login.html", {"csrf": token, "error": None, "caller": None})
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
    error = None
    if not expected or not hmac.compare_digest(expected, csrf):
        error = "The sign-in form expired: reload the page and try again."
    else:
        try:
            _, session_id = auth.start_session(session, key.strip())
        except DomainError as exc:
            error = exc.detail
    if error is not None:
        return _render(
            request, "login.html", {"csrf": expected, "error": error, "caller": None}, 401
        )
    response = RedirectResponse("/dashboard/", status_code=303)
    _set_session_cookie(request, response, session_id)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/dashboard")
    return response


@router.post("/logout")
def logout(
    request: Request, session: SessionDep, csrf: Annotated[str, Form()] = ""
) -> RedirectResponse:
    _, session_id = _signed_in(request, session)
    _check_csrf(session_id, csrf)
    auth.end_session(session, session_id)
    response = RedirectResponse("/dashboard/login", status_code=303)
    secure = request.url.scheme == "https"
    response.delete_cookie(
        session_cookie_name(request.url.scheme),
        path="/" if secure else "/dashboard",
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    """Local assets only (no CDN): the dashboard's own files and plotly.js."""
    if name == "plotly.min.js":
        return FileResponse(plotly_js_path(), media_type="text/javascript")
    files = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()}
    if name not in files:
        raise HTTPException(status_code=404, detail=f"no static file {name}")
    return FileResponse(files[name])


# --- pages ----------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def index(request: Request, session: SessionDep) -> HTMLResponse:
    def build(caller: Caller, _: str) -> tuple[str, dict[str, Any]]:
        studies = session.scalars(access.visible_studies(caller).order_by(Study.id)).all()
        return "index.html", {"studies": studies}

    return _page(request, session, build)


@router.get("/studies/{study}", response_class=HTMLResponse)
def study_page(study: str, request: Request, session: SessionDep) -> HTMLResponse:
    def build(caller: Caller, _: str) -> tuple[str, dict[str, Any]]:
        row = access.load_study(session, caller, study)
        subjects = {s.id: s for s in load_visible_subjects(session, caller, row)}
        answer = study_answer(session, caller, row)
        return "study.html", {
            "study": row,
            "answer": answer,
            "subjects": subjects,
            "can_export": caller.role in export_routes.EXPORT_ROLES,
            "km_json": figure_json(
                km_figure(answer, title=f"{row.id}: time to closure of all ulcers")
            ),
        }

    return _page(request, session, build)


@router.get("/subjects/{subject}", response_class=HTMLResponse)
def subject_page(subject: str, request: Request, session: SessionDep) -> HTMLResponse:
    def build(caller: Caller, _: str) -> tuple[str, dict[str, Any]]:
        row = access.load_subject(session, caller, subject)
        return "subject.html", {"subject": row, "answer": subject_answer(row)}

    return _page(request, session, build)


def _assessment_rows(wound: Wound, study: Study) -> list[dict[str, Any]]:
    rows = []
    for assessment in sorted(wound.assessments, key=lambda a: (a.captured_at, a.created_at)):
        current = trial.current_measurement(assessment, study)
        data: dict[str, Any] = current.data if current is not None else {}
        rows.append(
            {
                "assessment": assessment,
                "measurement": current,
                "data": data,
                "flags": ", ".join(str(q.get("code")) for q in data.get("quality") or ()),
                "uncounted_reason": uncounted_reason(assessment, current),
                "history": len(assessment.measurements),
            }
        )
    return rows


@router.get("/wounds/{wound}", response_class=HTMLResponse)
def wound_page(wound: str, request: Request, session: SessionDep) -> HTMLResponse:
    def build(caller: Caller, _: str) -> tuple[str, dict[str, Any]]:
        row = access.load_wound(session, caller, wound)
        study = access.study_of(row)
        answer = wound_answer(row)
        days = {v["assessment"]: v["day"] for v in answer["visits"]}
        return "wound.html", {
            "wound": row,
            "study": study,
            "answer": answer,
            "days": days,
            "rows": _assessment_rows(row, study),
            "can_correct": caller.role in trial.CORRECTORS and not study.locked,
            "area_json": figure_json(
                area_figure(answer, title=f"{row.subject.code} {row.label}: area over time")
            ),
        }

    return _page(request, session, build)


@router.get("/assessments/{assessment}/overlay.jpg")
def overlay(
    assessment: str,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    measurement: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    """The photo with the outline of the measurement that counts (or ``measurement``)."""
    caller, _ = _signed_in(request, session)
    row = access.load_assessment(session, caller, assessment)
    chosen = trial.find_measurement(row, measurement, access.study_of(row))
    photo = runtime.store.get(row.photo_key)
    mask = runtime.store.get(chosen.mask_key)
    jpeg = runtime.pool.run(runtime.overlay, photo, mask)
    return Response(
        jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"}
    )


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
) -> Response:
    """A clinician's corrected outline (polygon in photo pixels, or a mask PNG) + reason:
    the same domain function as ``PUT /v1/assessments/{id}/mask``."""
    caller, key = _signed_in(request, session)
    try:
        _check_csrf(key, csrf)
        row = access.load_assessment(session, caller, assessment)
        mask_png = None
        if mask is not None and mask.filename:
            limit = runtime.settings.max_upload_bytes
            mask_png = mask.file.read(limit + 1)
            if len(mask_png) > limit:
                raise DomainError(
                    f"the mask file is larger than {limit / 1e6:.0f} MB", code="payload_too_large"
                )
        trial.correct_mask(
            session,
            runtime,
            caller,
            row,
            mask_png=mask_png,
            polygon=polygon.strip() or None,
            reason=reason,
        )
    except DomainError as exc:
        return _error_page(request, caller, key, exc)
    return RedirectResponse(f"/dashboard/wounds/{row.wound_id}#{row.id}", status_code=303)


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
    caller, key = _signed_in(request, session)
    try:
        _check_csrf(key, csrf)
        row = access.load_assessment(session, caller, assessment)
        changes: dict[str, Any] = {
            "epithelialized": _tri_state(epithelialized),
            "drainage": _tri_state(drainage),
        }
        if accept == "yes":
            changes["accepted"] = True
        trial.update_assessment(session, caller, row, AssessmentUpdate(**changes))
    except DomainError as exc:
        return _error_page(request, caller, key, exc)
    return RedirectResponse(f"/dashboard/wounds/{row.wound_id}#{row.id}", status_code=303)


@router.get("/studies/{study}/export.{kind}")
def export(study: str, kind: str, request: Request, session: SessionDep) -> Response:
    """The API's exports for a signed-in monitor or admin: the API's own handlers, so the
    files and their audit entries are the same."""
    caller, key = _signed_in(request, session)
    try:
        row = access.load_study(session, caller, study)
        settings = request.app.state.settings
        handlers = {
            "csv": export_routes.export_csv,
            "fhir.json": export_routes.export_fhir,
            "tu.csv": export_routes.export_tu,
            "tr.csv": export_routes.export_tr,
        }
        if kind == "dm.csv":
            return export_routes.export_dm(row, session, caller)
        if kind not in handlers:
            raise HTTPException(status_code=404, detail=f"no export {kind}")
        return handlers[kind](row, session, caller, settings)
    except DomainError as exc:
        return _error_page(request, caller, key, exc)
