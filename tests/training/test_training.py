"""A tiny real training run: a few steps on real photos, checkpoint, resume, ONNX export, parity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, has_module, need

pytestmark = pytest.mark.slow
QUICK_GATE = {"fills": (0.25,), "sizes": (224,)}
"""One re-framing for the gate in tests (the real release measures all fifteen)."""


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory, samples_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("fuseg-tiny")
    for split in ("train", "validation"):
        for kind in ("images", "labels"):
            (root / split).mkdir(exist_ok=True)
            os.symlink(samples_dir / kind, root / split / kind)
    return root


@pytest.fixture(scope="module")
def trained(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    need(has_module("torch") and has_module("albumentations"), "the [train] extra is not installed")
    from training.config import load_config
    from training.train import train

    run_dir = tmp_path_factory.mktemp("run")
    cfg_path = run_dir / "tiny.yaml"
    cfg_path.write_text(
        f"run_dir: {run_dir}\n"
        f"data: {{root: {tiny_dataset}}}\n"
        "model: {name: tinyseg, version: 0.0.1, decoder_channels: [32, 24, 16]}\n"
        "train: {epochs: 2, batch_size: 2, crop_px: 128, max_steps_per_epoch: 2,"
        " eval_every: 2, num_workers: 0, log_every: 1, warmup_steps: 1}\n"
    )
    metrics = train(load_config(cfg_path))
    assert 0.0 <= metrics["pooled_dice"] <= 1.0
    return run_dir


def test_run_folder_holds_config_metrics_and_checkpoint(trained: Path) -> None:
    import torch

    assert (trained / "config.yaml").read_text().startswith("run_dir:")
    lines = (trained / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,step,train_loss") and len(lines) == 3
    manifest = json.loads((trained / "manifest.json").read_text())
    assert len(manifest["train_sha256"]) == 64 and len(manifest["train"]) == 6
    ckpt = torch.load(trained / "last.pt", map_location="cpu", weights_only=False)
    assert {"model", "optimizer", "scheduler", "scaler", "epoch", "step", "config"} <= ckpt.keys()
    assert ckpt["epoch"] == 1 and ckpt["step"] == 4


def test_resume_continues_from_the_checkpoint(trained: Path) -> None:
    import torch

    from training.config import Config
    from training.train import train

    ckpt = torch.load(trained / "last.pt", map_location="cpu", weights_only=False)
    cfg = Config.model_validate(ckpt["config"])
    cfg.train.epochs = 3
    train(cfg, resume=trained / "last.pt")
    after = torch.load(trained / "last.pt", map_location="cpu", weights_only=False)
    assert after["epoch"] == 2 and after["step"] == 6


def test_unknown_config_key_is_refused(tmp_path: Path) -> None:
    need(has_module("torch"), "the [train] extra is not installed")
    from pydantic import ValidationError

    from training.config import load_config

    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {epochs: 1, lerning_rate: 0.1}\n")
    with pytest.raises(ValidationError, match="lerning_rate"):
        load_config(bad)


def test_export_writes_a_valid_parity_checked_model(
    trained: Path, tmp_path: Path, samples_dir: Path
) -> None:
    from service.core.contract import load_spec, sha256_file
    from service.runtime.inference import Segmenter
    from training.export import export

    out = tmp_path / "tinyseg-0.0.1"
    spec = export(trained / "last.pt", out)
    assert spec.training["parity_max_abs_diff"] < 1e-3
    assert load_spec(out).onnx.sha256 == sha256_file(out / "model.onnx")
    seg = Segmenter(out)
    rgb = np.zeros((300, 200, 3), np.uint8)
    result = seg.segment(rgb)
    assert result.mask.shape == (300, 200) and result.mask.dtype == np.uint8
    assert set(np.unique(result.mask)) <= {0, 255}


def test_train_command_runs_end_to_end(tiny_dataset: Path, tmp_path: Path) -> None:
    need(has_module("torch"), "the [train] extra is not installed")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"run_dir: {tmp_path / 'run'}\ndata: {{root: {tiny_dataset}}}\n"
        "model: {decoder_channels: [16, 16, 16], pretrained: false}\n"
        "train: {epochs: 1, batch_size: 2, crop_px: 64, max_steps_per_epoch: 1, eval_every: 0,"
        " num_workers: 0}\n"
    )
    exe = Path(sys.executable).parent / "woundscope"
    done = subprocess.run(
        [str(exe), "train", "--config", str(cfg)], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "last.pt").exists()


def test_ddp_on_cpu_with_two_gloo_processes(tiny_dataset: Path, tmp_path: Path) -> None:
    """The same entry point under torchrun (DistributedDataParallel, gloo backend)."""
    need(has_module("torch"), "the [train] extra is not installed")
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text(
        f"run_dir: {tmp_path / 'ddp'}\ndata: {{root: {tiny_dataset}}}\n"
        "model: {decoder_channels: [16, 16, 16], pretrained: false}\n"
        "train: {epochs: 1, batch_size: 1, crop_px: 64, max_steps_per_epoch: 1, eval_every: 0,"
        " num_workers: 0, threads: 1}\n"
    )
    torchrun = Path(sys.executable).parent / "torchrun"
    exe = Path(sys.executable).parent / "woundscope"
    done = subprocess.run(
        [
            str(torchrun),
            "--standalone",
            "--nproc_per_node=2",
            str(exe),
            "train",
            "--config",
            str(cfg),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "ddp" / "last.pt").exists()


def test_recover_rebuilds_the_checkpoint_from_its_onnx(
    trained: Path, tmp_path: Path, samples_dir: Path
) -> None:
    """A released folder holds only ONNX (BatchNorm folded into the convolutions);
    training.recover puts the weights back into a trainable network with the same
    function."""
    import torch

    from training.data import read_rgb
    from training.export import export, load_checkpoint
    from training.recover import recover

    cfg, original = load_checkpoint(trained / "last.pt")
    out = tmp_path / "tinyseg-0.0.1"
    export(trained / "last.pt", out)
    photos = [read_rgb(p) for p in sorted((samples_dir / "images").iterdir())[:3]]
    model, info = recover(out / "model.onnx", cfg, photos)
    assert info["batchnorms"] == info["convolutions"] - 1  # every conv but the head
    x = torch.randn(2, 3, 96, 160, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        diff = (model.eval()(x) - original(x)).abs().max().item()
    assert diff < 1e-3
    # Trainable: a train-mode step runs and gives finite gradients.
    model.train()(x).mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_release_exports_quantizes_measures_and_never_overwrites(
    trained: Path, tiny_dataset: Path, tmp_path: Path
) -> None:
    from service.core.contract import load_spec, sha256_file
    from training.release import release

    # With nothing installed the precision-recall gate alone judges: the tiny model's
    # outlines are far from balanced, so it is refused unless forced with a reason.
    with pytest.raises(SystemExit, match=r"refused: .*\|P - R\| [0-9.]+ > 0\.05"):
        release(trained / "last.pt", "0.0.2", tiny_dataset, tmp_path, "", **QUICK_GATE)
    assert not (tmp_path / "tinyseg-0.0.2").exists()
    metrics = release(
        trained / "last.pt",
        "0.0.2",
        tiny_dataset,
        tmp_path,
        "tiny test run",
        force_reason="a tiny test model",
        **QUICK_GATE,
    )
    folder = tmp_path / "tinyseg-0.0.2"
    spec = load_spec(folder)
    assert spec.onnx.sha256 == sha256_file(folder / "model.onnx")
    assert spec.metrics["pooled_dice"] == metrics["pooled_dice"]
    assert {"fp32_pooled_dice", "int8_pooled_dice"} & spec.metrics.keys()
    assert spec.training["recipe"] == "tiny test run"
    assert not list(tmp_path.glob("_staging-*"))
    with pytest.raises(SystemExit, match="never overwritten"):
        release(trained / "last.pt", "0.0.2", tiny_dataset, tmp_path, "", **QUICK_GATE)
    assert not list(tmp_path.glob("_staging-*"))
    assert {"fuseg-val", "reframed-f25-s224"} <= spec.metrics["yardsticks"].keys()
    assert spec.training["gate"]["baseline"] is None  # nothing was installed before it
    assert spec.training["gate"]["forced"] == "a tiny test model"


def test_release_gate_refuses_a_worse_candidate_and_names_the_yardstick(
    trained: Path, tiny_dataset: Path, tmp_path: Path
) -> None:
    """A model that finds no wound at all is worse than the installed default on every
    yardstick: refused (folder not made), unless forced with a reason kept in model.json."""
    import torch

    from service.core.contract import load_spec
    from training.release import release

    release(
        trained / "last.pt", "0.0.2", tiny_dataset, tmp_path, "", force_reason="tiny", **QUICK_GATE
    )
    ckpt = torch.load(trained / "last.pt", map_location="cpu", weights_only=False)
    ckpt["model"]["head.bias"].fill_(-30.0)  # sigmoid(-30): never a wound
    blind = tmp_path / "blind" / "last.pt"
    blind.parent.mkdir()
    torch.save(ckpt, blind)
    with pytest.raises(
        SystemExit, match=r"refused: worse than the default tinyseg-0\.0\.2.*fuseg-val"
    ):
        release(blind, "0.0.3", tiny_dataset, tmp_path, "blind", **QUICK_GATE)
    assert not (tmp_path / "tinyseg-0.0.3").exists()
    assert not list(tmp_path.glob("_staging-*"))
    release(blind, "0.0.3", tiny_dataset, tmp_path, "blind", force_reason="testing", **QUICK_GATE)
    gate = load_spec(tmp_path / "tinyseg-0.0.3").training["gate"]
    assert gate["forced"] == "testing" and gate["baseline"] == "tinyseg-0.0.2"
    assert any(w.startswith("reframed-f25-s224") for w in gate["worse"])


def test_reframed_training_samples_cover_close_ups(tiny_dataset: Path) -> None:
    """With re-framing on, training sees wounds that fill a large part of the crop."""
    need(has_module("albumentations"), "the [train] extra is not installed")
    from service.core.contract import InputSpec
    from training.data import CropDataset, split_pairs

    pairs = [p for p in split_pairs(tiny_dataset, "train") if p.image.stem != "0128"]
    ds = CropDataset(pairs, InputSpec(), 128, 0.7, 0, reframe_prob=1.0, reframe_fill=(0.2, 0.5))
    fills = [float(ds[i % len(ds)][1].mean()) for i in range(10)]
    assert max(fills) > 0.15, fills
    assert all(ds[i][0].shape == (3, 128, 128) for i in range(len(ds)))


def test_a_training_sample_depends_only_on_seed_epoch_and_photo(tiny_dataset: Path) -> None:
    """albumentations draws from the OS unless seeded: two datasets with one seed give
    the same crops (whatever the order they are read in), another seed or epoch others."""
    need(has_module("albumentations"), "the [train] extra is not installed")
    from service.core.contract import InputSpec
    from training.data import CropDataset, split_pairs

    pairs = split_pairs(tiny_dataset, "train")[:3]

    def dataset(seed: int) -> CropDataset:
        return CropDataset(pairs, InputSpec(), 96, 0.7, seed, strong_photometric=True)

    a, b, other = dataset(5), dataset(5), dataset(6)
    first = [a[i][0].numpy() for i in range(3)]
    again = [b[i][0].numpy() for i in reversed(range(3))][::-1]
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))
    assert not all(np.array_equal(x, other[i][0].numpy()) for i, x in enumerate(first))
    a.set_epoch(1)
    assert not all(np.array_equal(x, a[i][0].numpy()) for i, x in enumerate(first))


def test_frozen_batchnorm_keeps_the_loaded_statistics() -> None:
    """``train.freeze_batchnorm``: a training step's forward pass leaves every BatchNorm
    layer's running statistics and parameters as loaded (and they get no gradient)."""
    need(has_module("torch"), "the [train] extra is not installed")
    import torch

    from training.train import freeze_batchnorm

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU())
    bn = net[1]
    before = bn.running_mean.clone(), bn.running_var.clone()
    net.train()
    freeze_batchnorm(net)
    net(torch.randn(2, 3, 8, 8) * 5 + 3).sum().backward()
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(bn.running_var, before[1])
    assert bn.weight.grad is None and not bn.weight.requires_grad
    assert net[0].weight.grad is not None  # the rest still trains


def test_int8_is_kept_only_where_it_holds_on_the_foreign_sets_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """int8's ranges come from FUSeg training photos: a loss it shows only on injury-ood
    or another clinic's photos keeps fp32 (scripted Dice; the files are real)."""
    from service.core.contract import ModelSpec
    from training import release as rel

    spec = ModelSpec.model_validate(
        json.loads((ROOT / "models/ulcerseg-2.0.0/model.json").read_text())
    )
    dice = {
        ("model.fp32.onnx", "validation"): 0.900,
        ("model.int8.onnx", "validation"): 0.899,
        ("model.fp32.onnx", "ood"): 0.900,
        ("model.int8.onnx", "ood"): 0.880,
    }
    monkeypatch.setattr(
        rel, "quantize", lambda staging, _: (staging / "model.int8.onnx").write_bytes(b"q")
    )
    monkeypatch.setattr(
        rel, "_measure", lambda spec, staging, f, folder: {"pooled_dice": dice[(f, folder.name)]}
    )
    monkeypatch.setattr(rel, "save_spec", lambda spec, staging: None)
    val = {"fuseg-val": tmp_path / "data" / "validation"}
    for foreign, kept in (({}, "int8"), ({"injury-ood": tmp_path / "ood"}, "fp32")):
        staging = tmp_path / f"staging-{kept}"
        staging.mkdir()
        (staging / "model.onnx").write_bytes(b"fp32")
        chosen = rel._choose_precision(spec, staging, tmp_path / "train", val | foreign)
        assert chosen.use_int8 is (kept == "int8")
        assert (staging / "model.onnx").read_bytes() == (b"q" if kept == "int8" else b"fp32")
    assert chosen.loss == pytest.approx(0.020)
