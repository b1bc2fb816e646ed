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


def rectify(
    rgb: np.ndarray,
    mask: np.ndarray,
    h_photo_to_mm: np.ndarray,
    *,
    side_mm: float,
    px_per_mm: float,
) -> np.ndarray:
    """The photo warped to a ``side_mm`` square of the marker plane centred on the
    wound (the photo's centre for an empty mask), ``px_per_mm`` pixels per mm, with
    the wound's outline drawn on it and a 10 mm scale bar."""
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
    contours, _ = cv2.findContours(
        (warped_mask > 127).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    out = np.ascontiguousarray(out)
    cv2.drawContours(out, contours, -1, (255, 230, 0), 3, lineType=cv2.LINE_AA)
    cv2.drawContours(out, contours, -1, (20, 20, 20), 1, lineType=cv2.LINE_AA)
    bar_px = round(10 * px_per_mm)
    y = size_px - 12
    cv2.rectangle(out, (8, y - 4), (8 + bar_px, y + 2), (255, 255, 255), -1)
    cv2.rectangle(out, (8, y - 4), (8 + bar_px, y + 2), (0, 0, 0), 1)
    cv2.putText(
        out, "10 mm", (8, y - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA
    )
    return out


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


def rectified_jpeg(
    photo_jpeg: bytes,
    mask_png: bytes,
    *,
    calibration: str,
    px_per_mm: float | None,
    marker_mm: float,
    side_mm: float,
    out_px_per_mm: float,
) -> bytes | None:
    """A stored photo and mask as a rectified JPEG (``rectify``); None when uncalibrated."""
    rgb, mask = _decode(photo_jpeg, mask_png)
    h = photo_to_mm(rgb, mask, calibration=calibration, px_per_mm=px_per_mm, marker_mm=marker_mm)
    if h is None:
        return None
    return encode_jpeg(rectify(rgb, mask, h, side_mm=side_mm, px_per_mm=out_px_per_mm), quality=88)


def outline_of(mask_png: bytes) -> dict[str, object]:
    """The editor's starting outline of a stored mask: its polygons and the photo size."""
    mask = decode_photo(mask_png, name="mask", max_bytes=len(mask_png) + 1, max_pixels=10**9).rgb
    binary = (mask[..., 0] > 127).astype(np.uint8)
    return {
        "width": int(binary.shape[1]),
        "height": int(binary.shape[0]),
        "polygons": outline_polygons(binary),
    }
