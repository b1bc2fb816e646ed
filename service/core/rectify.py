"""Photos rectified to the marker plane, and outlines as editable polygons (pure).

Two visits of a wound are only comparable by eye at the same millimetre scale and
without the camera's tilt: each photo is warped through its photo -> mm homography
(the marker's, else the sent px/mm scale, which cannot correct tilt) onto a square
window of ``side_mm`` around the wound's centroid, at ``px_per_mm`` output pixels
per millimetre. Both visits use the same window and scale, so one millimetre is the
same number of pixels in both images.

No web or database imports: the dashboard calls these in its worker pool.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from service.core.imaging import decode_photo, encode_jpeg
from service.core.marker import detect_markers
from service.core.measure import apply_homography, marker_homography, nearest_marker

RECTIFIED_MAX_SIDE_PX = 720
"""The longest side of a rectified comparison image."""
RECTIFIED_MAX_PX_PER_MM = 12.0
"""Never enlarge beyond this: finer than a phone photo's detail at a hand's distance."""
WINDOW_MARGIN_MM = 10.0
"""Skin shown around the larger of the two wounds."""
OUTLINE_MAX_VERTICES = 48
"""The editor's starting outline: few enough vertices to drag by hand and by keyboard."""


def photo_to_mm(
    rgb: np.ndarray,
    mask: np.ndarray,
    *,
    calibration: str,
    px_per_mm: float | None,
    marker_mm: float,
) -> np.ndarray | None:
    """The 3 x 3 homography photo px -> marker-plane mm of a measured photo: the marker
    nearest the wound (``measure``'s own choice, re-detected: the stored measurement
    keeps no corners), else the sent scale; None when uncalibrated."""
    if calibration == "marker":
        markers = detect_markers(rgb)
        if markers:
            chosen = nearest_marker(markers, mask_centroid_px(mask))
            return marker_homography(chosen.corners_px, marker_mm)
    if px_per_mm and px_per_mm > 0:
        return np.diag([1.0 / px_per_mm, 1.0 / px_per_mm, 1.0])
    return None


def mask_centroid_px(mask: np.ndarray) -> np.ndarray | None:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return np.array([xs.mean(), ys.mean()], dtype=np.float64)


def comparison_scale(lengths_mm: list[float | None]) -> tuple[float, float]:
    """(side_mm, px_per_mm) of the common window of a comparison: twice the longer
    wound's length (every point of a wound lies within its length of its centroid)
    plus a margin, at the finest scale that keeps the image within its size limit."""
    longest = max((length for length in lengths_mm if length), default=0.0)
    side_mm = 2.0 * longest + 2.0 * WINDOW_MARGIN_MM
    px_per_mm = min(RECTIFIED_MAX_PX_PER_MM, RECTIFIED_MAX_SIDE_PX / side_mm)
    return round(side_mm, 1), round(px_per_mm, 3)


def _warp(
    rgb: np.ndarray,
    mask: np.ndarray,
    h_photo_to_mm: np.ndarray,
    *,
    side_mm: float,
    px_per_mm: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The photo and its mask (0/255) warped to a ``side_mm`` square of the marker plane
    centred on the wound (the photo's centre for an empty mask), ``px_per_mm`` pixels
    per mm."""
    size_px = max(1, round(side_mm * px_per_mm))
    centroid = mask_centroid_px(mask)
    if centroid is None:
        centroid = np.array([rgb.shape[1] / 2.0, rgb.shape[0] / 2.0])
    centre_mm = apply_homography(h_photo_to_mm, centroid[None])[0]
    # mm -> output px: shift the window's corner to 0, then scale.
    mm_to_out = np.array(
        [
            [px_per_mm, 0.0, px_per_mm * (side_mm / 2.0 - centre_mm[0])],
            [0.0, px_per_mm, px_per_mm * (side_mm / 2.0 - centre_mm[1])],
            [0.0, 0.0, 1.0],
        ]
    )
    h = mm_to_out @ h_photo_to_mm
    out = cv2.warpPerspective(
        rgb, h, (size_px, size_px), flags=cv2.INTER_AREA, borderValue=(128, 128, 128)
    )
    warped_mask = cv2.warpPerspective(
        (mask > 0).astype(np.uint8) * 255, h, (size_px, size_px), flags=cv2.INTER_NEAREST
    )
    return np.ascontiguousarray(out), warped_mask


SCALE_BAR_MM = 10.0
"""The scale bar burnt into a rectified image."""


def _decorate(out: np.ndarray, warped_mask: np.ndarray, px_per_mm: float) -> np.ndarray:
    """The outline drawn on a warped photo, and a ``SCALE_BAR_MM`` bar with its label on
    a dark box in the bottom-left corner, sized to the image so it stays readable when
    the image is shown at a phone's width."""
    contours, _ = cv2.findContours(
        (warped_mask > 127).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    cv2.drawContours(out, contours, -1, (255, 230, 0), 3, lineType=cv2.LINE_AA)
    cv2.drawContours(out, contours, -1, (20, 20, 20), 1, lineType=cv2.LINE_AA)
    size_px = out.shape[0]
    unit = max(1.0, size_px / 360.0)  # ~1 at a 360 px image, 2 at 720
    bar_px = round(SCALE_BAR_MM * px_per_mm)
    label = f"{SCALE_BAR_MM:g} mm"
    font_scale = 0.6 * unit
    thickness = max(1, round(1.5 * unit))
    (text_w, text_h), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
    pad = round(6 * unit)
    box_w = max(bar_px, text_w) + 2 * pad
    box_h = text_h + round(8 * unit) + 3 * pad
    x0, y1 = pad, size_px - pad
    y0 = y1 - box_h
    shade = out[y0:y1, x0 : x0 + box_w]
    shade[:] = (shade * 0.35).astype(out.dtype)
    bar_y = y1 - pad - round(8 * unit)
    cv2.rectangle(
        out, (x0 + pad, bar_y), (x0 + pad + bar_px, bar_y + round(8 * unit)), (255, 255, 255), -1
    )
    cv2.putText(
        out,
        label,
        (x0 + pad, bar_y - pad),
        cv2.FONT_HERSHEY_SIMPLEX,
        font_scale,
        (255, 255, 255),
        thickness,
        cv2.LINE_AA,
    )
    return out


def rectify(
    rgb: np.ndarray,
    mask: np.ndarray,
    h_photo_to_mm: np.ndarray,
    *,
    side_mm: float,
    px_per_mm: float,
    rotate_deg: float = 0.0,
) -> np.ndarray:
    """The photo warped to a ``side_mm`` square of the marker plane centred on the
    wound (``_warp``), turned ``rotate_deg`` (counter-clockwise) about the wound, with
    the wound's outline drawn on it and a 10 mm scale bar (``_decorate``)."""
    out, warped_mask = _warp(rgb, mask, h_photo_to_mm, side_mm=side_mm, px_per_mm=px_per_mm)
    if rotate_deg:
        out, warped_mask = _rotated(out, rotate_deg), _rotated(warped_mask, rotate_deg)
    return _decorate(out, warped_mask, px_per_mm)


def _rotated(image: np.ndarray, deg: float) -> np.ndarray:
    """``image`` turned ``deg`` counter-clockwise about its centre (same size)."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), deg, 1.0)
    interp = cv2.INTER_NEAREST if image.ndim == 2 else cv2.INTER_LINEAR
    border = 0 if image.ndim == 2 else (128, 128, 128)
    return cv2.warpAffine(image, m, (w, h), flags=interp, borderValue=border)


ALIGN_STEP_DEG = 5.0
"""The rotation search's step: finer than the eye compares two photos side by side."""
ALIGN_SIDE_PX = 96
"""Both rectified images are compared at this size (the search is 72 small warps)."""


def _align_features(rgb: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A rectified image's small mask (0/1) and its gradient magnitude, normalised."""
    size = (ALIGN_SIDE_PX, ALIGN_SIDE_PX)
    small_mask = (cv2.resize(mask, size, interpolation=cv2.INTER_AREA) > 127).astype(np.float32)
    gray = cv2.cvtColor(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    gray = cv2.GaussianBlur(gray.astype(np.float32), (3, 3), 0)
    grad = cv2.magnitude(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    return small_mask, grad


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    norm = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum()) / norm if norm > 0 else 0.0


def alignment_deg(
    reference: tuple[np.ndarray, np.ndarray], moving: tuple[np.ndarray, np.ndarray]
) -> float:
    """The turn (degrees, counter-clockwise, a multiple of ``ALIGN_STEP_DEG``) that lines
    the ``moving`` rectified visit (image, mask 0/255) up with the ``reference`` one: both
    are centred on the wound at the same mm scale, so only the marker's rotation between
    visits differs. The best turn maximises the outlines' overlap (IoU) plus the
    correlation of the skin's texture (gradient magnitude), which tells a wound's two
    symmetric ends apart."""
    ref_mask, ref_grad = _align_features(*reference)
    mov_mask, mov_grad = _align_features(*moving)
    best, best_score = 0.0, -math.inf
    for deg in np.arange(0.0, 360.0, ALIGN_STEP_DEG):
        turned_mask = _rotated(mov_mask, float(deg))
        union = float(np.maximum(ref_mask, turned_mask).sum())
        iou = float(np.minimum(ref_mask, turned_mask).sum()) / union if union else 0.0
        score = iou + _ncc(ref_grad, _rotated(mov_grad, float(deg)))
        if score > best_score + 1e-9:
            best, best_score = float(deg), score
    return best


def outline_polygons(
    mask: np.ndarray, max_vertices: int = OUTLINE_MAX_VERTICES
) -> list[list[list[float]]]:
    """The mask's outer outlines as polygons in photo px (largest first), each
    simplified to at most ``max_vertices`` vertices: the editor's starting outline."""
    contours, _ = cv2.findContours(
        (mask > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    polygons = []
    for contour in sorted(contours, key=cv2.contourArea, reverse=True):
        perimeter = cv2.arcLength(contour, True)
        epsilon = 0.5
        approx = cv2.approxPolyDP(contour, epsilon, True)
        while len(approx) > max_vertices:
            epsilon *= 1.5
            approx = cv2.approxPolyDP(contour, epsilon, True)
        if len(approx) < 3 or perimeter == 0 or not math.isfinite(perimeter):
            continue
        polygons.append([[float(x), float(y)] for x, y in approx.reshape(-1, 2)])
    return polygons


def _decode(photo_jpeg: bytes, mask_png: bytes) -> tuple[np.ndarray, np.ndarray]:
    rgb = decode_photo(
        photo_jpeg, name="stored photo", max_bytes=len(photo_jpeg) + 1, max_pixels=10**9
    ).rgb
    mask = decode_photo(mask_png, name="mask", max_bytes=len(mask_png) + 1, max_pixels=10**9).rgb
    return rgb, (mask[..., 0] > 127).astype(np.uint8)


@dataclass(frozen=True)
class StoredVisit:
    """A stored photo, the mask of one of its measurements, and how it was calibrated."""

    photo_jpeg: bytes
    mask_png: bytes
    calibration: str
    px_per_mm: float | None


def _warped_visit(
    visit: StoredVisit, *, marker_mm: float, side_mm: float, out_px_per_mm: float
) -> tuple[np.ndarray, np.ndarray] | None:
    rgb, mask = _decode(visit.photo_jpeg, visit.mask_png)
    h = photo_to_mm(
        rgb, mask, calibration=visit.calibration, px_per_mm=visit.px_per_mm, marker_mm=marker_mm
    )
    if h is None:
        return None
    return _warp(rgb, mask, h, side_mm=side_mm, px_per_mm=out_px_per_mm)


def rectified_jpeg(
    visit: StoredVisit,
    *,
    marker_mm: float,
    side_mm: float,
    out_px_per_mm: float,
    align_to: StoredVisit | None = None,
) -> tuple[bytes, float] | None:
    """A stored visit as a rectified JPEG (``rectify``) and the turn applied to it:
    with ``align_to``, turned to line up with that visit (``alignment_deg``), else 0.
    None when the visit is uncalibrated."""
    warped = _warped_visit(visit, marker_mm=marker_mm, side_mm=side_mm, out_px_per_mm=out_px_per_mm)
    if warped is None:
        return None
    out, warped_mask = warped
    turn = 0.0
    reference = (
        None
        if align_to is None
        else _warped_visit(
            align_to, marker_mm=marker_mm, side_mm=side_mm, out_px_per_mm=out_px_per_mm
        )
    )
    if reference is not None:
        turn = alignment_deg(reference, (out, warped_mask))
        if turn:
            out, warped_mask = _rotated(out, turn), _rotated(warped_mask, turn)
    return encode_jpeg(_decorate(out, warped_mask, out_px_per_mm), quality=88), turn


def outline_of(mask_png: bytes) -> dict[str, object]:
    """The editor's starting outline of a stored mask: its polygons and the photo size."""
    mask = decode_photo(mask_png, name="mask", max_bytes=len(mask_png) + 1, max_pixels=10**9).rgb
    binary = (mask[..., 0] > 127).astype(np.uint8)
    return {
        "width": int(binary.shape[1]),
        "height": int(binary.shape[0]),
        "polygons": outline_polygons(binary),
    }
