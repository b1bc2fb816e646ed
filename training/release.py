"""One command from a training checkpoint to a released model folder.

    python -m training.release --checkpoint runs/X/last.pt --version 1.2.0 \\
        --data ../shared/datasets/fuseg2021 [--recipe "..."]

1. ``woundscope export``: ONNX (fp32), parity-checked against PyTorch;
2. ``training.quantize``: static int8 QDQ, calibrated on training photos;
3. ``woundscope evaluate`` of both on the validation split;
4. the int8 model becomes ``model.onnx`` when it keeps pooled Dice within
   ``INT8_MAX_DICE_LOSS`` of fp32 (the issue's rule), else fp32 stays; the other is kept
   beside it (``model.fp32.onnx`` is git-ignored for size);
5. ``model.json`` gets the chosen file's sha256 and the measured metrics of both.

The model card (``MODEL_CARD.md``) is written by a person: it explains, this measures.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from service.contract import load_spec, save_spec, sha256_file
from service.evaluation import evaluate
from service.inference import Segmenter
from training.export import export, run_info
from training.quantize import quantize

INT8_MAX_DICE_LOSS = 0.002


def _evaluate(model_dir: Path, data: Path) -> dict:
    split = data / "validation"
    metrics = evaluate(Segmenter(model_dir), split / "images", split / "labels")
    metrics.pop("median_ms", None)  # latency belongs to benchmarks
    metrics.pop("model", None)
    return metrics


def release(checkpoint: Path, version: str, data: Path, models: Path, recipe: str) -> dict:
    info = run_info(checkpoint.parent)
    if recipe:
        info["recipe"] = recipe
    spec = export(checkpoint, models / f"_staging-{version}", training_info=info, version=version)
    staging, out = models / f"_staging-{version}", models / spec.id
    if out.exists():
        shutil.rmtree(staging)
        raise SystemExit(f"{out} exists: a released version is never overwritten")
    fp32 = _evaluate(staging, data)
    print(f"fp32: {json.dumps(fp32)}", flush=True)
    int8_path = quantize(staging, data / "train" / "images")
    (staging / "model.onnx").rename(staging / "model.fp32.onnx")
    int8_path.rename(staging / "model.onnx")
    spec.onnx.sha256 = sha256_file(staging / "model.onnx")
    save_spec(spec, staging)
    int8 = _evaluate(staging, data)
    print(f"int8: {json.dumps(int8)}", flush=True)
    use_int8 = fp32["pooled_dice"] - int8["pooled_dice"] <= INT8_MAX_DICE_LOSS
    if not use_int8:
        (staging / "model.onnx").rename(staging / "model.int8.onnx")
        (staging / "model.fp32.onnx").rename(staging / "model.onnx")
    spec = load_spec(staging)
    spec.onnx.sha256 = sha256_file(staging / "model.onnx")
    chosen, other, other_name = (int8, fp32, "fp32") if use_int8 else (fp32, int8, "int8")
    spec.metrics = {
        **chosen,
        "split": "FUSeg 2021 validation (200 photos)",
        "measured_by": f"woundscope evaluate --model {spec.id} (this model.onnx)",
        f"{other_name}_pooled_dice": other["pooled_dice"],
        f"{other_name}_mean_dice": other["mean_dice"],
    }
    spec.training["quantization"] = (
        "static int8 (QDQ, per-channel int8 weights, uint8 activations, MinMax calibration on"
        " 32 FUSeg train photos: python -m training.quantize)"
        if use_int8
        else f"fp32: int8 lost {fp32['pooled_dice'] - int8['pooled_dice']:.4f} pooled Dice"
    )
    save_spec(spec, staging)
    staging.rename(out)
    print(f"released {out} ({'int8' if use_int8 else 'fp32'}); now write {out}/MODEL_CARD.md")
    return spec.metrics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--data", type=Path, default=Path("../shared/datasets/fuseg2021"))
    ap.add_argument("--models", type=Path, default=Path("models"))
    ap.add_argument("--recipe", default="", help="how the checkpoint was trained, in words")
    args = ap.parse_args()
    release(args.checkpoint, args.version, args.data, args.models, args.recipe)


if __name__ == "__main__":
    main()
