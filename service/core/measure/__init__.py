"""Wound size in cm² from a photo and its wound mask: calibration, perspective
correction, an honest interval, and quality flags a site can act on.

One pure entry point, ``measure(rgb, mask, ...) -> Measurement``, is what the
service, ``woundscope measure``, the simulator and training's evaluation call. Its
modules, one step each: ``geometry`` (the mm plane), ``calibration`` (which scale),
``quality`` (flags and thresholds), ``plausibility`` (physical ranges), ``result``
(``Measurement``) and ``measuring`` (the entry point).

Calibration (``calibration.calibrate``), in order of preference:

1. ``marker``: a printed ArUco marker (``service.core.marker``) found in the photo. Its
   four refined corners give the homography photo -> millimetre plane, and the mask
   is measured in that plane, which corrects tilt, rotation and distance. With
   several markers, the one nearest the wound is used (see ``service.core.marker``).
2. ``px_per_mm``: a scale sent by the client; ``ruler``: two points and the
   distance between them in mm. No perspective correction (flagged).
3. ``none``: area in pixels only, every cm value null, flagged severe. Never a guess.

A scale the client gave is never silently replaced: a marker that agrees with it
(within both calibrations' 95 % intervals, at least ``scale_agreement_pct``) is used
instead (``scale_ignored``, it also corrects perspective); one that disagrees leaves
the given scale in use and raises the severe ``scale_conflict`` naming both values,
which only a clinician's correction that gives the scale lifts (``marker_overruled``).
A measurement outside a physical range (``plausibility``) is severe
``implausible_measurement`` and has no cm value at all.

Area is the integral of the homography's local area scale over the mask's pixels
(``det H / w³`` per pixel), so it is exact for the pixels given, at any tilt.

The 95 % interval on the area combines, in quadrature:

- the marker corners' localisation error (estimated per photo from the scatter of
  the edge fits, scaled for the correlation between neighbouring profiles, plus a
  floor and a share of the edge blur for tone curves that are not sRGB),
  propagated through the homography to this mask's outline;
- the mask's pixel quantisation along its outline;
- the marker's print scale (a printer that scales by 0.2 % moves area by 0.4 %).

It does not cover what a single photo cannot show: a wound not in the marker's
plane (a curved foot), or a wrong outline. Coverage is measured by
``benchmarks/calibration``.
"""

from service.core.measure.calibration import (
    PX_PER_MM_RANGE,
    RULER_MM_RANGE,
    CalibrationMethod,
    Ruler,
    nearest_marker,
    scale_problem,
)
from service.core.measure.geometry import (
    apply_homography,
    area_mm2,
    corner_area_sigma_mm2,
    homography_from_4_points,
    homography_jacobian,
    hull_corners_px,
    length_width,
    marker_homography,
    outline_px,
    perimeter,
    polygon_area,
    select_component,
    tilt_from_homography_deg,
)
from service.core.measure.measuring import measure
from service.core.measure.plausibility import IMPLAUSIBLE, marker_scale_range_px_per_mm
from service.core.measure.quality import (
    QUALITY_CODES,
    SEGMENTATION_UNCERTAIN_PCT,
    QualityFlag,
    QualityLimits,
    blur_effect,
    calibration_uncounted_reason,
    with_model_review_limit,
)
from service.core.measure.result import Measurement

__all__ = [
    "IMPLAUSIBLE",
    "marker_scale_range_px_per_mm",
    "PX_PER_MM_RANGE",
    "QUALITY_CODES",
    "RULER_MM_RANGE",
    "SEGMENTATION_UNCERTAIN_PCT",
    "CalibrationMethod",
    "Measurement",
    "QualityFlag",
    "QualityLimits",
    "Ruler",
    "apply_homography",
    "area_mm2",
    "blur_effect",
    "calibration_uncounted_reason",
    "with_model_review_limit",
    "corner_area_sigma_mm2",
    "homography_from_4_points",
    "homography_jacobian",
    "hull_corners_px",
    "length_width",
    "marker_homography",
    "measure",
    "nearest_marker",
    "outline_px",
    "perimeter",
    "polygon_area",
    "scale_problem",
    "select_component",
    "tilt_from_homography_deg",
]
