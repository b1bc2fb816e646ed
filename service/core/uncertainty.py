"""How wrong the outline may be: the segmentation part of the area's 95 % interval.

The marker's error is a few per cent; the outline's is often far larger (a close-up
outlined by half, a blurred edge, slough the model hesitates over). The model says
where it hesitates: the pixels whose probability lies in a band around the
threshold. For one measured mask (the wound the area is for) the *scale* of its
error is

    u = band_coef * band_px / area_px + disagree_coef * disagreement
        + size_coef / sqrt(area_model_px) + fill_coef * fill + floor

the share of the area the model is unsure of, plus how much a second look at the
photo (``check_pass``: mirrored or zoomed out) disagrees on the wound's area near
this one, plus a term for small wounds (the
outline's pixel error weighs more on them, counted at the model's input
resolution), plus one for wounds that fill much of the photo (close-ups, which
models trained on far shots outline short), plus a floor. The interval of the true area is then

    area * exp(-q u) ... area * exp(+q u)

with ``q`` calibrated by split-conformal prediction on photos never trained on
(FUSeg validation, its re-framed views, injury-ood): ``q`` is the smallest factor
for which the interval held the true area in 95 % of the calibration photos of
every set pooled, and in at least 90 % of each set's. The photos are split in two
by a hash of their name; the other half reports the coverage. Every constant lives
in ``model.json`` (``uncertainty``); a model without it has no segmentation
interval (``None``), and says so. Pure numpy; no torch.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from service.core.contract import ModelSpec, UncertaintySpec


@dataclass(frozen=True)
class OutlineSignals:
    area_px: int
    """Pixels of the measured mask."""
    band_px: int
    """Pixels near the mask whose probability lies between ``band_lo`` and ``band_hi``."""
    area_model_px: float
    """The mask's area at the model's input resolution."""
    fill: float
    """The mask's share of the photo."""
    disagreement: float = 0.0
    """|wound area of the check look - of the first look| / the first's, near the wound
    (0 without a check look)."""

    def scale(self, u: UncertaintySpec) -> float:
        if self.area_px <= 0:
            return math.inf
        return (
            u.band_coef * self.band_px / self.area_px
            + u.disagree_coef * self.disagreement
            + u.size_coef / math.sqrt(max(self.area_model_px, 1.0))
            + u.fill_coef * self.fill
            + u.floor
        )


def near_box(wound: np.ndarray) -> tuple[slice, slice]:
    """Near the wound: its bounding box grown by half its size (another wound's band
    elsewhere in the photo is not this wound's uncertainty)."""
    x, y, w, h = cv2.boundingRect(wound.astype(np.uint8))
    gx, gy = w // 2 + 2, h // 2 + 2
    return (
        slice(max(0, y - gy), min(wound.shape[0], y + h + gy)),
        slice(max(0, x - gx), min(wound.shape[1], x + w + gx)),
    )


def disagreement(first: np.ndarray, check: np.ndarray, mask: np.ndarray, threshold: float) -> float:
    """How much two whole-photo looks disagree on the wound area near ``mask``:
    |area(check) - area(first)| / area(first), both thresholded as the contract does."""
    wound = mask > 0
    if not wound.any():
        return 0.0
    box = near_box(wound)
    a = int(np.count_nonzero(first[box] >= threshold))
    b = int(np.count_nonzero(check[box] >= threshold))
    return abs(b - a) / max(a, 1)


def outline_signals(
    prob: np.ndarray, mask: np.ndarray, spec: ModelSpec, disagree: float = 0.0
) -> OutlineSignals:
    """The model's hesitation around ``mask`` (0/255 or bool, the photo's size);
    ``disagree`` is ``disagreement`` of the check look, when the model has one."""
    u = spec.uncertainty or UncertaintySpec()
    wound = mask > 0
    area_px = int(np.count_nonzero(wound))
    px_per_model_px = (max(prob.shape[:2]) / spec.input.size) ** 2
    if not area_px:
        return OutlineSignals(0, 0, 0.0, 0.0)
    near = prob[near_box(wound)]
    band = int(np.count_nonzero((near >= u.band_lo) & (near < u.band_hi)))
    return OutlineSignals(area_px, band, area_px / px_per_model_px, area_px / wound.size, disagree)


def needs_check_look(u: UncertaintySpec | None, first: OutlineSignals) -> bool:
    """Whether the check look (``UncertaintySpec.check_pass``) is made for a wound whose
    first look gave ``first`` (signals without a disagreement): only for a model with a
    weighted check look, a wound filling at least its ``min_fill``, and a
    first look unsure enough (scale >= ``check_min_scale``). The calibration applies
    the same rule to every photo it fits on, so the interval stays honest."""
    if u is None or u.check_pass is None or u.disagree_coef <= 0:
        return False
    if first.area_px <= 0 or first.fill < u.check_pass.min_fill:
        return False
    return replace(first, disagreement=0.0).scale(u) >= u.check_min_scale


def segmentation_log_halfwidth(signals: OutlineSignals, spec: ModelSpec) -> float | None:
    """``q u``: the 95 % half-width of log(true area / measured area), or None when
    the model has no calibrated uncertainty or the mask is empty."""
    if spec.uncertainty is None or spec.uncertainty.q is None or signals.area_px <= 0:
        return None
    return spec.uncertainty.q * signals.scale(spec.uncertainty)


def outline_log_halfwidth(
    prob: np.ndarray, mask: np.ndarray, spec: ModelSpec, disagree: float = 0.0
) -> float | None:
    """The model's 95 % log half-width for the measured ``mask`` (None: uncalibrated
    model or no wound)."""
    return segmentation_log_halfwidth(outline_signals(prob, mask, spec, disagree), spec)


def halfwidth_pct(log_halfwidth: float) -> float:
    """A symmetric percentage for a log half-width: (e^h - e^-h) / 2, in %."""
    return 100.0 * math.sinh(log_halfwidth)


def combine_log(calibration_rel: float, segmentation_log: float | None) -> float:
    """Calibration (relative 95 % half-width) and outline (log half-width) in quadrature."""
    cal = math.log1p(max(calibration_rel, 0.0))
    return math.hypot(cal, segmentation_log or 0.0)


def calibration_half(name: str) -> bool:
    """Which half of a split a photo falls in (stable: a hash of its name)."""
    return hashlib.sha256(name.encode()).digest()[0] % 2 == 0


def nonconformity(true_px: int, pred_px: int, scale: float) -> float:
    """|log(true / measured)| / u; infinite when either is empty (never covered)."""
    if true_px <= 0 or pred_px <= 0 or not math.isfinite(scale):
        return math.inf
    return abs(math.log(true_px / pred_px)) / scale


def conformal_q(
    scores_by_set: dict[str, list[float]], level: float = 0.95, each: float = 0.90
) -> float:
    """The smallest q with (1) ``level`` of all scores and (2) ``each`` of every set's
    scores at or under it (finite-sample corrected quantiles)."""

    def quantile(xs: list[float], p: float) -> float:
        xs = sorted(xs)
        k = min(len(xs) - 1, math.ceil((len(xs) + 1) * p) - 1)
        return xs[max(k, 0)]

    pooled = [s for xs in scores_by_set.values() for s in xs]
    q = quantile(pooled, level)
    for xs in scores_by_set.values():
        if xs:
            q = max(q, quantile(xs, each))
    return q
