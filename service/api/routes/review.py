"""The clinician's review queue: photos whose measurement waits for a person."""

from __future__ import annotations

from fastapi import APIRouter

from service.api import views
from service.api.deps import CallerDep, PagingDep, SessionDep, VisibleStudy
from service.domain import reviewing
from service.domain.schemas import Page, ReviewItem

router = APIRouter(tags=["review"])


@router.get("/v1/studies/{study}/review", response_model=Page[ReviewItem])
def review_queue(
    study: VisibleStudy, session: SessionDep, caller: CallerDep, paging: PagingDep
) -> Page[ReviewItem]:
    """Assessments awaiting a clinician's review (severe- or review-flagged, or every
    model measurement under the ``all`` policy), the longest waiting first, each with
    its reasons; site keys see their site's. Accept with ``PATCH /v1/assessments/{id}``
    ``{"accepted": true}``, correct with ``PUT /v1/assessments/{id}/mask``, or void."""
    rows, total = reviewing.review_queue(
        session, caller, study, limit=paging.limit, offset=paging.offset
    )
    items = [
        ReviewItem(
            site=a.wound.subject.site.code,
            subject_code=a.wound.subject.code,
            wound_label=a.wound.label,
            reasons=public.review.reasons,
            assessment=public,
        )
        for a, public in zip(rows, views.assessments_public(session, rows), strict=True)
    ]
    return Page(items=items, total=total, limit=paging.limit, offset=paging.offset)
