"""One command from a training checkpoint to a released model folder.

    python -m training.release --checkpoint runs/X/last.pt --version 1.2.0 \\
        --data ../shared/datasets/fuseg2021 [--recipe "..."]

1. ``woundscope export``: ONNX (fp32), parity-checked against PyTorch;
2. ``training.quantize``: static int8 QDQ, calibrated on training photos;
3. ``woundscope evaluate`` of both on every yardstick read from a folder (FUSeg
   validation, injury-ood, another clinic's validation photos);
4. the int8 model becomes ``model.onnx`` when it keeps pooled Dice within
   ``INT8_MAX_DICE_LOSS`` of fp32 on each of them, else fp32 stays; the other is kept
   beside it (``model.fp32.onnx`` and ``model.int8.onnx`` are git-ignored for size);
5. ``model.json`` gets the chosen file's sha256 and the measured metrics of both;
6. the release gate (``service.runtime.yardsticks``): the chosen file and the current default
   model on every yardstick (FUSeg validation, re-framed, injury-ood, another clinic;
   the chosen file's numbers from step 3 are reused, the default's recorded ones too);
   a candidate that loses more than ``GATE_MAX_DICE_LOSS`` pooled Dice on any of them,
   or whose |precision - recall| exceeds ``GATE_MAX_PR_GAP`` (and the default's own) on
   any, is refused, naming
   the yardstick, unless ``--force REASON`` (the reason is written
   into ``model.json`` and must be quoted in the card). Both sets of numbers are kept
   in ``model.json`` (``metrics.yardsticks``, ``training.gate``).

The model card (``MODEL_CARD.md``) is written by a person: it explains, this measures.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from service.config import model_settings_from_env
from service.core.contract import ModelSpec, save_spec, sha256_file
from service.runtime.artifacts import installed_models
from service.runtime.evaluation import model_metrics
from service.runtime.inference import Segmenter
from service.runtime.yardsticks import (
    FUSEG_VAL,
    GATE_MAX_DICE_LOSS,
    GATE_MAX_PR_GAP,
    REFRAME_FILLS,
    REFRAME_SIZES,
    Yardstick,
    gate,
    pr_gaps,
    score_all,
    yardsticks,
)
from training.config import Config
from training.export import export, run_info
from training.quantize import CALIBRATION_PHOTOS, quantize

INT8_MAX_DICE_LOSS = 0.002


Metrics = dict[str, float | int]
"""One ``SplitScore.summary`` (pooled and mean Dice, precision, recall, ...)."""


def measure_yardsticks(model_dir: Path, sticks: list[Yardstick]) -> dict[str, Metrics]:
    seg = Segmenter(model_dir, threads=model_settings_from_env().ort_threads)
    return score_all(lambda rgb: seg.segment(rgb).mask, sticks)


@dataclass(frozen=True)
class _Precision:
    """Which ONNX file became ``model.onnx`` (int8 or fp32), with the metrics of both."""

    use_int8: bool
    chosen: dict[str, Any]
    other: dict[str, Any]
    other_name: str
    loss: float
    """The most pooled Dice the int8 model loses against fp32 on the validation split or a
    foreign set (``_choose_precision``)."""
    measured: dict[str, dict[str, Any]]
    """The chosen file's metrics on each yardstick read from a folder, by name."""


@dataclass(frozen=True)
class _Gate:
    """The candidate and the current default model on every yardstick."""

    candidate: dict[str, Metrics]
    baseline_id: str | None
    baseline: dict[str, Metrics]
    """Empty when no model was installed before this one."""
    worse: list[str]
    """The yardsticks the candidate loses on (``gate``); [] = passes."""


def release(
    checkpoint: Path,
    version: str,
    data: Path,
    models: Path,
    recipe: str,
    ood: Path | None = None,
    force_reason: str = "",
    fills: tuple[float, ...] = REFRAME_FILLS,
    sizes: tuple[int, ...] = REFRAME_SIZES,
    other_clinic: Path | None = None,
) -> dict[str, Any]:
    """Export, quantise, measure and gate ``checkpoint`` into ``models/<name>-<version>``
    (the module's steps 1-6); the released model's metrics (``model.json``)."""
    cfg = Config.model_validate(
        torch.load(checkpoint, map_location="cpu", weights_only=False)["config"]
    )
    out = models / f"{cfg.model.name}-{version}"
    if out.exists():
        raise SystemExit(f"{out} exists: a released version is never overwritten")
    current = installed_models([models])  # before the staging folder exists: it is not one
    staging = models / f"_staging-{version}"
    info = run_info(checkpoint.parent) | ({"recipe": recipe} if recipe else {})
    spec = export(checkpoint, staging, training_info=info, version=version)
    sticks = yardsticks(data, ood, fills, sizes, other_clinic)
    folders = {s.name: s.folder for s in sticks if s.folder is not None}
    precision = _choose_precision(spec, staging, data / "train" / "images", folders)
    against = _against_default(staging, current, sticks, precision.measured)
    if against.worse and not force_reason:
        shutil.rmtree(staging)
        raise SystemExit(
            f"refused: worse than the default {against.baseline_id} by more than"
            f" {GATE_MAX_DICE_LOSS} pooled Dice, or |precision - recall| above"
            f" {GATE_MAX_PR_GAP}, on " + "; ".join(against.worse) + "."
            " Improve it, or --force REASON."
        )
    _record(spec, precision, against, force_reason)
    save_spec(spec, staging)
    staging.rename(out)
    kind = "int8" if precision.use_int8 else "fp32"
    print(f"released {out} ({kind}); now write {out}/MODEL_CARD.md")
    return spec.metrics


def _measure(spec: ModelSpec, staging: Path, onnx_file: str, val: Path) -> dict[str, Any]:
    """Metrics of ``onnx_file`` as the folder's model.onnx (the runtime checks sha256)."""
    (staging / onnx_file).replace(staging / "model.onnx")
    spec.onnx.sha256 = sha256_file(staging / "model.onnx")
    save_spec(spec, staging)
    metrics = model_metrics(staging, val / "images", val / "labels")
    (staging / "model.onnx").replace(staging / onnx_file)
    print(f"{onnx_file}: {json.dumps(metrics)}", flush=True)
    return metrics


def _choose_precision(
    spec: ModelSpec, staging: Path, train_images: Path, folders: dict[str, Path]
) -> _Precision:
    """Quantise (ranges from ``train_images``), measure both files on every yardstick
    read from a folder (``folders``: FUSeg validation, injury-ood, another clinic's
    validation photos), and make the int8 one ``model.onnx`` when it keeps pooled Dice
    within ``INT8_MAX_DICE_LOSS`` of fp32 on every one of them. The int8 ranges come from
    FUSeg training photos: a mix of weights (``training.soup``) lost 0.0017 on FUSeg
    validation but 0.013 on injury-ood when quantised, which FUSeg alone did not show.
    The chosen file's numbers are kept (``measured``): the gate does not measure them
    again."""
    quantize(staging, train_images)  # model.onnx (fp32) -> model.int8.onnx
    (staging / "model.onnx").replace(staging / "model.fp32.onnx")
    both = {
        name: {
            f: _measure(spec, staging, f, folder) for f in ("model.fp32.onnx", "model.int8.onnx")
        }
        for name, folder in folders.items()
    }
    loss = max(
        m["model.fp32.onnx"]["pooled_dice"] - m["model.int8.onnx"]["pooled_dice"]
        for m in both.values()
    )
    use_int8 = loss <= INT8_MAX_DICE_LOSS
    kept, dropped = (
        ("model.int8.onnx", "model.fp32.onnx")
        if use_int8
        else ("model.fp32.onnx", "model.int8.onnx")
    )
    (staging / kept).replace(staging / "model.onnx")
    spec.onnx.sha256 = sha256_file(staging / "model.onnx")
    save_spec(spec, staging)
    val = both[FUSEG_VAL]
    return _Precision(
        use_int8,
        val[kept],
        val[dropped],
        "fp32" if use_int8 else "int8",
        loss,
        {name: m[kept] for name, m in both.items()},
    )


def _against_default(
    staging: Path,
    current: list[tuple[ModelSpec, Path]],
    sticks: list[Yardstick],
    measured: dict[str, Metrics],
) -> _Gate:
    """The release gate: the candidate and the current default (the highest installed
    version, if any) on the same yardsticks, each line printed; the candidate's
    ``measured`` yardsticks (by the precision choice, same file) are not measured again."""
    rest = measure_yardsticks(staging, [s for s in sticks if s.name not in measured])
    candidate = {s.name: (measured | rest)[s.name] for s in sticks}
    baseline_id, baseline, worse = None, {}, pr_gaps(candidate)
    if current:
        baseline_spec, baseline_dir = current[0]
        baseline_id, baseline = baseline_spec.id, recorded_yardsticks(baseline_spec, sticks)
        missing = [s for s in sticks if s.name not in baseline]
        baseline |= measure_yardsticks(baseline_dir, missing) if missing else {}
        baseline = {s.name: baseline[s.name] for s in sticks}
        print(
            f"default {baseline_id}: {len(sticks) - len(missing)} yardsticks as recorded at"
            f" its release (same model.onnx, sha256 checked), {len(missing)} measured now"
        )
        worse = gate(candidate, baseline)
    for name, m in candidate.items():
        print(
            f"yardstick {name}: {m['pooled_dice']:.4f} (default {baseline_id}:"
            f" {baseline[name]['pooled_dice'] if baseline else float('nan'):.4f})"
        )
    return _Gate(candidate, baseline_id, baseline, worse)


def recorded_yardsticks(spec: ModelSpec, sticks: list[Yardstick]) -> dict[str, Metrics]:
    """The default model's yardstick numbers that its own release measured
    (``metrics.yardsticks`` of its model.json, whose ONNX the runtime checks by sha256):
    the same photos and the same deterministic inference, so they are not measured twice."""
    recorded = (spec.metrics or {}).get("yardsticks", {})
    need = {"photos", "pooled_dice", "precision", "recall"}
    return {s.name: recorded[s.name] for s in sticks if need <= set(recorded.get(s.name, {}))}


def _record(spec: ModelSpec, precision: _Precision, against: _Gate, force_reason: str) -> None:
    """What ``model.json`` keeps of the release: the gate's numbers (and a forcing
    reason), the chosen file's metrics beside the other's, how it was quantised."""
    spec.training["gate"] = {
        "baseline": against.baseline_id,
        "max_pooled_dice_loss": GATE_MAX_DICE_LOSS,
        "max_precision_recall_gap": GATE_MAX_PR_GAP,
        "baseline_source": "its model.json's metrics.yardsticks (recorded at its release);"
        " yardsticks it lacked measured in this run",
        "worse": against.worse,
        "forced": force_reason or None,
        "baseline_yardsticks": {n: _brief(m) for n, m in against.baseline.items()},
    }
    other_name = precision.other_name
    spec.metrics = {
        **precision.chosen,
        "measured_by": f"woundscope evaluate --model {spec.id} (this model.onnx)",
        f"{other_name}_pooled_dice": precision.other["pooled_dice"],
        f"{other_name}_mean_dice": precision.other["mean_dice"],
        "yardsticks": {n: _brief(m) for n, m in against.candidate.items()},
    }
    spec.training["quantization"] = (
        "static int8 (QDQ, per-channel int8 weights, uint8 activations, MinMax calibration on"
        f" {CALIBRATION_PHOTOS} train photos: python -m training.quantize)"
        if precision.use_int8
        else f"fp32: int8 lost {precision.loss:.4f} pooled Dice"
    )


def _brief(m: Metrics) -> Metrics:
    keys = ("photos", "pooled_dice", "mean_dice", "precision", "recall")
    return {k: m[k] for k in keys} | {"median_abs_rel_area_error": m["median_abs_rel_area_error"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--data", type=Path, default=Path("../shared/datasets/fuseg2021"))
    ap.add_argument("--models", type=Path, default=Path("models"))
    ap.add_argument("--recipe", default="", help="how the checkpoint was trained, in words")
    ap.add_argument("--ood", type=Path, default=Path("../shared/datasets/injury-ood"))
    ap.add_argument(
        "--other-clinic",
        type=Path,
        default=Path("../shared/datasets/woundseg-dfu"),
        help="a dataset in FUSeg's layout whose validation split is a yardstick",
    )
    ap.add_argument("--force", default="", metavar="REASON", help="release past the gate")
    ap.add_argument(
        "--sizes",
        default=",".join(str(s) for s in REFRAME_SIZES),
        help="re-framed frame sizes, px, comma-separated (fewer: a faster gate, say so)",
    )
    args = ap.parse_args()
    release(
        args.checkpoint,
        args.version,
        args.data,
        args.models,
        args.recipe,
        ood=args.ood,
        force_reason=args.force,
        sizes=tuple(int(s) for s in args.sizes.split(",")),
        other_clinic=args.other_clinic,
    )


if __name__ == "__main__":
    main()
