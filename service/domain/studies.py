"""Studies and their sites: create, update (rename, pin a model, lock), list."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.core.errors import AlreadyExists, DomainError, Forbidden
from service.domain import access, audit, shared
from service.domain.auth import Caller
from service.domain.roles import ADMIN
from service.persistence.orm import Site, Study

if TYPE_CHECKING:
    from service.domain.schemas import SiteCreate, StudyCreate, StudyUpdate


def create_study(
    session: Session,
    caller: Caller,
    data: StudyCreate,
    *,
    model_ok: Callable[[str], bool] | None = None,
) -> Study:
    caller.require(ADMIN)
    if caller.study_id is not None:
        raise Forbidden("this admin key is confined to one study; a study needs a server admin key")
    if data.model and model_ok is not None and not model_ok(data.model):
        raise DomainError(
            f"model {data.model} is not installed on this server", code="model_not_installed"
        )
    if session.get(Study, data.id) is not None:
        raise AlreadyExists(f"study {data.id} already exists")
    study = Study(
        id=data.id,
        name=data.name,
        marker_mm=data.marker_mm,
        model=data.model,
        review=data.review,
        closure_requires_drainage_recorded=data.closure_requires_drainage_recorded,
        par_week4_window_days=data.par_week4_window_days,
        control_arm=data.control_arm,
        visit_schedule=data.visit_schedule.model_dump() if data.visit_schedule else None,
        photos_after_withdrawal=data.photos_after_withdrawal,
    )
    session.add(study)
    audit.record(
        session,
        caller,
        "study.create",
        f"study/{data.id}",
        study_id=data.id,
        after=data.model_dump(),
    )
    shared.commit_or_conflict(session, f"study {data.id}")
    return study


NOT_NULL_SETTINGS = (
    "name",
    "review",
    "locked",
    "closure_requires_drainage_recorded",
    "par_week4_window_days",
    "photos_after_withdrawal",
)


def update_study(
    session: Session,
    caller: Caller,
    study: Study,
    data: StudyUpdate,
    *,
    model_ok: Callable[[str], bool] | None = None,
) -> Study:
    """Rename, pin a model, lock or unlock (admin). A locked study takes only an unlock."""
    caller.require(ADMIN)
    changes = data.model_dump(exclude_unset=True)
    if study.locked and set(changes) - {"locked"}:
        access.ensure_writable(study)
    if changes.get("model") and model_ok is not None and not model_ok(changes["model"]):
        raise DomainError(
            f"model {changes['model']} is not installed on this server", code="model_not_installed"
        )
    before = audit.snapshot(study)
    for key, value in changes.items():
        if key in NOT_NULL_SETTINGS and value is None:
            continue  # null means "leave as it is" for fields that cannot be empty
        setattr(study, key, value)
    action = (
        "study.lock"
        if changes.get("locked")
        else "study.unlock"
        if changes.get("locked") is False
        else "study.update"
    )
    audit.record(
        session,
        caller,
        action,
        f"study/{study.id}",
        study_id=study.id,
        before=before,
        after=audit.snapshot(study),
    )
    session.commit()
    return study


def create_site(session: Session, caller: Caller, study: Study, data: SiteCreate) -> Site:
    caller.require(ADMIN)
    access.ensure_writable(study)
    site = Site(study_id=study.id, code=data.id, name=data.name)
    session.add(site)
    audit.record(
        session,
        caller,
        "site.create",
        f"site/{study.id}/{data.id}",
        study_id=study.id,
        after=data.model_dump(),
    )
    shared.commit_or_conflict(session, f"site {data.id} of study {study.id}")
    return site


def list_sites(session: Session, caller: Caller, study: Study) -> list[Site]:
    stmt = select(Site).where(Site.study_id == study.id).order_by(Site.code)
    if caller.site_pk is not None:
        stmt = stmt.where(Site.pk == caller.site_pk)
    return list(session.scalars(stmt))
