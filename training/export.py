"""Checkpoint -> ONNX + model.json (+ parity check against PyTorch)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from service.core.contract import ModelSpec, OnnxSpec, save_spec, sha256_file
from training.config import Config
from training.train import build_model, model_spec

OPSET = 17


def load_checkpoint(path: Path) -> tuple[Config, torch.nn.Module]:
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    cfg = Config.model_validate(ckpt["config"])
    model = build_model(cfg, pretrained=False)
    model.load_state_dict(ckpt["model"])
    return cfg, model.eval()


def parity(model: torch.nn.Module, onnx_path: Path, shape: tuple[int, int, int, int]) -> float:
    """max |PyTorch - ONNX Runtime| of the logits on a random input of ``shape``."""
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(x).numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    return float(np.abs(out - ref).max())


def export(
    checkpoint: Path,
    out_dir: Path,
    metrics: dict | None = None,
    training_info: dict | None = None,
    version: str | None = None,
) -> ModelSpec:
    """Write ``out_dir/model.onnx`` and ``model.json``; returns the spec. Parity-checked."""
    cfg, model = load_checkpoint(checkpoint)
    spec = model_spec(cfg)
    if version:
        spec.version = version
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / "model.onnx"
    size = spec.input.size
    dummy = torch.zeros(1, 3, size, size)
    torch.onnx.export(
        model,
        (dummy,),
        str(onnx_path),
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={
            "image": {0: "batch", 2: "height", 3: "width"},
            "logits": {0: "batch", 2: "height", 3: "width"},
        },
        opset_version=OPSET,
        dynamo=False,
    )
    proto = onnx.load(str(onnx_path))
    onnx.checker.check_model(proto, full_check=True)
    # Parity on a shape not used for export (batch 2, non-square).
    max_diff = parity(model, onnx_path, (2, 3, 320, 448))
    if max_diff > 1e-3:
        raise RuntimeError(f"ONNX parity failed: max |diff| = {max_diff:.2e} > 1e-3")
    spec.onnx = OnnxSpec(
        file="model.onnx",
        sha256=sha256_file(onnx_path),
        opset=OPSET,
        onnx_version=onnx.__version__,
        input_name="image",
        output_name="logits",
    )
    spec.training = dict(training_info or {})
    spec.training["parity_max_abs_diff"] = max_diff
    spec.training["parameters"] = int(sum(p.numel() for p in model.parameters()))
    spec.metrics = dict(metrics or {})
    spec.created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    save_spec(spec, out_dir)
    return spec


def run_info(run_dir: Path) -> dict:
    """What a release records about its training run: data hashes and the recipe."""
    run_dir = Path(run_dir)
    info: dict = {}
    manifest = run_dir / "manifest.json"
    if manifest.exists():
        m = json.loads(manifest.read_text())
        info["data"] = "FUSeg 2021 (train split)"
        info["train_manifest_sha256"] = m.get("train_sha256")
        info["val_manifest_sha256"] = m.get("val_sha256")
        info["train_photos"] = len(m.get("train", []))
    cfg = run_dir / "config.yaml"
    if cfg.exists():
        info["config"] = cfg.read_text()
    return info


def copy_card(src: Path, out_dir: Path) -> None:
    if src.exists():
        shutil.copy(src, Path(out_dir) / "MODEL_CARD.md")
