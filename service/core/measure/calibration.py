"""How a photo is calibrated (marker, ruler, the client's scale, none), the flags that
say what the calibration can and cannot do, and its share of the area's interval."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from service.core.marker import DetectedMarker
from service.core.measure.geometry import (
    WoundCrop,
    apply_homography,
    corner_area_sigma_mm2,
    homography_jacobian,
    marker_homography,
    tilt_from_homography_deg,
)
from service.core.measure.quality import QualityFlag, QualityLimits, blur_flag_without_marker

CalibrationMethod = Literal["marker", "px_per_mm", "ruler", "none"]
"""How a measurement was calibrated (``Measurement.calibration``); not to be confused
with ``service.core.pipeline.Calibration``, what the client sent."""

# Uncertainty model, calibrated on benchmarks/calibration (see RESULTS.md there).
CORNER_FIT_SCALE = 2.0
"""The edge fit's own standard error treats neighbouring profiles as independent;
they share pixels and blur, so the real corner error is about this many times it."""
CORNER_SIGMA_FLOOR_PX = 0.02
CORNER_SIGMA_PER_BLUR = 0.015
"""Corner error per pixel of edge blur: a camera's tone curve is not exactly sRGB,
which shifts a blurred edge's apparent position by a small share of the blur."""
UNREFINED_CORNER_SIGMA_PX = 1.0
QUANTISATION_SIGMA_PER_SQRT_PX = 0.5
"""Area error (px²) of a pixel mask, per square root of its outline length (px):
each boundary pixel is in or out by up to half a pixel, partly correlated along
straight stretches (independent pixels would give sqrt(1/12) = 0.29)."""
MARKER_PRINT_SIGMA_REL = 0.002
"""Relative standard error of the printed marker's size (printer scaling)."""
RULER_POINT_SIGMA_PX = 1.0
"""Standard error of a clicked ruler point, pixels."""
Z95 = 1.959964
# Physical ranges of what a client may tell us about scale. A photo of a foot is a few
# px/mm (12 MP over 30 cm: 13 px/mm); 0.1 px/mm is a 4000-px photo 40 m wide, 1000 px/mm
# a microscope. Outside them a number is a typo or an attack, and it would make areas
# of 0 or infinity that no export can carry.
PX_PER_MM_RANGE = (0.1, 1000.0)
RULER_MM_RANGE = (1.0, 2000.0)
"""A ruler's distance between its two points, mm."""


def scale_problem(px_per_mm: float, what: str = "px_per_mm") -> str | None:
    """Why ``px_per_mm`` is not a physical scale, or None when it is."""
    low, high = PX_PER_MM_RANGE
    if not (math.isfinite(px_per_mm) and low <= px_per_mm <= high):
        return f"{what} {px_per_mm:g} is not a positive scale within {low:g}-{high:g} px/mm"
    return None


@dataclass(frozen=True)
class Ruler:
    """Two points in the photo (pixels, as displayed) and their true distance, mm."""

    x1: float
    y1: float
    x2: float
    y2: float
    mm: float

    @classmethod
    def parse(cls, text: str) -> Ruler:
        """``"x1,y1,x2,y2,mm"`` -> Ruler; raises ValueError saying what is wrong."""
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 5:
            raise ValueError(f"ruler {text!r} must be x1,y1,x2,y2,mm (5 numbers)")
        x1, y1, x2, y2, mm = (float(p) for p in parts)
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2, mm)):
            raise ValueError(f"ruler {text!r} must be finite numbers")
        ruler = cls(x1, y1, x2, y2, mm)
        if mm <= 0 or ruler.length_px <= 0:
            raise ValueError(f"ruler {text!r} needs two different points and a positive distance")
        low, high = RULER_MM_RANGE
        if not low <= mm <= high:
            raise ValueError(f"the ruler's distance {mm:g} mm is outside {low:g}-{high:g} mm")
        problem = scale_problem(ruler.length_px / mm, "the ruler's scale")
        if problem:
            raise ValueError(problem)
        return ruler

    @property
    def length_px(self) -> float:
        return math.hypot(self.x2 - self.x1, self.y2 - self.y1)


@dataclass(frozen=True)
class Scale:
    """How the photo is calibrated: the method, photo px -> mm (None: uncalibrated),
    and, with a marker, the marker used and the camera's tilt. ``given_px_per_mm``: the
    scale the client gave (px_per_mm or ruler), if any; ``conflicting_marker``: the
    marker that disagreed with it (then the given scale is used, never replaced);
    ``confirmed``: a clinician gave the scale with an outline correction."""

    method: CalibrationMethod
    h_photo_to_mm: np.ndarray | None = None
    chosen: DetectedMarker | None = None
    tilt_deg: float | None = None
    px_per_mm: float | None = None
    given_px_per_mm: float | None = None
    conflicting_marker: DetectedMarker | None = None
    marker_px_per_mm: float | None = None
    confirmed: bool = False


def calibrate(
    markers: list[DetectedMarker],
    centroid_px: np.ndarray | None,
    image_size_px: tuple[int, int],
    marker_mm: float,
    px_per_mm: float | None,
    ruler: Ruler | None,
    *,
    limits: QualityLimits | None = None,
    scale_confirmed: bool = False,
) -> Scale:
    """The calibration (module docstring): a scale the client gave (ruler, else
    ``px_per_mm``) is never silently replaced. The marker nearest the wound is used when
    no scale was given, or when it agrees with the given one within
    ``scale_agreement_tolerance`` (it also corrects perspective); when they disagree the
    given scale is used and the marker named (``scale_conflict``). A scale a clinician
    confirmed (``scale_confirmed``) is used over an unreadable marker too."""
    given = _given_scale(px_per_mm, ruler)
    if not markers:
        return given or Scale("none")
    try:
        marker_scale = _marker_scale(nearest_marker(markers, centroid_px), marker_mm, image_size_px)
    except np.linalg.LinAlgError:  # a degenerate quad maps no plane: no detection at all
        return given or Scale("none")
    if given is None:
        return marker_scale
    chosen = marker_scale.chosen
    assert chosen is not None and marker_scale.px_per_mm is not None
    assert given.given_px_per_mm is not None
    tolerance = scale_agreement_tolerance(chosen, ruler, limits or QualityLimits())
    agrees = abs(math.log(marker_scale.px_per_mm / given.given_px_per_mm)) <= tolerance
    if agrees and not (scale_confirmed and not chosen.refined):
        return replace(marker_scale, given_px_per_mm=given.given_px_per_mm)
    return replace(
        given,
        conflicting_marker=None if agrees else chosen,
        marker_px_per_mm=marker_scale.px_per_mm,
        confirmed=scale_confirmed,
    )


def _given_scale(px_per_mm: float | None, ruler: Ruler | None) -> Scale | None:
    """The client's scale as a calibration (no perspective correction), or None."""
    method: CalibrationMethod
    if ruler is not None:
        method, scale_px_per_mm = "ruler", ruler.length_px / ruler.mm
    elif px_per_mm is not None:
        method, scale_px_per_mm = "px_per_mm", float(px_per_mm)
    else:
        return None
    h_photo_to_mm = np.diag([1 / scale_px_per_mm, 1 / scale_px_per_mm, 1.0])
    return Scale(method, h_photo_to_mm, px_per_mm=scale_px_per_mm, given_px_per_mm=scale_px_per_mm)


def _marker_scale(
    chosen: DetectedMarker, marker_mm: float, image_size_px: tuple[int, int]
) -> Scale:
    """The marker's homography, the camera's tilt and the scale at the marker's centre."""
    h_photo_to_mm = marker_homography(chosen.corners_px, marker_mm)
    h_mm_to_photo = np.linalg.inv(h_photo_to_mm)
    centre_mm = np.array([marker_mm / 2, marker_mm / 2])
    tilt_deg = tilt_from_homography_deg(h_mm_to_photo, image_size_px)
    scale_px_per_mm = math.sqrt(abs(np.linalg.det(homography_jacobian(h_mm_to_photo, centre_mm))))
    return Scale("marker", h_photo_to_mm, chosen, tilt_deg, scale_px_per_mm)


def scale_agreement_tolerance(
    chosen: DetectedMarker, ruler: Ruler | None, limits: QualityLimits
) -> float:
    """How far (|ln(marker / given)|) a detected marker's scale may lie from the given
    one and still agree: the 95 % interval of the two calibrations (the marker's corners
    and print, the ruler's clicked points; a bare ``px_per_mm`` states none), but never
    less than ``limits.scale_agreement_pct`` (a scale without perspective correction
    differs from the marker's by up to 1 - sqrt(cos tilt))."""
    side_px = max(chosen.side_px, 1e-9)
    marker_rel = math.hypot(
        math.sqrt(2) * corner_sigma_px(chosen) / side_px, MARKER_PRINT_SIGMA_REL
    )
    given_rel = math.sqrt(2) * RULER_POINT_SIGMA_PX / ruler.length_px if ruler is not None else 0.0
    interval = Z95 * math.hypot(marker_rel, given_rel)
    return max(interval, math.log1p(limits.scale_agreement_pct / 100))


def calibration_flags(
    scale: Scale,
    markers: list[DetectedMarker],
    gray: np.ndarray,
    marker_mm: float,
    limits: QualityLimits,
) -> list[QualityFlag]:
    """What the site should know about the calibration: a given scale the marker
    confirmed, or contradicted; no tilt correction; no calibration at all; then the
    marker's own checks (or, with no marker to measure blur on, the photo's blur)."""
    if scale.chosen is not None:
        flags = []
        if scale.given_px_per_mm is not None:
            flags.append(
                QualityFlag(
                    "scale_ignored",
                    f"A calibration marker was found and agrees with the scale sent with the photo ({scale.given_px_per_mm:.3g} px/mm against the marker's {scale.px_per_mm or 0:.3g}), so the marker was used: it also corrects perspective.",
                )
            )
        return flags + marker_flags(
            scale.chosen, markers, scale.px_per_mm or 1.0, scale.tilt_deg or 0.0, limits
        )
    if scale.method != "none":
        return [*_given_scale_flags(scale), _no_perspective_flag()]
    not_found = QualityFlag(
        "marker_not_found",
        f"No calibration marker found, so the area is in pixels only: place the printed {marker_mm:g} mm marker flat on the skin beside the wound, fully in view, and retake.",
        severe=True,
    )
    return [not_found, *blur_flag_without_marker(gray, limits)]


def _no_perspective_flag() -> QualityFlag:
    return QualityFlag(
        "no_perspective_correction",
        "No calibration marker was used, so the given scale was used without correcting camera tilt: the area is too small by the cosine of the tilt. Place the printed marker flat beside the wound for a corrected measurement.",
    )


def _given_scale_flags(scale: Scale) -> list[QualityFlag]:
    """A detected marker that the given scale overrules: severe ``scale_conflict`` (the
    photo stays out of the endpoints until a clinician gives the scale with an outline
    correction), or ``marker_overruled`` when a clinician gave it."""
    if scale.marker_px_per_mm is None:
        return []
    given, found = scale.given_px_per_mm or 0.0, scale.marker_px_per_mm
    if scale.confirmed:
        return [
            QualityFlag(
                "marker_overruled",
                f"A clinician gave the scale ({given:.3g} px/mm) with the outline; the detected marker ({found:.3g} px/mm) was not used.",
            )
        ]
    if scale.conflicting_marker is None:
        return []
    return [
        QualityFlag(
            "scale_conflict",
            f"The scale sent with the photo ({given:.3g} px/mm) and the detected marker ({found:.3g} px/mm, id {scale.conflicting_marker.marker_id}) disagree, so the sent scale was used and the area is not counted: check the scale and the marker (a false marker, or a wrong scale), then retake, or correct the outline giving the scale.",
            severe=True,
        )
    ]


def calibration_sigma_mm2(
    crop: WoundCrop, scale: Scale, marker_mm: float, ruler: Ruler | None, area: float
) -> float:
    """Standard error of the area (mm²) from the calibration: the marker's corners and
    print scale, or the ruler's two clicked points; none known for a client's scale."""
    if scale.chosen is not None:
        sigma_px = corner_sigma_px(scale.chosen)
        sigma_corners = (
            corner_area_sigma_mm2(scale.chosen.corners_px, marker_mm, crop.outlines, area, sigma_px)
            if crop.outlines
            else 0.0
        )
        return math.hypot(sigma_corners, 2 * MARKER_PRINT_SIGMA_REL * area)
    if ruler is not None:
        rel = math.sqrt(2) * RULER_POINT_SIGMA_PX / ruler.length_px
        return 2 * rel * area
    return 0.0


def precision_flags(
    crop: WoundCrop, calibration_rel: float | None, limits: QualityLimits
) -> list[QualityFlag]:
    """``area_imprecise`` when the calibration alone leaves the area too uncertain."""
    if (
        crop.centroid_px is not None
        and calibration_rel is not None
        and 100 * calibration_rel > limits.max_area_uncertainty_pct
    ):
        return [
            QualityFlag(
                "area_imprecise",
                f"The area is uncertain by ±{100 * calibration_rel:.0f} % from the calibration: move the camera closer and put the marker right beside the wound, then retake.",
            )
        ]
    return []


def marker_distance_flags(
    crop: WoundCrop, scale: Scale, marker_mm: float, limits: QualityLimits
) -> list[QualityFlag]:
    """``marker_far_from_wound``: on a curved foot a distant marker may not lie in the
    wound's plane, which no homography corrects."""
    if scale.chosen is None or crop.centroid_px is None or scale.h_photo_to_mm is None:
        return []
    centroid_mm = apply_homography(scale.h_photo_to_mm, crop.centroid_px[None])[0]
    distance_mm = float(np.linalg.norm(centroid_mm - marker_mm / 2))
    if distance_mm > limits.marker_max_distance_mm:
        return [
            QualityFlag(
                "marker_far_from_wound",
                f"The marker is {distance_mm:.0f} mm from the wound (limit {limits.marker_max_distance_mm:g} mm): on a curved foot it may not lie in the wound's plane. Put it right beside the wound and retake.",
            )
        ]
    return []


def corner_sigma_px(m: DetectedMarker) -> float:
    if not m.refined:
        return UNREFINED_CORNER_SIGMA_PX
    blur = m.edge_blur_px if math.isfinite(m.edge_blur_px) else 0.0
    return math.sqrt(
        (CORNER_FIT_SCALE * m.corner_sigma_px) ** 2
        + CORNER_SIGMA_FLOOR_PX**2
        + (CORNER_SIGMA_PER_BLUR * blur) ** 2
    )


def nearest_marker(markers: list[DetectedMarker], centroid_px: np.ndarray | None) -> DetectedMarker:
    if centroid_px is None:
        return max(markers, key=lambda m: m.side_px)
    return min(markers, key=lambda m: float(np.linalg.norm(m.centre_px - centroid_px)))


def marker_flags(
    chosen: DetectedMarker,
    markers: list[DetectedMarker],
    px_per_mm: float,
    tilt_deg: float,
    limits: QualityLimits,
) -> list[QualityFlag]:
    flags = []
    if len(markers) > 1:
        flags.append(
            QualityFlag(
                "multiple_markers",
                f"{len(markers)} markers are in view; the one nearest the wound (id {chosen.marker_id}) was used. Use one marker per photo.",
            )
        )
    if not chosen.refined:
        flags.append(
            QualityFlag(
                "marker_unreadable",
                "The marker was found but its edges could not be measured precisely (blurred, creased, glare or partly covered): the area is only approximate. Retake with the whole marker flat, sharp and evenly lit.",
                severe=True,
            )
        )
    if chosen.side_px < limits.marker_min_side_px:
        flags.append(
            QualityFlag(
                "marker_too_small",
                f"The marker is only {chosen.side_px:.0f} pixels wide (at least {limits.marker_min_side_px:g} needed for a precise scale): move the camera closer and retake.",
            )
        )
    if tilt_deg > limits.max_tilt_deg:
        flags.append(
            QualityFlag(
                "tilt_too_large",
                f"The camera is tilted {tilt_deg:.0f}° from square (limit {limits.max_tilt_deg:g}°): hold the phone parallel to the skin and retake.",
            )
        )
    blur_mm = (
        chosen.edge_blur_px / px_per_mm if math.isfinite(chosen.edge_blur_px) else float("nan")
    )
    if chosen.refined and blur_mm > limits.blur_max_mm:
        flags.append(
            QualityFlag(
                "photo_blurred",
                f"The photo is blurred (edges spread over {blur_mm:.1f} mm): hold the phone still, let it focus on the wound, and retake.",
            )
        )
    return flags
