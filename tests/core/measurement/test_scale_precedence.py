"""Scale precedence, physical plausibility and ``calibrated`` (issue 26, defect 1).

A scale the site gives is never silently replaced by a detected marker; a marker that
disagrees with it is a severe ``scale_conflict``; a measurement outside a physical range
has no cm value (severe ``implausible_measurement``), whatever the homography."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.core.marker import DetectedMarker
from service.core.measure import (
    PX_PER_MM_RANGE,
    QualityLimits,
    marker_homography,
    measure,
)

LIMITS = QualityLimits()


def codes(m) -> set[str]:
    return {f.code for f in m.quality}


def flag(m, code: str):
    return next(f for f in m.quality if f.code == code)


@pytest.fixture(scope="module")
def true_scale_px_per_mm(make_shot) -> float:
    """The upright photo's scale, from its real 20 mm marker."""
    return float(measure(make_shot().rgb, make_shot().mask).px_per_mm)


@pytest.fixture(scope="module")
def false_marker_shot(make_shot):
    """The same scene with a marker-like pattern printed 7 mm wide: the detector reads
    it as the 20 mm marker, so its scale is about a third of the photo's."""
    return make_shot(marker_print_mm=7.0)


def test_a_false_marker_beside_a_given_scale_is_a_scale_conflict(
    false_marker_shot, true_scale_px_per_mm
):
    alone = measure(false_marker_shot.rgb, false_marker_shot.mask)
    assert alone.calibration == "marker"  # the detector does take the pattern for a marker
    assert alone.px_per_mm < 0.5 * true_scale_px_per_mm

    m = measure(false_marker_shot.rgb, false_marker_shot.mask, px_per_mm=true_scale_px_per_mm)
    assert m.calibration == "px_per_mm" and m.calibrated
    assert m.px_per_mm == pytest.approx(true_scale_px_per_mm)  # the given scale, not replaced
    assert m.area_cm2 == pytest.approx(2.0, rel=0.03)
    conflict = flag(m, "scale_conflict")
    assert conflict.severe and m.severe
    assert f"{true_scale_px_per_mm:.3g} px/mm" in conflict.message
    assert f"{alone.px_per_mm:.3g} px/mm" in conflict.message
    assert "no_perspective_correction" in codes(m)


def test_a_clinicians_scale_overrules_the_false_marker(false_marker_shot, true_scale_px_per_mm):
    m = measure(
        false_marker_shot.rgb,
        false_marker_shot.mask,
        px_per_mm=true_scale_px_per_mm,
        scale_confirmed=True,
    )
    assert m.calibration == "px_per_mm" and not m.severe
    assert "marker_overruled" in codes(m) and "scale_conflict" not in codes(m)
    assert m.area_cm2 == pytest.approx(2.0, rel=0.03)


def test_a_real_marker_against_a_wrong_scale_is_a_conflict_too(make_shot):
    shot = make_shot()
    m = measure(shot.rgb, shot.mask, px_per_mm=1.0)
    assert m.calibration == "px_per_mm" and "scale_conflict" in codes(m) and m.severe


def test_agreement_tolerance_edges(make_shot, true_scale_px_per_mm):
    """Within scale_agreement_pct the marker is used; beyond it, the given scale."""
    shot = make_shot()
    pct = LIMITS.scale_agreement_pct / 100
    inside = measure(shot.rgb, shot.mask, px_per_mm=true_scale_px_per_mm * (1 + 0.8 * pct))
    outside = measure(shot.rgb, shot.mask, px_per_mm=true_scale_px_per_mm * (1 + 1.3 * pct))
    assert inside.calibration == "marker" and "scale_ignored" in codes(inside)
    assert outside.calibration == "px_per_mm" and "scale_conflict" in codes(outside)


def edge_on_marker(tilt_squash: float, at=(100.0, 100.0), side_px: float = 60.0):
    """A marker quad squashed to ``tilt_squash`` of its height, one edge shrunk to a
    point's width: what a false detection on a fold looks like."""
    x, y = at
    h = side_px * tilt_squash
    corners = np.array(
        [[x, y], [x + side_px, y], [x + side_px * 0.51, y + h], [x + side_px * 0.49, y + h]],
        dtype=np.float64,
    )
    return DetectedMarker(7, corners, corners.copy(), 0.05, 1.0, refined=False)


def test_the_1e40_path_is_impossible():
    """A near-degenerate marker (issue 26: tilt 89°, 0.173 px/mm) used to give 1e40 cm²."""
    rgb = np.full((300, 400, 3), 180, np.uint8)
    mask = np.zeros((300, 400), np.uint8)
    mask[150:290, 20:380] = 255
    m = measure(rgb, mask, markers=[edge_on_marker(0.002)])
    data = m.to_json()
    assert data["calibrated"] is True and m.severe
    assert "implausible_measurement" in codes(m)
    for key in ("area_cm2", "area_cm2_low", "area_cm2_high", "perimeter_cm", "length_cm"):
        assert data[key] is None, key
    assert data["px_per_mm"] is None


corner = st.tuples(st.floats(-50, 450), st.floats(-50, 350))


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    corners=st.lists(corner, min_size=4, max_size=4),
    refined=st.booleans(),
    px_per_mm=st.one_of(st.none(), st.floats(*PX_PER_MM_RANGE)),
    box=st.tuples(
        st.integers(0, 299), st.integers(0, 399), st.integers(1, 300), st.integers(1, 400)
    ),
    with_marker=st.booleans(),
)
def test_no_measurement_outside_the_physical_range_carries_a_value(
    corners, refined, px_per_mm, box, with_marker
):
    """Over random marker quads (degenerate ones included) and random given scales: every
    cm value is finite and physical, ``calibrated`` agrees with the values, and a given
    scale is only replaced by a marker that agrees with it."""
    quad = np.array(corners, dtype=np.float64)
    if with_marker:
        try:
            marker_homography(quad, 20.0)
        except np.linalg.LinAlgError:
            return  # a singular quad is no detection at all
    rgb = np.full((300, 400, 3), 170, np.uint8)
    mask = np.zeros((300, 400), np.uint8)
    y, x, h, w = box
    mask[y : y + h, x : x + w] = 255
    markers = [DetectedMarker(3, quad, quad.copy(), 0.05, 1.0, refined)] if with_marker else []
    m = measure(rgb, mask, px_per_mm=px_per_mm, markers=markers)
    data = m.to_json()
    for key, high in (
        ("area_cm2", LIMITS.max_area_cm2),
        ("area_cm2_low", LIMITS.max_area_cm2),
        ("perimeter_cm", LIMITS.max_perimeter_cm),
        ("length_cm", LIMITS.max_length_cm),
    ):
        value = data[key]
        assert value is None or (math.isfinite(value) and 0 <= value <= high * 1.0001), key
    assert data["calibrated"] == (data["calibration"] != "none")
    if data["area_cm2"] is None:
        assert not data["calibrated"] or "implausible_measurement" in codes(m)
    if data["calibrated"] and data["area_cm2"] is None:
        assert m.severe
    if px_per_mm is not None and data["calibration"] == "marker":
        assert "scale_ignored" in codes(m)
    if px_per_mm is not None and data["calibration"] == "marker" and data["px_per_mm"]:
        assert abs(math.log(data["px_per_mm"] / px_per_mm)) <= max(
            math.log1p(LIMITS.scale_agreement_pct / 100), 0.5
        )
    if px_per_mm is not None and with_marker and data["calibration"] == "px_per_mm":
        assert "scale_conflict" in codes(m) or "implausible_measurement" in codes(m)
