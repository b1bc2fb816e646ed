"""Assisted outline, the pure parts: the prompt (boxes and points), the crop a box is
seen through, the refinement by points, and the mask as polygons.

A clinician drags a box around the wound (and may click points: 1 = wound here,
0 = not wound); ``service.runtime.assist`` runs the model on the box's crop and these
functions turn its probability into the suggested outline. No model, web or database
here; coordinates are photo pixels as displayed (EXIF orientation applied).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from service.core.errors import DomainError

MAX_POINTS = 20
"""At most this many points in one request (a click each: more is not a person)."""
MAX_BOXES = 20
MIN_BOX_PX = 4.0
"""A box narrower or shorter than this (photo pixels) is a click, not a box."""
CROP_MARGIN = 0.3
"""Context around the box the model sees, a share of the box's longer side each way:
the wound's edge needs skin around it to be found."""
BOX_SLACK = 0.05
"""The outline may reach this share of the box's longer side beyond the box (a box
drawn a little tight still gets the whole wound)."""
INCLUDE_THRESHOLD = 0.25
"""A 1-point adds the region around it where the probability is at least this (lower
than the model's threshold: the clinician has said there is wound there)."""
COLOUR_TOLERANCE = 14
"""A 1-point where the model sees no wound at all grows by colour (CIELAB units)."""
EXCLUDE_RADIUS_FRAC = 0.02
"""A 0-point just outside the outline removes the part within this share of the
photo's longer side."""


Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Prompt:
    """What the clinician gave: boxes (x0, y0, x1, y1) and points (x, y, 1|0)."""

    boxes: list[Box] = field(default_factory=list)
    points: list[tuple[float, float, int]] = field(default_factory=list)


def _number_list(value: Any, n: int, what: str) -> list[float]:
    if (
        not isinstance(value, list | tuple)
        or len(value) != n
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        or not all(math.isfinite(float(v)) for v in value)
    ):
        raise DomainError(f"{what} must be {n} numbers", code="invalid_prompt")
    return [float(v) for v in value]


def parse_box(value: Any, width: int, height: int) -> Box:
    """[x0, y0, x1, y1] inside the photo, at least ``MIN_BOX_PX`` a side."""
    x0, y0, x1, y1 = _number_list(value, 4, "box [x0, y0, x1, y1]")
    x0, x1 = min(x0, x1), max(x0, x1)
    y0, y1 = min(y0, y1), max(y0, y1)
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        raise DomainError(
            f"the box [{x0:g}, {y0:g}, {x1:g}, {y1:g}] is not inside the photo"
            f" ({width}x{height}): draw it on the photo",
            code="invalid_prompt",
        )
    if x1 - x0 < MIN_BOX_PX or y1 - y0 < MIN_BOX_PX:
        raise DomainError(
            f"the box is smaller than {MIN_BOX_PX:g} pixels a side: drag a box around the wound",
            code="invalid_prompt",
        )
    return x0, y0, x1, y1


def parse_point(value: Any, width: int, height: int) -> tuple[float, float, int]:
    x, y, label = _number_list(value, 3, "a point [x, y, 1|0]")
    if label not in (0, 1):
        raise DomainError("a point's label is 1 (wound) or 0 (not wound)", code="invalid_prompt")
    if not (0 <= x <= width and 0 <= y <= height):
        raise DomainError(
            f"the point ({x:g}, {y:g}) is not inside the photo ({width}x{height})",
            code="invalid_prompt",
        )
    return x, y, int(label)


def parse_prompt(
    boxes: list[Any] | None, points: list[Any] | None, width: int, height: int
) -> Prompt:
    """Check a prompt against the photo's size; raises ``DomainError`` (invalid_prompt,
    too_many_points) saying what to send instead."""
    boxes, points = list(boxes or []), list(points or [])
    if not boxes and not points:
        raise DomainError(
            "send a 'box' [x0, y0, x1, y1] around the wound and/or 'points' [[x, y, 1|0], …]",
            code="invalid_prompt",
        )
    if len(points) > MAX_POINTS:
        raise DomainError(
            f"{len(points)} points: at most {MAX_POINTS} (draw a box instead)",
            code="too_many_points",
        )
    if len(boxes) > MAX_BOXES:
        raise DomainError(f"{len(boxes)} boxes: at most {MAX_BOXES}", code="invalid_prompt")
    return Prompt(
        boxes=[parse_box(b, width, height) for b in boxes],
        points=[parse_point(p, width, height) for p in points],
    )


def prompts_file(text: str) -> dict[str, dict[str, list[Any]]]:
    """``woundscope predict --prompts``: JSON mapping a photo's stem to
    ``{"boxes": [[x0, y0, x1, y1], …], "points": [[x, y, label], …]}``."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise DomainError(f"the prompts file is not JSON: {exc}", code="invalid_prompt") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise DomainError(
            'the prompts file maps a photo\'s stem to {"boxes": [...], "points": [...]}',
            code="invalid_prompt",
        )
    for stem, entry in data.items():
        unknown = set(entry) - {"boxes", "points"}
        if unknown:
            raise DomainError(
                f"{stem}: unknown keys {sorted(unknown)} (use 'boxes' and 'points')",
                code="invalid_prompt",
            )
    return data


def crop_square(box: Box, width: int, height: int, margin: float = CROP_MARGIN) -> Box:
    """The square the model sees for ``box``: the box plus ``margin`` of its longer side
    each way, shifted (never padded) to lie inside the photo, at most the photo."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    side_x, side_y = min(side, width), min(side, height)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    ax = min(max(cx - side_x / 2, 0.0), width - side_x)
    ay = min(max(cy - side_y / 2, 0.0), height - side_y)
    return ax, ay, ax + side_x, ay + side_y


def int_box(box: Box) -> tuple[int, int, int, int]:
    """Pixel bounds (x0, y0, x1, y1), x1/y1 exclusive, at least one pixel."""
    x0, y0 = math.floor(box[0]), math.floor(box[1])
    return x0, y0, max(x0 + 1, math.ceil(box[2])), max(y0 + 1, math.ceil(box[3]))


def slack_box(box: Box, width: int, height: int, slack: float = BOX_SLACK) -> tuple[int, ...]:
    x0, y0, x1, y1 = box
    s = max(x1 - x0, y1 - y0) * slack
    return int_box((max(0.0, x0 - s), max(0.0, y0 - s), min(width, x1 + s), min(height, y1 + s)))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """bool mask with its enclosed holes filled."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    out = np.zeros(mask.shape, np.uint8)
    cv2.drawContours(out, contours, -1, 1, thickness=cv2.FILLED)
    return out > 0


def box_outline(prob: np.ndarray, box: Box, threshold: float, min_px: int) -> np.ndarray:
    """The wound inside ``box`` from the probability of the box's crop (``prob``, the
    photo's size, zero outside the crop): the components above ``threshold`` inside the
    box (with its slack), holes filled. When nothing passes the threshold, the component
    around the most likely pixel at half its probability (a faint wound the clinician
    pointed at is still outlined); none when the model sees nothing (< 0.1)."""
    h, w = prob.shape
    x0, y0, x1, y1 = slack_box(box, w, h)
    inside = np.zeros((h, w), bool)
    inside[y0:y1, x0:x1] = True
    region = np.where(inside, prob, 0.0)
    mask = region >= threshold
    mask = _drop_small(mask, min_px)
    if not mask.any():
        peak = float(region.max())
        if peak < 0.1:
            return mask
        py, px = np.unravel_index(int(region.argmax()), region.shape)
        mask = component_at(region >= peak / 2, int(px), int(py))
    return fill_holes(mask)


def _drop_small(mask: np.ndarray, min_px: int) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_px
    return keep[labels]


def component_at(mask: np.ndarray, x: int, y: int) -> np.ndarray:
    """The 8-connected component of ``mask`` holding pixel (x, y) (empty if none)."""
    h, w = mask.shape
    x, y = min(max(x, 0), w - 1), min(max(y, 0), h - 1)
    if not mask[y, x]:
        return np.zeros(mask.shape, bool)
    _, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return labels == labels[y, x]


def exclude_at(mask: np.ndarray, x: float, y: float) -> np.ndarray:
    """A 0-point: the part of the outline under it is removed (the component holding
    it, or the nearest one within ``EXCLUDE_RADIUS_FRAC`` of the photo's side)."""
    h, w = mask.shape
    px, py = min(int(x), w - 1), min(int(y), h - 1)
    part = component_at(mask, px, py)
    if not part.any():
        r = max(2, round(EXCLUDE_RADIUS_FRAC * max(h, w)))
        near = np.zeros(mask.shape, np.uint8)
        cv2.circle(near, (px, py), r, 1, thickness=cv2.FILLED)
        hits = np.argwhere(mask & (near > 0))
        if not len(hits):
            return mask
        d = (hits[:, 0] - py) ** 2 + (hits[:, 1] - px) ** 2
        hy, hx = hits[int(d.argmin())]
        part = component_at(mask, int(hx), int(hy))
    return mask & ~part


def include_at(
    mask: np.ndarray, prob: np.ndarray, rgb: np.ndarray, x: float, y: float, radius: int
) -> np.ndarray:
    """A 1-point: the region around it is added. Where the model gives it at least
    ``INCLUDE_THRESHOLD``, that region of the probability (within ``radius``); where it
    sees nothing, the patch of similar colour around the point (within ``radius``)."""
    h, w = mask.shape
    px, py = min(int(x), w - 1), min(int(y), h - 1)
    if mask[py, px]:
        return mask
    window = np.zeros(mask.shape, np.uint8)
    cv2.circle(window, (px, py), max(2, radius), 1, thickness=cv2.FILLED)
    if prob[py, px] >= INCLUDE_THRESHOLD:
        grown = component_at((prob >= INCLUDE_THRESHOLD) & (window > 0), px, py)
    else:
        grown = _colour_region(rgb, window > 0, px, py)
    return mask | fill_holes(grown)


def _colour_region(rgb: np.ndarray, window: np.ndarray, x: int, y: int) -> np.ndarray:
    ys, xs = np.nonzero(window)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    lab = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2LAB)
    lab = cv2.GaussianBlur(lab, (5, 5), 0)
    flood = np.zeros((y1 - y0 + 2, x1 - x0 + 2), np.uint8)
    tol = (COLOUR_TOLERANCE,) * 3
    flags = 8 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (1 << 8)
    cv2.floodFill(lab, flood, (x - x0, y - y0), (0, 0, 0), tol, tol, flags)
    out = np.zeros(window.shape, bool)
    out[y0:y1, x0:x1] = flood[1:-1, 1:-1] > 0
    return out & window


def mask_polygons(mask: np.ndarray, min_px: int = 8) -> list[list[list[int]]]:
    """The outer outline of each part of ``mask`` as a polygon in photo pixels, largest
    first, simplified to within about 1 % of its perimeter (a few dozen vertices:
    enough to follow the edge, few enough to drag)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    polygons = []
    for c in sorted(contours, key=cv2.contourArea, reverse=True):
        if cv2.contourArea(c) < min_px:
            continue
        eps = max(0.7, 0.006 * cv2.arcLength(c, True))
        approx = cv2.approxPolyDP(c, eps, True).reshape(-1, 2)
        if len(approx) >= 3:
            polygons.append([[int(x), int(y)] for x, y in approx])
    return polygons


def polygons_mask(polygons: list[list[list[int]]], width: int, height: int) -> np.ndarray:
    """The polygons filled (what saving them through ``PUT …/mask`` measures): bool."""
    out = np.zeros((height, width), np.uint8)
    for p in polygons:  # one at a time: overlapping parts are filled, not cancelled
        cv2.fillPoly(out, [np.asarray(p, np.int32)], 1)
    return out > 0
