"""Geometry of the mm plane: homographies, pixel areas, outlines, extents, the
corners' error propagated to an area, and the wound's crop of the photo."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


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


MAX_HOMOGRAPHY_CONDITION = 1e12
"""A homography whose condition number is above this is treated as singular."""


def homography_from_4_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The exact homography taking four points to four, in float64 (OpenCV's
    ``getPerspectiveTransform`` works in float32, too coarse for 0.01 px)."""
    a = np.zeros((8, 8))
    b = np.zeros(8)
    for i, ((x, y), (u, v)) in enumerate(zip(src, dst, strict=True)):
        a[2 * i] = [x, y, 1, 0, 0, 0, -u * x, -u * y]
        a[2 * i + 1] = [0, 0, 0, x, y, 1, -v * x, -v * y]
        b[2 * i], b[2 * i + 1] = u, v
    h = np.append(np.linalg.solve(a, b), 1.0).reshape(3, 3)
    if not np.isfinite(h).all() or np.linalg.cond(h) > MAX_HOMOGRAPHY_CONDITION:
        # Three of the points (nearly) on a line: no plane-to-plane mapping, no inverse.
        raise np.linalg.LinAlgError("degenerate quadrilateral: no invertible homography")
    return h


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


@dataclass(frozen=True)
class WoundCrop:
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
    def of(cls, wound: np.ndarray) -> WoundCrop:
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
