"""What the compare page shows: two measured, calibrated visits of one wound side by
side, rectified to the marker plane at one mm scale, the later one turned to line up
with the earlier (``core.rectify.alignment_deg``, done where the image is made), with
the area change and PAR between them.
"""

from __future__ import annotations

from typing import Any

from service.api.overview import assessment_rows
from service.core import rectify
from service.core.errors import DomainError
from service.domain import access
from service.domain.outcomes import wound_answer
from service.persistence.orm import Wound


def _comparison(wound: Wound, first: str, second: str) -> dict[str, Any]:
    """Two measured, calibrated visits of one wound: their rows, the area change and PAR
    between them, and the common window and scale of their rectified images."""
    study = access.study_of(wound)
    rows = {r["assessment"].id: r for r in assessment_rows(wound, study)}
    picked = []
    for assessment_id in (first, second):
        r = rows.get(assessment_id)
        if r is None or r["assessment"].voided:
            raise DomainError(
                f"assessment {assessment_id} is not a photo of wound {wound.id}: "
                "pick two of this wound's photos",
                code="not_comparable",
            )
        m = r["measurement"]
        if m is None or m.area_cm2 is None or not m.calibrated:
            raise DomainError(
                f"assessment {assessment_id} has no calibrated measurement to compare: "
                "outline it (or retake it with the marker) first",
                code="not_comparable",
            )
        picked.append(r)
    a, b = picked
    lengths_mm = [
        10.0 * r["data"]["length_cm"] if r["data"].get("length_cm") else None for r in picked
    ]
    side_mm, px_per_mm = rectify.comparison_scale(lengths_mm)
    area_a, area_b = a["measurement"].area_cm2, b["measurement"].area_cm2
    return {
        "first": a,
        "second": b,
        "change_cm2": area_b - area_a,
        "par_pct": 100.0 * (area_a - area_b) / area_a if area_a > 0 else None,
        "side_mm": side_mm,
        "px_per_mm": px_per_mm,
        # The 10 mm bar under each image, as a share of the image's width.
        "bar_pct": 100.0 * rectify.SCALE_BAR_MM * px_per_mm / max(1, round(side_mm * px_per_mm)),
    }


def compare_context(row: Wound, first: str, second: str) -> dict[str, Any]:
    """The compare page: the wound's measured, calibrated photos to pick from, the two
    picked (default: the first and the latest) and, with two, their comparison."""
    study = access.study_of(row)
    answer = wound_answer(row)
    days = {v["assessment"]: v["day"] for v in answer["visits"]}
    choices = [
        r
        for r in assessment_rows(row, study)
        if not r["assessment"].voided
        and r["measurement"] is not None
        and r["measurement"].area_cm2 is not None
        and r["measurement"].calibrated
    ]
    context: dict[str, Any] = {
        "wound": row,
        "study": study,
        "days": days,
        "choices": choices,
        "first_id": first or (choices[0]["assessment"].id if choices else ""),
        "second_id": second or (choices[-1]["assessment"].id if choices else ""),
        "comparison": None,
    }
    if len(choices) >= 2 or (first and second):
        context["comparison"] = _comparison(row, context["first_id"], context["second_id"])
    return context
