"""The outline's share of the area interval (service.core.uncertainty) and how measure uses it."""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from service.core.contract import ModelSpec, UncertaintySpec
from service.core.measure import QualityLimits, measure
from service.core.uncertainty import (
    OutlineSignals,
    combine_log,
    conformal_q,
    disagreement,
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


def test_disagreement_of_two_looks_counts_the_area_near_the_wound() -> None:
    first = np.zeros((200, 200), np.float32)
    first[50:100, 50:100] = 0.9
    check = first.copy()
    check[50:100, 100:110] = 0.9  # the second look sees the wound 20 % wider
    check[180:195, 180:195] = 0.9  # and something far away: not this wound's matter
    mask = (first >= 0.5).astype(np.uint8) * 255
    assert disagreement(first, check, mask, 0.5) == pytest.approx(0.2)
    assert disagreement(first, first, mask, 0.5) == 0.0
    assert disagreement(first, check, np.zeros_like(mask), 0.5) == 0.0
    # The disagreement widens the scale only when the model gives it a weight.
    s = outline_signals(first, mask, spec(), disagree=0.2)
    u = UncertaintySpec(q=2.0, disagree_coef=2.0)
    assert s.scale(u) == pytest.approx(s.scale(UncertaintySpec(q=2.0)) + 0.4)


def test_the_segmenter_makes_the_check_look_only_when_model_json_has_one(
    tmp_path: Path, samples_dir: Path
) -> None:
    from service.core.imaging import read_photo
    from service.runtime.artifacts import resolve_model
    from service.runtime.inference import Segmenter

    folder = tmp_path / "model"
    shutil.copytree(resolve_model(), folder)
    photo = read_photo(samples_dir / "images" / "0082.jpg").rgb

    def halfwidth_and_runs(seg: Segmenter) -> tuple[float | None, int]:
        result = seg.segment(photo)
        calls: list[tuple[int, ...]] = []
        run = seg.run_batch
        seg.run_batch = lambda x: calls.append(x.shape) or run(x)  # type: ignore[method-assign]
        return seg.outline_log_halfwidth(photo, result, result.mask), len(calls)

    raw = json.loads((folder / "model.json").read_text())
    raw["uncertainty"].update(check_pass=None, disagree_coef=0.0)
    (folder / "model.json").write_text(json.dumps(raw))
    plain, runs = halfwidth_and_runs(Segmenter(folder))
    assert runs == 0 and plain is not None
    raw["uncertainty"].update(check_pass={"zoom": 0.5}, disagree_coef=4.0)
    (folder / "model.json").write_text(json.dumps(raw))
    checked, runs = halfwidth_and_runs(Segmenter(folder))
    assert runs == 1 and checked is not None and checked >= plain


def test_calibration_keeps_a_check_look_that_predicts_the_error() -> None:
    """On rows whose area error is exactly what the mirrored look disagrees by, the fit
    chooses that look and a narrower interval than the band alone could give."""
    from training.calibrate_uncertainty import Row, check_name, fit

    rng = random.Random(5)
    rows = []
    for i in range(600):
        err = abs(rng.gauss(0, 0.3))
        signals = OutlineSignals(10_000, rng.randint(0, 3000), 10_000.0, 0.05)
        true_px = int(10_000 * math.exp(err if i % 2 else -err))
        rows.append(Row("set", f"p{i}", true_px, signals, {"hflip": err, "zoom0.5": 0.0}))
    u = fit(rows, UncertaintySpec())
    assert check_name(u) == "hflip" and u.disagree_coef > 0


def test_the_check_look_is_made_only_when_the_first_look_is_unsure(
    tmp_path: Path, samples_dir: Path
) -> None:
    """``check_min_scale``: a sure first look costs one network run, an unsure one two;
    the segmenter counts the second looks it made."""
    from service.core.imaging import read_photo
    from service.core.uncertainty import needs_check_look, outline_signals
    from service.runtime.artifacts import resolve_model
    from service.runtime.inference import Segmenter

    folder = tmp_path / "model"
    shutil.copytree(resolve_model(), folder)
    photos = [read_photo(p).rgb for p in sorted((samples_dir / "images").glob("*.jpg"))[:4]]
    raw = json.loads((folder / "model.json").read_text())

    def looks(min_scale: float) -> tuple[int, int]:
        raw["uncertainty"].update(check_pass={"zoom": 0.5}, disagree_coef=2.0)
        raw["uncertainty"]["check_min_scale"] = min_scale
        (folder / "model.json").write_text(json.dumps(raw))
        seg = Segmenter(folder)
        unsure = 0
        for rgb in photos:
            result = seg.segment(rgb)
            first = outline_signals(result.probability, result.mask, seg.spec)
            unsure += needs_check_look(seg.spec.uncertainty, first)
            seg.outline_log_halfwidth(rgb, result, result.mask)
        return seg.check_looks, unsure

    wounds = sum(bool(Segmenter(resolve_model()).segment(rgb).mask.any()) for rgb in photos)
    assert looks(0.0) == (wounds, wounds) and wounds > 0
    assert looks(1e9) == (0, 0)


def test_calibration_makes_the_second_look_only_for_unsure_photos() -> None:
    """Rows whose band says sure (and whose area is right) need no second look; the
    fit may gate it, and the counted share equals the rows it gates in."""
    from training.calibrate_uncertainty import Row, check_name, fit, report

    rng = random.Random(7)
    rows = []
    for i in range(800):
        unsure = i % 4 == 0
        err = abs(rng.gauss(0, 0.4)) if unsure else abs(rng.gauss(0, 0.02))
        band = rng.randint(2000, 4000) if unsure else rng.randint(0, 100)
        signals = OutlineSignals(10_000, band, 10_000.0, 0.05)
        true_px = int(10_000 * math.exp(err if i % 2 else -err))
        rows.append(Row("set", f"p{i}", true_px, signals, {"hflip": err, "zoom0.5": 0.0}))
    u = fit(rows, UncertaintySpec())
    assert check_name(u) == "hflip"
    share = report(rows, u)["set"]["second_look_share"]
    if u.check_min_scale > 0:
        assert share == pytest.approx(0.25, abs=0.01)
    else:
        assert share == 1.0


def test_review_limit_is_the_loosest_that_still_catches_nine_in_ten_far_off() -> None:
    """The limit catches >= 90 % of the photos off by > 30 % at a one-sided 95 % lower
    bound (a margin for photos never fitted on); the next looser one does not."""
    from training.calibrate_uncertainty import (
        REVIEW_LIMITS_PCT,
        Row,
        review_limit,
        scale,
        wilson_lower,
    )

    u = UncertaintySpec(q=1.0, band_coef=1.0, size_coef=0.0, floor=0.0)
    rows = []
    for i in range(400):  # band share (i % 100)/100 -> half-width sinh of it
        far = i % 100 >= 40
        signals = OutlineSignals(10_000, 100 * (i % 100), 10_000.0, 0.05)
        rows.append(Row("set", f"p{i}", 20_000 if far else 10_000, signals, {}))
    limit = review_limit(rows, u)
    assert limit in REVIEW_LIMITS_PCT
    far_widths = [100 * math.sinh(scale(r, u)) for r in rows if r.area_error > 0.3]

    def lower(lim: float) -> float:
        return wilson_lower(sum(w > lim for w in far_widths), len(far_widths))

    assert lower(limit) >= 0.9
    looser = min((x for x in REVIEW_LIMITS_PCT if x > limit), default=None)
    assert looser is None or lower(looser) < 0.9
    assert wilson_lower(95, 100) < 0.95 and wilson_lower(0, 0) == 0.0


def test_the_models_calibrated_review_limit_replaces_the_default_only() -> None:
    from service.core.measure import QualityLimits, with_model_review_limit

    default = QualityLimits()
    assert with_model_review_limit(default, 60.0).max_segmentation_uncertainty_pct == 60.0
    assert with_model_review_limit(default, None) == default
    operator = QualityLimits(max_segmentation_uncertainty_pct=80.0)
    assert with_model_review_limit(operator, 60.0).max_segmentation_uncertainty_pct == 80.0
