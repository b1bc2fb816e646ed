"""Physical plausibility: a measurement outside what a foot ulcer and a readable marker
can be is a severe flag and carries no cm value, so no answer or export can show it.

A false marker (a pattern the detector took for one, seen edge-on) or a mistyped scale
gives areas of 1e40 cm² or 1e-9 cm²; nothing downstream can tell those from a wound.
The limits are physical, not statistical: ``QualityLimits.max_area_cm2`` (a foot is
about 250 cm² a side), ``max_perimeter_cm``, ``max_length_cm``; a marker must be
decodable (``MARKER_MIN_DECODABLE_SIDE_PX``) and fit in the photo, and not be seen
almost edge-on (``MARKER_MAX_TILT_DEG``).
"""

from __future__ import annotations

import math
from dataclasses import replace

from service.core.measure.calibration import Scale
from service.core.measure.quality import QualityFlag, QualityLimits
from service.core.measure.result import Measurement

MARKER_MIN_DECODABLE_SIDE_PX = 12.0
"""An ArUco 4x4 marker with its border is 6 cells a side; under 2 px a cell it cannot be
decoded, so a "marker" smaller than this is a false detection."""
MARKER_MAX_TILT_DEG = 80.0
"""A marker seen more than this far from square is a sliver of pixels: its corners (and
any homography from them) are not measurable."""
IMPLAUSIBLE = "implausible_measurement"


def marker_scale_range_px_per_mm(
    marker_mm: float, image_size_px: tuple[int, int]
) -> tuple[float, float]:
    """The scales (px/mm) a real marker of ``marker_mm`` can have in this photo: from
    decodable to filling the photo's long side."""
    return MARKER_MIN_DECODABLE_SIDE_PX / marker_mm, max(image_size_px) / marker_mm


def implausibilities(
    m: Measurement,
    scale: Scale,
    marker_mm: float,
    image_size_px: tuple[int, int],
    limits: QualityLimits,
) -> list[str]:
    """What in ``m`` is outside a physical range, in words (empty: plausible)."""
    problems = [
        f"{name} {value:.4g} {unit} (at most {high:g} {unit} for a foot ulcer)"
        for name, value, unit, high in (
            ("area", m.area_cm2, "cm²", limits.max_area_cm2),
            ("perimeter", m.perimeter_cm, "cm", limits.max_perimeter_cm),
            ("length", m.length_cm, "cm", limits.max_length_cm),
        )
        if value is not None and not (math.isfinite(value) and 0 <= value <= high)
    ]
    if scale.chosen is not None and scale.px_per_mm is not None:
        low, high = marker_scale_range_px_per_mm(marker_mm, image_size_px)
        if not (math.isfinite(scale.px_per_mm) and low <= scale.px_per_mm <= high):
            problems.append(
                f"marker scale {scale.px_per_mm:.3g} px/mm (a readable {marker_mm:g} mm"
                f" marker in this photo is {low:.3g}-{high:.3g} px/mm)"
            )
        if scale.tilt_deg is not None and scale.tilt_deg > MARKER_MAX_TILT_DEG:
            problems.append(
                f"marker tilt {scale.tilt_deg:.0f}° (beyond {MARKER_MAX_TILT_DEG:g}° it is"
                " not measurable)"
            )
    return problems


def checked(
    m: Measurement,
    scale: Scale,
    marker_mm: float,
    image_size_px: tuple[int, int],
    limits: QualityLimits,
) -> Measurement:
    """``m`` as it is when plausible; else with a severe ``implausible_measurement`` flag
    naming the values, and every cm value and the scale null (area in pixels only)."""
    problems = implausibilities(m, scale, marker_mm, image_size_px, limits)
    if not problems:
        return m
    flag = QualityFlag(
        IMPLAUSIBLE,
        "This measurement is physically impossible ("
        + "; ".join(problems)
        + "), so it has no cm value and is not counted: most often a false marker or a"
        " wrong scale. Check the photo and retake it with the printed marker flat beside"
        " the wound, or correct the outline giving the scale.",
        severe=True,
    )
    return replace(
        m,
        quality=[*m.quality, flag],
        area_cm2=None,
        area_cm2_low=None,
        area_cm2_high=None,
        perimeter_cm=None,
        length_cm=None,
        width_cm=None,
        px_per_mm=None,
        calibration_pct=None,
    )
