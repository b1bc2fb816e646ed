"""The upload pipeline's pure steps: parse the form, decode, re-encode, segment, measure.

No database and no storage here: these functions take bytes and arrays and return
bytes and JSON, so they run on the worker pool and in tests alike. What is measured
is the *stored* photo (the metadata-free JPEG re-encode), so that re-analysis of a
stored photo with the same model reproduces the same number.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import cv2
import numpy as np

from service.core.errors import DomainError
from service.core.imaging import (
    WORKING_MAX_PIXELS,
    decode_mask,
    decode_photo,
    encode_jpeg,
    encode_png,
)
from service.core.measure import (
    PX_PER_MM_RANGE,
    QualityLimits,
    Ruler,
    measure,
    scale_problem,
    select_component,
    with_model_review_limit,
)
from service.core.segmentation import Segmentation, WoundSegmenter

Point = tuple[float, float]


@dataclass(frozen=True)
class Calibration:
    """What the client told us beyond the photo: a scale, a ruler, the wound's point."""

    px_per_mm: float | None = None
    ruler: Ruler | None = None
    target_point: Point | None = None


@dataclass(frozen=True)
class Analysis:
    """Everything an accepted upload stores."""

    photo_jpeg: bytes
    photo_format: str
    width: int
    height: int
    mask_png: bytes
    result: dict[str, Any]
    """The keys of ``woundscope measure --json``."""
    model: dict[str, str]
    segment_s: float
    cal: Calibration = Calibration()
    """The client's calibration in the stored photo's pixels (``scaled_calibration``)."""


# --- parsing the form -------------------------------------------------------------


def parse_captured_at(text: str, *, today: date | None = None) -> datetime:
    """ISO date or datetime -> the clinic's wall-clock time (time zone dropped)."""
    value = text.strip()
    try:
        if len(value) == 10:
            parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise DomainError(
            f"captured_at {value[:40]!r} is not a date: send ISO 8601, e.g. 2026-01-05 or"
            " 2026-01-05T10:30:00",
            code="invalid_date",
        ) from None
    parsed = parsed.replace(tzinfo=None)
    limit = (today or date.today()) + timedelta(days=1)
    if parsed.date() > limit or parsed.year < 1990:
        raise DomainError(
            f"captured_at {parsed.date()} is not a plausible capture date (future or before 1990)",
            code="invalid_date",
        )
    return parsed


def _numbers(text: str, count: int, field: str, code: str) -> list[float]:
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise DomainError(f"{field} must be {count} numbers separated by commas", code=code)
    return values


def ruler_json(ruler: Ruler | None) -> dict[str, float] | None:
    if ruler is None:
        return None
    return {"x1": ruler.x1, "y1": ruler.y1, "x2": ruler.x2, "y2": ruler.y2, "mm": ruler.mm}


def ruler_from_json(value: dict[str, Any] | None) -> Ruler | None:
    return None if not value else Ruler(**{k: float(v) for k, v in value.items()})


def parse_calibration(
    px_per_mm: str | None, ruler: str | None, target_point: str | None
) -> Calibration:
    scale = None
    if px_per_mm not in (None, ""):
        try:
            scale = float(px_per_mm)
        except ValueError:
            scale = math.nan
        problem = (
            f"px_per_mm {px_per_mm[:40]!r} is not a finite number"
            if not math.isfinite(scale)
            else scale_problem(scale)
        )
        if problem:
            low, high = PX_PER_MM_RANGE
            raise DomainError(
                f"{problem}: send the photo's pixels per mm, {low:g}-{high:g}",
                code="invalid_scale",
            )
    rule = None
    if ruler not in (None, ""):
        try:
            rule = Ruler.parse(ruler)
        except ValueError as exc:
            raise DomainError(
                f"{exc} (pixels of the photo as displayed, then mm)", code="invalid_ruler"
            ) from None
    target = None
    if target_point not in (None, ""):
        x, y = _numbers(target_point, 2, "target_point (x,y)", "invalid_target_point")
        target = (x, y)
    return Calibration(px_per_mm=scale, ruler=rule, target_point=target)


def check_inside(cal: Calibration, width: int, height: int) -> None:
    """Points must lie in the photo as displayed; checked before anything is stored."""

    def inside(p: Point) -> bool:
        return 0 <= p[0] < width and 0 <= p[1] < height

    if cal.target_point is not None and not inside(cal.target_point):
        raise DomainError(
            f"target_point {cal.target_point} is outside the photo ({width}x{height})",
            code="invalid_target_point",
        )
    r = cal.ruler
    if r is not None and not (inside((r.x1, r.y1)) and inside((r.x2, r.y2))):
        raise DomainError(
            f"a ruler point is outside the photo ({width}x{height})", code="invalid_ruler"
        )


def scaled_calibration(cal: Calibration, scale_x: float, scale_y: float) -> Calibration:
    """``cal`` (points and scale in the pixels of the photo as sent) in the pixels of the
    photo as stored, which is smaller when it was over ``WORKING_MAX_PIXELS``."""
    if scale_x == 1.0 and scale_y == 1.0:
        return cal
    r = cal.ruler
    return Calibration(
        px_per_mm=None if cal.px_per_mm is None else cal.px_per_mm * (scale_x * scale_y) ** 0.5,
        ruler=None
        if r is None
        else Ruler(r.x1 * scale_x, r.y1 * scale_y, r.x2 * scale_x, r.y2 * scale_y, r.mm),
        target_point=None
        if cal.target_point is None
        else (cal.target_point[0] * scale_x, cal.target_point[1] * scale_y),
    )


# --- the CPU-bound work -------------------------------------------------------------


def measured_mask(mask: np.ndarray, cal: Calibration) -> np.ndarray:
    """The mask that is measured: with a target point, only the wound under (or nearest
    to) it; otherwise every component. 0/255 uint8."""
    if cal.target_point is None or not mask.any():
        return mask
    chosen, _ = select_component(mask > 0, cal.target_point)
    return chosen.astype(np.uint8) * np.uint8(255)


def measure_mask(
    rgb: np.ndarray,
    mask: np.ndarray,
    *,
    marker_mm: float,
    cal: Calibration,
    limits: QualityLimits | None = None,
    segmentation_log_halfwidth: float | None = None,
    scale_confirmed: bool = False,
) -> dict[str, Any]:
    """The measurement of ``mask`` on ``rgb`` as the wire JSON (``measure --json`` keys);
    ``segmentation_log_halfwidth`` is the model's outline uncertainty for it (None for a
    clinician's outline); ``scale_confirmed``: a clinician gave ``cal``'s scale."""
    result = measure(
        rgb,
        mask,
        marker_mm=marker_mm,
        px_per_mm=cal.px_per_mm,
        ruler=cal.ruler,
        target_point=cal.target_point,
        limits=limits,
        segmentation_log_halfwidth=segmentation_log_halfwidth,
        scale_confirmed=scale_confirmed,
    ).to_json()
    return finite_json(result)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def finite_json(result: dict[str, Any]) -> dict[str, Any]:
    """Plain JSON types only, and no NaN or infinity: a non-finite number would be
    stored and then break every export of the study (JSON has no inf). The inputs are
    bounded so this never happens; if it did, the value is null (not measurable)."""
    plain: dict[str, Any] = _finite(json.loads(json.dumps(result)))
    return plain


def segment_and_measure(
    rgb: np.ndarray,
    segmenter: WoundSegmenter,
    *,
    marker_mm: float,
    cal: Calibration,
    limits: QualityLimits | None = None,
) -> tuple[Segmentation, np.ndarray, dict[str, Any]]:
    """The model's outline of ``rgb``, the wound ``cal`` points at, and its measurement
    with the outline's uncertainty: (segmentation, measured mask, result JSON)."""
    seg = segmenter.segment(rgb)
    mask = measured_mask(seg.mask, cal)
    result = measure_mask(
        rgb,
        mask,
        marker_mm=marker_mm,
        cal=cal,
        limits=with_model_review_limit(limits or QualityLimits(), segmenter.review_halfwidth_pct()),
        segmentation_log_halfwidth=segmenter.outline_log_halfwidth(rgb, seg, mask),
    )
    return seg, mask, result


def analyse_upload(
    data: bytes,
    *,
    name: str,
    segmenter: WoundSegmenter,
    marker_mm: float,
    cal: Calibration,
    max_bytes: int,
    max_pixels: int,
    jpeg_quality: int = 95,
    limits: QualityLimits | None = None,
) -> Analysis:
    """Bytes of an uploaded photo -> what to store. Raises ``ImageError``/``DomainError``."""
    photo = decode_photo(
        data,
        name=name,
        max_bytes=max_bytes,
        max_pixels=max_pixels,
        work_max_pixels=WORKING_MAX_PIXELS,
    )
    sent_w, sent_h = round(photo.width / photo.scale_x), round(photo.height / photo.scale_y)
    check_inside(cal, sent_w, sent_h)
    cal = scaled_calibration(cal, photo.scale_x, photo.scale_y)
    jpeg = encode_jpeg(photo.rgb, quality=jpeg_quality)
    photo_format = photo.format
    del photo  # the decoded original is not kept: the stored photo is what is measured
    stored = decode_photo(
        jpeg, name=name, max_bytes=max(max_bytes, len(jpeg)), max_pixels=max_pixels
    )
    seg, mask, result = segment_and_measure(
        stored.rgb, segmenter, marker_mm=marker_mm, cal=cal, limits=limits
    )
    return Analysis(
        photo_jpeg=jpeg,
        photo_format=photo_format,
        width=stored.width,
        height=stored.height,
        mask_png=encode_png(mask),
        result=result,
        model=segmenter.info(),
        segment_s=seg.ms / 1000.0,
        cal=cal,
    )


def reanalyse(
    photo_jpeg: bytes,
    *,
    segmenter: WoundSegmenter,
    marker_mm: float,
    cal: Calibration,
    limits: QualityLimits | None = None,
) -> tuple[bytes, dict[str, Any]]:
    """A stored photo measured again (another model version): (mask PNG, result JSON)."""
    stored = decode_photo(
        photo_jpeg, name="stored photo", max_bytes=len(photo_jpeg) + 1, max_pixels=10**9
    )
    _, mask, result = segment_and_measure(
        stored.rgb, segmenter, marker_mm=marker_mm, cal=cal, limits=limits
    )
    return encode_png(mask), result


def manual_mask(
    photo_jpeg: bytes,
    *,
    mask_png: bytes | None,
    polygon: str | None,
    marker_mm: float,
    cal: Calibration,
    clinician_scale: Calibration | None = None,
    limits: QualityLimits | None = None,
) -> tuple[bytes, dict[str, Any]]:
    """A clinician's mask (PNG, or a polygon in photo pixels) measured: (mask PNG, result).

    The photo's own calibration (``cal``: what the site sent) is measured again, so a
    severe calibration flag (``scale_conflict``, ``marker_unreadable``) stays on the
    correction; a scale the clinician gives with it (``clinician_scale``: ``px_per_mm``
    or ``ruler``) is used instead and overrules a disagreeing marker
    (``marker_overruled``)."""
    stored = decode_photo(
        photo_jpeg, name="stored photo", max_bytes=len(photo_jpeg) + 1, max_pixels=10**9
    )
    h, w = stored.height, stored.width
    if mask_png is not None:
        mask = decode_mask(mask_png, width=w, height=h)
    elif polygon:
        mask = polygon_mask(polygon, w, h)
    else:
        raise DomainError(
            "send a mask PNG (field 'mask') or a polygon (field 'polygon')", code="invalid_mask"
        )
    if clinician_scale is not None:
        check_inside(clinician_scale, w, h)
    # The clinician outlined this wound: no component picking.
    given = clinician_scale if clinician_scale is not None else cal
    result = measure_mask(
        stored.rgb,
        mask,
        marker_mm=marker_mm,
        cal=Calibration(given.px_per_mm, given.ruler, None),
        limits=limits,
        scale_confirmed=clinician_scale is not None,
    )
    return encode_png(mask), result


def _ring(value: Any) -> np.ndarray | None:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError):
        return None
    return arr if arr.ndim == 2 else None


def _rings(value: Any) -> list[np.ndarray]:
    """``[[x, y], ...]`` or a list of them -> float arrays (empty list: malformed)."""
    one = _ring(value)
    if one is not None:
        return [one]
    if not isinstance(value, list) or not value:
        return []
    rings = [_ring(v) for v in value]
    return [r for r in rings if r is not None] if all(r is not None for r in rings) else []


def polygon_mask(text: str, width: int, height: int) -> np.ndarray:
    """JSON ``[[x, y], ...]`` (photo pixels, 3+ points), or a list of such polygons (the
    parts of one wound's outline) -> a filled 0/255 mask."""
    try:
        rings = _rings(json.loads(text))
    except (ValueError, RecursionError):  # RecursionError: [[[[...]]]] 50,000 deep
        rings = []
    if not rings or any(r.shape[1] != 2 or len(r) < 3 or not np.isfinite(r).all() for r in rings):
        raise DomainError(
            "polygon must be JSON [[x, y], ...] with at least 3 points (or a list of them)",
            code="invalid_mask",
        )
    for points in rings:
        if (points < 0).any() or (points[:, 0] > width).any() or (points[:, 1] > height).any():
            raise DomainError(
                f"a polygon point lies outside the photo ({width}x{height})", code="invalid_mask"
            )
    mask = np.zeros((height, width), dtype=np.uint8)
    for points in rings:  # one at a time: overlapping parts stay filled
        cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 255)
    return mask


def overlay_jpeg(photo_jpeg: bytes, mask_png: bytes, quality: int = 90) -> bytes:
    """The photo with the mask's outline drawn on it (what the model saw)."""
    rgb = decode_photo(
        photo_jpeg, name="stored photo", max_bytes=len(photo_jpeg) + 1, max_pixels=10**9
    ).rgb.copy()
    mask = decode_photo(mask_png, name="mask", max_bytes=len(mask_png) + 1, max_pixels=10**9).rgb[
        ..., 0
    ]
    contours, _ = cv2.findContours(
        (mask > 127).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    thickness = max(2, round(max(rgb.shape[:2]) / 400))
    cv2.drawContours(rgb, contours, -1, (255, 230, 0), thickness + 2, lineType=cv2.LINE_AA)
    cv2.drawContours(rgb, contours, -1, (20, 20, 20), max(1, thickness // 2), lineType=cv2.LINE_AA)
    return encode_jpeg(rgb, quality=quality)
