"""Rendered test scenes: a flat skin-coloured plane with a 10 mm x 20 mm red
rectangle (2.00 cm²) and a 20 mm ArUco marker, photographed by service.simulator.scene."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pytest

from service.simulator import scene

PLANE_PX_PER_MM = 10.0
PLANE_MM = (120.0, 80.0)
RECT_MM = (60.0, 30.0, 80.0, 40.0)  # x0, y0, x1, y1: 20 mm x 10 mm
SKIN_RGB = (205, 150, 128)
WOUND_RGB = (150, 40, 45)
OUT_SIZE = (800, 600)


@dataclass(frozen=True)
class Shot:
    rgb: np.ndarray
    mask: np.ndarray
    """The photo's true wound mask, 0/255."""
    true_area_cm2: float
    marker_corners_px: np.ndarray | None
    tilt_deg: float
    """The camera's tilt (optical axis vs the plane's normal)."""


def plane_with_rectangle(
    rect_mm: tuple[float, float, float, float] = RECT_MM,
) -> tuple[np.ndarray, np.ndarray]:
    w, h = round(PLANE_MM[0] * PLANE_PX_PER_MM), round(PLANE_MM[1] * PLANE_PX_PER_MM)
    plane = np.empty((h, w, 3), np.uint8)
    plane[:] = SKIN_RGB
    mask = np.zeros((h, w), np.uint8)
    x0, y0, x1, y1 = (round(v * PLANE_PX_PER_MM) for v in rect_mm)
    mask[y0:y1, x0:x1] = 255
    plane[mask > 0] = WOUND_RGB
    return plane, mask


@lru_cache(maxsize=32)  # tests share scenes; a Shot is never modified
def shoot(
    *,
    tilt_deg: float = 0.0,
    tilt_axis_deg: float = 30.0,
    rotation_deg: float = 0.0,
    marker_rotation_deg: float = 15.0,
    marker_centre_mm: tuple[float, float] | None = (30.0, 40.0),
    extra_markers_mm: tuple[tuple[float, float], ...] = (),
    rect_mm: tuple[float, float, float, float] = RECT_MM,
    blur_sigma_px: float = 0.6,
    gain: float = 1.0,
    field_mm: float = 110.0,
    jpeg_quality: int | None = 92,
    marker_print_mm: float = 20.0,
) -> Shot:
    plane, mask = plane_with_rectangle(rect_mm)
    corners_mm = None
    if marker_centre_mm is not None:
        plane, corners_mm = scene.paste_marker(
            plane,
            PLANE_PX_PER_MM,
            marker_centre_mm,
            marker_print_mm,
            marker_id=7,
            rotation_deg=marker_rotation_deg,
        )
    for i, centre in enumerate(extra_markers_mm):
        plane, _ = scene.paste_marker(plane, PLANE_PX_PER_MM, centre, 20.0, marker_id=20 + i)
    pose = scene.CameraPose(
        tilt_deg=tilt_deg,
        tilt_axis_deg=tilt_axis_deg,
        rotation_deg=rotation_deg,
        distance_mm=300.0,
        focal_px=scene.fit_focal_px(OUT_SIZE, 300.0, field_mm),
        look_at_mm=(55.0, 40.0),
    )
    photo = scene.render(
        plane,
        PLANE_PX_PER_MM,
        pose,
        OUT_SIZE,
        blur_sigma_px=blur_sigma_px,
        jpeg_quality=jpeg_quality,
        gain=gain,
    )
    true_mask = scene.warp_mask(mask, PLANE_PX_PER_MM, photo.H_plane_mm_to_photo, OUT_SIZE)
    return Shot(
        rgb=photo.rgb,
        mask=true_mask,
        true_area_cm2=scene.true_area_cm2(mask, PLANE_PX_PER_MM),
        marker_corners_px=None if corners_mm is None else photo.to_photo_px(corners_mm),
        tilt_deg=tilt_deg,
    )


@pytest.fixture(scope="session")
def make_shot() -> Callable[..., Shot]:
    return shoot


@pytest.fixture(scope="session")
def upright_shot() -> Shot:
    return shoot()
