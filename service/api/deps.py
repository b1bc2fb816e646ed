"""FastAPI dependencies: settings, a DB session, the caller, and visible resources.

Routes declare what they need with these ``Annotated`` aliases, e.g.::

    @router.get("/v1/wounds/{wound}/endpoints")
    def wound_endpoints(wound: VisibleWound, session: SessionDep, caller: CallerDep): ...

The path parameter names are fixed: ``{study}``, ``{subject}``, ``{wound}``,
``{assessment}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from service.config import Settings
from service.core.errors import MissingKey
from service.domain import access, signin
from service.domain.auth import Caller
from service.persistence.db import Database
from service.persistence.orm import Assessment, Study, Subject, Wound
from service.runtime.context import Runtime

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer ws_…`")


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_session(db: Annotated[Database, Depends(get_db)]) -> Iterator[Session]:
    """One session per request; domain functions commit their own writes."""
    with db.sessions() as session:
        yield session


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
DatabaseDep = Annotated[Database, Depends(get_db)]
SessionDep = Annotated[Session, Depends(get_session)]


def get_caller(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None or not credentials.credentials:
        raise MissingKey("no API key: send the header 'Authorization: Bearer <your key>'")
    return signin.api_caller(session, credentials.credentials, client_address(request))


def client_address(request: Request) -> str:
    """The client's address as the server sees it (behind a proxy, the proxy's unless
    uvicorn is told to trust its forwarded headers)."""
    return request.client.host if request.client else "unknown"


CallerDep = Annotated[Caller, Depends(get_caller)]


def visible_study(study: str, session: SessionDep, caller: CallerDep) -> Study:
    return access.load_study(session, caller, study)


def visible_subject(subject: str, session: SessionDep, caller: CallerDep) -> Subject:
    return access.load_subject(session, caller, subject)


def visible_wound(wound: str, session: SessionDep, caller: CallerDep) -> Wound:
    return access.load_wound(session, caller, wound)


def visible_assessment(assessment: str, session: SessionDep, caller: CallerDep) -> Assessment:
    return access.load_assessment(session, caller, assessment)


VisibleStudy = Annotated[Study, Depends(visible_study)]
VisibleSubject = Annotated[Subject, Depends(visible_subject)]
VisibleWound = Annotated[Wound, Depends(visible_wound)]
VisibleAssessment = Annotated[Assessment, Depends(visible_assessment)]


@dataclass(frozen=True)
class Paging:
    limit: int
    offset: int


def paging(
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Items per page")] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip")] = 0,
) -> Paging:
    return Paging(limit=min(limit, settings.page_size_max), offset=offset)


PagingDep = Annotated[Paging, Depends(paging)]
