"""Virtual trial: longitudinal photo series of healing ulcers whose truth is known.

Torch-free. ``simulate_trial`` plans subjects, wounds and visits, renders each
visit's photo from a real FUSeg photo and mask, and writes ``truth.json`` (see
DESIGN.md, "Virtual trial") and ``scene.json`` (per photo: camera, marker corners,
the homography from the skin plane in mm to the photo).

Physical scale. FUSeg photos carry no scale, so each wound's baseline area is
drawn from a log-normal distribution (median 2.5 cm², the usual size of a
diabetic foot ulcer in trials), and the source photo's plane scale follows from
its mask: ``px_per_mm = sqrt(mask_px / max_area_mm2)``, kept within 1.5–4.5 px/mm
(a 384 x 512 photo then spans 8.5–34 cm of skin: a foot or part of one; the area
is recomputed after the clamp). The source mask is the wound at its largest; the
baseline is 1/1.15 of it, so a stalled wound can grow a little. The plane is
upsampled by an integer factor (the scale stays exact) so that the pasted 20 mm
marker is sharp, and the camera sees it at 3.5–6 px/mm or closer (the plane must
fill the photo): the marker spans 70–250 photo pixels.

Healing. Per wound, area(t) = A0 · exp(−k · t) with weekly noise; k (per week) is
log-normal (σ 0.5) with median 0.35 in the active arm and 0.2 in the control arm.
Some wounds stall (k drops to a tenth from a random week on), a wound closes when
its area falls below 0.08 cm² (the clinician then sees it epithelialised without
drainage), and some closed wounds re-open. Visits are weekly with ±2 days of
jitter; a visit is missed now and then (never the baseline). The clinician's
observation is the truth: epithelialised exactly when the true area is zero.

Shrinking. The wound recedes from its edge inwards: the pixels kept are those
deepest inside the source mask (largest distance to its edge), so the last bit to
heal is the wound's core. The healed rim shows the surrounding skin (inpainted
once per source), slightly pink like new epithelium. Then a 20 mm ArUco marker is
laid flat beside the wound (4–18 mm from it), the scene gets a colour cast and an
uneven light, and ``service.simulator.scene`` photographs it (tilt up to 40°, rotation,
distance 20–40 cm, exposure, blur, noise, JPEG).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypedDict

import cv2
import numpy as np

from service.core import healing
from service.core.imaging import encode_png
from service.resources import samples_dir
from service.simulator import scene

DEFAULT_SOURCE = samples_dir() / "fuseg"
STUDY_START = date(2026, 1, 5)
ARMS = ("active", "control")
SITES = ("A", "B")
# Median log-linear healing rate per week, and its log-normal spread.
ARM_RATE_PER_WEEK = {"active": 0.35, "control": 0.2}
RATE_SIGMA = 0.5
BASELINE_MEDIAN_CM2 = 2.5
BASELINE_SIGMA = 0.6
GROWTH_ROOM = 1.15  # source mask area / baseline area
SOURCE_PX_PER_MM = (1.5, 4.5)
CLOSE_BELOW_CM2 = 0.08
STALL_PROBABILITY = 0.2
REOPEN_PROBABILITY = 0.2
MISSED_VISIT_PROBABILITY = 0.08
AREA_NOISE_SIGMA = 0.07
DRAINAGE_PROBABILITY = 0.7


@dataclass(frozen=True)
class Source:
    """One real photo and its wound mask, read when a wound is rendered from it."""

    name: str
    image_path: Path
    mask_path: Path
    wound_px: int
    """Wound pixels of the mask (within the cropped photo)."""

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """(RGB, mask 0/255), both cropped of the letterbox bars FUSeg photos carry."""
        bgr = cv2.imread(str(self.image_path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot read {self.image_path}")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        mask = _read_mask(self.mask_path)
        content = np.nonzero(rgb.max(axis=2) > 12)
        y0, y1 = int(content[0].min()), int(content[0].max()) + 1
        x0, x1 = int(content[1].min()), int(content[1].max()) + 1
        return np.ascontiguousarray(rgb[y0:y1, x0:x1]), np.ascontiguousarray(mask[y0:y1, x0:x1])


def _read_mask(path: Path) -> np.ndarray:
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise ValueError(f"cannot read {path}")
    return np.where(mask > 127, 255, 0).astype(np.uint8)


@dataclass
class VisitPlan:
    visit: str
    day: int
    captured_at: date
    area_cm2: float
    """Planned area; the photo's true area (``truth.json``) is what its mask holds."""
    epithelialized: bool
    drainage: bool


@dataclass
class WoundPlan:
    subject: str
    site: str
    arm: str
    wound: str
    index_leg: bool
    source: str
    flip: bool
    source_px_per_mm: float
    """Scale given to the source photo (its mask is the wound at its largest)."""
    max_area_cm2: float
    """Area of the whole source mask; the baseline is smaller (room to grow)."""
    visits: list[VisitPlan] = field(default_factory=list)


# --------------------------------------------------------------------------- sources


def load_sources(source_dir: Path) -> list[Source]:
    """Photo + mask pairs of ``source_dir/{images,labels}``, by name; masks without a
    wound (or a speck) are skipped. Only the masks are read here."""
    images = source_dir / "images"
    sources = []
    for label in sorted((source_dir / "labels").glob("*.png")):
        candidates = sorted(images.glob(label.stem + ".*"))
        if not candidates:
            continue
        wound_px = int(np.count_nonzero(_read_mask(label)))
        if wound_px >= 200:
            sources.append(Source(label.stem, candidates[0], label, wound_px))
    if not sources:
        raise ValueError(f"no photo/mask pairs with a wound under {source_dir}")
    return sources


# ---------------------------------------------------------------------- trajectories


def _wound_visits(
    rng: np.random.Generator, arm: str, baseline_cm2: float, schedule: list[tuple[str, int, date]]
) -> list[VisitPlan]:
    """True areas and clinician observations of one wound at the subject's visits."""
    rate_per_week = ARM_RATE_PER_WEEK[arm] * math.exp(rng.normal(0.0, RATE_SIGMA))
    stall_week = rng.uniform(1.0, 8.0) if rng.random() < STALL_PROBABILITY else math.inf
    reopens = rng.random() < REOPEN_PROBABILITY
    reopen_after_days = int(rng.integers(7, 43))
    reopen_cm2 = float(rng.uniform(0.1, 0.5))
    log_area = math.log(baseline_cm2)
    last_day = 0
    closed_day: int | None = None
    reopened = False
    visits = []
    for i, (label, day, captured_at) in enumerate(schedule):
        weeks = (day - last_day) / 7.0
        last_day = day
        if i == 0:
            area_cm2 = baseline_cm2
        elif closed_day is not None:
            if reopens and not reopened and day - closed_day >= reopen_after_days:
                reopened, closed_day = True, None
                log_area = math.log(reopen_cm2)
                area_cm2 = reopen_cm2
            else:
                area_cm2 = 0.0
        else:
            slow = 0.1 if day / 7.0 > stall_week else 1.0
            log_area += -rate_per_week * slow * weeks + rng.normal(0.0, AREA_NOISE_SIGMA)
            log_area = min(log_area, math.log(baseline_cm2 * GROWTH_ROOM))
            area_cm2 = math.exp(log_area)
            if area_cm2 < CLOSE_BELOW_CM2:
                area_cm2, closed_day = 0.0, day
        closed = area_cm2 == 0.0
        drainage = (not closed) and bool(rng.random() < DRAINAGE_PROBABILITY)
        visits.append(VisitPlan(label, day, captured_at, area_cm2, closed, drainage))
    return visits


def _schedule(rng: np.random.Generator, weeks: int, start: date) -> list[tuple[str, int, date]]:
    """Weekly visits V1..V(weeks+1): ±2 days of jitter, some missed (never the baseline)."""
    schedule = [("V1", 0, start)]
    for week in range(1, weeks + 1):
        if rng.random() < MISSED_VISIT_PROBABILITY:
            continue
        day = 7 * week + int(rng.integers(-2, 3))
        schedule.append((f"V{week + 1}", day, start + timedelta(days=day)))
    return schedule


def plan_trial(
    rng: np.random.Generator, n_subjects: int, weeks: int, sources: list[Source]
) -> list[WoundPlan]:
    """Subjects (1–3 wounds each, alternating arms and sites) and their visits."""
    width = max(2, len(str(n_subjects)))
    plans = []
    for s in range(n_subjects):
        subject = f"S{s + 1:0{width}d}"
        arm = ARMS[int(rng.integers(0, 2))]
        site = SITES[s % len(SITES)]
        start = STUDY_START + timedelta(days=int(rng.integers(0, 29)))
        schedule = _schedule(rng, weeks, start)
        n_wounds = int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1]))
        # A subject's ulcers come from different source photos (when there are enough).
        picks = rng.choice(len(sources), size=n_wounds, replace=n_wounds > len(sources))
        for w in range(n_wounds):
            source = sources[int(picks[w])]
            mask_px = source.wound_px
            baseline_cm2 = BASELINE_MEDIAN_CM2 * math.exp(rng.normal(0.0, BASELINE_SIGMA))
            max_mm2 = baseline_cm2 * GROWTH_ROOM * 100.0
            px_per_mm = float(np.clip(math.sqrt(mask_px / max_mm2), *SOURCE_PX_PER_MM))
            max_area_cm2 = mask_px / px_per_mm**2 / 100.0
            plans.append(
                WoundPlan(
                    subject=subject,
                    site=site,
                    arm=arm,
                    wound=f"{subject}-W{w + 1}",
                    index_leg=w == 0 or bool(rng.random() < 0.8),
                    source=source.name,
                    flip=bool(rng.random() < 0.5),
                    source_px_per_mm=px_per_mm,
                    max_area_cm2=max_area_cm2,
                    visits=_wound_visits(rng, arm, max_area_cm2 / GROWTH_ROOM, schedule),
                )
            )
    return plans


# ------------------------------------------------------------------------- shrinking


def depth_map(mask: np.ndarray) -> np.ndarray:
    """Distance of each wound pixel to the wound's edge (float32, 0 outside), tie-broken
    by a tiny pull to the wound's centre so that the order of healing is strict."""
    inside = (mask > 0).astype(np.uint8)
    depth = cv2.distanceTransform(inside, cv2.DIST_L2, 5).astype(np.float64)
    ys, xs = np.nonzero(inside)
    cy, cx = ys.mean(), xs.mean()
    yy, xx = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]]
    pull = np.hypot(yy - cy, xx - cx)
    return np.where(inside > 0, depth - 1e-4 * pull / (pull.max() + 1.0), -1.0)


def shrink(depth: np.ndarray, keep_px: int) -> np.ndarray:
    """The ``keep_px`` deepest wound pixels (uint8 0/255): the wound healed from its edge."""
    inside = depth >= 0
    keep_px = min(max(int(keep_px), 0), int(np.count_nonzero(inside)))
    out = np.zeros(depth.shape, np.uint8)
    if keep_px == 0:
        return out
    flat = np.where(inside, depth, -np.inf).ravel()
    order = np.argpartition(-flat, keep_px - 1)[:keep_px]
    out.ravel()[order] = 255
    return out


def healed_skin(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The photo with the whole wound replaced by surrounding skin, tinted like new
    epithelium (pinker, a little lighter)."""
    grown = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    filled = cv2.inpaint(bgr, grown, 9, cv2.INPAINT_TELEA)
    filled = cv2.cvtColor(filled, cv2.COLOR_BGR2RGB).astype(np.float32)
    pink = np.array([226.0, 160.0, 160.0], np.float32)
    alpha = (cv2.GaussianBlur(grown, (0, 0), 2.0).astype(np.float32) / 255.0)[..., None] * 0.18
    return np.clip(filled * (1 - alpha) + pink * alpha + 0.5, 0, 255).astype(np.uint8)


def heal(source_rgb: np.ndarray, skin_rgb: np.ndarray, wound: np.ndarray) -> np.ndarray:
    """Composite: the source's wound pixels inside ``wound`` (softened by a pixel), skin elsewhere."""
    alpha = cv2.GaussianBlur(wound, (0, 0), 0.8).astype(np.float32)[..., None] / 255.0
    alpha = np.maximum(alpha, (wound > 0)[..., None].astype(np.float32) * 0.85)
    out = source_rgb.astype(np.float32) * alpha + skin_rgb.astype(np.float32) * (1 - alpha)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def perimeter_mm(mask: np.ndarray, px_per_mm: float) -> float:
    """Outer perimeter of all components, in mm."""
    contours, _ = cv2.findContours(
        (mask > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    return float(sum(cv2.arcLength(c, True) for c in contours)) / px_per_mm


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------------------- photos

PHOTO_SIZE_PX = (1024, 768)
PHOTO_PX_PER_MM = (3.5, 6.0)
"""Photo pixel density at the scene's centre: the marker spans 70-120 pixels."""
MAX_PLANE_UPSAMPLE = 4
MARKER_GAP_MM = (4.0, 18.0)
"""Gap between the wound (at its largest) and the marker's paper."""


@dataclass(frozen=True)
class Shot:
    """One rendered visit photo and what is known about it."""

    jpeg: bytes
    mask: np.ndarray
    """uint8 0/255, the photo's true mask as displayed."""
    area_cm2: float
    perimeter_cm: float
    scene: dict[str, Any]
    """Camera, marker and homography (plane mm -> photo px) of this photo."""


@dataclass
class Stage:
    """One wound's scene at plane resolution, shared by all its visits."""

    rgb: np.ndarray
    skin: np.ndarray
    full_mask: np.ndarray
    depth: np.ndarray
    px_per_mm: float


def _stage(source: Source, flip: bool, source_px_per_mm: float, plane_px_per_mm: float) -> Stage:
    """The source photo as a plane at ``plane_px_per_mm`` or more (an integer upsampling
    keeps the scale exact), padded with its mirror image when the marker needs room."""
    rgb, mask = source.load()
    if flip:
        rgb, mask = rgb[:, ::-1], mask[:, ::-1]
    skin = healed_skin(np.ascontiguousarray(rgb), np.ascontiguousarray(mask))
    factor = int(min(MAX_PLANE_UPSAMPLE, max(1, math.ceil(plane_px_per_mm / source_px_per_mm))))
    size = (rgb.shape[1] * factor, rgb.shape[0] * factor)
    rgb = cv2.resize(np.ascontiguousarray(rgb), size, interpolation=cv2.INTER_CUBIC)
    skin = cv2.resize(skin, size, interpolation=cv2.INTER_CUBIC)
    soft = cv2.resize(np.ascontiguousarray(mask), size, interpolation=cv2.INTER_LINEAR)
    full_mask = np.where(soft >= 128, 255, 0).astype(np.uint8)
    return Stage(rgb, skin, full_mask, depth_map(full_mask), source_px_per_mm * factor)


def _pad(stage: Stage, pad_px: int) -> Stage:
    def grow(a: np.ndarray, mode: int) -> np.ndarray:
        return cv2.copyMakeBorder(a, pad_px, pad_px, pad_px, pad_px, mode)

    full_mask = grow(stage.full_mask, cv2.BORDER_CONSTANT)
    return Stage(
        grow(stage.rgb, cv2.BORDER_REFLECT_101),
        grow(stage.skin, cv2.BORDER_REFLECT_101),
        full_mask,
        depth_map(full_mask),
        stage.px_per_mm,
    )


def marker_spots_mm(stage: Stage, paper_mm: float) -> np.ndarray:
    """Where a marker's centre may go (N x 2, plane mm): its paper clear of the wound at
    its largest by a small gap (beside it, not far), and inside the plane."""
    ppm = stage.px_per_mm
    reach_px = paper_mm / math.sqrt(2) * ppm  # half-diagonal: any rotation fits
    outside = np.where(stage.full_mask > 0, 0, 255).astype(np.uint8)
    to_wound_px = cv2.distanceTransform(outside, cv2.DIST_L2, 5)
    h, w = outside.shape
    yy, xx = np.mgrid[0:h, 0:w]
    to_edge_px = np.minimum(np.minimum(xx, w - 1 - xx), np.minimum(yy, h - 1 - yy))
    gap_px = to_wound_px - reach_px
    ok = (gap_px >= MARKER_GAP_MM[0] * ppm) & (gap_px <= MARKER_GAP_MM[1] * ppm)
    ok &= to_edge_px >= reach_px + 2
    ys, xs = np.nonzero(ok)
    return np.column_stack([(xs + 0.5) / ppm, (ys + 0.5) / ppm])


def _lighting(rng: np.random.Generator, plane: np.ndarray) -> np.ndarray:
    """Colour cast and an uneven light across the scene (before the camera)."""
    h, w = plane.shape[:2]
    cast = np.array([rng.uniform(0.92, 1.08), 1.0, rng.uniform(0.9, 1.08)], np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = (math.cos(angle) * (xx / w - 0.5) + math.sin(angle) * (yy / h - 0.5)) * rng.uniform(
        0.0, 0.35
    )
    light = (1.0 + ramp)[..., None] * cast
    return np.clip(plane.astype(np.float32) * light + 0.5, 0, 255).astype(np.uint8)


def _pose(
    rng: np.random.Generator, look_at_mm: tuple[float, float], photo_px_per_mm: float
) -> scene.CameraPose:
    distance_mm = float(rng.uniform(200.0, 400.0))
    return scene.CameraPose(
        tilt_deg=float(min(abs(rng.normal(0.0, 14.0)), 40.0)),
        tilt_axis_deg=float(rng.uniform(0.0, 360.0)),
        rotation_deg=float(rng.uniform(-25.0, 25.0)),
        distance_mm=distance_mm,
        focal_px=photo_px_per_mm * distance_mm,
        look_at_mm=look_at_mm,
    )


def _inside(points_px: np.ndarray, size_px: tuple[int, int], margin_px: float) -> bool:
    w, h = size_px
    x, y = points_px[:, 0], points_px[:, 1]
    return bool(
        (x.min() >= margin_px)
        and (y.min() >= margin_px)
        and (x.max() <= w - 1 - margin_px)
        and (y.max() <= h - 1 - margin_px)
    )


def _bleed_mm(
    pose: scene.CameraPose,
    size_px: tuple[int, int],
    plane_mm: tuple[float, float],
    must_see_mm: np.ndarray,
) -> float | None:
    """How far (mm) the photo sees beyond the plane's edge; None when a point of
    ``must_see_mm`` (marker corners, wound box) falls outside the photo."""
    assert pose.look_at_mm is not None
    h_mm_to_px = scene.plane_mm_to_photo(pose, size_px, pose.look_at_mm)
    seen = cv2.perspectiveTransform(must_see_mm.reshape(-1, 1, 2), h_mm_to_px).reshape(-1, 2)
    if not _inside(seen, size_px, 16):
        return None
    w, h = size_px
    photo_corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float64)
    on_plane = cv2.perspectiveTransform(
        photo_corners.reshape(-1, 1, 2), np.linalg.inv(h_mm_to_px)
    ).reshape(-1, 2)
    over_x = np.maximum(-on_plane[:, 0], on_plane[:, 0] - plane_mm[0])
    over_y = np.maximum(-on_plane[:, 1], on_plane[:, 1] - plane_mm[1])
    return float(max(0.0, over_x.max(), over_y.max()))


def _box_mm(mask: np.ndarray, px_per_mm: float) -> np.ndarray:
    """The four corners (plane mm) of a mask's bounding box."""
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64) / px_per_mm


def _in_view_px(
    pose: scene.CameraPose, size_px: tuple[int, int], plane_shape: tuple[int, ...], ppm: float
) -> tuple[int, int, int, int]:
    """The plane's pixel box (x0, y0, x1, y1) that the photo sees, with a margin for blur."""
    assert pose.look_at_mm is not None
    h_mm_to_px = scene.plane_mm_to_photo(pose, size_px, pose.look_at_mm)
    w, h = size_px
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float64)
    seen_mm = cv2.perspectiveTransform(corners.reshape(-1, 1, 2), np.linalg.inv(h_mm_to_px))
    seen_mm = seen_mm.reshape(-1, 2)
    margin_px = 8
    x0 = max(int(math.floor(seen_mm[:, 0].min() * ppm)) - margin_px, 0)
    y0 = max(int(math.floor(seen_mm[:, 1].min() * ppm)) - margin_px, 0)
    x1 = min(int(math.ceil(seen_mm[:, 0].max() * ppm)) + margin_px, plane_shape[1])
    y1 = min(int(math.ceil(seen_mm[:, 1].max() * ppm)) + margin_px, plane_shape[0])
    return x0, y0, x1, y1


@dataclass(frozen=True)
class _Marker:
    """Where the marker lies on the plane, and which one it is."""

    place_mm: tuple[float, float]
    """Its centre (plane mm)."""
    marker_id: int
    rotation_deg: float
    corners_mm: np.ndarray
    """Its outer square's corners (plane mm, ArUco's order)."""


@dataclass(frozen=True)
class _Frame:
    """What the photo must show, and at what size and zoom."""

    centre_mm: np.ndarray
    """Midway between the wound's box and the marker: where the camera aims."""
    plane_mm: tuple[float, float]
    size_px: tuple[int, int]
    photo_px_per_mm: float


def photograph(
    rng: np.random.Generator,
    stage: Stage,
    wound: np.ndarray,
    spots_mm: np.ndarray,
    wound_box_mm: np.ndarray,
    marker_mm: float = scene.MARKER_MM,
) -> Shot:
    """Heal the plane to ``wound``, lay a marker beside it, light it, photograph it.

    Only the part of the plane in view is healed, lit and rendered (a camera looking
    at a plane shifted by an offset sees the same picture when it is shifted too).
    The steps draw from ``rng`` in a fixed order (marker, framing, pose, light,
    camera): the same seed gives the same photo."""
    if len(spots_mm) == 0:
        raise ValueError("no room for the marker beside the wound: pad the stage first")
    marker = _lay_marker(rng, spots_mm, marker_mm)
    frame = _frame(rng, stage, wound_box_mm, marker.place_mm)
    must_see_mm = np.vstack([marker.corners_mm, wound_box_mm])
    pose = _choose_pose(rng, frame, must_see_mm)
    ppm = stage.px_per_mm
    x0, y0, x1, y1 = _in_view_px(pose, frame.size_px, stage.rgb.shape, ppm)
    offset_mm = np.array([x0 / ppm, y0 / ppm])
    view_wound = wound[y0:y1, x0:x1]
    plane = heal(stage.rgb[y0:y1, x0:x1], stage.skin[y0:y1, x0:x1], view_wound)
    plane, _ = scene.paste_marker(
        plane,
        ppm,
        (marker.place_mm[0] - offset_mm[0], marker.place_mm[1] - offset_mm[1]),
        marker_mm,
        marker_id=marker.marker_id,
        rotation_deg=marker.rotation_deg,
        supersample=2,
    )
    plane = _lighting(rng, plane)
    rendered = _camera(rng, plane, ppm, pose, offset_mm, frame.size_px)
    assert rendered.jpeg is not None
    mask = scene.warp_mask(view_wound, ppm, rendered.H_plane_mm_to_photo, frame.size_px)
    return Shot(
        jpeg=rendered.jpeg,
        mask=mask,
        area_cm2=scene.true_area_cm2(wound, ppm),
        perimeter_cm=perimeter_mm(wound, ppm) / 10.0,
        scene=_scene_record(rendered, pose, ppm, marker, offset_mm),
    )


def _lay_marker(rng: np.random.Generator, spots_mm: np.ndarray, marker_mm: float) -> _Marker:
    """A marker at one of ``spots_mm`` (``marker_spots_mm``), any id, turned any way."""
    spot = spots_mm[int(rng.integers(0, len(spots_mm)))]
    place = (float(spot[0]), float(spot[1]))
    marker_id = int(rng.integers(0, 50))
    rotation_deg = float(rng.uniform(0.0, 360.0))
    corners_mm = scene.marker_corners_mm(place, marker_mm, rotation_deg)
    return _Marker(place, marker_id, rotation_deg, corners_mm)


def _frame(
    rng: np.random.Generator,
    stage: Stage,
    wound_box_mm: np.ndarray,
    place_mm: tuple[float, float],
) -> _Frame:
    """The photo's orientation (mostly the plane's, now and then the other way, as a
    phone is held) and zoom (at least far enough in that the plane fills the photo)."""
    ppm = stage.px_per_mm
    centre_mm = (wound_box_mm.mean(axis=0) + np.asarray(place_mm)) / 2.0
    plane_mm = (stage.rgb.shape[1] / ppm, stage.rgb.shape[0] / ppm)
    portrait = (plane_mm[1] > plane_mm[0]) != (rng.random() < 0.15)
    size_px = PHOTO_SIZE_PX[::-1] if portrait else PHOTO_SIZE_PX
    fill_px_per_mm = 1.1 * max(size_px[0] / plane_mm[0], size_px[1] / plane_mm[1])
    photo_px_per_mm = max(float(rng.uniform(*PHOTO_PX_PER_MM)), fill_px_per_mm)
    return _Frame(centre_mm, plane_mm, size_px, photo_px_per_mm)


def _choose_pose(
    rng: np.random.Generator, frame: _Frame, must_see_mm: np.ndarray
) -> scene.CameraPose:
    """A pose that keeps ``must_see_mm`` (marker and wound) in the photo and sees only
    the plane; failing that, the one that sees least beyond the plane's edge; failing
    even that, square on from afar."""
    best: tuple[float, scene.CameraPose] | None = None
    for attempt in range(60):
        look_at_mm = (
            float(frame.centre_mm[0] + rng.normal(0.0, 5.0)),
            float(frame.centre_mm[1] + rng.normal(0.0, 5.0)),
        )
        pose = _pose(rng, look_at_mm, frame.photo_px_per_mm * (1.0 + 0.02 * (attempt % 10)))
        if attempt >= 40:
            pose = replace(pose, tilt_deg=pose.tilt_deg / 2)
        bleed_mm = _bleed_mm(pose, frame.size_px, frame.plane_mm, must_see_mm)
        if bleed_mm is not None and (best is None or bleed_mm < best[0]):
            best = (bleed_mm, pose)
        if bleed_mm == 0.0:
            break
    if best is not None:
        return best[1]
    # Wound and marker never both in view: square on, from afar.
    span_mm = float(np.ptp(must_see_mm, axis=0).max())
    zoom_px_per_mm = 0.7 * min(frame.size_px) / span_mm
    centre = (float(frame.centre_mm[0]), float(frame.centre_mm[1]))
    return replace(_pose(rng, centre, zoom_px_per_mm), tilt_deg=0.0)


def _camera(
    rng: np.random.Generator,
    plane: np.ndarray,
    ppm: float,
    pose: scene.CameraPose,
    offset_mm: np.ndarray,
    size_px: tuple[int, int],
) -> scene.RenderedPhoto:
    """Photograph the in-view crop of the plane (``offset_mm``: where the crop starts)
    with a phone's flaws: blur, JPEG, exposure, noise."""
    assert pose.look_at_mm is not None
    view_pose = replace(
        pose,
        look_at_mm=(pose.look_at_mm[0] - offset_mm[0], pose.look_at_mm[1] - offset_mm[1]),
    )
    return scene.render(
        plane,
        ppm,
        view_pose,
        out_size_px=size_px,
        blur_sigma_px=float(rng.uniform(0.0, 1.2)),
        jpeg_quality=int(rng.integers(80, 96)),
        gain=float(math.exp(rng.normal(0.0, 0.15))),
        noise_sigma=float(rng.uniform(0.002, 0.012)),
        seed=int(rng.integers(0, 2**31)),
        supersample=2,
    )


def _scene_record(
    rendered: scene.RenderedPhoto,
    pose: scene.CameraPose,
    ppm: float,
    marker: _Marker,
    offset_mm: np.ndarray,
) -> dict[str, Any]:
    """``scene.json``'s entry of one photo: the camera, the marker's corners and the
    homography from the whole plane's mm (before the in-view crop) to the photo."""
    shift = np.array([[1.0, 0.0, -offset_mm[0]], [0.0, 1.0, -offset_mm[1]], [0.0, 0.0, 1.0]])
    h_plane_mm_to_photo = rendered.H_plane_mm_to_photo @ shift
    return {
        "plane_px_per_mm": round(ppm, 6),
        "photo_px_per_mm": round(pose.focal_px / pose.distance_mm, 4),
        "tilt_deg": round(pose.tilt_deg, 3),
        "rotation_deg": round(pose.rotation_deg, 3),
        "distance_mm": round(pose.distance_mm, 2),
        "marker_id": marker.marker_id,
        "marker_corners_px": [
            [round(float(v), 3) for v in p]
            for p in rendered.to_photo_px(marker.corners_mm - offset_mm)
        ],
        "H_plane_mm_to_photo": [[float(v) for v in row] for row in h_plane_mm_to_photo],
    }


def _wound_photos(
    plan: WoundPlan, source: Source, out_dir: Path, seed: np.random.SeedSequence
) -> list[tuple[str, str, Shot]]:
    """Render every visit of one wound: (photo path, mask path, shot)."""
    rng = np.random.default_rng(seed)
    stage = _stage(source, plan.flip, plan.source_px_per_mm, PHOTO_PX_PER_MM[1])
    paper_mm = scene.MARKER_MM * (1 + 2 / scene.MARKER_CELLS)
    spots_mm = marker_spots_mm(stage, paper_mm)
    while len(spots_mm) == 0:  # no room beside the wound: the scene extends, mirrored
        stage = _pad(stage, int(paper_mm * stage.px_per_mm))
        spots_mm = marker_spots_mm(stage, paper_mm)
    wound_box_mm = _box_mm(stage.full_mask, stage.px_per_mm)
    rows = []
    for visit in plan.visits:
        keep_px = round(visit.area_cm2 * 100.0 * stage.px_per_mm**2)
        shot = photograph(rng, stage, shrink(stage.depth, keep_px), spots_mm, wound_box_mm)
        stem = f"{plan.wound}-d{visit.day:03d}"
        photo_path, mask_path = f"photos/{stem}.jpg", f"masks/{stem}.png"
        (out_dir / photo_path).write_bytes(shot.jpeg)
        (out_dir / mask_path).write_bytes(encode_png(shot.mask))
        rows.append((photo_path, mask_path, shot))
    return rows


class TruthPhoto(TypedDict):
    """One photo of ``truth.json``: where it is, whose it is, what is true about it."""

    photo: str
    mask: str
    subject: str
    site: str
    arm: str
    wound: str
    index_leg: bool
    visit: str
    captured_at: str
    """ISO date."""
    area_cm2: float
    epithelialized: bool
    drainage: bool


class TruthWound(TypedDict):
    """One wound of ``truth.json``: the engine's endpoints of its true series."""

    subject: str
    wound: str
    endpoints: dict[str, Any]
    """``healing.wound_endpoints`` (days from the subject's ``healing.time_origin``)."""


class Truth(TypedDict):
    """``truth.json``."""

    seed: int
    marker_mm: float
    photos: list[TruthPhoto]
    wounds: list[TruthWound]


Rendered = list[tuple[str, str, Shot]]
"""One wound's photos as ``_wound_photos`` wrote them: (photo path, mask path, shot)."""


def simulate_trial(
    out_dir: Path,
    *,
    n_subjects: int,
    weeks: int,
    seed: int,
    source_dir: Path = DEFAULT_SOURCE,
    workers: int = 1,
    progress: Callable[[int, int, int], None] | None = None,
) -> Truth:
    """Write photos/, masks/ and truth.json into ``out_dir``; returns the truth.

    The same seed (and sources) gives byte-identical files, with any number of
    ``workers`` (processes rendering wounds at once; each wound has its own seed).
    ``progress(wounds_done, wounds_total, photos_done)`` is called as each wound's
    photos are written (in the order they finish).
    """
    sources = {s.name: s for s in load_sources(source_dir)}
    rng = np.random.default_rng(seed)
    plans = plan_trial(rng, n_subjects, weeks, list(sources.values()))
    seeds = np.random.SeedSequence(seed).spawn(len(plans))
    for sub in ("photos", "masks"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    jobs = [(plan, sources[plan.source], out_dir, s) for plan, s in zip(plans, seeds, strict=True)]
    renders = _render_wounds(jobs, workers, progress)
    photos: list[TruthPhoto] = []
    wounds: list[TruthWound] = []
    scenes: dict[str, Any] = {}
    origins = _time_origins(plans)
    for plan, rendered in zip(plans, renders, strict=True):
        visits = []
        for visit, (photo_path, mask_path, shot) in zip(plan.visits, rendered, strict=True):
            photos.append(_truth_photo(plan, visit, photo_path, mask_path, shot))
            scenes[photo_path] = {"source": plan.source, "flip": plan.flip, **shot.scene}
            visits.append(_true_visit(visit, photo_path, shot))
        endpoints = healing.wound_endpoints(visits, origin=origins[plan.subject])
        wounds.append({"subject": plan.subject, "wound": plan.wound, "endpoints": endpoints})
    write_json(out_dir / "scene.json", {"seed": seed, "photos": scenes})
    truth: Truth = {"seed": seed, "marker_mm": scene.MARKER_MM, "photos": photos, "wounds": wounds}
    write_json(out_dir / "truth.json", truth)
    return truth


def _render_wounds(
    jobs: list[tuple[WoundPlan, Source, Path, np.random.SeedSequence]],
    workers: int,
    progress: Callable[[int, int, int], None] | None,
) -> list[Rendered]:
    """Every wound's photos (``_wound_photos``), in ``jobs`` order whatever order they
    finish in: with ``workers`` > 1 in as many processes."""
    renders: list[Rendered] = [[] for _ in jobs]
    photos_done = 0

    def finished(i: int, rows: Rendered, wounds_done: int) -> None:
        nonlocal photos_done
        renders[i] = rows
        photos_done += len(rows)
        if progress is not None:
            progress(wounds_done, len(jobs), photos_done)

    if workers > 1 and len(jobs) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # spawn, not fork: the caller may have threads (a test's in-process service).
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=spawn) as pool:
            futures = {pool.submit(_wound_photos, *job): i for i, job in enumerate(jobs)}
            for done, future in enumerate(as_completed(futures), start=1):
                finished(futures[future], future.result(), done)
    else:
        for i, job in enumerate(jobs):
            finished(i, _wound_photos(*job), i + 1)
    return renders


def _time_origins(plans: list[WoundPlan]) -> dict[str, date | None]:
    """Each subject's day 0 by the service's one rule (``healing.time_origin``: no
    randomisation date here, so the first baseline photo of any of its wounds), so that
    the truth's endpoints count days as the service's do. All of a subject's wounds
    share its schedule, so this is also each wound's own baseline."""
    baselines: dict[str, list[str | None]] = {}
    for plan in plans:
        first = plan.visits[0].captured_at.isoformat() if plan.visits else None
        baselines.setdefault(plan.subject, []).append(first)
    return {subject: healing.time_origin(None, dates) for subject, dates in baselines.items()}


def _truth_photo(
    plan: WoundPlan, visit: VisitPlan, photo_path: str, mask_path: str, shot: Shot
) -> TruthPhoto:
    """``truth.json``'s row of one photo; its area is what the rendered mask holds."""
    return {
        "photo": photo_path,
        "mask": mask_path,
        "subject": plan.subject,
        "site": plan.site,
        "arm": plan.arm,
        "wound": plan.wound,
        "index_leg": plan.index_leg,
        "visit": visit.visit,
        "captured_at": visit.captured_at.isoformat(),
        "area_cm2": round(shot.area_cm2, 4),
        "epithelialized": visit.epithelialized,
        "drainage": visit.drainage,
    }


def _true_visit(visit: VisitPlan, photo_path: str, shot: Shot) -> healing.Visit:
    """The engine's view of one photo's truth: its true area and the clinician's
    observation (closed exactly when the true area is zero: ``_wound_visits``)."""
    return healing.Visit(
        assessment_id=photo_path,
        captured_at=visit.captured_at,
        area_cm2=round(shot.area_cm2, 4),
        perimeter_cm=round(shot.perimeter_cm, 4),
        epithelialized=visit.epithelialized,
        drainage=visit.drainage,
    )
