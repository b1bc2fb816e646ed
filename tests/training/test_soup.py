"""WiSE-FT weight mixing (training.soup): the arithmetic, its refusals, and that a mix of
two real checkpoints is a checkpoint the service's pre/post-processing can run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from training.soup import _segmenter, interpolate, mixed_checkpoint, torch_segment


def _state(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "conv.weight": torch.randn(4, 3, 3, 3, generator=g),
        "bn.running_mean": torch.randn(4, generator=g),
        "bn.num_batches_tracked": torch.tensor(seed * 10),
    }


def test_alpha_zero_is_the_start_one_is_the_tuned_and_half_is_the_midpoint() -> None:
    base, tuned = _state(1), _state(2)
    assert torch.equal(interpolate(base, tuned, 0.0)["conv.weight"], base["conv.weight"])
    assert torch.allclose(interpolate(base, tuned, 1.0)["conv.weight"], tuned["conv.weight"])
    half = interpolate(base, tuned, 0.5)
    assert torch.allclose(half["conv.weight"], (base["conv.weight"] + tuned["conv.weight"]) / 2)
    assert torch.allclose(
        half["bn.running_mean"], (base["bn.running_mean"] + tuned["bn.running_mean"]) / 2
    )
    # integer counters are not averaged: they come from the tuned model
    assert int(half["bn.num_batches_tracked"]) == 20


def test_different_networks_and_extrapolation_are_refused() -> None:
    base, tuned = _state(1), _state(2)
    with pytest.raises(ValueError, match="extrapolates"):
        interpolate(base, tuned, 1.5)
    with pytest.raises(ValueError, match="keys differ"):
        interpolate(base, {k: v for k, v in tuned.items() if k != "bn.running_mean"}, 0.5)
    wide = dict(tuned, **{"conv.weight": torch.zeros(8, 3, 3, 3)})
    with pytest.raises(ValueError, match="conv.weight"):
        interpolate(base, wide, 0.5)


def test_a_mix_of_two_real_checkpoints_segments_a_photo(tmp_path: Path) -> None:
    from training.config import Config, DataConfig, ModelConfig
    from training.train import build_model

    cfg = Config(
        data=DataConfig(root=tmp_path),
        model=ModelConfig(name="tinyseg", version="0.0.1", decoder_channels=[32, 24, 16]),
    )
    paths = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        net = build_model(cfg, pretrained=False)
        path = tmp_path / f"{seed}.pt"
        torch.save({"model": net.state_dict(), "config": cfg.model_dump(mode="json")}, path)
        paths.append(path)
    ckpt = mixed_checkpoint(paths[0], paths[1], 0.25)
    assert ckpt["soup"]["alpha"] == 0.25
    net, spec = _segmenter(ckpt)
    rgb = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    mask = torch_segment(net, spec)(rgb)
    assert mask.shape == (300, 400)
    # alpha 0 reproduces the start's outputs exactly
    start, spec0 = _segmenter(mixed_checkpoint(paths[0], paths[1], 0.0))
    first, _ = _segmenter(torch.load(paths[0], weights_only=False))
    x = torch.rand(1, 3, spec0.input.size, spec0.input.size)
    with torch.no_grad():
        assert torch.equal(start(x), first(x))
