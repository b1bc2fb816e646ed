"""Soft-photo training (issue 24): every transform keeps photo and mask aligned, the
extra training sets are weighted, and an evaluation-only set is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, has_module, need


@pytest.fixture(autouse=True)
def _train_extra() -> None:
    need(has_module("albumentations") and has_module("torch"), "the [train] extra is not installed")


def disc_pair(size: int = 192) -> tuple[np.ndarray, np.ndarray]:
    """A dark-red wound disc off-centre on skin, and its mask."""
    yy, xx = np.mgrid[:size, :size]
    mask = ((yy - 80) ** 2 + (xx - 110) ** 2 < 35**2).astype(np.uint8)
    rgb = np.empty((size, size, 3), np.uint8)
    rgb[:] = (214, 170, 140)
    rgb[mask > 0] = (120, 30, 40)
    return rgb, mask


def dark_centroid(rgb: np.ndarray) -> np.ndarray:
    dark = rgb[..., 1].astype(float) < 100
    return np.argwhere(dark).mean(axis=0)


def leaf_transforms(compose: object) -> list:
    out = []
    for t in getattr(compose, "transforms", []):
        out += leaf_transforms(t) if hasattr(t, "transforms") else [t]
    return out


def test_each_soft_transform_keeps_photo_and_mask_aligned() -> None:
    import random

    from training.data import soft_photo_augment

    rgb, mask = disc_pair()
    leaves = leaf_transforms(soft_photo_augment())
    names = {type(t).__name__ for t in leaves}
    assert {"Defocus", "MotionBlur", "ImageCompression", "Sharpen", "GaussNoise"} <= names
    for t in leaves:
        t.p = 1.0
        t.set_random_state(np.random.default_rng(3), random.Random(3))
        out = t(image=rgb, mask=mask)
        assert np.array_equal(out["mask"], mask), type(t).__name__
        assert out["image"].shape == rgb.shape, type(t).__name__
        shift = np.abs(dark_centroid(out["image"]) - np.argwhere(mask).mean(axis=0)).max()
        assert shift < 1.5, (type(t).__name__, shift)


@pytest.mark.parametrize("source_px", [160, 320, 480])
def test_soften_loses_detail_but_keeps_the_wound_where_it_was(source_px: int) -> None:
    from training.data import soften

    rgb, mask = disc_pair()
    rgb = rgb.copy()
    rgb[::2, ::2] = rgb[::2, ::2] // 2 + 40  # fine texture a low-resolution source loses
    soft = soften(rgb, source_px, np.random.default_rng(0))
    assert soft.shape == rgb.shape
    detail = np.abs(np.diff(rgb.astype(float), axis=1)).mean()
    assert np.abs(np.diff(soft.astype(float), axis=1)).mean() < 0.8 * detail
    shift = np.abs(dark_centroid(soft) - np.argwhere(mask).mean(axis=0)).max()
    assert shift < 1.5


def test_soften_never_touches_a_source_sharper_than_the_frame() -> None:
    from training.data import soften

    rgb, _ = disc_pair()
    assert soften(rgb, 640, np.random.default_rng(0)) is rgb


def test_a_soft_sample_has_the_same_mask_as_the_sharp_one(samples_dir: Path) -> None:
    """soft_prob changes the photo only: the same seed gives the same crop and mask."""
    from service.core.contract import InputSpec
    from training.data import CropDataset, find_pairs

    pairs = find_pairs(samples_dir / "images", samples_dir / "labels")[:3]

    def ds(soft: float) -> CropDataset:
        return CropDataset(
            pairs,
            InputSpec(),
            128,
            0.7,
            4,
            reframe_prob=0.5,
            soft_prob=soft,
            soft_source_px=(160, 320),
        )

    sharp, soft = ds(0.0), ds(1.0)
    for i in range(len(pairs)):
        (xs, ys), (xf, yf) = sharp[i], soft[i]
        assert np.array_equal(ys.numpy(), yf.numpy())
        assert not np.array_equal(xs.numpy(), xf.numpy())


def test_extra_sets_are_weighted_and_evaluation_only_sets_refused(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from training.config import load_config
    from training.data import split_pairs, weighted_pairs

    samples = ROOT / "data" / "samples" / "fuseg"
    root = tmp_path / "other"
    (root / "train").mkdir(parents=True)
    for kind in ("images", "labels"):
        (root / "train" / kind).symlink_to(samples / kind)
    once = split_pairs(root, "train")
    assert len(weighted_pairs([(root, "train", 3)])) == 3 * len(once) > 0

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{extra_train: [{{root: {root}, repeats: 2}}]}}\n")
    assert load_config(cfg).data.extra_train[0].repeats == 2
    (root / "README.md").write_text("# a set\n\n**Evaluation only.** Do not train on it.\n")
    with pytest.raises(ValidationError, match="evaluation only"):
        load_config(cfg)
    (root / "README.md").unlink()
    cfg.write_text(f"data: {{extra_train: [{{root: {root}, split: validation}}]}}\n")
    with pytest.raises(ValidationError, match="for reporting"):
        load_config(cfg)
