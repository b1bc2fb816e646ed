"""The review queue's batch action: accept (or un-accept) several photos at once.

Each photo goes through ``reviewing.update_assessment`` (the same rule, the same audit
entry as one ``PATCH /v1/assessments/{id}`` each); every photo is checked first, so a
batch with one photo the caller may not see or change changes none."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.core.errors import DomainError, InvalidRequest
from service.domain import access, reviewing
from service.domain.auth import Caller
from service.domain.roles import CORRECTORS
from service.domain.schemas import AssessmentUpdate
from service.persistence.orm import Assessment, Study

MAX_BATCH = 200
"""Photos in one batch at most (a queue page is 20)."""


def accept_many(
    session: Session, caller: Caller, study: Study, ids: list[str], accepted: bool
) -> list[Assessment]:
    """Accept (``accepted``) or un-accept each of ``ids`` (photos of ``study``); raises
    before changing anything when one is not visible (404), voided (409), of another
    study, or the caller may not review."""
    caller.require(*CORRECTORS)
    access.ensure_writable(study)
    unique = list(dict.fromkeys(i.strip() for i in ids if i.strip()))
    if not unique:
        raise InvalidRequest("pick at least one photo (field 'assessment')")
    if len(unique) > MAX_BATCH:
        raise InvalidRequest(f"{len(unique)} photos: at most {MAX_BATCH} in one batch")
    rows = [access.load_assessment(session, caller, i) for i in unique]
    for row in rows:
        if access.study_of(row).id != study.id:
            raise InvalidRequest(f"assessment {row.id} belongs to another study")
        if row.voided:
            raise DomainError(f"assessment {row.id} is voided", code="already_voided")
    for row in rows:
        reviewing.update_assessment(session, caller, row, AssessmentUpdate(accepted=accepted))
    return rows
