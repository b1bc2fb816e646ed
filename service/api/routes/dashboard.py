"""The clinicians' dashboard: server-rendered pages over the same domain functions as the API.

Sign-in trades the person's API key for a session cookie once (``service.api.sessions``:
the cookie, the forms' CSRF tokens, the pages' security headers). Roles and site scopes
are the API's: pages load resources through ``service.domain.access``, answers come
from ``service.domain.outcomes``, corrections go through ``trial.correct_mask``, and
the downloads are the API's exports (``service.api.downloads``).

Every asset is local: plotly.js (its basic build, vendored in static/vendor), gzipped
and cached by content hash (``asset_url``).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import hmac
import json
import secrets
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.orm import Session

from service.api import views
from service.api.deps import RuntimeDep, SessionDep
from service.api.downloads import download
from service.api.sessions import (
    LOGIN_CSRF_COOKIE,
    SECURITY_HEADERS,
    check_csrf,
    csrf_token,
    delete_session_cookie,
    set_session_cookie,
    signed_in,
)
from service.core.answers import EventCreate
from service.core.errors import DomainError, InvalidRequest, NotFound
from service.core.healing import (
    CLOSURE_CONFIRM_DAYS,
    EVENT_KINDS,
    LEGS,
    PAR_RESPONSE_PCT,
    PAR_WEEK4_WINDOW_DAYS,
)
from service.core.measure import QUALITY_CODES
from service.domain import access, auth, roles, trial
from service.domain.auth import Caller
from service.domain.outcomes import (
    load_visible_subjects,
    study_answer,
    subject_answer,
    wound_answer,
)
from service.domain.roles import CORRECTORS, EXPORTERS
from service.domain.schemas import AssessmentUpdate
from service.persistence.orm import Assessment, Study, Subject, Wound

router = APIRouter(prefix="/dashboard", include_in_schema=False)

DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "dashboard"
STATIC_DIR = DASHBOARD_DIR / "static"
templates = Jinja2Templates(directory=str(DASHBOARD_DIR / "templates"))


def plotly_js_path() -> Path:
    """plotly.js's basic build, vendored (``static/vendor/SOURCE.md``): the dashboard draws
    scatter traces only, and the full bundle costs a second to compile on a first visit."""
    return STATIC_DIR / "vendor" / "plotly-basic.min.js"


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
    caller, key = signed_in(request, session)
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


PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def step_path(times: list[float], values: list[float]) -> tuple[list[float], list[float]]:
    """The corners of a right-continuous step function (plotly's ``hv``) as a plain
    polyline, so a band's lower edge can be walked backwards without plotly
    re-interpreting the steps (its ``hv`` reversed draws ``vh``)."""
    xs: list[float] = []
    ys: list[float] = []
    for i, (t, v) in enumerate(zip(times, values, strict=True)):
        if i:
            xs.append(t)
            ys.append(values[i - 1])
        xs.append(t)
        ys.append(v)
    return xs, ys


def km_band(km: dict[str, Any]) -> tuple[list[float], list[float]]:
    """The closed polygon of the 95 % band: upper steps forward, lower steps backward."""
    keep = [
        i
        for i, (lo, hi) in enumerate(zip(km["ci95_low"], km["ci95_high"], strict=True))
        if lo is not None and hi is not None
    ]
    times = [km["timeline_days"][i] for i in keep]
    hx, hy = step_path(times, [km["ci95_high"][i] for i in keep])
    lx, ly = step_path(times, [km["ci95_low"][i] for i in keep])
    return hx + lx[::-1], hy + ly[::-1]


def km_figure(answer: dict[str, Any], *, title: str) -> dict[str, Any]:
    """Kaplan–Meier step curves of time to closure (pooled, or per arm for admins), each
    with its 95 % band in the curve's colour, drawn only over the follow-up."""
    groups = answer.get("by_arm") or {"all subjects": answer}
    data: list[dict[str, Any]] = []
    for i, (name, group) in enumerate(groups.items()):
        km = group["km"]
        if not km["timeline_days"]:
            continue
        data += step_traces(
            str(name),
            km,
            km["survival"],
            PALETTE[i % len(PALETTE)],
            band_name=f"{name}: 95% CI",
            hover="day %{x}: %{y:.2f} not yet healed<extra></extra>",
        )
    return step_figure(data, title, "proportion not yet healed")


def step_traces(
    name: str,
    curve: dict[str, Any],
    y: list[float],
    colour: str,
    *,
    band_name: str,
    hover: str,
) -> list[dict[str, Any]]:
    """A step curve (``curve["timeline_days"]`` against ``y``) and its 95 % band
    (``km_band``) in the curve's colour, one legend entry for both."""
    band_x, band_y = km_band(curve)
    return [
        {
            "type": "scatter",
            "mode": "lines",
            "name": band_name,
            "x": band_x,
            "y": band_y,
            "line": {"width": 0, "color": colour},
            "fill": "toself",
            "fillcolor": _rgba(colour, 0.18),
            "hoverinfo": "skip",
            "legendgroup": name,
            "showlegend": False,
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": name,
            "x": curve["timeline_days"],
            "y": y,
            "line": {"shape": "hv", "color": colour},
            "legendgroup": name,
            "hovertemplate": hover,
        },
    ]


def step_figure(data: list[dict[str, Any]], title: str, y_title: str) -> dict[str, Any]:
    """The layout every time-to-event plot shares: days from baseline, a 0–1 axis."""
    return {
        "data": data,
        "layout": {
            "title": {"text": title},
            "xaxis": {"title": {"text": "days from baseline"}, "rangemode": "tozero"},
            "yaxis": {"title": {"text": y_title}, "range": [0, 1.05]},
            "legend": LEGEND_BELOW,
            "margin": {"t": 50, "r": 20, "l": 60},
        },
    }


def follow_up_days(answer: dict[str, Any]) -> float | None:
    """The last day of follow-up of the Kaplan–Meier curve (None without subjects)."""
    days = answer["km"]["timeline_days"]
    return max(days) if days else None


def proportions_within_follow_up(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The study's "healed by day N" figures, each marked beyond follow-up when N is
    past the last subject's last day (the Kaplan–Meier estimate is flat there, not known)."""
    last = follow_up_days(answer)
    return [
        {
            "day": int(day),
            "pct": None if p is None else 100.0 * p,
            "beyond": last is None or int(day) > last,
        }
        for day, p in answer["proportion_healed"].items()
    ]


def ci_text(low: float | None, high: float | None) -> str:
    """A median's 95 % CI in words: an open end is "not reached", not a dash."""
    if low is None and high is None:
        return "not estimable"
    lo = "not reached" if low is None else f"{low:.0f}"
    hi = "not reached" if high is None else f"{high:.0f}"
    return f"{lo} to {hi} days"


AT_RISK_STEP_DAYS = 28


def number_at_risk(answer: dict[str, Any]) -> dict[str, Any]:
    """The number-at-risk table under the Kaplan–Meier plot: per group (pooled, or per
    arm for admins, as the curves), how many subjects are still followed and not yet
    healed at day 0, 28, 56, … up to the end of follow-up (a subject is at risk at day
    d while its time to closure, healed or censored, is ≥ d)."""
    timed = [r for r in answer["subject_rows"] if r["time_to_closure_days"] is not None]
    if not timed:
        return {"days": [], "groups": {}}
    last = max(r["time_to_closure_days"] for r in timed)
    days = list(range(0, int(last) + 1, AT_RISK_STEP_DAYS))
    if answer.get("by_arm"):
        names = list(answer["by_arm"])
        groups = {
            name: [r for r in timed if (r.get("arm") or "unassigned") == name] for name in names
        }
    else:
        groups = {"all subjects": timed}
    return {
        "days": days,
        "groups": {
            name: [sum(1 for r in rows if r["time_to_closure_days"] >= d) for d in days]
            for name, rows in groups.items()
        },
    }


LEGEND_BELOW = {"orientation": "h", "x": 0, "y": -0.22, "yanchor": "top"}
"""Legends sit under the plot: beside it they squeeze a phone-width plot to nothing."""

AREA_TRACE = "area (cm²)"
BAND_TRACE = "95 % interval"
POINT_STYLES: dict[str, tuple[str, str, str]] = {
    # kind: (legend label, marker symbol, colour)
    "model": ("model outline, counted", "circle", "#1d3557"),
    "manual": ("clinician's outline", "square", "#2a7d3b"),
    "awaiting": ("awaiting review (not counted)", "diamond-open", "#d97706"),
    "uncounted": ("not counted", "x-thin-open", "#a4161a"),
}
"""How the area plot marks each kind of point (one home: the legend and the points)."""


def point_kind(visit: dict[str, Any], *, manual: bool, awaiting: bool) -> str:
    if awaiting:
        return "awaiting"
    if not visit["counted"]:
        return "uncounted"
    return "manual" if manual else "model"


def area_figure(
    answer: dict[str, Any],
    *,
    title: str,
    manual: frozenset[str] = frozenset(),
    awaiting: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Area over time: one point per assessment with an area, marked by kind
    (``POINT_STYLES``: model, clinician's outline, awaiting review, not counted), the
    95 % interval as a band, clinician closure observations, and the confirmed closure
    and recurrence as vertical lines with their own legend entries."""
    visits = answer["visits"]
    measured = [v for v in visits if v["area_cm2"] is not None]
    kinds = [
        point_kind(v, manual=v["assessment"] in manual, awaiting=v["assessment"] in awaiting)
        for v in measured
    ]
    data = [
        *_interval_band(measured),
        _area_trace(measured, kinds),
        *_point_legend(kinds),
        *_closed_markers(visits),
        *_closure_lines(answer, measured),
    ]
    return {"data": data, "layout": _area_layout(title)}


def _interval_band(measured: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The 95 % interval of the visits that have one, as a filled band (none without)."""
    banded = [
        v for v in measured if v["area_cm2_low"] is not None and v["area_cm2_high"] is not None
    ]
    if not banded:
        return []
    return [
        {
            "type": "scatter",
            "mode": "lines",
            "name": BAND_TRACE,
            "x": [v["captured_at"] for v in banded] + [v["captured_at"] for v in banded[::-1]],
            "y": [v["area_cm2_high"] for v in banded] + [v["area_cm2_low"] for v in banded[::-1]],
            "fill": "toself",
            "fillcolor": "rgba(29,53,87,0.18)",
            "line": {"width": 0},
            "hoverinfo": "skip",
        }
    ]


def _area_trace(measured: list[dict[str, Any]], kinds: list[str]) -> dict[str, Any]:
    """The area line, each point drawn as its kind; out of the legend (``_point_legend``
    names the kinds), the hover says the day, PAR and kind."""
    colours = [POINT_STYLES[k][2] for k in kinds]
    return {
        "type": "scatter",
        "mode": "lines+markers",
        "name": AREA_TRACE,
        "x": [v["captured_at"] for v in measured],
        "y": [v["area_cm2"] for v in measured],
        "customdata": [
            [v["day"], v["par_pct"], v["assessment"], POINT_STYLES[k][0]]
            for v, k in zip(measured, kinds, strict=True)
        ],
        "line": {"color": "#8896ab"},
        "marker": {
            "size": 10,
            "symbol": [POINT_STYLES[k][1] for k in kinds],
            "color": colours,
            "line": {"width": 2, "color": colours},
        },
        "showlegend": False,
        "hovertemplate": "day %{customdata[0]}: %{y:.2f} cm² (PAR %{customdata[1]:.0f} %)"
        "<br>%{customdata[3]}<extra>%{customdata[2]}</extra>",
    }


def _point_legend(kinds: list[str]) -> list[dict[str, Any]]:
    """One empty trace per kind of point on the plot: a legend entry each, in
    ``POINT_STYLES`` order (one trace of many marker styles has no per-point legend)."""
    return [
        {
            "type": "scatter",
            "mode": "markers",
            "name": label,
            "x": [None],
            "y": [None],
            "marker": {"size": 10, "symbol": symbol, "color": colour},
            "hoverinfo": "skip",
        }
        for kind, (label, symbol, colour) in POINT_STYLES.items()
        if kind in kinds
    ]


def _closed_markers(visits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stars at zero where a clinician recorded the wound closed (none without)."""
    closed = [v for v in visits if v["closed"]]
    if not closed:
        return []
    return [
        {
            "type": "scatter",
            "mode": "markers",
            "name": "recorded closed (clinician)",
            "x": [v["captured_at"] for v in closed],
            "y": [0 for _ in closed],
            "marker": {"symbol": "star", "size": 12, "color": "#2a9d4b"},
            "hovertemplate": "day %{text}: recorded closed<extra></extra>",
            "text": [str(v["day"]) for v in closed],
        }
    ]


def _closure_lines(answer: dict[str, Any], measured: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Dashed vertical lines at the confirmed closure and the recurrence (on the date
    of that visit), as tall as the plot's highest point or interval."""
    day_to_date = {v["day"]: v["captured_at"] for v in answer["visits"]}
    top = max([v["area_cm2_high"] or v["area_cm2"] for v in measured] or [1.0]) or 1.0
    return [
        {
            "type": "scatter",
            "mode": "lines",
            "name": f"{label} (day {day})",
            "x": [day_to_date[day], day_to_date[day]],
            "y": [0, top * 1.05],
            "line": {"color": colour, "dash": "dash", "width": 2},
            "hoverinfo": "name",
        }
        for day, colour, label in (
            (answer.get("closure_day"), "#2a9d4b", "closure confirmed"),
            (answer.get("recurrence_day"), "#c0392b", "recurrence"),
        )
        if day is not None and day in day_to_date
    ]


def _area_layout(title: str) -> dict[str, Any]:
    """The layout of the area plots (a wound's, a subject's): area against capture date."""
    return {
        "title": {"text": title},
        "xaxis": {"title": {"text": "captured"}, "type": "date"},
        "yaxis": {"title": {"text": "area (cm²)"}, "rangemode": "tozero"},
        "legend": LEGEND_BELOW,
        "margin": {"t": 50, "r": 20, "l": 60},
    }


STALLED_PAR_PCT = PAR_RESPONSE_PCT
"""PAR at week 4 under this is a stalled wound (the usual week-4 predictor of healing)."""
WOUND_STATUSES = {
    "healed": "healed",
    "pending": "closure pending confirmation",
    "stalled": "stalled (PAR < 50 % at week 4)",
    "open": "open",
}


def wound_status(answer: dict[str, Any]) -> str:
    """A wound's badge: healed (confirmed closure, not re-opened), closure pending
    confirmation (its last visit recorded closed, not yet confirmed), stalled (PAR at
    week 4 under ``STALLED_PAR_PCT``), else open."""
    if answer["healed_at_last_visit"]:
        return "healed"
    effective = [v for v in answer["visits"] if v["uncounted_reason"] != "voided"]
    if effective and effective[-1]["closed"]:
        return "pending"
    par = answer["par_week4_pct"]
    if par is not None and par < STALLED_PAR_PCT:
        return "stalled"
    return "open"


def subject_figure(answer: dict[str, Any], *, title: str) -> dict[str, Any]:
    """Every wound's area over the subject's visits on one plot (open markers: not
    counted), one colour per wound."""
    data: list[dict[str, Any]] = []
    for i, wound in enumerate(answer["wounds"]):
        measured = [v for v in wound["visits"] if v["area_cm2"] is not None]
        if not measured:
            continue
        colour = PALETTE[i % len(PALETTE)]
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": str(wound["label"]),
                "x": [v["captured_at"] for v in measured],
                "y": [v["area_cm2"] for v in measured],
                "customdata": [[v["day"], v["assessment"]] for v in measured],
                "line": {"color": colour},
                "marker": {
                    "size": 9,
                    "color": colour,
                    "symbol": ["circle" if v["counted"] else "circle-open" for v in measured],
                },
                "hovertemplate": f"{wound['label']} day %{{customdata[0]}}: %{{y:.2f}} cm²"
                "<extra>%{customdata[1]}</extra>",
            }
        )
    return {"data": data, "layout": _area_layout(title)}


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


templates.env.filters["fmt"] = _fmt


def plain_flag(flag: dict[str, Any]) -> dict[str, Any]:
    """A quality or series flag as a person reads it: its own message (which names the
    numbers), else the code's meaning from ``QUALITY_CODES`` (the one home of flag
    messages); the code stays as a data attribute, not as the text."""
    code = str(flag.get("code"))
    meaning, severe = QUALITY_CODES.get(code, (code.replace("_", " "), False))
    return {
        "code": code,
        "severe": bool(flag.get("severe", severe)),
        "meaning": meaning,
        "text": str(flag.get("message") or meaning),
    }


def plain_flags(flags: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [plain_flag(f) for f in flags]


UNCOUNTED_TEXT = {
    "voided": "voided",
    "no_measurement": "no measurement",
    "uncalibrated": "no scale on the photo (area in pixels only)",
    "severe_quality_flag": "a severe quality flag: counts once a clinician accepts or corrects it",
    "awaiting_review": "awaiting a clinician's review",
}
"""Why a photo does not count (``trial.uncounted_reason``), in words."""

CLOSURE_RULE = (
    "Closure is confirmed when the wound is recorded closed (fully re-epithelialised, no"
    f" drainage) at consecutive visits spanning at least {CLOSURE_CONFIRM_DAYS} days: a"
    f" single closed visit, or a visit recorded open within {CLOSURE_CONFIRM_DAYS} days, is"
    " not yet closure. The day of closure is the first closed visit of that run."
)
"""The confirmation rule in words, shown wherever closure is (``endpoints``' rule)."""
templates.env.globals["closure_rule"] = CLOSURE_RULE
templates.env.globals["roles"] = roles
templates.env.globals["uncounted_text"] = UNCOUNTED_TEXT


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
    set_session_cookie(request, response, session_id)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/dashboard")
    return response


@router.post("/logout")
def logout(
    request: Request, session: SessionDep, csrf: Annotated[str, Form()] = ""
) -> RedirectResponse:
    _, session_id = signed_in(request, session)
    check_csrf(session_id, csrf)
    auth.end_session(session, session_id)
    response = RedirectResponse("/dashboard/login", status_code=303)
    delete_session_cookie(request, response)
    return response


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
        awaiting = trial.review_queue(session, caller, row, limit=0, offset=0)[1]
        return "study.html", {
            **_study_context(row, list(subjects.values()), answer, dict(request.query_params)),
            "study": row,
            "answer": answer,
            "awaiting": awaiting,
            "proportions": proportions_within_follow_up(answer),
            "at_risk": number_at_risk(answer),
            "median_ci": ci_text(*answer["median_time_to_closure_days_ci95"]),
            "subjects": subjects,
            "can_export": caller.role in EXPORTERS,
            "km_json": figure_json(
                km_figure(answer, title=f"{row.id}: time to closure of all ulcers")
            ),
        }

    return _page(request, session, build)


@router.get("/subjects/{subject}", response_class=HTMLResponse)
def subject_page(subject: str, request: Request, session: SessionDep) -> HTMLResponse:
    def build(caller: Caller, _: str) -> tuple[str, dict[str, Any]]:
        return "subject.html", _subject_context(
            caller, access.load_subject(session, caller, subject), None
        )

    return _page(request, session, build)


def _subject_context(caller: Caller, row: Subject, form: dict[str, Any] | None) -> dict[str, Any]:
    """The subject page; ``form``: a refused event form's values and error."""
    study = access.study_of(row)
    answer = subject_answer(row)
    by_id = {w.id: w for w in row.wounds}
    warnings = []
    cards = []
    for wound_answer_ in answer["wounds"]:
        wound_row = by_id[wound_answer_["wound"]]
        rows = _assessment_rows(wound_row, study)
        live = [r for r in rows if not r["assessment"].voided]
        warnings += [
            {"wound": wound_row, "row": r, "flags": r["flags"]} for r in live if r["flags"]
        ]
        photos = [r for r in live if r["measurement"] is not None]
        cards.append(
            {
                "wound": wound_row,
                "answer": wound_answer_,
                "status": wound_status(wound_answer_),
                "latest": photos[-1] if photos else None,
                "awaiting": sum(1 for r in live if r["awaiting"]),
            }
        )
    return {
        "subject": row,
        "answer": answer,
        "warnings": warnings,
        "cards": cards,
        "statuses": WOUND_STATUSES,
        "subject_json": figure_json(
            subject_figure(answer, title=f"{row.code}: every wound's area")
        ),
        **_events_context(caller, row, study, form),
    }


def _assessment_rows(wound: Wound, study: Study) -> list[dict[str, Any]]:
    """Each assessment of a wound with the measurement that counts, its flags (own and
    series, in words), why it does not count, and whether it awaits review."""
    series = trial.series_flags_of(wound, study)
    rows = []
    for assessment in sorted(wound.assessments, key=lambda a: (a.captured_at, a.created_at)):
        current = trial.current_measurement(assessment, study)
        data: dict[str, Any] = current.data if current is not None else {}
        own = series.get(assessment.id, [])
        rows.append(
            {
                "assessment": assessment,
                "measurement": current,
                "data": data,
                "flags": plain_flags([*(data.get("quality") or ()), *own]),
                "uncounted_reason": trial.uncounted_reason(assessment, current, own),
                "awaiting": trial.awaiting_review(assessment, current, study, own),
                "reviewed": trial.is_reviewed(assessment, current),
                "history": len(assessment.measurements),
            }
        )
    return rows


def overlay_url(assessment_id: str, measurement_id: int | None) -> str:
    """The overlay of one measurement: its id is in the URL, so a new correction is a
    new URL (shown at once) and each URL's image never changes (cached long)."""
    base = f"/dashboard/assessments/{assessment_id}/overlay.jpg"
    return base if measurement_id is None else f"{base}?measurement={measurement_id}"


templates.env.globals["overlay_url"] = overlay_url


def _wound_context(caller: Caller, row: Wound, form: dict[str, Any] | None) -> dict[str, Any]:
    """The wound page; ``form``: a refused form's values and error, shown in its panel."""
    study = access.study_of(row)
    answer = wound_answer(row)
    days = {v["assessment"]: v["day"] for v in answer["visits"]}
    rows = _assessment_rows(row, study)
    manual = frozenset(
        r["assessment"].id for r in rows if r["measurement"] and r["measurement"].manual
    )
    awaiting = frozenset(r["assessment"].id for r in rows if r["awaiting"])
    return {
        "wound": row,
        "study": study,
        "answer": answer,
        "days": days,
        "rows": rows,
        "wound_flags": plain_flags(answer["flags"]),
        "form": form or {},
        "can_correct": caller.role in CORRECTORS and not study.locked,
        "area_json": figure_json(
            area_figure(
                answer,
                title=f"{row.subject.code} {row.label}: area over time",
                manual=manual,
                awaiting=awaiting,
            )
        ),
    }


@router.get("/wounds/{wound}", response_class=HTMLResponse)
def wound_page(wound: str, request: Request, session: SessionDep) -> HTMLResponse:
    def build(caller: Caller, _: str) -> tuple[str, dict[str, Any]]:
        return "wound.html", _wound_context(caller, access.load_wound(session, caller, wound), None)

    return _page(request, session, build)


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
        return _error_page(request, caller, key, exc)
    form = {**form, "assessment": row.id, "code": exc.code, "detail": exc.detail}
    base = {"caller": caller, "csrf": csrf_token(key)}
    if back == "review":
        context = _review_context(session, caller, access.study_of(row), 0, form)
        return _render(request, "review.html", {**base, **context}, exc.status)
    context = _wound_context(caller, row.wound, form)
    return _render(request, "wound.html", {**base, **context}, exc.status)


def _back_to(row: Assessment, back: str) -> RedirectResponse:
    """Where an action returns: the review queue or the wound (never a caller's URL)."""
    if back == "review":
        study = access.study_of(row)
        return RedirectResponse(f"/dashboard/studies/{study.id}/review", status_code=303)
    return RedirectResponse(f"/dashboard/wounds/{row.wound_id}#{row.id}", status_code=303)


REVIEW_PAGE_SIZE = 20


def _review_context(
    session: Session, caller: Caller, study: Study, offset: int, form: dict[str, Any] | None
) -> dict[str, Any]:
    """The review queue (the API's ``trial.review_queue``, scoped by the caller's site):
    each photo with its reasons in words and its wound's series beside it."""
    rows, total = trial.review_queue(session, caller, study, limit=REVIEW_PAGE_SIZE, offset=offset)
    series: dict[str, list[dict[str, Any]]] = {}
    days: dict[str, dict[str, int]] = {}
    items = []
    for a in rows:
        if a.wound_id not in series:
            series[a.wound_id] = _assessment_rows(a.wound, study)
            days[a.wound_id] = {v["assessment"]: v["day"] for v in wound_answer(a.wound)["visits"]}
        current = trial.current_measurement(a, study)
        own = trial.series_flags_of(a.wound, study).get(a.id, [])
        items.append(
            {
                "assessment": a,
                "measurement": current,
                "reasons": plain_flags(trial.review_reasons(a, current, own)),
                "series": series[a.wound_id],
                "days": days[a.wound_id],
            }
        )
    return {
        "study": study,
        "items": items,
        "total": total,
        "offset": offset,
        "page_size": REVIEW_PAGE_SIZE,
        "form": form or {},
        "can_review": caller.role in CORRECTORS and not study.locked,
    }


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
        return "review.html", _review_context(session, caller, row, offset, None)

    return _page(request, session, build)


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
        trial.update_assessment(session, caller, row, AssessmentUpdate(accepted=accepted == "yes"))
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
        trial.update_assessment(session, caller, row, AssessmentUpdate(voided=True, reason=reason))
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
    chosen = trial.find_measurement(row, measurement, access.study_of(row))
    photo = runtime.store.get(row.photo_key)
    mask = runtime.store.get(chosen.mask_key)
    jpeg = runtime.pool.run(runtime.overlay, photo, mask)
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
) -> Response:
    """A clinician's corrected outline (polygon in photo pixels, or a mask PNG) + reason:
    the same domain function as ``PUT /v1/assessments/{id}/mask``."""
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
        form = {"action": "correct", "polygon": polygon, "reason": reason}
        return _refused_form(request, session, caller, key, exc, row, "", form)
    return _back_to(row, "")


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
    try:
        check_csrf(key, csrf)
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
        return download(session, caller, row, kind, request.app.state.settings)
    except DomainError as exc:
        return _error_page(request, caller, key, exc)


# --- study overview: subjects table, filters, data quality (issue 16) ------------------

FOLLOW_UP_VISIT_DAYS = 14
"""The fortnightly visit the demo and the tests follow; the data model has no per-study
visit schedule (the study holds none), so "overdue" is defined from this cadence."""
OVERDUE_AFTER_DAYS = FOLLOW_UP_VISIT_DAYS + PAR_WEEK4_WINDOW_DAYS
"""A subject still in follow-up (not healed; no death, major amputation of the index leg,
withdrawal or loss to follow-up recorded) is overdue when its last photo is more than
this many days old: the next fortnightly visit plus the ±7-day visit window."""
FOLLOW_UP_ENDS = ("death", "withdrawal", "lost_to_follow_up")
"""Events after which no visit is expected (plus a major amputation of the index leg)."""
SUBJECT_FILTERS = ("site", "status", "flagged", "overdue", "q")
OVERDUE_TEXT = (
    f"Overdue: not healed, still in follow-up, and no photo for more than {OVERDUE_AFTER_DAYS}"
    f" days (the next {FOLLOW_UP_VISIT_DAYS}-day visit plus its ±{PAR_WEEK4_WINDOW_DAYS}-day"
    " window; the study has no visit schedule of its own)."
)


def subject_status(wound_statuses: Iterable[str], all_wounds_healed: bool | None) -> str:
    """A subject's badge from its considered wounds' badges (``wound_status``): healed
    when all its ulcers are healed, pending when every wound is healed or pending, stalled
    when any wound is stalled, else open."""
    statuses = list(wound_statuses)
    if all_wounds_healed:
        return "healed"
    if statuses and all(s in ("healed", "pending") for s in statuses):
        return "pending"
    if "stalled" in statuses:
        return "stalled"
    return "open"


def follow_up_ended(subject: Subject) -> bool:
    for event in trial.live_events(subject):
        if event.kind in FOLLOW_UP_ENDS:
            return True
        if event.kind == "major_amputation" and event.leg == "index":
            return True
    return False


def is_overdue(last_visit: date | None, today: date, *, status: str, in_follow_up: bool) -> bool:
    """Overdue per ``OVERDUE_AFTER_DAYS`` (a subject without a photo is not overdue: it
    has no visit to be late from)."""
    if last_visit is None or status == "healed" or not in_follow_up:
        return False
    return (today - last_visit).days > OVERDUE_AFTER_DAYS


def subject_overview(subject: Subject, study: Study, today: date) -> dict[str, Any]:
    """One row of the study's subjects table: status, last visit, current area (sum of
    each considered wound's latest counted area), the lowest wound PAR at week 4, its
    photos with flags (by code), severe ones, retakes (a wound's further live photos on
    the same day), those awaiting review, overdue."""
    answer = subject_answer(subject)
    considered = [w for w in answer["wounds"] if w["wound"] in answer["wounds_considered"]]
    status = subject_status((wound_status(w) for w in considered), answer["all_wounds_healed"])
    live = [
        r
        for wound in subject.wounds
        for r in _assessment_rows(wound, study)
        if not r["assessment"].voided
    ]
    last_visit = max((r["assessment"].captured_at.date() for r in live), default=None)
    areas = []
    for w in considered:
        counted = [v["area_cm2"] for v in w["visits"] if v["counted"] and v["area_cm2"] is not None]
        areas.append(counted[-1] if counted else None)
    pars = [w["par_week4_pct"] for w in considered if w["par_week4_pct"] is not None]
    codes: Counter[str] = Counter(f["code"] for r in live for f in r["flags"])
    per_day = Counter((r["assessment"].wound_id, r["assessment"].captured_at.date()) for r in live)
    in_follow_up = not follow_up_ended(subject)
    return {
        "subject": subject,
        "status": status,
        "last_visit": last_visit,
        "area_cm2": sum(a for a in areas if a is not None) if areas and None not in areas else None,
        "par_week4_pct": min(pars) if pars else None,
        "photos": len(live),
        "flagged": sum(1 for r in live if r["flags"]),
        "severe": sum(1 for r in live if any(f["severe"] for f in r["flags"])),
        "awaiting": sum(1 for r in live if r["awaiting"]),
        "retakes": sum(n - 1 for n in per_day.values()),
        "codes": codes,
        "in_follow_up": in_follow_up,
        "overdue": is_overdue(last_visit, today, status=status, in_follow_up=in_follow_up),
    }


def subject_filters(params: dict[str, str]) -> dict[str, str]:
    """The study page's filters from its query string (shareable links); an unknown
    status or yes/no value is refused with what to give."""
    filters = {k: params.get(k, "").strip() for k in SUBJECT_FILTERS}
    if filters["status"] and filters["status"] not in WOUND_STATUSES:
        raise InvalidRequest(f"status: give one of {', '.join(WOUND_STATUSES)}")
    for name in ("flagged", "overdue"):
        if filters[name] not in ("", "yes", "no"):
            raise InvalidRequest(f"{name}: give 'yes' or 'no'")
    return filters


def filter_subjects(rows: list[dict[str, Any]], filters: dict[str, str]) -> list[dict[str, Any]]:
    def keep(row: dict[str, Any]) -> bool:
        s = row["subject"]
        if filters["site"] and s.site.code != filters["site"]:
            return False
        if filters["status"] and row["status"] != filters["status"]:
            return False
        if filters["flagged"] and (row["flagged"] > 0) != (filters["flagged"] == "yes"):
            return False
        if filters["overdue"] and row["overdue"] != (filters["overdue"] == "yes"):
            return False
        return not filters["q"] or filters["q"].casefold() in s.code.casefold()

    return [r for r in rows if keep(r)]


def incidence_figure(answer: dict[str, Any], *, title: str) -> dict[str, Any]:
    """Cumulative incidence of healing (Aalen–Johansen, death and index-leg major
    amputation competing) with its 95 % band, as the study answer gives it."""
    ci = answer["cumulative_incidence"]
    data: list[dict[str, Any]] = []
    if ci["timeline_days"]:
        data = step_traces(
            "healed (death, major amputation competing)",
            ci,
            ci["cumulative_incidence"],
            PALETTE[2],
            band_name="95% CI",
            hover="day %{x}: %{y:.2f} healed<extra></extra>",
        )
    return step_figure(data, title, "cumulative incidence of healing")


def competing_at_risk(answer: dict[str, Any], days: list[int]) -> list[int]:
    """Subjects at risk in the competing-risk analysis at each day (competing-risk time
    ≥ day: not yet healed, dead or amputated, and still followed)."""
    times = [r["cr_time_days"] for r in answer["subject_rows"] if r["cr_time_days"] is not None]
    return [sum(1 for t in times if t >= d) for d in days]


def _study_context(
    row: Study, subjects: list[Subject], answer: dict[str, Any], params: dict[str, str]
) -> dict[str, Any]:
    """The study page's subjects table (filtered by the query string) and the
    cumulative incidence beside the Kaplan–Meier plot."""
    filters = subject_filters(params)
    today = datetime.now(UTC).date()
    overview = [subject_overview(s, row, today) for s in subjects]
    at_risk = number_at_risk(answer)
    shown = filter_subjects(overview, filters)
    return {
        "overview": shown,
        "overview_total": len(overview),
        "statuses": WOUND_STATUSES,
        "filters": filters,
        "filter_query": urlencode({k: v for k, v in filters.items() if v}),
        "site_codes": sorted({s.site.code for s in subjects}),
        "subject_rows": {r["subject"]: r for r in answer["subject_rows"]},
        "overdue_text": OVERDUE_TEXT,
        "incidence": answer["cumulative_incidence"],
        "incidence_at_risk": competing_at_risk(answer, at_risk["days"]),
        "incidence_json": figure_json(
            incidence_figure(answer, title=f"{row.id}: cumulative incidence of healing")
        ),
    }


def site_quality(overview: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per site, what a monitor chases: photos, photos flagged (by code), severe flags,
    retakes, awaiting review, subjects overdue a visit."""
    sites: dict[str, dict[str, Any]] = {}
    for row in overview:
        code = row["subject"].site.code
        site = sites.setdefault(
            code,
            {
                "site": code,
                "subjects": 0,
                "photos": 0,
                "flagged": 0,
                "severe": 0,
                "retakes": 0,
                "awaiting": 0,
                "overdue": 0,
                "codes": Counter(),
            },
        )
        site["subjects"] += 1
        for key in ("photos", "flagged", "severe", "retakes", "awaiting"):
            site[key] += row[key]
        site["overdue"] += int(row["overdue"])
        site["codes"].update(row["codes"])
    return [sites[k] for k in sorted(sites)]


@router.get("/studies/{study}/quality", response_class=HTMLResponse)
def quality_page(study: str, request: Request, session: SessionDep) -> HTMLResponse:
    """Data quality per site for monitors (site keys see their own site)."""

    def build(caller: Caller, _: str) -> tuple[str, dict[str, Any]]:
        row = access.load_study(session, caller, study)
        today = datetime.now(UTC).date()
        overview = [
            subject_overview(s, row, today) for s in load_visible_subjects(session, caller, row)
        ]
        return "quality.html", {
            "study": row,
            "sites": site_quality(overview),
            "overdue": [r for r in overview if r["overdue"]],
            "overdue_text": OVERDUE_TEXT,
            "flag_meaning": {code: meaning for code, (meaning, _) in QUALITY_CODES.items()},
        }

    return _page(request, session, build)


# --- subject events (issue 14's dashboard form) ----------------------------------------

EVENT_TEXT = {
    "death": "death",
    "major_amputation": "major amputation",
    "minor_amputation": "minor amputation",
    "revascularisation": "revascularisation",
    "withdrawal": "withdrawal",
    "lost_to_follow_up": "lost to follow-up",
}
"""Each ``endpoints.EVENT_KINDS`` in words (the kinds themselves live there)."""
assert set(EVENT_TEXT) == set(EVENT_KINDS)
templates.env.globals["event_text"] = EVENT_TEXT


def _events_context(
    caller: Caller, row: Subject, study: Study, form: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "events": sorted(row.events, key=lambda e: (e.occurred_on, e.id)),
        "event_kinds": EVENT_KINDS,
        "legs": LEGS,
        "can_record_events": caller.role in CORRECTORS and not study.locked,
        "event_form": form or {},
    }


def _event_form_error(
    request: Request, caller: Caller, key: str, row: Subject, exc: DomainError, form: dict[str, Any]
) -> HTMLResponse:
    """A refused event form: the subject page again, the typed values kept, the error
    beside the form."""
    form = {**form, "code": exc.code, "detail": exc.detail}
    context = {"caller": caller, "csrf": csrf_token(key), **_subject_context(caller, row, form)}
    return _render(request, "subject.html", context, exc.status)


def _event_input(kind: str, on: str, leg: str, note: str) -> EventCreate:
    """The form's fields as the API's ``EventCreate`` (its validation, in words)."""
    try:
        return EventCreate(kind=kind, date=on, leg=leg or None, note=note.strip() or None)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidRequest(problems) from None


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
        return _error_page(request, caller, key, exc)
    try:
        trial.create_event(session, caller, row, _event_input(kind, on, leg, note))
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
        return _error_page(request, caller, key, exc)
    try:
        if not reason.strip():
            raise InvalidRequest("reason: say why the event was recorded in error")
        trial.void_event(session, caller, row, event_id, reason)
    except DomainError as exc:
        session.rollback()
        form = {"action": "void", "event": event_id, "reason": reason}
        return _event_form_error(request, caller, key, row, exc, form)
    return RedirectResponse(f"/dashboard/subjects/{row.id}#events", status_code=303)


# --- audit log (admin, as GET /v1/audit) -----------------------------------------------

AUDIT_PAGE_SIZE = 50


def _audit_resources(
    session: Session, caller: Caller, code_or_id: str, study: str | None
) -> list[str]:
    """The audit resources about one subject (by id, or by code within the study):
    the subject, its wounds, their assessments and its events."""
    row = session.get(Subject, code_or_id)
    if row is None and study:
        row = session.scalar(
            access.visible_subjects(caller, study).where(Subject.code == code_or_id)
        )
    if row is None or not caller.sees_study(row.study_id):
        raise NotFound("subject", code_or_id)
    return [
        f"subject/{row.id}",
        *(f"wound/{w.id}" for w in row.wounds),
        *(f"assessment/{a.id}" for w in row.wounds for a in w.assessments),
        *(f"event/{e.id}" for e in row.events),
    ]


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    session: SessionDep,
    study: Annotated[str, Query()] = "",
    action: Annotated[str, Query()] = "",
    subject: Annotated[str, Query()] = "",
    page: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    """Recent audit entries (``trial.list_audit``: admin keys; a study admin sees its
    study), filtered by action prefix and subject, 50 a page, newest first."""

    def build(caller: Caller, _: str) -> tuple[str, dict[str, Any]]:
        resources = (
            _audit_resources(session, caller, subject.strip(), study or caller.study_id)
            if subject.strip()
            else None
        )
        rows, total = trial.list_audit(
            session,
            caller,
            study_id=study or None,
            action=action.strip() or None,
            resources=resources,
            limit=AUDIT_PAGE_SIZE,
            offset=page * AUDIT_PAGE_SIZE,
        )
        query = {k: v for k, v in (("study", study), ("action", action), ("subject", subject)) if v}
        return "audit.html", {
            "entries": [views.audit_public(e) for e in rows],
            "total": total,
            "page": page,
            "pages": max(1, -(-total // AUDIT_PAGE_SIZE)),
            "filters": {"study": study, "action": action, "subject": subject},
            "prev_query": urlencode({**query, "page": page - 1}) if page > 0 else None,
            "next_query": urlencode({**query, "page": page + 1})
            if (page + 1) * AUDIT_PAGE_SIZE < total
            else None,
        }

    return _page(request, session, build)


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
    chosen = trial.find_measurement(row, measurement, access.study_of(row))
    answer = runtime.pool.run(rectify.outline_of, runtime.store.get(chosen.mask_key))
    answer["measurement"] = chosen.id
    cache = "private, max-age=86400, immutable" if measurement is not None else "no-store"
    return Response(
        json.dumps(answer), media_type="application/json", headers={"Cache-Control": cache}
    )


def _comparison(
    session: Session, caller: Caller, wound: Wound, first: str, second: str
) -> dict[str, Any]:
    """Two measured, calibrated visits of one wound: their rows, the area change and PAR
    between them, and the common window and scale of their rectified images."""
    from service.core import rectify

    study = access.study_of(wound)
    rows = {r["assessment"].id: r for r in _assessment_rows(wound, study)}
    picked = []
    for assessment_id in (first, second):
        r = rows.get(assessment_id)
        if r is None or r["assessment"].voided:
            raise DomainError(
                f"assessment {assessment_id} is not a photo of wound {wound.id}: "
                "pick two of this wound's photos",
                code="not_comparable",
            )
        m = r["measurement"]
        if m is None or m.area_cm2 is None or not m.calibrated:
            raise DomainError(
                f"assessment {assessment_id} has no calibrated measurement to compare: "
                "outline it (or retake it with the marker) first",
                code="not_comparable",
            )
        picked.append(r)
    a, b = picked
    lengths_mm = [
        10.0 * r["data"]["length_cm"] if r["data"].get("length_cm") else None for r in picked
    ]
    side_mm, px_per_mm = rectify.comparison_scale(lengths_mm)
    area_a, area_b = a["measurement"].area_cm2, b["measurement"].area_cm2
    return {
        "first": a,
        "second": b,
        "change_cm2": area_b - area_a,
        "par_pct": 100.0 * (area_a - area_b) / area_a if area_a > 0 else None,
        "side_mm": side_mm,
        "px_per_mm": px_per_mm,
    }


def rectified_url(assessment_id: str, measurement_id: int, side_mm: float, px_per_mm: float) -> str:
    return (
        f"/dashboard/assessments/{assessment_id}/rectified.jpg?measurement={measurement_id}"
        f"&side_mm={side_mm:g}&px_per_mm={px_per_mm:g}"
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
        study = access.study_of(row)
        answer = wound_answer(row)
        days = {v["assessment"]: v["day"] for v in answer["visits"]}
        choices = [
            r
            for r in _assessment_rows(row, study)
            if not r["assessment"].voided
            and r["measurement"] is not None
            and r["measurement"].area_cm2 is not None
            and r["measurement"].calibrated
        ]
        context: dict[str, Any] = {
            "wound": row,
            "study": study,
            "days": days,
            "choices": choices,
            "first_id": first or (choices[0]["assessment"].id if choices else ""),
            "second_id": second or (choices[-1]["assessment"].id if choices else ""),
            "comparison": None,
        }
        if len(choices) >= 2 or (first and second):
            context["comparison"] = _comparison(
                session, caller, row, context["first_id"], context["second_id"]
            )
        return "compare.html", context

    return _page(request, session, build)


templates.env.globals["rectified_url"] = rectified_url


@router.get("/assessments/{assessment}/rectified.jpg")
def rectified(
    assessment: str,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    measurement: Annotated[int, Query(ge=1, le=2**62)],
    side_mm: Annotated[float, Query(ge=5, le=1000)],
    px_per_mm: Annotated[float, Query(gt=0, le=50)],
) -> Response:
    """The photo warped to the marker plane: a ``side_mm`` square around the wound at
    ``px_per_mm`` pixels per mm, with the outline of ``measurement`` (the compare page
    asks both visits for the same window and scale). ``X-Px-Per-Mm`` says the scale."""
    from service.core import rectify

    caller, _ = signed_in(request, session)
    row = access.load_assessment(session, caller, assessment)
    study = access.study_of(row)
    chosen = trial.find_measurement(row, measurement, study)
    if round(side_mm * px_per_mm) > 2 * rectify.RECTIFIED_MAX_SIDE_PX:
        raise InvalidRequest(
            f"side_mm × px_per_mm: at most {2 * rectify.RECTIFIED_MAX_SIDE_PX} pixels a side"
        )
    data: dict[str, Any] = chosen.data or {}
    jpeg = runtime.pool.run(
        rectify.rectified_jpeg,
        runtime.store.get(row.photo_key),
        runtime.store.get(chosen.mask_key),
        calibration=str(data.get("calibration") or "none"),
        px_per_mm=data.get("px_per_mm"),
        marker_mm=study.marker_mm,
        side_mm=side_mm,
        out_px_per_mm=px_per_mm,
    )
    if jpeg is None:
        raise DomainError(
            f"assessment {row.id} is not calibrated: it cannot be rectified",
            code="not_comparable",
        )
    return Response(
        jpeg,
        media_type="image/jpeg",
        headers={
            "Cache-Control": "private, max-age=86400, immutable",
            "X-Px-Per-Mm": f"{px_per_mm:g}",
            "X-Side-Mm": f"{side_mm:g}",
        },
    )


# --- static assets: content-hashed, gzip-compressed, cached for a year ----------------
#
# plotly.js is ~4.8 MB; gzip brings it to ~1.4 MB. Each asset is read, hashed and
# compressed once (again only when the file changes) and kept in memory. Pages link
# ``asset_url(name)``, which carries the first 8 hex digits of the file's sha256, so a
# hashed URL can be cached ``immutable`` for a year: a new file is a new URL. The bare
# name keeps working with a short cache (bookmarks, old pages). Gzip only: no brotli
# encoder is a serving dependency.

ASSET_HASH_CHARS = 8
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"
UNHASHED_CACHE = "public, max-age=300"
ASSET_TYPES = {".js": "text/javascript", ".css": "text/css"}


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzip_body: bytes
    sha8: str
    media_type: str


def _asset_paths() -> dict[str, Path]:
    files = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()}
    files["plotly.min.js"] = plotly_js_path()
    return files


@functools.lru_cache(maxsize=32)
def _load_asset(path: Path, mtime_ns: int) -> Asset:
    body = path.read_bytes()
    return Asset(
        body=body,
        gzip_body=gzip.compress(body, compresslevel=9, mtime=0),
        sha8=hashlib.sha256(body).hexdigest()[:ASSET_HASH_CHARS],
        media_type=ASSET_TYPES.get(path.suffix, "application/octet-stream"),
    )


def asset(name: str) -> Asset:
    """The named static asset (plain, gzipped, hash), or 404."""
    path = _asset_paths().get(name)
    if path is None:
        raise HTTPException(status_code=404, detail=f"no static file {name}")
    return _load_asset(path, path.stat().st_mtime_ns)


def asset_url(name: str) -> str:
    """The one place a page gets an asset's URL: ``/dashboard/static/<stem>.<sha8><ext>``."""
    stem, dot, ext = name.rpartition(".")
    return f"/dashboard/static/{stem}.{asset(name).sha8}{dot}{ext}"


templates.env.globals["asset_url"] = asset_url


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` header allows gzip (``gzip`` or ``*`` with q > 0)."""
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "*"):
            continue
        q = params.strip().lower()
        if q.startswith("q="):
            try:
                return float(q[2:]) > 0
            except ValueError:
                return False
        return True
    return False


@router.get("/static/{name}")
def static(name: str, request: Request) -> Response:
    """Local assets only (no CDN): the dashboard's own files and plotly.js, by bare name
    (short cache) or by content-hashed name (immutable); a stale hash is 404."""
    cache = UNHASHED_CACHE
    if name not in _asset_paths():
        stem, _, ext = name.rpartition(".")
        base, _, sha8 = stem.rpartition(".")
        plain = f"{base}.{ext}"
        if not base or plain not in _asset_paths() or asset(plain).sha8 != sha8:
            raise HTTPException(status_code=404, detail=f"no static file {name}")
        name, cache = plain, IMMUTABLE_CACHE
    found = asset(name)
    headers = {
        "Cache-Control": cache,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if accepts_gzip(request.headers.get("accept-encoding", "")):
        headers["Content-Encoding"] = "gzip"
        return Response(found.gzip_body, media_type=found.media_type, headers=headers)
    return Response(found.body, media_type=found.media_type, headers=headers)
