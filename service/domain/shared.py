"""Small helpers the domain's use-case modules share: commit a new row (a duplicate
answers ``already_exists``), build a measurement row, read a photo's calibration,
refuse to change a voided photo.

Each write checks the caller's role and the study lock, changes the rows, adds its
audit entry and commits, in one transaction. Duplicates are caught by the
database's unique constraints (safe with several replicas), not by a read first.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.core.errors import AlreadyExists, DomainError
from service.core.pipeline import Calibration, ruler_from_json
from service.domain import audit
from service.domain.auth import Caller
from service.persistence.orm import Assessment, Measurement


def commit_or_conflict(session: Session, what: str) -> None:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise AlreadyExists(f"{what} already exists") from None


def insert(
    session: Session, caller: Caller, row: Any, *, kind: str, what: str, study_id: str
) -> None:
    """Add a new ``row`` (its id made by the database), audit ``<kind>.create`` and
    commit; a duplicate answers ``already_exists`` naming ``what``."""
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise AlreadyExists(f"{what} already exists") from None
    audit.record(
        session,
        caller,
        f"{kind}.create",
        f"{kind}/{row.id}",
        study_id=study_id,
        after=audit.snapshot(row),
    )
    commit_or_conflict(session, what)


def measurement_row(
    assessment: Assessment,
    result: dict[str, Any],
    mask_key: str,
    model: dict[str, str],
    *,
    created_by: str,
    manual: bool = False,
    reason: str | None = None,
) -> Measurement:
    return Measurement(
        assessment_id=assessment.id,
        data=result,
        area_cm2=result.get("area_cm2"),
        calibrated=bool(result.get("calibrated")),
        severe=any(q.get("severe") for q in result.get("quality", [])),
        mask_key=mask_key,
        model_name=model["name"],
        model_version=model["version"],
        model_sha256=model["sha256"],
        manual=manual,
        reason=reason,
        created_by=created_by,
    )


def calibration_of(assessment: Assessment) -> Calibration:
    return Calibration(
        px_per_mm=assessment.px_per_mm,
        ruler=ruler_from_json(assessment.ruler),
        target_point=assessment.target_point,
    )


def refuse_if_voided(assessment: Assessment) -> None:
    """A voided photo is kept as it was: no observation, acceptance or correction."""
    if assessment.voided:
        raise DomainError(
            f"assessment {assessment.id} is voided and cannot be changed", code="already_voided"
        )
