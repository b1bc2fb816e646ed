"""Uploading a photo of a wound: measure it, store it, record the assessment (with
Idempotency-Key replay)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.core.errors import DomainError
from service.core.imaging import sent_size
from service.core.pipeline import Analysis, Calibration, ruler_json, scaled_calibration
from service.domain import access, audit, events, shared
from service.domain.auth import Caller
from service.domain.roles import WRITERS
from service.persistence.orm import Assessment, Study, Wound

if TYPE_CHECKING:
    from service.runtime.context import Runtime


@dataclass(frozen=True)
class UploadForm:
    """The upload's fields other than the photo, already parsed."""

    captured_at: datetime
    cal: Calibration
    visit: str | None = None
    epithelialized: bool | None = None
    drainage: bool | None = None
    idempotency_key: str | None = None


def _replay(
    session: Session, wound: Wound, form: UploadForm, data: bytes, upload_sha256: str
) -> Assessment | None:
    """The assessment an earlier upload with this Idempotency-Key made, if any: the same
    photo with the same fields. Another photo is ``idempotency_conflict``; the same
    photo with other fields (date, visit, observation, scale) is
    ``idempotency_key_reused``: a silent replay would drop the fields the client sent."""
    found = session.scalar(
        select(Assessment).where(
            Assessment.wound_id == wound.id, Assessment.idempotency_key == form.idempotency_key
        )
    )
    if found is None:
        return None
    if found.upload_sha256 != upload_sha256:
        raise DomainError(
            "this Idempotency-Key was already used for a different photo: use a new key per photo",
            code="idempotency_conflict",
        )
    differ = _differing_fields(found, form, data)
    if differ:
        raise DomainError(
            f"this Idempotency-Key was already used for this photo with other {', '.join(differ)}:"
            " a retry sends the same fields; a new upload needs a new key",
            code="idempotency_key_reused",
        )
    return found


def _differing_fields(found: Assessment, form: UploadForm, data: bytes) -> list[str]:
    """The upload fields in which ``form`` differs from the assessment it would replay
    (its calibration taken to the stored photo's pixels, as the first upload's was)."""
    size = sent_size(data)
    cal = form.cal
    if size is not None:
        cal = scaled_calibration(cal, found.width / size[0], found.height / size[1])
    sent = {
        "captured_at": form.captured_at,
        "visit": form.visit,
        "epithelialized": form.epithelialized,
        "drainage": form.drainage,
        "px_per_mm": cal.px_per_mm,
        "ruler": ruler_json(cal.ruler),
        "target_point": cal.target_point,
    }
    stored = {
        "captured_at": found.captured_at,
        "visit": found.visit,
        "epithelialized": found.epithelialized,
        "drainage": found.drainage,
        "px_per_mm": found.px_per_mm,
        "ruler": found.ruler,
        "target_point": found.target_point,
    }
    return [name for name, value in sent.items() if stored[name] != value]


def upload_assessment(
    session: Session,
    runtime: Runtime,
    caller: Caller,
    wound: Wound,
    data: bytes,
    form: UploadForm,
    *,
    name: str = "photo",
) -> tuple[Assessment, bool]:
    """Decode, measure, store the photo, then record the assessment. Returns (row, replayed).

    Order matters: nothing is stored before the photo is known good (a refused upload
    leaves nothing), and the photo and mask are durable before the row that names them
    is committed (a crash leaves at worst an unreferenced photo, never a row without
    its photo).
    """
    caller.require(*WRITERS)
    study = access.ensure_writable(wound)
    _refuse_after_subject_event(wound, study, form.captured_at.date())
    upload_sha256 = hashlib.sha256(data).hexdigest()
    if form.idempotency_key:
        found = _replay(session, wound, form, data, upload_sha256)
        if found is not None:
            return found, True
    analysis = _analyse_upload(session, runtime, study, data, form.cal, name)
    photo_key = runtime.store.put(analysis.photo_jpeg, "jpg")
    mask_key = runtime.store.put(analysis.mask_png, "png")
    access.lock_study_for_write(session, study.id)  # locked meanwhile: nothing commits
    assessment = _assessment_row(wound, caller, form, analysis, photo_key, upload_sha256)
    session.add(assessment)
    first = _replay_on_conflict(session, wound, form, data, upload_sha256, session.flush)
    if first is not None:
        return first, True
    _record_upload(session, caller, study, assessment, analysis, mask_key)
    first = _replay_on_conflict(session, wound, form, data, upload_sha256, session.commit)
    if first is not None:
        return first, True
    return assessment, False


def _refuse_after_subject_event(wound: Wound, study: Study, captured_on: date) -> None:
    """A photo dated after the subject's death, withdrawal, … (``events.refusing_event``)
    is refused before anything is measured or stored: most often the date is wrong. Under
    the study's ``photos_after_withdrawal: record`` one dated after a withdrawal or loss
    to follow-up (and no death or amputation of its leg) is stored, never counted."""
    blocked = events.refusing_event(wound, captured_on, study)
    if blocked is None:
        return
    raise DomainError(
        f"this photo is dated {captured_on.isoformat()}, after the subject's "
        f"{blocked.kind.replace('_', ' ')} on {blocked.occurred_on.isoformat()}"
        + (f" ({blocked.leg} leg)" if blocked.leg else "")
        + ": check the date, or void the event if it was recorded in error",
        code="after_subject_event",
    )


def _analyse_upload(
    session: Session, runtime: Runtime, study: Study, data: bytes, cal: Calibration, name: str
) -> Analysis:
    """Decode and measure the photo in the worker pool with the study's model. The read
    transaction ends first, so no database connection is held during the work."""
    segmenter = runtime.models.get(study.model)
    marker_mm = study.marker_mm
    session.commit()
    analysis: Analysis = runtime.pool.run(
        runtime.analyse, data, name=name, segmenter=segmenter, marker_mm=marker_mm, cal=cal
    )
    runtime.metrics.inference.labels(segmenter.id).observe(analysis.segment_s)
    return analysis


def _assessment_row(
    wound: Wound,
    caller: Caller,
    form: UploadForm,
    analysis: Analysis,
    photo_key: str,
    upload_sha256: str,
) -> Assessment:
    """The new assessment of a stored photo: its fields, the calibration sent with it
    (in the stored photo's pixels: a photo over the working resolution is stored smaller)."""
    cal = analysis.cal
    return Assessment(
        wound_id=wound.id,
        photo_key=photo_key,
        photo_sha256=hashlib.sha256(analysis.photo_jpeg).hexdigest(),
        upload_sha256=upload_sha256,
        photo_format=analysis.photo_format,
        width=analysis.width,
        height=analysis.height,
        captured_at=form.captured_at,
        visit=form.visit,
        epithelialized=form.epithelialized,
        drainage=form.drainage,
        px_per_mm=cal.px_per_mm,
        ruler=ruler_json(cal.ruler),
        target_x=cal.target_point[0] if cal.target_point else None,
        target_y=cal.target_point[1] if cal.target_point else None,
        idempotency_key=form.idempotency_key,
        uploaded_by=caller.holder,
    )


def _record_upload(
    session: Session,
    caller: Caller,
    study: Study,
    assessment: Assessment,
    analysis: Analysis,
    mask_key: str,
) -> None:
    """The upload's automatic measurement and its ``assessment.create`` audit entry."""
    session.add(
        shared.measurement_row(
            assessment, analysis.result, mask_key, analysis.model, created_by=caller.holder
        )
    )
    audit.record(
        session,
        caller,
        "assessment.create",
        f"assessment/{assessment.id}",
        study_id=study.id,
        after={
            **audit.snapshot(assessment),
            "measurement": analysis.result,
            "model": analysis.model,
        },
    )


def _replay_on_conflict(
    session: Session,
    wound: Wound,
    form: UploadForm,
    data: bytes,
    upload_sha256: str,
    write: Callable[[], None],
) -> Assessment | None:
    """Run ``write`` (the flush or the commit). When a unique constraint refuses it and
    the upload carries an Idempotency-Key, it is the same upload retried concurrently:
    answer the first one's row. Any other conflict is raised."""
    try:
        write()
    except IntegrityError:
        session.rollback()
        if form.idempotency_key:
            found = _replay(session, wound, form, data, upload_sha256)
            if found is not None:
                return found
        raise
    return None
