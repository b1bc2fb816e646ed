"""A study's re-analysis batches (admin): their progress and failures."""

from __future__ import annotations

from fastapi import APIRouter

from service.api import views
from service.api.deps import CallerDep, SessionDep, VisibleStudy
from service.domain import batches
from service.domain.schemas import BatchPublic

router = APIRouter(prefix="/v1/studies", tags=["studies"])


@router.get("/{study}/reanalyses/{batch}", response_model=BatchPublic)
def get_reanalysis(
    study: VisibleStudy, batch: str, session: SessionDep, caller: CallerDep
) -> BatchPublic:
    """Progress of a re-analysis (`woundscope reanalyze` prints its id): pending, done
    and failed photos, each failure with its reason (admin)."""
    return views.batch_public(batches.batch_status(session, caller, study, batch))
