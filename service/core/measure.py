"""Wound size in cm² from a photo and its wound mask: calibration, perspective
correction, an honest interval, and quality flags a site can act on.

One pure entry point, ``measure(rgb, mask, ...) -> Measurement``, is what the
service, ``woundscope measure``, the simulator and training's evaluation call.

Calibration, in order of preference:

1. ``marker``: a printed ArUco marker (``service.core.marker``) found in the photo. Its
   four refined corners give the homography photo -> millimetre plane, and the mask
   is measured in that plane, which corrects tilt, rotation and distance. With
   several markers, the one nearest the wound is used (see ``service.core.marker``). A
   scale the client also sent is then ignored (flagged ``scale_ignored``): the
   marker corrects perspective, a scale cannot.
2. ``px_per_mm``: a scale sent by the client; ``ruler``: two points and the
   distance between them in mm. No perspective correction (flagged).
3. ``none``: area in pixels only, every cm value null, flagged severe. Never a guess.

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

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from service.core.marker import MARKER_MM, DetectedMarker, detect_markers
from service.core.review import CLOSED_MAX_AREA_CM2
from service.core.uncertainty import combine_log, halfwidth_pct

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
SEGMENTATION_UNCERTAIN_PCT = 45.0
"""The outline's 95 % half-width (% of the area) beyond which the photo goes to review
(``outline_uncertain``); the model card reports how many photos of each yardstick it
sends there and how wrong they were. ±45 % is the loosest of 30/45/60/100/150 that
flags at least 90 % of the held-out photos whose area is off by more than 30 % with
ulcerseg-2.0.0 (``python -m training.calibrate_uncertainty ulcerseg-2.0.0``)."""


QUALITY_CODES: dict[str, tuple[str, bool]] = {
    # code: (meaning, severe)
    "marker_not_found": ("no marker and no scale: area in pixels only", True),
    "marker_unreadable": ("marker decoded but its edges not measurable: approximate", True),
    "no_wound_found": ("the mask is empty", True),
    "no_perspective_correction": ("calibrated by a scale or ruler, tilt not corrected", False),
    "scale_ignored": ("a marker was found, so the given scale was not used", False),
    "multiple_markers": ("several markers; the one nearest the wound was used", False),
    "marker_too_small": ("marker side below marker_min_side_px", False),
    "tilt_too_large": ("camera tilt beyond max_tilt_deg", False),
    "marker_far_from_wound": ("marker beyond marker_max_distance_mm from the wound", False),
    "photo_blurred": ("edge blur beyond blur_max_mm (or blur score beyond blur_effect_max)", False),
    "photo_too_dark": ("median luma around the wound below dark_median_luma_max", False),
    "photo_overexposed": ("blown-out share beyond clipped_fraction_max", False),
    "wound_touches_edge": ("the wound runs off the photo", False),
    "target_outside_wound": ("target point not on a wound; the nearest one was measured", False),
    "several_wounds": (
        "several separate areas outlined and measured together; no point picked one",
        False,
    ),
    "area_imprecise": ("95 % half-width beyond max_area_uncertainty_pct", False),
    # Review flags that need more than the pixels (raised by the model's uncertainty,
    # or by ``service.core.review`` over the wound's series; they send the photo to review).
    "outline_uncertain": (
        "the model is unsure where the wound's edge is: check the outline, correct it if needed",
        False,
    ),
    "implausible_change": (
        "the area jumps against the wound's other visits beyond what healing allows:"
        " check the outline against the neighbouring photos, then accept or correct it",
        False,
    ),
    "closure_area_mismatch": (
        f"recorded closed while the outline measures more than {CLOSED_MAX_AREA_CM2:g} cm²,"
        " or open while no wound is found: check the photo, then correct the outline or"
        " the observation",
        False,
    ),
}
"""Every quality flag a photo can carry, for documentation and the README: those
``measure`` raises, and the review flags (``service.core.review.REVIEW_CODES``)."""


class QualityLimits(BaseModel):
    """Every threshold the quality checks use, in one place. The service's settings
    pass their values in; the defaults suit phone photos of foot ulcers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tilt_deg: float = Field(
        default=45.0, gt=0, le=90, description="camera tilt beyond which to retake"
    )
    marker_min_side_px: float = Field(
        default=40.0, gt=0, description="smallest marker side in pixels"
    )
    marker_max_distance_mm: float = Field(
        default=80.0, gt=0, description="marker centre to wound centre"
    )
    blur_max_mm: float = Field(
        default=0.35, gt=0, description="edge blur (Gaussian sigma) at the marker, mm"
    )
    blur_effect_max: float = Field(
        default=0.6,
        gt=0,
        lt=1,
        description="no-reference blur score (0 sharp - 1 flat) without a marker",
    )
    dark_median_luma_max: float = Field(
        default=45.0,
        ge=0,
        le=255,
        description="median luma (0-255) around the wound below which a photo is too dark",
    )
    clipped_fraction_max: float = Field(
        default=0.2, gt=0, le=1, description="share of blown-out pixels, photo or wound"
    )
    edge_touch_min_px: int = Field(
        default=3, ge=1, description="wound pixels on the photo's border that count as touching"
    )
    min_wound_px: int = Field(
        default=1, ge=1, description="fewer wound pixels than this is no wound"
    )
    max_area_uncertainty_pct: float = Field(
        default=10.0, gt=0, description="calibration's 95 % half-width of the area, % of it"
    )
    max_segmentation_uncertainty_pct: float = Field(
        default=SEGMENTATION_UNCERTAIN_PCT,
        gt=0,
        description="outline's 95 % half-width of the area, % of it (outline_uncertain)",
    )


@dataclass(frozen=True)
class QualityFlag:
    code: str
    message: str
    severe: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "severe": self.severe}


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
class Measurement:
    """One wound measured on one photo. cm values are None when uncalibrated."""

    area_px: int
    components: int
    calibration: CalibrationMethod
    area_cm2: float | None = None
    area_cm2_low: float | None = None
    area_cm2_high: float | None = None
    perimeter_cm: float | None = None
    length_cm: float | None = None
    width_cm: float | None = None
    tilt_deg: float | None = None
    px_per_mm: float | None = None
    quality: list[QualityFlag] = field(default_factory=list)
    marker_id: int | None = None
    markers_found: int = 0
    marker_corners_px: list[list[float]] | None = None
    """The marker's refined corners (ArUco order), for drawing and audit."""
    calibration_pct: float | None = None
    """95 % half-width of the area from the calibration (marker corners, scale), %."""
    segmentation_pct: float | None = None
    """95 % half-width of the area from the outline (the model's calibrated
    uncertainty), %; None for a clinician's outline or an uncalibrated model."""

    @property
    def calibrated(self) -> bool:
        return self.calibration != "none"

    @property
    def length_x_width_cm2(self) -> float | None:
        if self.length_cm is None or self.width_cm is None:
            return None
        return self.length_cm * self.width_cm

    @property
    def severe(self) -> bool:
        """True when a flag keeps this measurement out of the endpoints."""
        return any(f.severe for f in self.quality)

    def to_json(self) -> dict[str, Any]:
        """Exactly the keys of ``woundscope measure --json`` (DESIGN.md)."""

        def r(value: float | None, digits: int) -> float | None:
            return None if value is None else round(float(value), digits)

        return {
            "area_cm2": r(self.area_cm2, 4),
            "area_cm2_low": r(self.area_cm2_low, 4),
            "area_cm2_high": r(self.area_cm2_high, 4),
            "area_px": int(self.area_px),
            "components": int(self.components),
            "perimeter_cm": r(self.perimeter_cm, 3),
            "length_cm": r(self.length_cm, 3),
            "width_cm": r(self.width_cm, 3),
            "length_x_width_cm2": r(self.length_x_width_cm2, 4),
            "tilt_deg": r(self.tilt_deg, 1),
            "px_per_mm": r(self.px_per_mm, 3),
            "calibrated": self.calibrated,
            "calibration": self.calibration,
            "uncertainty": {
                "calibration_pct": r(self.calibration_pct, 1),
                "segmentation_pct": r(self.segmentation_pct, 1),
            },
            "quality": [f.to_json() for f in self.quality],
        }


# ------------------------------------------------------------------ geometry (pure)


def apply_homography(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    """N x 2 points through a 3 x 3 homography."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    proj = np.column_stack([pts, np.ones(len(pts))]) @ h.T
    return np.asarray(proj[:, :2] / proj[:, 2:3])


def homography_jacobian(h: np.ndarray, point: np.ndarray) -> np.ndarray:
    """2 x 2 Jacobian of the homography ``h`` at ``point``."""
    x, y = float(point[0]), float(point[1])
    a, b, w = h @ np.array([x, y, 1.0])
    return np.array(
        [
            [(h[0, 0] * w - a * h[2, 0]) / w**2, (h[0, 1] * w - a * h[2, 1]) / w**2],
            [(h[1, 0] * w - b * h[2, 0]) / w**2, (h[1, 1] * w - b * h[2, 1]) / w**2],
        ]
    )


def tilt_from_homography_deg(h_mm_to_photo: np.ndarray, image_size_px: tuple[int, int]) -> float:
    """The camera's tilt: angle between its optical axis and the skin's normal, degrees.

    The homography of a plane is K [r1 r2 t] up to scale. With square pixels and
    the principal point at the photo's centre, r1 ⟂ r2 and |r1| = |r2| give the
    focal length (Zhang 2000), then r3 = r1 × r2 is the plane's normal in the
    camera's frame. Near zero tilt the focal length is unobservable, but so is its
    effect on the tilt: a typical phone's (0.8 x the long side) is used then.
    """
    w, h = image_size_px
    centre = np.array([[1, 0, -(w - 1) / 2], [0, 1, -(h - 1) / 2], [0, 0, 1.0]])
    hh = centre @ h_mm_to_photo
    hh = hh / np.linalg.norm(hh[:, 0])
    h1, h2 = hh[:, 0], hh[:, 1]
    # Two linear equations in u = 1 / f², solved by least squares.
    a1, b1 = h1[0] * h2[0] + h1[1] * h2[1], h1[2] * h2[2]
    a2, b2 = h1[0] ** 2 + h1[1] ** 2 - h2[0] ** 2 - h2[1] ** 2, h1[2] ** 2 - h2[2] ** 2
    denom = a1 * a1 + a2 * a2
    u = -(a1 * b1 + a2 * b2) / denom if denom > 0 else 0.0
    long_side = max(w, h)
    focal_px = 1 / math.sqrt(u) if u > 0 else 0.0
    if not 0.3 * long_side < focal_px < 5 * long_side:
        focal_px = 0.8 * long_side
    k_inv = np.diag([1 / focal_px, 1 / focal_px, 1.0])
    r1, r2 = k_inv @ h1, k_inv @ h2
    normal = np.cross(r1 / np.linalg.norm(r1), r2 / np.linalg.norm(r2))
    normal /= np.linalg.norm(normal)
    return math.degrees(math.acos(float(np.clip(abs(normal[2]), 0.0, 1.0))))


def area_mm2(
    mask: np.ndarray, h_photo_to_mm: np.ndarray, origin_px: tuple[int, int] = (0, 0)
) -> float:
    """Area of the mask's pixels in the millimetre plane, mm².

    Each pixel is one px² at its centre, scaled by the homography's local area
    factor det(H) / w³ (w the projective coordinate at the pixel). ``mask`` may be a
    crop of the photo whose top-left pixel is at ``origin_px`` (x, y).
    """
    ys, xs = np.nonzero(mask)
    xs = xs + origin_px[0]
    ys = ys + origin_px[1]
    if len(xs) == 0:
        return 0.0
    h = h_photo_to_mm
    w = h[2, 0] * xs + h[2, 1] * ys + h[2, 2]
    return float(np.sum(abs(np.linalg.det(h)) / np.abs(w) ** 3))


def outline_px(mask: np.ndarray) -> list[np.ndarray]:
    """Outer outlines of the mask's components on the pixels' outer edges.

    OpenCV's contours run through boundary pixel *centres*, half a pixel inside
    the mask; smoothing removes the staircase and each point is moved half a pixel
    outwards, so lengths and polygon areas match the pixels'.
    """
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    outlines = []
    for c in contours:
        pts = c.reshape(-1, 2).astype(np.float64)
        if len(pts) < 3:
            # One or two pixels: their square(s) outline.
            x0, y0 = pts.min(axis=0) - 0.5
            x1, y1 = pts.max(axis=0) + 0.5
            outlines.append(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))
            continue
        k = 2  # moving average over 5 points: the staircase is 1-2 px long
        padded = np.concatenate([pts[-k:], pts, pts[:k]])
        kernel = np.ones(2 * k + 1) / (2 * k + 1)
        smooth = np.column_stack(
            [np.convolve(padded[:, i], kernel, mode="valid") for i in range(2)]
        )
        tangent = np.roll(smooth, -1, axis=0) - np.roll(smooth, 1, axis=0)
        normal = np.column_stack([tangent[:, 1], -tangent[:, 0]])
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
        # Outwards: the side that grows the polygon.
        sign = (
            1.0
            if _signed_area(smooth + 0.5 * normal) ** 2 >= _signed_area(smooth - 0.5 * normal) ** 2
            else -1.0
        )
        outlines.append(smooth + sign * 0.5 * normal)
    return outlines


def hull_corners_px(mask: np.ndarray) -> np.ndarray:
    """Corners of the mask's pixels (as squares) on its convex hull: for extents,
    where the smoothed outline would round off the corners."""
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    hull = cv2.convexHull(np.concatenate(contours)).reshape(-1, 2).astype(np.float64)
    offsets = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    return (hull[:, None, :] + offsets[None]).reshape(-1, 2)


def _signed_area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def polygon_area(poly: np.ndarray) -> float:
    return abs(_signed_area(poly))


def perimeter(poly: np.ndarray) -> float:
    return float(np.sum(np.linalg.norm(np.roll(poly, -1, axis=0) - poly, axis=1)))


def length_width(points: np.ndarray) -> tuple[float, float]:
    """Longest extent of the points, and their greatest extent perpendicular to it."""
    if len(points) < 2:
        return 0.0, 0.0
    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    d = np.linalg.norm(hull[:, None, :] - hull[None, :, :], axis=2)
    i, j = np.unravel_index(int(np.argmax(d)), d.shape)
    length = float(d[i, j])
    if length == 0:
        return 0.0, 0.0
    axis = (hull[j] - hull[i]) / length
    across = hull @ np.array([-axis[1], axis[0]])
    return length, float(across.max() - across.min())


def marker_homography(corners_px: np.ndarray, marker_mm: float) -> np.ndarray:
    """Photo px -> marker-plane mm (origin at the marker's top-left corner)."""
    square = np.array(
        [[0, 0], [marker_mm, 0], [marker_mm, marker_mm], [0, marker_mm]], dtype=np.float64
    )
    return homography_from_4_points(np.asarray(corners_px, dtype=np.float64), square)


def homography_from_4_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The exact homography taking four points to four, in float64 (OpenCV's
    ``getPerspectiveTransform`` works in float32, too coarse for 0.01 px)."""
    a = np.zeros((8, 8))
    b = np.zeros(8)
    for i, ((x, y), (u, v)) in enumerate(zip(src, dst, strict=True)):
        a[2 * i] = [x, y, 1, 0, 0, 0, -u * x, -u * y]
        a[2 * i + 1] = [0, 0, 0, x, y, 1, -v * x, -v * y]
        b[2 * i], b[2 * i + 1] = u, v
    return np.append(np.linalg.solve(a, b), 1.0).reshape(3, 3)


def corner_area_sigma_mm2(
    corners_px: np.ndarray,
    marker_mm: float,
    outlines: list[np.ndarray],
    area: float,
    sigma_px: float,
) -> float:
    """Standard error of the area (mm²) from independent corner errors ``sigma_px``,
    by the derivative of this outline's rectified area with each corner coordinate."""
    base_h = marker_homography(corners_px, marker_mm)
    base = sum(polygon_area(apply_homography(base_h, o)) for o in outlines)
    if base <= 0:
        return 0.0
    eps = 0.05
    var = 0.0
    for idx in range(8):
        moved = corners_px.copy().reshape(-1)
        moved[idx] += eps
        h = marker_homography(moved.reshape(4, 2), marker_mm)
        a = sum(polygon_area(apply_homography(h, o)) for o in outlines)
        var += ((a - base) / eps * area / base) ** 2
    return math.sqrt(var) * sigma_px


# ------------------------------------------------------------------ quality (pure)


def blur_effect(gray: np.ndarray) -> float:
    """No-reference blur score (Crété-Roffet et al. 2007), 0 sharp to 1 featureless.

    How much of the photo's neighbour-to-neighbour variation survives a strong
    extra blur: a sharp photo loses most of it, a blurred one little.
    """
    f = gray.astype(np.float32)
    score = 0.0
    for axis, ksize in ((0, (1, 9)), (1, (9, 1))):
        blurred = cv2.blur(f, ksize)
        d_f = np.abs(np.diff(f, axis=axis))
        d_b = np.abs(np.diff(blurred, axis=axis))
        s_f = float(d_f.sum())
        if s_f <= 0:
            return 1.0
        s_v = float(np.maximum(d_f - d_b, 0).sum())
        score = max(score, (s_f - s_v) / s_f)
    return score


def _small_gray(rgb: np.ndarray, max_side: int = 1024) -> np.ndarray:
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    scale = max(gray.shape) / max_side
    if scale > 1:
        gray = cv2.resize(
            gray,
            (round(gray.shape[1] / scale), round(gray.shape[0] / scale)),
            interpolation=cv2.INTER_AREA,
        )
    return gray


def _touches_edge_px(mask: np.ndarray) -> int:
    return int(
        np.count_nonzero(mask[0])
        + np.count_nonzero(mask[-1])
        + np.count_nonzero(mask[1:-1, 0])
        + np.count_nonzero(mask[1:-1, -1])
    )


# ------------------------------------------------------------------ entry point


def select_component(
    mask: np.ndarray, target_point: tuple[float, float]
) -> tuple[np.ndarray, bool]:
    """The component under ``target_point`` (x, y px), else the nearest one.

    Returns (mask of that component, whether the point was inside it).
    """
    n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask, False
    x = int(round(target_point[0]))
    y = int(round(target_point[1]))
    h, w = mask.shape
    if 0 <= y < h and 0 <= x < w and labels[y, x] > 0:
        return labels == labels[y, x], True
    ys, xs = np.nonzero(labels)
    nearest = int(np.argmin((xs - target_point[0]) ** 2 + (ys - target_point[1]) ** 2))
    return labels == labels[ys[nearest], xs[nearest]], False


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
) -> Measurement:
    """Measure the wound ``mask`` (nonzero = wound, same height and width as the
    photo ``rgb`` as displayed) in cm², with flags. ``marker_mm`` is the side of the
    marker's outer black square; ``px_per_mm`` or ``ruler`` calibrate a photo without
    one (``ruler``: x1, y1, x2, y2 in photo pixels and their distance in mm).
    ``markers`` skips detection when the caller already ran it.
    ``segmentation_log_halfwidth`` is the outline's 95 % half-width of log(true /
    measured area) (``service.core.uncertainty``); the interval then holds both errors."""
    limits = limits or QualityLimits()
    ruler = _checked_inputs(rgb, mask, marker_mm, px_per_mm, ruler)
    wound = (mask.max(axis=2) if mask.ndim == 3 else mask) > 0
    wound, flags = _target_component(wound, target_point)
    crop = _WoundCrop.of(wound)
    gray = _small_gray(rgb)
    flags += _exposure_flags(rgb, gray, crop.pixels, crop.xy, limits)
    if markers is None:
        markers = detect_markers(rgb)
    scale = _calibrate(
        markers, crop.centroid_px, (rgb.shape[1], rgb.shape[0]), marker_mm, px_per_mm, ruler
    )
    flags += _calibration_flags(
        scale, markers, gray, marker_mm, px_per_mm is not None or ruler is not None, limits
    )
    flags += _wound_flags(wound, crop.area_px, limits)
    segmentation_pct = (
        halfwidth_pct(segmentation_log_halfwidth)
        if segmentation_log_halfwidth is not None and crop.area_px >= limits.min_wound_px
        else None
    )
    flags += _outline_flags(segmentation_pct, limits)
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
    return _calibrated_measurement(
        result, crop, scale, marker_mm, ruler, segmentation_log_halfwidth, limits
    )


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


@dataclass(frozen=True)
class _WoundCrop:
    """The mask's own work happens on its bounding box: a wound is a small part of a
    12-megapixel photo. Outlines and centroid are in photo pixels."""

    pixels: np.ndarray
    """The wound mask cropped to its bounding box (bool)."""
    xy: tuple[int, int]
    """The crop's top-left pixel in the photo (x, y)."""
    area_px: int
    components: int
    outlines: list[np.ndarray]
    centroid_px: np.ndarray | None
    """None for an empty mask."""

    @property
    def origin(self) -> np.ndarray:
        return np.array(self.xy, dtype=np.float64)

    @classmethod
    def of(cls, wound: np.ndarray) -> _WoundCrop:
        x0, y0, bw, bh = cv2.boundingRect(wound.astype(np.uint8))
        crop = wound[y0 : y0 + bh, x0 : x0 + bw]
        origin = np.array([x0, y0], dtype=np.float64)
        area_px = int(np.count_nonzero(crop))
        if not area_px:
            return cls(crop, (x0, y0), 0, 0, [], None)
        components = int(cv2.connectedComponents(crop.astype(np.uint8), connectivity=8)[0] - 1)
        outlines = [o + origin for o in outline_px(crop)]
        centroid_px = np.array(np.nonzero(crop)[::-1], dtype=np.float64).mean(axis=1) + origin
        return cls(crop, (x0, y0), area_px, components, outlines, centroid_px)


@dataclass(frozen=True)
class _Scale:
    """How the photo is calibrated: the method, photo px -> mm (None: uncalibrated),
    and, with a marker, the marker used and the camera's tilt."""

    method: CalibrationMethod
    h_photo_to_mm: np.ndarray | None = None
    chosen: DetectedMarker | None = None
    tilt_deg: float | None = None
    px_per_mm: float | None = None


def _calibrate(
    markers: list[DetectedMarker],
    centroid_px: np.ndarray | None,
    image_size_px: tuple[int, int],
    marker_mm: float,
    px_per_mm: float | None,
    ruler: Ruler | None,
) -> _Scale:
    """The calibration, in order of preference (module docstring): the marker nearest
    the wound, else the ruler, else the client's scale, else none."""
    if markers:
        chosen = _nearest_marker(markers, centroid_px)
        h_photo_to_mm = marker_homography(chosen.corners_px, marker_mm)
        h_mm_to_photo = np.linalg.inv(h_photo_to_mm)
        centre_mm = np.array([marker_mm / 2, marker_mm / 2])
        tilt_deg = tilt_from_homography_deg(h_mm_to_photo, image_size_px)
        scale_px_per_mm = math.sqrt(
            abs(np.linalg.det(homography_jacobian(h_mm_to_photo, centre_mm)))
        )
        return _Scale("marker", h_photo_to_mm, chosen, tilt_deg, scale_px_per_mm)
    method: CalibrationMethod
    if ruler is not None:
        method, scale_px_per_mm = "ruler", ruler.length_px / ruler.mm
    elif px_per_mm is not None:
        method, scale_px_per_mm = "px_per_mm", float(px_per_mm)
    else:
        return _Scale("none")
    h_photo_to_mm = np.diag([1 / scale_px_per_mm, 1 / scale_px_per_mm, 1.0])
    return _Scale(method, h_photo_to_mm, px_per_mm=scale_px_per_mm)


def _calibration_flags(
    scale: _Scale,
    markers: list[DetectedMarker],
    gray: np.ndarray,
    marker_mm: float,
    scale_given: bool,
    limits: QualityLimits,
) -> list[QualityFlag]:
    """What the site should know about the calibration: a scale the marker overrode,
    no tilt correction, no calibration at all; then the marker's own checks (or, with
    no marker to measure blur on, the photo's blur score)."""
    if scale.chosen is not None:
        flags = []
        if scale_given:
            flags.append(
                QualityFlag(
                    "scale_ignored",
                    "A calibration marker was found, so the scale sent with the photo was not used: the marker also corrects perspective.",
                )
            )
        return flags + _marker_flags(
            scale.chosen, markers, scale.px_per_mm or 1.0, scale.tilt_deg or 0.0, limits
        )
    if scale.method != "none":
        return [
            QualityFlag(
                "no_perspective_correction",
                "No calibration marker was found, so the given scale was used without correcting camera tilt: the area is too small by the cosine of the tilt. Place the printed marker flat beside the wound for a corrected measurement.",
            )
        ]
    not_found = QualityFlag(
        "marker_not_found",
        f"No calibration marker found, so the area is in pixels only: place the printed {marker_mm:g} mm marker flat on the skin beside the wound, fully in view, and retake.",
        severe=True,
    )
    return [not_found, *_blur_flag_without_marker(gray, limits)]


def _wound_flags(wound: np.ndarray, area_px: int, limits: QualityLimits) -> list[QualityFlag]:
    """No wound at all (severe: nothing to count), or a wound cut by the photo's edge."""
    if area_px < limits.min_wound_px:
        return [
            QualityFlag(
                "no_wound_found",
                "No wound was found in this photo: check that the wound is in view, in focus and not covered, then retake (or draw the outline by hand).",
                severe=True,
            )
        ]
    if _touches_edge_px(wound) >= limits.edge_touch_min_px:
        return [
            QualityFlag(
                "wound_touches_edge",
                "The wound runs off the edge of the photo, so part of it is not measured: step back or centre the wound and retake.",
            )
        ]
    return []


def _outline_flags(segmentation_pct: float | None, limits: QualityLimits) -> list[QualityFlag]:
    """``outline_uncertain`` when the model's own uncertainty about the edge is beyond
    the study's limit: the photo then goes to a clinician's review."""
    if segmentation_pct is not None and segmentation_pct > limits.max_segmentation_uncertainty_pct:
        return [
            QualityFlag(
                "outline_uncertain",
                f"The model is unsure where this wound's edge is (area uncertain by ±{segmentation_pct:.0f} % from the outline alone): check the outline on the photo and correct it if it misses part of the wound.",
            )
        ]
    return []


def _calibrated_measurement(
    uncalibrated: Measurement,
    crop: _WoundCrop,
    scale: _Scale,
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
        _calibration_sigma_mm2(crop, scale, marker_mm, ruler, area),
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
            *_precision_flags(crop, calibration_rel, limits),
            *_marker_distance_flags(crop, scale, marker_mm, limits),
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


def _quantisation_sigma_mm2(crop: _WoundCrop, area: float) -> float:
    """Standard error of the area (mm²) from the mask's pixels along its outline."""
    perim_px = sum(perimeter(o) for o in crop.outlines)
    mm2_per_px = area / crop.area_px if crop.area_px else 0.0
    return QUANTISATION_SIGMA_PER_SQRT_PX * math.sqrt(perim_px) * mm2_per_px


def _calibration_sigma_mm2(
    crop: _WoundCrop, scale: _Scale, marker_mm: float, ruler: Ruler | None, area: float
) -> float:
    """Standard error of the area (mm²) from the calibration: the marker's corners and
    print scale, or the ruler's two clicked points; none known for a client's scale."""
    if scale.chosen is not None:
        sigma_px = _corner_sigma_px(scale.chosen)
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


def _precision_flags(
    crop: _WoundCrop, calibration_rel: float | None, limits: QualityLimits
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


def _marker_distance_flags(
    crop: _WoundCrop, scale: _Scale, marker_mm: float, limits: QualityLimits
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


def _corner_sigma_px(m: DetectedMarker) -> float:
    if not m.refined:
        return UNREFINED_CORNER_SIGMA_PX
    blur = m.edge_blur_px if math.isfinite(m.edge_blur_px) else 0.0
    return math.sqrt(
        (CORNER_FIT_SCALE * m.corner_sigma_px) ** 2
        + CORNER_SIGMA_FLOOR_PX**2
        + (CORNER_SIGMA_PER_BLUR * blur) ** 2
    )


def _nearest_marker(
    markers: list[DetectedMarker], centroid_px: np.ndarray | None
) -> DetectedMarker:
    if centroid_px is None:
        return max(markers, key=lambda m: m.side_px)
    return min(markers, key=lambda m: float(np.linalg.norm(m.centre_px - centroid_px)))


def _marker_flags(
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


def _blur_flag_without_marker(gray: np.ndarray, limits: QualityLimits) -> list[QualityFlag]:
    score = blur_effect(gray)
    if score > limits.blur_effect_max:
        return [
            QualityFlag(
                "photo_blurred",
                "The photo is blurred: hold the phone still, let it focus on the wound, and retake.",
            )
        ]
    return []


def _exposure_flags(
    rgb: np.ndarray,
    gray: np.ndarray,
    wound: np.ndarray,
    origin_px: tuple[int, int],
    limits: QualityLimits,
) -> list[QualityFlag]:
    flags = []
    # Judge the light where it matters, around the wound: a dark sheet or floor
    # around the foot is not a dark photo.
    region = gray
    if wound.any():
        ys, xs = np.nonzero(wound)
        ys, xs = ys + origin_px[1], xs + origin_px[0]
        fy, fx = gray.shape[0] / rgb.shape[0], gray.shape[1] / rgb.shape[1]
        y0, y1, x0, x1 = ys.min() * fy, (ys.max() + 1) * fy, xs.min() * fx, (xs.max() + 1) * fx
        dy, dx = (y1 - y0) / 2 + 4, (x1 - x0) / 2 + 4
        region = gray[
            max(int(y0 - dy), 0) : int(y1 + dy) + 1, max(int(x0 - dx), 0) : int(x1 + dx) + 1
        ]
    if float(np.median(region)) < limits.dark_median_luma_max:
        flags.append(
            QualityFlag(
                "photo_too_dark",
                "The photo is too dark to outline the wound reliably: add light (or the phone's torch) and retake.",
            )
        )
    clipped_photo = float(np.mean(gray >= 250))
    x0, y0 = origin_px
    under = rgb[y0 : y0 + wound.shape[0], x0 : x0 + wound.shape[1]][wound]
    clipped_wound = float(np.mean(under.min(axis=1) >= 250)) if len(under) else 0.0
    if max(clipped_photo, clipped_wound) > limits.clipped_fraction_max:
        flags.append(
            QualityFlag(
                "photo_overexposed",
                "The photo is overexposed (parts are pure white): avoid direct flash or strong light on the wound and retake.",
            )
        )
    return flags
