"""Assisted outline: a clinician's box or points -> a suggested outline of a stored
photo, with its area. Nothing is stored or audited (it is a suggestion); saving it is
``corrections.correct_mask`` (``PUT /v1/assessments/{id}/mask`` with the polygon and a
reason), so the audit trail of corrections is unchanged."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from service.core.assist import MAX_POINTS
from service.core.errors import DomainError
from service.domain import access, shared
from service.domain.auth import Caller
from service.domain.roles import CORRECTORS
from service.persistence.orm import Assessment
from service.runtime.context import Runtime


def suggest_outline(
    session: Session,
    runtime: Runtime,
    caller: Caller,
    assessment: Assessment,
    *,
    box: list[Any] | None,
    points: list[Any] | None,
) -> dict[str, Any]:
    """The suggestion of the assist engine with the model the study pins (else the
    default one) for ``box`` and/or ``points`` (photo pixels as displayed). Only roles
    that may correct an outline may ask (the answer is an outline to save), and only
    while the study is open: a locked study takes no correction, so it gets no
    suggestion either (``StudyLocked``, 423)."""
    from service.runtime.assist import outline_answer

    caller.require(*CORRECTORS)
    if assessment.voided:
        raise DomainError(
            f"assessment {assessment.id} is voided: its outline cannot be corrected",
            code="already_voided",
        )
    study = access.ensure_writable(assessment)
    segmenter = runtime.models.get(study.model)
    photo = runtime.store.get(assessment.photo_key)
    cal = shared.calibration_of(assessment)
    marker_mm = study.marker_mm
    session.commit()  # hold no transaction while the model runs
    answer: dict[str, Any] = runtime.pool.run(
        outline_answer,
        segmenter,
        photo,
        box=box,
        points=points,
        marker_mm=marker_mm,
        cal=cal,
        limits=runtime.settings.quality,
    )
    return answer


class OutlinePrompt(BaseModel):
    """``POST /v1/assessments/{id}/outline``: a box around the wound and/or points."""

    model_config = ConfigDict(extra="forbid")

    box: list[float] | None = Field(
        default=None,
        description="[x0, y0, x1, y1] in photo pixels as displayed, inside the photo",
        examples=[[120, 80, 420, 360]],
    )
    points: list[list[float]] | None = Field(
        default=None,
        description=f"[[x, y, 1|0], …] (1 = wound here, 0 = not wound), at most {MAX_POINTS}",
        examples=[[[260, 210, 1], [400, 90, 0]]],
    )


class OutlineSuggestion(BaseModel):
    """A suggested outline (nothing stored): save it with ``PUT …/mask`` (polygon +
    reason)."""

    polygon: list[list[int]] = Field(description="The largest part, [[x, y], …]; [] if none")
    polygons: list[list[list[int]]] = Field(description="Every part, largest first")
    area_cm2: float | None = Field(description="Area of the polygons filled; null uncalibrated")
    area_cm2_low: float | None
    area_cm2_high: float | None
    area_px: int | None = None
    calibrated: bool | None = None
    engine: str = Field(description="Which engine and model outlined it")
    ms: float = Field(description="Milliseconds the server took")
