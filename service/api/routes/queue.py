"""The dashboard review queue's batch action: accept or un-accept the picked photos
(``domain.queue.accept_many``). Answers JSON to the page's script (``Accept:
application/json``), else returns to the queue (the form works without script)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from service.api.deps import SessionDep
from service.api.pages import error_page
from service.api.sessions import check_csrf, signed_in
from service.core.errors import DomainError, InvalidRequest
from service.domain import access, queue

router = APIRouter(prefix="/dashboard", include_in_schema=False)


@router.post("/studies/{study}/review/accept", response_model=None)
def accept_batch(
    study: str,
    request: Request,
    session: SessionDep,
    assessment: Annotated[list[str] | None, Form()] = None,
    accepted: Annotated[str, Form()] = "yes",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Accept (``accepted=yes``) or undo (``no``) every picked ``assessment``."""
    caller, key = signed_in(request, session)
    wants_json = "application/json" in request.headers.get("accept", "")
    try:
        check_csrf(key, csrf)
        if accepted not in ("yes", "no"):
            raise InvalidRequest("accepted: give 'yes' or 'no'")
        row = access.load_study(session, caller, study)
        done = queue.accept_many(session, caller, row, assessment or [], accepted == "yes")
    except DomainError as exc:
        if wants_json:
            return JSONResponse({"code": exc.code, "detail": exc.detail}, exc.status)
        return error_page(request, caller, key, exc)
    if wants_json:
        return JSONResponse({"accepted": accepted == "yes", "assessments": [a.id for a in done]})
    return RedirectResponse(f"/dashboard/studies/{study}/review", status_code=303)
