"""The audit log (admin keys; a study admin sees its own study)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.api import views
from service.api.deps import CallerDep, PagingDep, SessionDep
from service.domain import audit
from service.domain.schemas import AuditPublic, Page

router = APIRouter(tags=["audit"])


@router.get("/v1/audit", response_model=Page[AuditPublic])
def list_audit(
    session: SessionDep,
    caller: CallerDep,
    paging: PagingDep,
    study: Annotated[str | None, Query(description="Only this study's entries")] = None,
) -> Page[AuditPublic]:
    """Every write and export, newest first: who, when, what, before/after."""
    rows, total = audit.list_audit(
        session, caller, study_id=study, limit=paging.limit, offset=paging.offset
    )
    return Page(
        items=[views.audit_public(e) for e in rows],
        total=total,
        limit=paging.limit,
        offset=paging.offset,
    )
