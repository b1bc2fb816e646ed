"""The entry point, ``measure``: the wound's pixels, its calibration and flags, then
its cm values and interval."""

from __future__ import annotations

import math
from dataclasses import replace

import cv2
import numpy as np

from service.core.marker import MARKER_MM, DetectedMarker, detect_markers
from service.core.measure import plausibility
from service.core.measure.calibration import (
    QUANTISATION_SIGMA_PER_SQRT_PX,
    Z95,
    Ruler,
    Scale,
    calibrate,
    calibration_flags,
    calibration_sigma_mm2,
    marker_distance_flags,
    precision_flags,
)
from service.core.measure.geometry import (
    WoundCrop,
    apply_homography,
    area_mm2,
    hull_corners_px,
    length_width,
    perimeter,
    select_component,
)
from service.core.measure.quality import (
    QualityFlag,
    QualityLimits,
    exposure_flags,
    outline_flags,
    small_gray,
    wound_flags,
)
from service.core.measure.result import Measurement
from service.core.uncertainty import combine_log, halfwidth_pct


def measure(
    rgb: np.ndarray,
    mask: np.ndarray,
    *,
    marker_mm: float = MARKER_MM,
    px_per_mm: float | None = None,
    ruler: Ruler | tuple[float, float, float, float, float] | None = None,
    target_point: tuple[float, float] | None = None,
    limits: QualityLimits | None = None,
    markers: list[DetectedMarker] | None = None,
    segmentation_log_halfwidth: float | None = None,
    scale_confirmed: bool = False,
) -> Measurement:
    """Measure the wound ``mask`` (nonzero = wound, same height and width as the
    photo ``rgb`` as displayed) in cm², with flags. ``marker_mm`` is the side of the
    marker's outer black square; ``px_per_mm`` or ``ruler`` calibrate a photo without
    one (``ruler``: x1, y1, x2, y2 in photo pixels and their distance in mm).
    ``markers`` skips detection when the caller already ran it.
    ``segmentation_log_halfwidth`` is the outline's 95 % half-width of log(true /
    measured area) (``service.core.uncertainty``); the interval then holds both errors.
    ``scale_confirmed``: a clinician gave ``px_per_mm`` or ``ruler`` with an outline
    correction (``calibration.calibrate``). A measurement outside a physical range has
    no cm values (``plausibility.checked``)."""
    limits = limits or QualityLimits()
    ruler = _checked_inputs(rgb, mask, marker_mm, px_per_mm, ruler)
    wound = (mask.max(axis=2) if mask.ndim == 3 else mask) > 0
    wound, flags = _target_component(wound, target_point)
    crop = WoundCrop.of(wound)
    gray = small_gray(rgb)
    flags += exposure_flags(rgb, gray, crop.pixels, crop.xy, limits)
    if markers is None:
        markers = detect_markers(rgb)
    image_size_px = (rgb.shape[1], rgb.shape[0])
    scale = calibrate(
        markers,
        crop.centroid_px,
        image_size_px,
        marker_mm,
        px_per_mm,
        ruler,
        limits=limits,
        scale_confirmed=scale_confirmed,
    )
    flags += calibration_flags(scale, markers, gray, marker_mm, limits)
    flags += wound_flags(wound, crop.area_px, limits)
    segmentation_pct = (
        halfwidth_pct(segmentation_log_halfwidth)
        if segmentation_log_halfwidth is not None and crop.area_px >= limits.min_wound_px
        else None
    )
    flags += outline_flags(segmentation_pct, limits)
    chosen = scale.chosen
    result = Measurement(
        area_px=crop.area_px,
        components=crop.components,
        calibration=scale.method,
        segmentation_pct=segmentation_pct,
        markers_found=len(markers),
        marker_id=chosen.marker_id if chosen else None,
        marker_corners_px=chosen.corners_px.round(3).tolist() if chosen else None,
        quality=flags,
    )
    if scale.h_photo_to_mm is None:
        return result
    calibrated = _calibrated_measurement(
        result, crop, scale, marker_mm, ruler, segmentation_log_halfwidth, limits
    )
    return plausibility.checked(calibrated, scale, marker_mm, image_size_px, limits)


def _checked_inputs(
    rgb: np.ndarray,
    mask: np.ndarray,
    marker_mm: float,
    px_per_mm: float | None,
    ruler: Ruler | tuple[float, float, float, float, float] | None,
) -> Ruler | None:
    """The ruler as a ``Ruler``, once every argument is known to be measurable: a bad
    argument is the caller's error (ValueError), never a quality flag."""
    if ruler is not None and not isinstance(ruler, Ruler):
        ruler = Ruler(*(float(v) for v in ruler))
        if ruler.mm <= 0 or ruler.length_px <= 0:
            raise ValueError("a ruler needs two different points and a positive distance in mm")
    if mask.shape[:2] != rgb.shape[:2]:
        raise ValueError(
            f"mask is {mask.shape[1]}x{mask.shape[0]} but the photo is {rgb.shape[1]}x{rgb.shape[0]}"
        )
    if marker_mm <= 0:
        raise ValueError("marker_mm must be positive")
    if px_per_mm is not None and not px_per_mm > 0:
        raise ValueError("px_per_mm must be positive")
    return ruler


def _target_component(
    wound: np.ndarray, target_point: tuple[float, float] | None
) -> tuple[np.ndarray, list[QualityFlag]]:
    """The wound the client pointed at (all of the mask without a point), and the flag
    that says when the point missed every wound, or, without a point, that several
    separate areas are measured together, so a person checks it is the right one."""
    if target_point is None:
        if not wound.any():
            return wound, []
        components = cv2.connectedComponents(wound.astype(np.uint8), connectivity=8)[0] - 1
        if components < 2:
            return wound, []
        return wound, [
            QualityFlag(
                "several_wounds",
                f"{components} separate areas were outlined and measured together as one wound: if they are not all this wound, retake and tap this wound on the photo, or correct the outline.",
            )
        ]
    if not wound.any():
        return wound, []
    wound, inside = select_component(wound, target_point)
    if inside:
        return wound, []
    return wound, [
        QualityFlag(
            "target_outside_wound",
            f"The target point ({target_point[0]:g}, {target_point[1]:g}) is not on a wound outline; the nearest wound was measured. Check that it is the right one.",
        )
    ]


def _calibrated_measurement(
    uncalibrated: Measurement,
    crop: WoundCrop,
    scale: Scale,
    marker_mm: float,
    ruler: Ruler | None,
    segmentation_log_halfwidth: float | None,
    limits: QualityLimits,
) -> Measurement:
    """``uncalibrated`` with its cm values, interval and the flags that need them."""
    h_photo_to_mm = scale.h_photo_to_mm
    assert h_photo_to_mm is not None
    area = area_mm2(crop.pixels, h_photo_to_mm, crop.xy)
    perim_mm = sum(perimeter(apply_homography(h_photo_to_mm, o)) for o in crop.outlines)
    length_mm, width_mm = (
        length_width(apply_homography(h_photo_to_mm, hull_corners_px(crop.pixels) + crop.origin))
        if crop.area_px
        else (0.0, 0.0)
    )
    sigma = math.hypot(
        calibration_sigma_mm2(crop, scale, marker_mm, ruler, area),
        _quantisation_sigma_mm2(crop, area),
    )
    calibration_rel = Z95 * sigma / area if area > 0 else None
    if calibration_rel is not None and segmentation_log_halfwidth is not None:
        # Both errors, multiplicative, in quadrature on the log scale.
        h = combine_log(calibration_rel, segmentation_log_halfwidth)
        low, high = area * math.exp(-h), area * math.exp(h)
    else:
        low, high = max(area - Z95 * sigma, 0.0), area + Z95 * sigma
    return replace(
        uncalibrated,
        quality=[
            *uncalibrated.quality,
            *precision_flags(crop, calibration_rel, limits),
            *marker_distance_flags(crop, scale, marker_mm, limits),
        ],
        area_cm2=area / 100.0,
        area_cm2_low=low / 100.0,
        area_cm2_high=high / 100.0,
        perimeter_cm=perim_mm / 10.0,
        length_cm=length_mm / 10.0,
        width_cm=width_mm / 10.0,
        tilt_deg=scale.tilt_deg,
        px_per_mm=scale.px_per_mm,
        calibration_pct=None if calibration_rel is None else 100 * calibration_rel,
    )


def _quantisation_sigma_mm2(crop: WoundCrop, area: float) -> float:
    """Standard error of the area (mm²) from the mask's pixels along its outline."""
    perim_px = sum(perimeter(o) for o in crop.outlines)
    mm2_per_px = area / crop.area_px if crop.area_px else 0.0
    return QUANTISATION_SIGMA_PER_SQRT_PX * math.sqrt(perim_px) * mm2_per_px
