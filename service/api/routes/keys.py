"""API keys over the API (admin): make one (shown once), list, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from service.api import views
from service.api.deps import CallerDep, SessionDep
from service.domain import keys
from service.domain.schemas import KeyCreate, KeyCreated, KeyPublic

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.post("", status_code=201, response_model=KeyCreated)
def create_key(data: KeyCreate, session: SessionDep, caller: CallerDep) -> KeyCreated:
    """Make a key for a named person; the key is in the answer once and never again."""
    row, key = keys.issue_key(
        session,
        caller,
        role=data.role,
        holder=data.holder,
        study_id=data.study,
        site_code=data.site,
    )
    return KeyCreated(**views.key_public(row).model_dump(), key=key)


@router.get("", response_model=list[KeyPublic])
def list_keys(session: SessionDep, caller: CallerDep) -> list[KeyPublic]:
    return [views.key_public(k) for k in keys.list_keys(session, caller)]


@router.delete("/{key_id}", response_model=KeyPublic)
def revoke_key(
    key_id: Annotated[int, Path(ge=1, le=2**62, description="The key's id")],
    session: SessionDep,
    caller: CallerDep,
) -> KeyPublic:
    return views.key_public(keys.revoke_key(session, caller, key_id))
