"""A clinician's review: the queue of photos awaiting review, and the observation,
acceptance or voiding of one (``update_assessment``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, selectinload

from service.core.errors import DomainError
from service.domain import access, audit, counting, shared
from service.domain.auth import Caller
from service.domain.roles import CORRECTORS
from service.persistence.orm import Assessment, Study, Subject, Wound, utcnow

if TYPE_CHECKING:
    from service.domain.schemas import AssessmentUpdate


def review_queue(
    session: Session, caller: Caller, study: Study, *, limit: int, offset: int
) -> tuple[list[Assessment], int]:
    """The study's assessments awaiting a clinician's review that this caller may see
    (site keys: their site), the longest waiting (earliest uploaded) first."""
    stmt = access.visible_subjects(caller, study.id).options(
        selectinload(Subject.site),
        selectinload(Subject.wounds)
        .selectinload(Wound.assessments)
        .selectinload(Assessment.measurements),
    )
    waiting = []
    for subject in session.scalars(stmt):
        for wound in subject.wounds:
            series = counting.series_flags_of(wound, study)
            for a in counting.in_capture_order(wound):
                current = counting.current_measurement(a, study)
                if counting.awaiting_review(a, current, study, series.get(a.id, [])):
                    waiting.append(a)
    waiting.sort(key=lambda a: (a.created_at, a.id))
    return waiting[offset : offset + limit], len(waiting)


def update_assessment(
    session: Session, caller: Caller, assessment: Assessment, data: AssessmentUpdate
) -> Assessment:
    """Clinician: closure observation, accept a flagged photo, void a misfiled one."""
    caller.require(*CORRECTORS)
    study = access.ensure_writable(assessment)
    shared.refuse_if_voided(assessment)
    changes = data.model_dump(exclude_unset=True)
    reason = (changes.pop("reason", None) or "").strip()
    if changes.get("voided") is False:
        changes.pop("voided")
    if changes.get("voided") and not reason:
        raise DomainError("voiding an assessment needs a 'reason'", code="reason_required")
    before = audit.snapshot(assessment)
    for key in ("epithelialized", "drainage", "voided"):
        if key in changes and changes[key] is not None:
            setattr(assessment, key, changes[key])
    accepted = changes.get("accepted")
    if accepted is not None:
        _set_accepted(assessment, study, caller, accepted)
    if assessment.voided:
        assessment.void_reason = reason
    action = (
        "assessment.void"
        if assessment.voided
        else "assessment.accept"
        if accepted is True
        else "assessment.unaccept"
        if accepted is False
        else "assessment.update"
    )
    audit.record(
        session,
        caller,
        action,
        f"assessment/{assessment.id}",
        study_id=study.id,
        before=before,
        after={**audit.snapshot(assessment), **({"reason": reason} if reason else {})},
    )
    session.commit()
    return assessment


def _set_accepted(assessment: Assessment, study: Study, caller: Caller, accepted: bool) -> None:
    """Accept the measurement that counts now (recording which, by whom, when), or undo."""
    if not accepted:
        assessment.accepted = False
        assessment.accepted_measurement_id = None
        assessment.accepted_by = None
        assessment.accepted_at = None
        return
    current = counting.current_measurement(assessment, study)
    if current is None:
        raise DomainError(
            f"assessment {assessment.id} has no measurement to accept", code="invalid_request"
        )
    assessment.accepted = True
    assessment.accepted_measurement_id = current.id
    assessment.accepted_by = caller.holder
    assessment.accepted_at = utcnow()
