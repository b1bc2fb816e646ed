"""The virtual-trial simulator: deterministic, and its truth agrees with its pictures."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from service.core import healing
from service.simulator.simulate import (
    ARMS,
    depth_map,
    load_sources,
    plan_trial,
    shrink,
    simulate_trial,
)

TRUTH_KEYS = {
    "photo",
    "mask",
    "subject",
    "site",
    "arm",
    "wound",
    "index_leg",
    "visit",
    "captured_at",
    "area_cm2",
    "epithelialized",
    "drainage",
}


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def trial(tmp_path_factory: pytest.TempPathFactory, samples_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("trial")
    simulate_trial(out, n_subjects=2, weeks=3, seed=11, source_dir=samples_dir)
    return out


def test_same_seed_same_bytes(trial: Path, tmp_path: Path, samples_dir: Path) -> None:
    # Same seed, rendered by two worker processes instead of one: the same bytes, and
    # a progress call per wound as it is written.
    calls: list[tuple[int, int, int]] = []
    truth = simulate_trial(
        tmp_path,
        n_subjects=2,
        weeks=3,
        seed=11,
        source_dir=samples_dir,
        workers=2,
        progress=lambda *call: calls.append(call),
    )
    assert _digest(tmp_path) == _digest(trial)
    n_wounds = len(truth["wounds"])
    assert [(done, total) for done, total, _ in calls] == [
        (i, n_wounds) for i in range(1, n_wounds + 1)
    ]
    photos_done = [photos for _, _, photos in calls]
    assert photos_done == sorted(photos_done) and photos_done[-1] == len(truth["photos"])
    other = tmp_path / "other"
    simulate_trial(other, n_subjects=2, weeks=3, seed=12, source_dir=samples_dir)
    assert (other / "truth.json").read_bytes() != (trial / "truth.json").read_bytes()


def test_truth_has_the_design_shape_and_files_exist(trial: Path) -> None:
    truth = json.loads((trial / "truth.json").read_text())
    assert truth["seed"] == 11 and truth["marker_mm"] == 20.0
    assert {p["subject"] for p in truth["photos"]} == {"S01", "S02"}
    for photo in truth["photos"]:
        assert set(photo) == TRUTH_KEYS
        rgb = cv2.imread(str(trial / photo["photo"]))
        mask = cv2.imread(str(trial / photo["mask"]), cv2.IMREAD_GRAYSCALE)
        assert rgb is not None and mask is not None
        assert mask.shape == rgb.shape[:2]
        assert set(np.unique(mask)) <= {0, 255}
        assert photo["epithelialized"] == (photo["area_cm2"] == 0)
        assert not (photo["epithelialized"] and photo["drainage"])
    wounds = {p["wound"] for p in truth["photos"]}
    assert [w["wound"] for w in truth["wounds"]] == sorted(wounds)
    for wound in truth["wounds"]:
        for key in ("baseline_area_cm2", "par_week4_pct", "closure_confirmed", "censored"):
            assert key in wound["endpoints"]


def test_truth_endpoints_are_the_engine_on_the_true_series(trial: Path) -> None:
    truth = json.loads((trial / "truth.json").read_text())
    for wound in truth["wounds"]:
        answer = wound["endpoints"]
        photos = [p for p in truth["photos"] if p["wound"] == wound["wound"]]
        assert [v["assessment"] for v in answer["visits"]] == [p["photo"] for p in photos]
        assert answer["baseline_area_cm2"] == pytest.approx(photos[0]["area_cm2"])
        perimeters = {v["assessment"]: v["perimeter_cm"] for v in answer["visits"]}
        visits = [
            healing.Visit(
                assessment_id=p["photo"],
                captured_at=np.datetime64(p["captured_at"]).astype(object),
                area_cm2=p["area_cm2"],
                perimeter_cm=perimeters[p["photo"]],
                epithelialized=p["epithelialized"],
                drainage=p["drainage"],
            )
            for p in photos
        ]
        assert healing.wound_endpoints(visits) == answer


def _mask_area_cm2(mask: np.ndarray, h_mm_to_px: np.ndarray) -> float:
    """The photo's mask measured back in the skin plane, at 20 px/mm."""
    grid_px_per_mm = 20.0
    corners = np.array([[0, 0], [mask.shape[1], 0], [mask.shape[1], mask.shape[0]]], np.float64)
    corners = np.vstack([corners, [[0, mask.shape[0]]]])
    on_plane = cv2.perspectiveTransform(
        corners.reshape(-1, 1, 2), np.linalg.inv(h_mm_to_px)
    ).reshape(-1, 2)
    lo = np.floor(on_plane.min(axis=0))
    size = np.ceil((on_plane.max(axis=0) - lo) * grid_px_per_mm).astype(int)
    grid_to_mm = np.array(
        [
            [1 / grid_px_per_mm, 0, lo[0] + 0.5 / grid_px_per_mm],
            [0, 1 / grid_px_per_mm, lo[1] + 0.5 / grid_px_per_mm],
            [0, 0, 1],
        ]
    )
    on_grid = cv2.warpPerspective(
        mask,
        h_mm_to_px @ grid_to_mm,
        (int(size[0]), int(size[1])),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
    )
    return float(np.count_nonzero(on_grid >= 128)) / grid_px_per_mm**2 / 100.0


def test_masks_measure_the_true_area_through_the_scene_homography(trial: Path) -> None:
    truth = json.loads((trial / "truth.json").read_text())
    scenes = json.loads((trial / "scene.json").read_text())["photos"]
    for photo in truth["photos"]:
        mask = cv2.imread(str(trial / photo["mask"]), cv2.IMREAD_GRAYSCALE)
        h_mm_to_px = np.array(scenes[photo["photo"]]["H_plane_mm_to_photo"])
        measured_cm2 = _mask_area_cm2(mask, h_mm_to_px)
        # Rasterising the outline at the photo's resolution costs about one pixel row.
        assert measured_cm2 == pytest.approx(photo["area_cm2"], rel=0.04, abs=0.02), photo


def test_the_marker_is_in_the_photo_where_the_scene_says(trial: Path) -> None:
    truth = json.loads((trial / "truth.json").read_text())
    scenes = json.loads((trial / "scene.json").read_text())["photos"]
    params = cv2.aruco.DetectorParameters()
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    dictionary = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_50)
    detector = cv2.aruco.ArucoDetector(dictionary, params)
    found = 0
    for photo in truth["photos"]:
        gray = cv2.imread(str(trial / photo["photo"]), cv2.IMREAD_GRAYSCALE)
        corners, ids, _ = detector.detectMarkers(gray)
        expected = scenes[photo["photo"]]
        if ids is None:
            continue
        assert ids.ravel().tolist() == [expected["marker_id"]]
        error_px = np.abs(corners[0].reshape(4, 2) - np.array(expected["marker_corners_px"]))
        assert error_px.max() < 2.5  # OpenCV's corners, not the service's edge fit
        found += 1
    assert found >= 0.9 * len(truth["photos"])


def test_shrinking_heals_from_the_edge_inwards(samples_dir: Path) -> None:
    _, mask = load_sources(samples_dir)[0].load()
    depth = depth_map(mask)
    total_px = int(np.count_nonzero(mask))
    previous = mask > 0
    for keep_px in (total_px, total_px // 2, total_px // 5, 7, 0):
        wound = shrink(depth, keep_px) > 0
        assert int(wound.sum()) == keep_px
        assert not (wound & ~previous).any()  # nested: healed skin never re-opens
        previous = wound


def test_empty_mask_sample_is_not_a_source(samples_dir: Path) -> None:
    names = [s.name for s in load_sources(samples_dir)]
    assert "0128" not in names and len(names) == 5


def test_trajectories_have_what_a_trial_needs(samples_dir: Path) -> None:
    plans = plan_trial(np.random.default_rng(3), 120, 26, load_sources(samples_dir))
    per_subject: dict[str, int] = {}
    for plan in plans:
        per_subject[plan.subject] = per_subject.get(plan.subject, 0) + 1
    assert set(per_subject.values()) == {1, 2, 3}
    assert {p.arm for p in plans} == set(ARMS) and {p.site for p in plans} == {"A", "B"}

    def closed_by_week12(arm: str) -> float:
        group = [p for p in plans if p.arm == arm]
        return sum(any(v.epithelialized and v.day <= 84 for v in p.visits) for p in group) / len(
            group
        )

    assert closed_by_week12("active") > closed_by_week12("control") > 0
    reopened = [
        p
        for p in plans
        if any(
            a.epithelialized and not b.epithelialized
            for a, b in zip(p.visits, p.visits[1:], strict=False)
        )
    ]
    assert reopened
    stalled = [p for p in plans if p.visits[-1].area_cm2 > 0.5 * p.visits[0].area_cm2]
    assert stalled
    missed = [p for p in plans if len(p.visits) < 27]
    assert missed
    for plan in plans:
        days = [v.day for v in plan.visits]
        assert days[0] == 0 and days == sorted(days) and len(set(days)) == len(days)
        assert 0.2 < plan.visits[0].area_cm2 < 30
