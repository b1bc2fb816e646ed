"""The outline's share of the area interval (service.uncertainty) and how measure uses it."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from service.contract import ModelSpec, UncertaintySpec
from service.measure import QualityLimits, measure
from service.uncertainty import (
    OutlineSignals,
    combine_log,
    conformal_q,
    halfwidth_pct,
    nonconformity,
    outline_log_halfwidth,
    outline_signals,
)


def spec(q: float | None = 2.0, **u: float) -> ModelSpec:
    return ModelSpec(name="t", version="0.0.1", uncertainty=UncertaintySpec(q=q, **u))


def test_conformal_q_covers_each_set_on_fresh_draws() -> None:
    rng = random.Random(3)
    # Two sets with different error spreads: q must hold 90 % of the wider one too.
    fit = {"narrow": [abs(rng.gauss(0, 1)) for _ in range(3000)],
           "wide": [abs(rng.gauss(0, 3)) for _ in range(3000)]}  # fmt: skip
    q = conformal_q(fit, level=0.95, each=0.90)
    fresh_wide = [abs(rng.gauss(0, 3)) for _ in range(4000)]
    fresh_all = fresh_wide + [abs(rng.gauss(0, 1)) for _ in range(4000)]
    assert np.mean([s <= q for s in fresh_wide]) >= 0.88
    assert np.mean([s <= q for s in fresh_all]) >= 0.92
    # An infinite score (a missed wound) is never covered.
    assert nonconformity(100, 0, 0.1) == math.inf
    assert nonconformity(0, 100, 0.1) == math.inf


def test_signals_count_the_hesitant_band_near_the_wound_only() -> None:
    prob = np.zeros((200, 200), np.float32)
    prob[50:100, 50:100] = 0.9
    prob[45:50, 50:100] = 0.5  # a hesitant rim above the wound
    prob[180:190, 180:190] = 0.5  # hesitation far away: another matter
    mask = (prob >= 0.75).astype(np.uint8) * 255
    s = outline_signals(prob, mask, spec())
    assert s.area_px == 2500 and s.band_px == 250
    assert s.fill == pytest.approx(2500 / 40000)
    # A sharper edge is a narrower interval.
    sharp = prob.copy()
    sharp[45:50, 50:100] = 0.0
    assert outline_log_halfwidth(sharp, mask, spec()) < outline_log_halfwidth(prob, mask, spec())
    assert outline_log_halfwidth(prob, mask, spec(q=None)) is None
    assert outline_log_halfwidth(prob, np.zeros_like(mask), spec()) is None


def test_scale_grows_for_small_and_for_frame_filling_wounds() -> None:
    u = UncertaintySpec(q=1.0, size_coef=2.0, fill_coef=1.0, floor=0.02)
    small = OutlineSignals(area_px=100, band_px=0, area_model_px=16.0, fill=0.001)
    large = OutlineSignals(area_px=10**6, band_px=0, area_model_px=10**4, fill=0.001)
    close_up = OutlineSignals(area_px=10**6, band_px=0, area_model_px=10**4, fill=0.4)
    assert small.scale(u) > large.scale(u)
    assert close_up.scale(u) == pytest.approx(large.scale(u) + 0.399)


def test_measure_widens_the_interval_and_flags_an_unsure_outline(upright_shot) -> None:
    plain = measure(upright_shot.rgb, upright_shot.mask)
    assert plain.segmentation_pct is None and plain.calibration_pct is not None
    assert plain.to_json()["uncertainty"] == {
        "calibration_pct": round(plain.calibration_pct, 1),
        "segmentation_pct": None,
    }
    h = math.asinh(0.25)  # a 25 % outline half-width
    both = measure(upright_shot.rgb, upright_shot.mask, segmentation_log_halfwidth=h)
    assert both.area_cm2 == pytest.approx(plain.area_cm2)
    assert both.segmentation_pct == pytest.approx(25.0)
    total = combine_log(plain.calibration_pct / 100, h)
    assert both.area_cm2_low == pytest.approx(both.area_cm2 * math.exp(-total))
    assert both.area_cm2_high == pytest.approx(both.area_cm2 * math.exp(total))
    assert both.area_cm2_low < plain.area_cm2_low and both.area_cm2_high > plain.area_cm2_high
    assert "outline_uncertain" not in [f.code for f in both.quality]
    limits = QualityLimits(max_segmentation_uncertainty_pct=20.0)
    unsure = measure(
        upright_shot.rgb, upright_shot.mask, segmentation_log_halfwidth=h, limits=limits
    )
    (flag,) = [f for f in unsure.quality if f.code == "outline_uncertain"]
    assert "±25 %" in flag.message and not flag.severe
    assert halfwidth_pct(h) == pytest.approx(25.0)
