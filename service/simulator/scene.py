"""A virtual pinhole camera that photographs a flat plane: honest synthetic photos.

The *plane* is an RGB image of the skin surface at a known density
``plane_px_per_mm``; plane millimetre coordinates have their origin at the plane
image's top-left corner edge, x to the right, y down, so plane pixel ``(i, j)``
covers ``[i, i+1) / plane_px_per_mm`` mm. A printed ArUco marker
(``DICT_4X4_50``) is pasted flat onto the plane with ``paste_marker``; a camera
``CameraPose`` looks at the plane; ``render`` makes the photo, and the homography
``H_plane_mm_to_photo`` it returns maps plane mm to photo pixels (OpenCV's
convention: integer coordinates are pixel centres). ``warp_mask`` maps a plane mask
through the same homography, so a rendered photo's true mask and true area
(``true_area_cm2``) are known exactly.

Optics are done in linear light (blur, exposure gain, noise), then encoded to sRGB
and optionally to JPEG, as a camera does. Every warp is supersampled and
box-filtered, so edges and corners are antialiased rather than jagged.

Used by the calibration benchmark, the measurement tests and the virtual-trial
simulator. Torch-free.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from service.core.marker import MARKER_CELLS, MARKER_MM, marker_cells

INK_RGB = (22, 22, 22)
PAPER_RGB = (238, 238, 232)


def marker_corners_mm(
    center_mm: tuple[float, float], marker_mm: float, rotation_deg: float = 0.0
) -> np.ndarray:
    """The outer black square's corners in plane mm, 4 x 2, in ArUco's order.

    ArUco's order is the marker's own top-left, top-right, bottom-right, bottom-left;
    ``rotation_deg`` turns the marker in the plane from the x axis towards the y axis.
    """
    a = math.radians(rotation_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    half = marker_mm / 2.0
    local = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
    return np.asarray(center_mm, dtype=np.float64) + local @ rot.T


def paste_marker(
    plane_rgb: np.ndarray,
    plane_px_per_mm: float,
    center_mm: tuple[float, float],
    marker_mm: float = MARKER_MM,
    marker_id: int = 0,
    rotation_deg: float = 0.0,
    quiet_zone_mm: float | None = None,
    supersample: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """Paste a flat printed marker onto a copy of the plane.

    ``marker_mm`` is the side of the outer black square; a white paper quiet zone
    of ``quiet_zone_mm`` (default: one cell, ``marker_mm / 6``, as the printed sheet
    has at least) surrounds it. Returns ``(plane_rgb, corners_mm)`` with the
    corners as ``marker_corners_mm`` gives them.
    """
    cells = marker_cells(marker_id)
    quiet_mm = marker_mm / MARKER_CELLS if quiet_zone_mm is None else quiet_zone_mm
    out = plane_rgb.copy()
    corners_mm = marker_corners_mm(center_mm, marker_mm, rotation_deg)
    # Bounding box (plane px) of the paper square, rotated.
    paper = marker_corners_mm(center_mm, marker_mm + 2 * quiet_mm, rotation_deg)
    x0 = max(int(math.floor(paper[:, 0].min() * plane_px_per_mm)) - 1, 0)
    y0 = max(int(math.floor(paper[:, 1].min() * plane_px_per_mm)) - 1, 0)
    x1 = min(int(math.ceil(paper[:, 0].max() * plane_px_per_mm)) + 1, out.shape[1])
    y1 = min(int(math.ceil(paper[:, 1].max() * plane_px_per_mm)) + 1, out.shape[0])
    if x1 <= x0 or y1 <= y0:
        raise ValueError("the marker lies outside the plane")
    s = supersample
    # Millimetre coordinates of every sub-sample centre in the box.
    xs = (x0 + (np.arange((x1 - x0) * s) + 0.5) / s) / plane_px_per_mm
    ys = (y0 + (np.arange((y1 - y0) * s) + 0.5) / s) / plane_px_per_mm
    gx, gy = np.meshgrid(xs, ys)
    a = math.radians(rotation_deg)
    dx, dy = gx - center_mm[0], gy - center_mm[1]
    # Into the marker's own frame: origin at its top-left corner, x right, y down.
    u = math.cos(a) * dx + math.sin(a) * dy + marker_mm / 2
    v = -math.sin(a) * dx + math.cos(a) * dy + marker_mm / 2
    on_paper = (u >= -quiet_mm) & (u < marker_mm + quiet_mm)
    on_paper &= (v >= -quiet_mm) & (v < marker_mm + quiet_mm)
    in_marker = (u >= 0) & (u < marker_mm) & (v >= 0) & (v < marker_mm)
    cell = marker_mm / MARKER_CELLS
    ci = np.clip((u / cell).astype(np.int64), 0, MARKER_CELLS - 1)
    cj = np.clip((v / cell).astype(np.int64), 0, MARKER_CELLS - 1)
    white = np.where(in_marker, cells[cj, ci], True)
    # Blend in linear light, as light mixes: averaging sRGB values would darken every
    # partly covered pixel and make the marker look bigger than it is.
    ink = _srgb_to_linear(np.array([[INK_RGB]], dtype=np.uint8))[0, 0].astype(np.float64)
    paper_lin = _srgb_to_linear(np.array([[PAPER_RGB]], dtype=np.uint8))[0, 0].astype(np.float64)
    colour = np.where(white[..., None], paper_lin, ink) * on_paper[..., None]
    h, w = y1 - y0, x1 - x0
    # Box-filter the sub-samples: antialiased coverage and colour per plane pixel.
    alpha = on_paper.reshape(h, s, w, s).mean(axis=(1, 3))[..., None]
    colour = colour.reshape(h, s, w, s, 3).mean(axis=(1, 3))
    region = _srgb_to_linear(out[y0:y1, x0:x1]).astype(np.float64)
    out[y0:y1, x0:x1] = _linear_to_srgb8(colour + (1 - alpha) * region)
    return out, corners_mm


@dataclass(frozen=True)
class CameraPose:
    """Where a pinhole camera stands relative to the plane.

    The camera looks at ``look_at_mm`` (plane mm; default the plane's centre) from
    ``distance_mm`` away along its optical axis. ``tilt_deg`` is the angle between
    the optical axis and the plane's normal (0 = square to the skin), about an axis
    in the plane at ``tilt_axis_deg`` from the plane's x axis; ``rotation_deg`` turns
    the camera about its own optical axis. ``focal_px`` is the focal length in
    photo pixels; the principal point is the photo's centre.
    """

    tilt_deg: float = 0.0
    tilt_axis_deg: float = 0.0
    rotation_deg: float = 0.0
    distance_mm: float = 300.0
    focal_px: float = 1000.0
    look_at_mm: tuple[float, float] | None = None


def _axis_angle(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    rvec = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis) * angle_rad
    rot, _ = cv2.Rodrigues(rvec)
    return np.asarray(rot, dtype=np.float64)


def _camera(pose: CameraPose, look_at_mm: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(camera-to-plane rotation, camera centre in plane mm)."""
    ta = math.radians(pose.tilt_axis_deg)
    # Columns: the camera's x, y, z (optical) axes in plane coordinates. At zero tilt
    # the camera's x and y are the plane's, so an untilted photo is the plane itself.
    tilt = _axis_angle(np.array([math.cos(ta), math.sin(ta), 0.0]), math.radians(pose.tilt_deg))
    spin = _axis_angle(np.array([0.0, 0.0, 1.0]), math.radians(pose.rotation_deg))
    cam_to_world = tilt @ spin
    centre = np.array([look_at_mm[0], look_at_mm[1], 0.0]) - pose.distance_mm * cam_to_world[:, 2]
    return cam_to_world, centre


def plane_mm_to_photo(
    pose: CameraPose, out_size_px: tuple[int, int], look_at_mm: tuple[float, float]
) -> np.ndarray:
    """The 3 x 3 homography from plane mm to photo pixels (``out_size_px`` = (w, h))."""
    w, h = out_size_px
    k = np.array([[pose.focal_px, 0, (w - 1) / 2], [0, pose.focal_px, (h - 1) / 2], [0, 0, 1]])
    cam_to_world, centre = _camera(pose, look_at_mm)
    world_to_cam = cam_to_world.T
    t = -world_to_cam @ centre
    homography = k @ np.column_stack([world_to_cam[:, 0], world_to_cam[:, 1], t])
    return homography / homography[2, 2]


def _srgb_to_linear(rgb8: np.ndarray) -> np.ndarray:
    c = rgb8.astype(np.float32) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _linear_to_srgb8(lin: np.ndarray) -> np.ndarray:
    c = np.clip(lin, 0.0, 1.0)
    s = np.where(c <= 0.0031308, c * 12.92, 1.055 * np.power(c, 1 / 2.4) - 0.055)
    return np.clip(s * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _min_photo_px_per_mm(
    h_plane_mm_to_photo: np.ndarray,
    plane_size_mm: tuple[float, float],
    out_size_px: tuple[int, int],
) -> float:
    """The lowest density (photo px per plane mm) over the part of the plane in view."""
    w_mm, h_mm = plane_size_mm
    gx, gy = np.meshgrid(np.linspace(0, w_mm, 24), np.linspace(0, h_mm, 24))
    pts = np.column_stack([gx.ravel(), gy.ravel(), np.ones(gx.size)])
    proj = pts @ h_plane_mm_to_photo.T
    x, y = proj[:, 0] / proj[:, 2], proj[:, 1] / proj[:, 2]
    seen = (proj[:, 2] > 0) & (x >= 0) & (x < out_size_px[0]) & (y >= 0) & (y < out_size_px[1])
    if not np.any(seen):
        return 1.0
    # A homography's Jacobian determinant at a point is det(H) / w³.
    area_scale = abs(np.linalg.det(h_plane_mm_to_photo)) / np.abs(proj[seen, 2]) ** 3
    return float(np.sqrt(area_scale.min()))


def _supersampled_warp(
    plane: np.ndarray,
    plane_px_per_mm: float,
    h_plane_mm_to_photo: np.ndarray,
    out_size_px: tuple[int, int],
    supersample: int,
    border_value: float | tuple[float, ...],
) -> np.ndarray:
    w, h = out_size_px
    s = supersample
    ph, pw = plane.shape[:2]
    # Bilinear sampling is an honest reconstruction only where the supersampled photo
    # is at least as dense as the plane; elsewhere a sharp plane edge would alias to
    # the sample grid (a bias of up to half a sample). So first box-filter the plane
    # down to the density of the most compressed part of the view.
    dense_px_per_mm = s * _min_photo_px_per_mm(
        h_plane_mm_to_photo, (pw / plane_px_per_mm, ph / plane_px_per_mm), out_size_px
    )
    sx = sy = plane_px_per_mm
    if plane_px_per_mm > dense_px_per_mm:
        nw = max(1, round(pw * dense_px_per_mm / plane_px_per_mm))
        nh = max(1, round(ph * dense_px_per_mm / plane_px_per_mm))
        plane = cv2.resize(plane, (nw, nh), interpolation=cv2.INTER_AREA)
        sx, sy = plane_px_per_mm * nw / pw, plane_px_per_mm * nh / ph
    # plane px (centres at integers) -> plane mm -> photo px -> supersampled photo px
    px_to_mm = np.array([[1 / sx, 0, 0.5 / sx], [0, 1 / sy, 0.5 / sy], [0, 0, 1]])
    to_ss = np.array([[s, 0, (s - 1) / 2], [0, s, (s - 1) / 2], [0, 0, 1]], dtype=np.float64)
    m = to_ss @ h_plane_mm_to_photo @ px_to_mm
    big = cv2.warpPerspective(
        plane,
        m,
        (w * s, h * s),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=border_value,
    )
    if s == 1:
        return big
    return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class RenderedPhoto:
    rgb: np.ndarray
    """H x W x 3 uint8 sRGB photo (after JPEG round trip when asked)."""
    H_plane_mm_to_photo: np.ndarray  # noqa: N815 - the usual name of a homography
    """3 x 3, plane mm -> photo pixels (integer = pixel centre)."""
    pose: CameraPose
    camera_centre_mm: np.ndarray
    """The camera's centre (x, y, z) in plane mm; the plane is z = 0."""
    jpeg: bytes | None
    """The JPEG file, when ``jpeg_quality`` was given."""

    def view_angle_deg(self, point_mm: tuple[float, float]) -> float:
        """Angle between the line of sight to ``point_mm`` and the plane's normal."""
        ray = np.array([point_mm[0], point_mm[1], 0.0]) - self.camera_centre_mm
        return math.degrees(math.acos(abs(ray[2]) / float(np.linalg.norm(ray))))

    def to_photo_px(self, points_mm: np.ndarray) -> np.ndarray:
        """Plane mm points (N x 2) -> photo pixel coordinates (N x 2)."""
        pts = np.asarray(points_mm, dtype=np.float64).reshape(-1, 1, 2)
        return cv2.perspectiveTransform(pts, self.H_plane_mm_to_photo).reshape(-1, 2)


def render(
    plane_rgb: np.ndarray,
    plane_px_per_mm: float,
    pose: CameraPose,
    out_size_px: tuple[int, int] = (1024, 768),
    blur_sigma_px: float = 0.0,
    jpeg_quality: int | None = None,
    gain: float = 1.0,
    noise_sigma: float = 0.0,
    background_rgb: tuple[int, int, int] = (45, 40, 38),
    supersample: int = 3,
    seed: int | None = None,
) -> RenderedPhoto:
    """Photograph the plane.

    ``out_size_px`` is (width, height); ``blur_sigma_px`` a Gaussian defocus in photo
    pixels; ``gain`` multiplies the exposure in linear light (0.2 = dark, 3 =
    overexposed); ``noise_sigma`` is sensor noise in linear units (0-1 scale);
    ``jpeg_quality`` (1-95) round-trips the photo through JPEG. Outside the plane the
    camera sees ``background_rgb``.
    """
    look_at_mm = _look_at(plane_rgb, plane_px_per_mm, pose)
    h_mm_to_photo = plane_mm_to_photo(pose, out_size_px, look_at_mm)
    lin = _srgb_to_linear(plane_rgb)
    bg = _srgb_to_linear(np.array([[background_rgb]], dtype=np.uint8))[0, 0]
    photo = _supersampled_warp(
        lin, plane_px_per_mm, h_mm_to_photo, out_size_px, supersample, tuple(float(c) for c in bg)
    )
    if blur_sigma_px > 0:
        photo = cv2.GaussianBlur(photo, (0, 0), sigmaX=blur_sigma_px, sigmaY=blur_sigma_px)
    photo = photo * np.float32(gain)
    if noise_sigma > 0:
        rng = np.random.default_rng(seed)
        photo = photo + rng.normal(0.0, noise_sigma, photo.shape).astype(np.float32)
    rgb = _linear_to_srgb8(photo)
    jpeg = None
    if jpeg_quality is not None:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=int(jpeg_quality))
        jpeg = buf.getvalue()
        rgb = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
    return RenderedPhoto(
        rgb=rgb,
        H_plane_mm_to_photo=h_mm_to_photo,
        pose=pose,
        camera_centre_mm=_camera(pose, look_at_mm)[1],
        jpeg=jpeg,
    )


def _look_at(
    plane_rgb: np.ndarray, plane_px_per_mm: float, pose: CameraPose
) -> tuple[float, float]:
    if pose.look_at_mm is not None:
        return pose.look_at_mm
    h, w = plane_rgb.shape[:2]
    return (w / plane_px_per_mm / 2, h / plane_px_per_mm / 2)


def warp_mask(
    plane_mask: np.ndarray,
    plane_px_per_mm: float,
    h_plane_mm_to_photo: np.ndarray,
    out_size_px: tuple[int, int],
    supersample: int = 4,
) -> np.ndarray:
    """The photo's true mask (uint8 0/255): a photo pixel is wound when at least half
    of it is covered by the plane mask."""
    cover = _supersampled_warp(
        (plane_mask > 0).astype(np.float32),
        plane_px_per_mm,
        h_plane_mm_to_photo,
        out_size_px,
        supersample,
        0.0,
    )
    return ((cover >= 0.5) * 255).astype(np.uint8)


def true_area_cm2(plane_mask: np.ndarray, plane_px_per_mm: float) -> float:
    """Area of a plane mask in cm² (each plane pixel is ``1 / plane_px_per_mm²`` mm²)."""
    return float(np.count_nonzero(plane_mask)) / plane_px_per_mm**2 / 100.0


def fit_focal_px(out_size_px: tuple[int, int], distance_mm: float, field_mm: float) -> float:
    """The focal length (px) at which an untilted camera ``distance_mm`` away sees
    ``field_mm`` of the plane across the photo's width."""
    return out_size_px[0] * distance_mm / field_mm
