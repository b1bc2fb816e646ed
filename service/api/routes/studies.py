"""Studies and their sites (admin writes; every key reads what it may see)."""

from __future__ import annotations

from fastapi import APIRouter

from service.api import views
from service.api.deps import CallerDep, RuntimeDep, SessionDep, VisibleStudy
from service.domain import access, studies
from service.domain.schemas import SiteCreate, SitePublic, StudyCreate, StudyPublic, StudyUpdate

router = APIRouter(prefix="/v1/studies", tags=["studies"])


@router.post("", status_code=201, response_model=StudyPublic)
def create_study(
    data: StudyCreate, session: SessionDep, caller: CallerDep, runtime: RuntimeDep
) -> StudyPublic:
    """Create a study (server admin key): id, name, marker size, pinned model."""
    return views.study_public(
        studies.create_study(session, caller, data, model_ok=runtime.models.installed)
    )


@router.get("", response_model=list[StudyPublic])
def list_studies(session: SessionDep, caller: CallerDep) -> list[StudyPublic]:
    rows = session.scalars(access.visible_studies(caller).order_by("id"))
    return [views.study_public(s) for s in rows]


@router.get("/{study}", response_model=StudyPublic)
def get_study(study: VisibleStudy) -> StudyPublic:
    return views.study_public(study)


@router.patch("/{study}", response_model=StudyPublic)
def update_study(
    study: VisibleStudy,
    data: StudyUpdate,
    session: SessionDep,
    caller: CallerDep,
    runtime: RuntimeDep,
) -> StudyPublic:
    """Rename, pin a model version, or lock/unlock the study (admin; locked = writes 423)."""
    return views.study_public(
        studies.update_study(session, caller, study, data, model_ok=runtime.models.installed)
    )


@router.post("/{study}/sites", status_code=201, response_model=SitePublic)
def create_site(
    study: VisibleStudy, data: SiteCreate, session: SessionDep, caller: CallerDep
) -> SitePublic:
    return views.site_public(studies.create_site(session, caller, study, data))


@router.get("/{study}/sites", response_model=list[SitePublic])
def list_sites(study: VisibleStudy, session: SessionDep, caller: CallerDep) -> list[SitePublic]:
    return [views.site_public(s) for s in studies.list_sites(session, caller, study)]
