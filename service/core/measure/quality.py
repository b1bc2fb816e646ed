"""Quality flags a site can act on: every code, the thresholds, and the checks that
need only the pixels (exposure, blur without a marker, the wound's own checks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from service.core.review import CLOSED_MAX_AREA_CM2

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
    "scale_ignored": (
        "a marker was found and agrees with the given scale, so the marker was used",
        False,
    ),
    "scale_conflict": (
        "the given scale and a detected marker disagree: the given scale was used, not"
        " counted until a clinician gives the scale with an outline correction",
        True,
    ),
    "marker_overruled": (
        "a clinician gave the scale with the outline; the detected marker was not used",
        False,
    ),
    "implausible_measurement": (
        "area, perimeter, length or scale outside a physical range: no cm value, never counted",
        True,
    ),
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
    scale_agreement_pct: float = Field(
        default=10.0,
        gt=0,
        description="a given scale and a marker's agree within this % (or their 95 % intervals)",
    )
    max_area_cm2: float = Field(
        default=400.0, gt=0, description="largest plausible foot-ulcer area, cm²"
    )
    max_perimeter_cm: float = Field(
        default=300.0, gt=0, description="largest plausible outline length, cm"
    )
    max_length_cm: float = Field(
        default=50.0, gt=0, description="largest plausible extent of a foot ulcer, cm"
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


def small_gray(rgb: np.ndarray, max_side: int = 1024) -> np.ndarray:
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


def wound_flags(wound: np.ndarray, area_px: int, limits: QualityLimits) -> list[QualityFlag]:
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


def with_model_review_limit(limits: QualityLimits, review_pct: float | None) -> QualityLimits:
    """The model's calibrated review limit (its model.json's
    ``uncertainty.review_halfwidth_pct``) in place of the default one; a limit the
    service's settings moved away from the default is the operator's and is kept."""
    if review_pct is None or limits.max_segmentation_uncertainty_pct != SEGMENTATION_UNCERTAIN_PCT:
        return limits
    return limits.model_copy(update={"max_segmentation_uncertainty_pct": review_pct})


def outline_flags(segmentation_pct: float | None, limits: QualityLimits) -> list[QualityFlag]:
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


def blur_flag_without_marker(gray: np.ndarray, limits: QualityLimits) -> list[QualityFlag]:
    score = blur_effect(gray)
    if score > limits.blur_effect_max:
        return [
            QualityFlag(
                "photo_blurred",
                "The photo is blurred: hold the phone still, let it focus on the wound, and retake.",
            )
        ]
    return []


def exposure_flags(
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


NEVER_COUNTED_FLAGS = ("implausible_measurement", "scale_conflict")
"""Severe calibration flags that no acceptance lifts: only a new measurement without
them (a correction giving the scale) counts."""


def calibration_uncounted_reason(
    quality: list[dict[str, Any]], *, manual: bool, accepted: bool
) -> str | None:
    """Why a calibrated measurement's own calibration keeps it out of the endpoints,
    whatever the review policy: a flag of ``NEVER_COUNTED_FLAGS`` (its code), or a
    severe ``marker_unreadable`` on a clinician's correction that was not itself
    accepted (``severe_quality_flag``): correcting the outline does not fix the scale,
    giving the scale with it does (the marker is then not used). None otherwise."""
    severe = {str(f.get("code")) for f in quality if f.get("severe")}
    for code in NEVER_COUNTED_FLAGS:
        if code in severe:
            return code
    if manual and "marker_unreadable" in severe and not accepted:
        return "severe_quality_flag"
    return None
