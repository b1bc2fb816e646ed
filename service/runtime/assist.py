"""Assisted outline (engine "box crop"): the segmentation model run on the crop of a
box the clinician drew, zoomed so the box fills the model's input.

One function, ``suggest``, does the work for the API route (``POST
/v1/assessments/{id}/outline``), the dashboard's editor and ``woundscope predict
--prompts``. The model is whichever the caller loaded (the study's pinned model or the
default one); its ``model.json`` decides the preprocessing (input size, letterbox,
normalisation, threshold), the crop geometry and the point rules live in
``service.core.assist``. Nothing is stored here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.core import assist
from service.core.assist import Box, Prompt
from service.core.contract import preprocess, probability, unbox
from service.core.imaging import decode_photo
from service.core.measure import QualityLimits
from service.core.pipeline import Calibration, measure_mask
from service.core.uncertainty import outline_log_halfwidth
from service.runtime.inference import Segmenter

ENGINE = "box-crop"
HFLIP = True
"""Also look at the mirrored crop and average (one batch of two: the outline's edge is
steadier for about 1.6x the time of one look)."""


@dataclass(frozen=True)
class Suggestion:
    polygons: list[list[list[int]]]
    """The outline's parts in photo pixels, largest first (empty: no wound found)."""
    mask: np.ndarray
    """bool, the photo's size: the polygons filled (what saving them measures)."""
    probability: np.ndarray
    """float32 wound probability at the photo's size where the model looked (0 elsewhere)."""
    engine: str
    ms: float


def crop_probability(
    segmenter: Segmenter, rgb: np.ndarray, crop: Box, hflip: bool = HFLIP
) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """The model's wound probability over ``crop`` (letterboxed into its input as
    ``model.json`` says): (pixel bounds x0, y0, x1, y1; probability of that patch)."""
    x0, y0, x1, y1 = assist.int_box(crop)
    patch = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    x, box = preprocess(patch, segmenter.spec)
    batch = np.concatenate([x, np.ascontiguousarray(x[..., ::-1])]) if hflip else x
    out = segmenter.run_batch(batch)
    p = probability(out[0], segmenter.spec)
    if hflip:  # the two looks are two opinions: average their probabilities
        p = (p + probability(out[1][:, ::-1], segmenter.spec)) / 2
    return (x0, y0, x1, y1), unbox(p, box)


def _min_px(segmenter: Segmenter, crop: Box) -> int:
    """The model's smallest component (counted at its input size) in photo pixels."""
    side = max(crop[2] - crop[0], crop[3] - crop[1])
    scale = (side / segmenter.spec.input.size) ** 2
    return max(1, round(segmenter.spec.postprocess.min_component_px * scale))


def _look(
    segmenter: Segmenter, rgb: np.ndarray, crop: Box, prob: np.ndarray, hflip: bool = HFLIP
) -> None:
    (x0, y0, x1, y1), p = crop_probability(segmenter, rgb, crop, hflip)
    np.maximum(prob[y0:y1, x0:x1], p, out=prob[y0:y1, x0:x1])


def _base(
    segmenter: Segmenter, rgb: np.ndarray, prompt: Prompt, margin: float, hflip: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The outline before points: the boxes' (union), or the model's whole-photo
    segmentation when only points were given. (mask bool, probability)."""
    h, w = rgb.shape[:2]
    threshold = segmenter.spec.output.threshold
    if not prompt.boxes:
        seg = segmenter.segment(rgb)
        return seg.mask > 0, seg.probability.astype(np.float32)
    prob = np.zeros((h, w), np.float32)
    mask = np.zeros((h, w), bool)
    for box in prompt.boxes:
        crop = assist.crop_square(box, w, h, margin)
        own = np.zeros((h, w), np.float32)
        _look(segmenter, rgb, crop, own, hflip)
        mask |= assist.box_outline(own, box, threshold, _min_px(segmenter, crop))
        np.maximum(prob, own, out=prob)
    return mask, prob


def _include_radius(prompt: Prompt, width: int, height: int) -> int:
    """How far a 1-point's region may grow: half the largest box's crop, or an eighth
    of the photo's longer side without a box."""
    if prompt.boxes:
        side = max(max(b[2] - b[0], b[3] - b[1]) for b in prompt.boxes)
        return max(8, round(side * (1 + 2 * assist.CROP_MARGIN) / 2))
    return max(16, round(max(width, height) / 8))


def suggest(
    segmenter: Segmenter,
    rgb: np.ndarray,
    prompt: Prompt,
    *,
    margin: float = assist.CROP_MARGIN,
    hflip: bool = HFLIP,
) -> Suggestion:
    """The suggested outline for ``prompt`` (already checked against ``rgb``'s size by
    ``service.core.assist.parse_prompt``): boxes are outlined on their zoomed crops,
    then each point in order adds (1) or removes (0) a region. ``margin`` and ``hflip``
    are the engine's settings (the benchmark compares them). CPU-bound."""
    t0 = time.perf_counter()
    h, w = rgb.shape[:2]
    mask, prob = _base(segmenter, rgb, prompt, margin, hflip)
    radius = _include_radius(prompt, w, h)
    for x, y, label in prompt.points:
        if label == 0:
            mask = assist.exclude_at(mask, x, y)
            continue
        px, py = min(int(x), w - 1), min(int(y), h - 1)
        if not mask[py, px] and prob[py, px] < assist.INCLUDE_THRESHOLD:
            # a second look centred on the point: the model may see it closer up
            crop = assist.crop_square((x - radius, y - radius, x + radius, y + radius), w, h, 0.0)
            _look(segmenter, rgb, crop, prob, hflip)
        mask = assist.include_at(mask, prob, rgb, x, y, radius)
    polygons = assist.mask_polygons(mask)
    filled = assist.polygons_mask(polygons, w, h)
    ms = (time.perf_counter() - t0) * 1000
    return Suggestion(polygons, filled, prob, f"{ENGINE} {segmenter.id}", ms)


def outline_answer(
    segmenter: Segmenter,
    photo_jpeg: bytes,
    *,
    box: list[Any] | None,
    points: list[Any] | None,
    marker_mm: float,
    cal: Calibration,
    limits: QualityLimits | None = None,
) -> dict[str, Any]:
    """A stored photo and a prompt -> the suggestion as answered over HTTP:
    ``{"polygon", "polygons", "area_cm2", "area_cm2_low", "area_cm2_high", "engine",
    "ms"}``. The area is that of the polygons filled (what saving them measures), with
    the photo's calibration and the model's outline interval (a suggestion is a model
    outline until a clinician saves it). Raises ``DomainError`` for a bad prompt."""
    t0 = time.perf_counter()
    rgb = decode_photo(
        photo_jpeg, name="stored photo", max_bytes=len(photo_jpeg) + 1, max_pixels=10**9
    ).rgb
    h, w = rgb.shape[:2]
    prompt = assist.parse_prompt([box] if box is not None else [], points, w, h)
    found = suggest(segmenter, rgb, prompt)
    mask = found.mask.astype(np.uint8) * np.uint8(255)
    result = measure_mask(
        rgb,
        mask,
        marker_mm=marker_mm,
        cal=Calibration(cal.px_per_mm, cal.ruler, None),
        limits=limits,
        segmentation_log_halfwidth=(
            outline_log_halfwidth(found.probability, mask, segmenter.spec)
            if found.polygons
            else None
        ),
    )
    return {
        "polygon": found.polygons[0] if found.polygons else [],
        "polygons": found.polygons,
        "area_cm2": result.get("area_cm2"),
        "area_cm2_low": result.get("area_cm2_low"),
        "area_cm2_high": result.get("area_cm2_high"),
        "area_px": result.get("area_px"),
        "calibrated": result.get("calibrated"),
        "engine": found.engine,
        "ms": round((time.perf_counter() - t0) * 1000, 1),
    }
