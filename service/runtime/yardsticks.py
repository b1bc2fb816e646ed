"""The three yardsticks every model is judged on, never one alone.

1. ``fuseg-val``: FUSeg 2021 validation as it is (in domain: wounds cover a median
   0.7 % of the photo).
2. ``reframed-fNN-sSSS``: the same validation photos re-framed (``service.core.reframe``)
   so the wound fills NN % of a square of SSS px: the close-up a nurse takes of a
   large ulcer, the far shot, a small or a large photo.
3. ``injury-ood``: other wound types, cameras and tissue (evaluation only; its
   README forbids training or tuning on it).
4. ``woundseg-dfu-val``: another clinic's lower-limb ulcers with expert-consensus
   outlines (its validation split; its train split may be trained on, this one never).

Each yardstick is scored with the service's own inference and the metrics of
``service.core.segmetrics`` (pooled and per-image Dice, precision, recall, median area
error per photo). ``training.release`` gates on these; ``benchmarks.model.yardsticks``
prints them. Torch-free.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.core.imaging import read_mask, read_photo
from service.core.reframe import reframe
from service.core.segmetrics import SplitScore, score_photo
from service.runtime.evaluation import pairs

REFRAME_FILLS = (0.01, 0.03, 0.10, 0.25, 0.40)
REFRAME_SIZES = (224, 512, 1024)
GATE_MAX_DICE_LOSS = 0.005
"""A candidate may not lose more pooled Dice than this on any yardstick (release gate)."""
GATE_MAX_PR_GAP = 0.05
"""A candidate's |precision - recall| on any yardstick may not exceed this (release gate):
an outline drawn inside (or outside) the wound's edge biases every area, whatever its Dice.
Where the default model is already further off on a yardstick (2.0.0 on the far shots:
precision 0.63-0.66, recall 0.87-0.91), the candidate may not be further off than the
default there: the target stays 0.05 (the benchmarks print it), but a gate no model near
the default can pass would stop every step towards it."""

FUSEG_VAL = "fuseg-val"
"""The yardstick of the split a release's ``model.json`` metrics are measured on."""

Segment = Callable[[np.ndarray], np.ndarray]
"""uint8 RGB photo -> 0/255 mask of the same size (``Segmenter.segment(...).mask``)."""


@dataclass(frozen=True)
class Yardstick:
    name: str
    """``fuseg-val``, ``reframed-f10-s512``, ``injury-ood``."""
    photos: Callable[[], Iterator[tuple[str, np.ndarray, np.ndarray]]]
    """(name, rgb, truth mask) triples, made on demand (re-framed views are not stored)."""
    folder: Path | None = None
    """The folder (``images/``, ``labels/``) its photos are read from as they are; None
    for views made from another set (re-framed)."""


def _folder(
    images: Path, labels: Path
) -> Callable[[], Iterator[tuple[str, np.ndarray, np.ndarray]]]:
    def gen() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        for img, lab in pairs(images, labels):
            photo = read_photo(img)
            yield img.name, photo.rgb, read_mask(lab, shape=photo.rgb.shape[:2])

    return gen


def _reframed(
    images: Path, labels: Path, fill: float, size: int
) -> Callable[[], Iterator[tuple[str, np.ndarray, np.ndarray]]]:
    def gen() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        for name, rgb, truth in _folder(images, labels)():
            if truth.any():  # a photo without a wound has no framing to change
                view, view_mask = reframe(rgb, truth, fill, size)
                yield name, view, view_mask

    return gen


def reframed_name(fill: float, size: int) -> str:
    return f"reframed-f{round(fill * 100):02d}-s{size}"


def yardsticks(
    fuseg: Path | None,
    ood: Path | None,
    fills: tuple[float, ...] = REFRAME_FILLS,
    sizes: tuple[int, ...] = REFRAME_SIZES,
    other_clinic: Path | None = None,
) -> list[Yardstick]:
    """The yardsticks whose data is present (a missing folder is left out, not faked)."""
    out: list[Yardstick] = []
    if fuseg is not None and (fuseg / "validation" / "images").is_dir():
        images, labels = fuseg / "validation" / "images", fuseg / "validation" / "labels"
        out.append(Yardstick(FUSEG_VAL, _folder(images, labels), images.parent))
        out += [
            Yardstick(reframed_name(f, s), _reframed(images, labels, f, s))
            for f in fills
            for s in sizes
        ]
    if ood is not None and (ood / "images").is_dir():
        out.append(Yardstick("injury-ood", _folder(ood / "images", ood / "labels"), ood))
    if other_clinic is not None and (other_clinic / "validation" / "images").is_dir():
        val = other_clinic / "validation"
        out.append(Yardstick("woundseg-dfu-val", _folder(val / "images", val / "labels"), val))
    return out


def score(segment: Segment, stick: Yardstick, limit: int | None = None) -> dict:
    """The yardstick's summary (``SplitScore.summary``) for one way of segmenting."""
    split = SplitScore()
    for i, (name, rgb, truth) in enumerate(stick.photos()):
        if limit is not None and i >= limit:
            break
        split.add(score_photo(name, truth, segment(rgb)))
    return split.summary()


def score_all(segment: Segment, sticks: list[Yardstick], limit: int | None = None) -> dict:
    return {s.name: score(segment, s, limit) for s in sticks}


def _gap(m: dict) -> float:
    return m["precision"] - m["recall"]


def pr_gaps(
    candidate: dict, baseline: dict | None = None, max_gap: float = GATE_MAX_PR_GAP
) -> list[str]:
    """The yardsticks on which ``candidate`` (a ``score_all`` answer) has |precision -
    recall| above ``max_gap`` and above the ``baseline``'s |P - R| on the same yardstick
    (``GATE_MAX_PR_GAP``), each as a sentence naming the side it errs on."""
    baseline = baseline or {}
    out = []
    for name, m in candidate.items():
        gap = _gap(m)
        allowed = max(max_gap, abs(_gap(baseline[name]))) if name in baseline else max_gap
        if abs(gap) > allowed:
            side = "inside the wound (recall short)" if gap > 0 else "outside the wound"
            limit = f"{max_gap}" if allowed == max_gap else f"the default's {allowed:.3f}"
            out.append(
                f"{name}: precision {m['precision']:.3f}, recall {m['recall']:.3f}"
                f" (|P - R| {abs(gap):.3f} > {limit}: outlines drawn {side})"
            )
    return out


def gate(candidate: dict, baseline: dict, max_loss: float = GATE_MAX_DICE_LOSS) -> list[str]:
    """The yardsticks on which ``candidate`` loses more than ``max_loss`` pooled Dice
    against ``baseline`` (both ``score_all`` answers), or whose |precision - recall|
    exceeds ``GATE_MAX_PR_GAP`` and the baseline's own (``pr_gaps``), each as a
    sentence; [] = passes."""
    worse = pr_gaps(candidate, baseline)
    for name, base in baseline.items():
        if name not in candidate:
            worse.append(f"{name}: not measured for the candidate")
            continue
        loss = base["pooled_dice"] - candidate[name]["pooled_dice"]
        if loss > max_loss:
            worse.append(
                f"{name}: pooled Dice {candidate[name]['pooled_dice']:.4f} against"
                f" {base['pooled_dice']:.4f} (loses {loss:.4f} > {max_loss})"
            )
    return worse


def summary_rows(results: dict[str, dict]) -> list[str]:
    """Markdown rows: one model, every yardstick."""
    rows = [
        "| yardstick | photos | pooled Dice | mean Dice | precision | recall | median area error |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in results.items():
        rows.append(
            f"| {name} | {m['photos']} | {m['pooled_dice']:.4f} | {m['mean_dice']:.4f}"
            f" | {m['precision']:.4f} | {m['recall']:.4f}"
            f" | {100 * m['median_abs_rel_area_error']:.1f} % |"
        )
    return rows
