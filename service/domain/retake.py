"""A retake on the phone: the new photo of a wound supersedes the earlier photo of the
same wound and day, which is voided with the nurse's reason (kept, audited, left out of
every endpoint), so a retake never leaves two counted photos the nurse cannot void.

An uploader may not void photos in general (``reviewing.update_assessment`` is for
clinicians): only the photo a retake replaces, at the same visit, in one step with the
upload of its replacement.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from service.core.errors import DomainError, InvalidRequest
from service.domain import access, audit
from service.domain.auth import Caller
from service.domain.roles import WRITERS
from service.persistence.orm import Assessment, Wound

RETAKE_REASON_MAX_CHARS = 500
RETAKE_PREFIX = "retaken: "
"""The void reason of a superseded photo starts with this, then the nurse's words."""


def check_retake(
    caller: Caller, earlier: Assessment, wound: Wound, captured_at: datetime, reason: str
) -> str:
    """The reason, once the retake may replace ``earlier``: the caller uploads photos, the
    earlier photo is of the same ``wound`` and capture day (the same visit), and a
    reason is given. An earlier photo already voided by this retake is fine (a replayed
    upload); one voided otherwise is refused (``already_voided``)."""
    caller.require(*WRITERS)
    access.ensure_writable(earlier)
    reason = reason.strip()
    if not reason:
        raise DomainError(
            "replace_reason: say why the photo is retaken (it is voided with this reason)",
            code="reason_required",
        )
    if len(reason) > RETAKE_REASON_MAX_CHARS:
        raise InvalidRequest(f"replace_reason: at most {RETAKE_REASON_MAX_CHARS} characters")
    if earlier.wound_id != wound.id or earlier.captured_at.date() != captured_at.date():
        raise InvalidRequest(
            "replaces: a retake replaces a photo of the same wound taken the same day;"
            " void other photos from the dashboard (a clinician)"
        )
    if earlier.voided and earlier.void_reason != RETAKE_PREFIX + reason:
        raise DomainError(
            f"assessment {earlier.id} is voided and cannot be changed", code="already_voided"
        )
    return reason


def supersede(
    session: Session, caller: Caller, earlier: Assessment, later: Assessment, reason: str
) -> None:
    """Void ``earlier`` as replaced by ``later`` with the nurse's ``reason`` (checked by
    ``check_retake``), audited as ``assessment.void`` naming the replacement; nothing
    happens when it is already voided (a replayed retake)."""
    if earlier.voided:
        return
    before = audit.snapshot(earlier)
    earlier.voided = True
    earlier.void_reason = RETAKE_PREFIX + reason
    audit.record(
        session,
        caller,
        "assessment.void",
        f"assessment/{earlier.id}",
        study_id=access.study_of(earlier).id,
        before=before,
        after={**audit.snapshot(earlier), "reason": earlier.void_reason, "replaced_by": later.id},
    )
    session.commit()
