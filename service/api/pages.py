"""How a dashboard page renders: the templates, what every template sees, and a page
answered with the pages' security headers (a refusal as the error page).

What the templates see is set here, in one place: the asset URLs (``assets``), the
image URLs, the dashboard's words (``wording``), the roles, and the ``fmt`` filter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from service.api.assets import DASHBOARD_DIR, asset_url
from service.api.sessions import SECURITY_HEADERS, csrf_token, signed_in
from service.api.wording import CLOSURE_RULE, EVENT_TEXT, UNCOUNTED_TEXT, flag_label, fmt
from service.core.errors import DomainError
from service.domain import roles
from service.domain.auth import Caller


def overlay_url(assessment_id: str, measurement_id: int | None) -> str:
    """The overlay of one measurement: its id is in the URL, so a new correction is a
    new URL (shown at once) and each URL's image never changes (cached long)."""
    base = f"/dashboard/assessments/{assessment_id}/overlay.jpg"
    return base if measurement_id is None else f"{base}?measurement={measurement_id}"


def rectified_url(
    assessment_id: str,
    measurement_id: int,
    side_mm: float,
    px_per_mm: float,
    align_to: Any = None,
) -> str:
    """One visit rectified to the marker plane in the compare page's common window and
    scale (the URL names the image, so it is cached long); ``align_to``, the other
    visit's row (``assessment``, ``measurement``), turns this one to line up with it."""
    url = (
        f"/dashboard/assessments/{assessment_id}/rectified.jpg?measurement={measurement_id}"
        f"&side_mm={side_mm:g}&px_per_mm={px_per_mm:g}"
    )
    if align_to is not None:
        url += (
            f"&align_to={align_to['assessment'].id}&align_measurement={align_to['measurement'].id}"
        )
    return url


templates = Jinja2Templates(directory=str(DASHBOARD_DIR / "templates"))
templates.env.filters["fmt"] = fmt
templates.env.globals.update(
    {
        "asset_url": asset_url,
        "overlay_url": overlay_url,
        "rectified_url": rectified_url,
        "closure_rule": CLOSURE_RULE,
        "roles": roles,
        "uncounted_text": UNCOUNTED_TEXT,
        "event_text": EVENT_TEXT,
        "flag_label": flag_label,
    }
)


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """The template ``name`` with ``context``, with the pages' security headers."""
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def error_page(request: Request, caller: Caller, key: str, exc: DomainError) -> HTMLResponse:
    """A refused dashboard action: the same code and detail the API would answer."""
    context = {"caller": caller, "csrf": csrf_token(key), "code": exc.code, "detail": exc.detail}
    return render(request, "error.html", context, exc.status)


def render_page(
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
        return render(
            request, "error.html", {**base, "code": exc.code, "detail": exc.detail}, exc.status
        )
    return render(request, name, {**base, **context})
