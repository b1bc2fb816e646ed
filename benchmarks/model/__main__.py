"""Accuracy and latency of the released model, against the published anchors.

    python -m benchmarks.model [--model ID|DIR] [--fuseg ../shared/datasets/fuseg2021]
                               [--runs 20] [--threads 2] [--no-accuracy]

Prints two markdown tables and writes them to benchmarks/model/RESULTS.md:
1. accuracy on the FUSeg validation split (pooled and per-image Dice, IoU, precision,
   recall), this model beside the published figures (same metric definitions);
2. latency on one 512x512 photo, median over --runs, all measured in this run on this
   machine: ONNX Runtime CPU (the service's path: preprocess + network + postprocess,
   and the network alone), PyTorch eager for the same network, and a FUSegNet-size
   reference (U-Net on EfficientNet-B7, segmentation-models-pytorch, random weights:
   its cost does not depend on its weights).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from service.core.contract import preprocess
from service.core.imaging import read_photo
from service.runtime.artifacts import resolve_model
from service.runtime.inference import Segmenter

ROOT = Path(__file__).resolve().parents[2]
ANCHORS = [
    ("Mahbod et al. (10 models x 8 TTA = 80 passes, 544²)", 0.9207, 0.8442, 0.855, "validation"),
    ("x-FUSegNet (5 x U-Net EfficientNet-B7)", 0.892, None, None, "hidden test"),
]


def median_ms(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def accuracy_table(seg: Segmenter, fuseg: Path) -> list[str]:
    from service.runtime.evaluation import evaluate

    m = evaluate(seg, fuseg / "validation" / "images", fuseg / "validation" / "labels")
    rows = [
        "| model | split | pooled Dice | mean per-image Dice | pooled IoU | precision | recall |",
        "|---|---|---|---|---|---|---|",
        f"| **{seg.id}** (1 pass, no TTA) | validation | {m['pooled_dice']:.4f} | {m['mean_dice']:.4f}"
        f" | {m['pooled_iou']:.4f} | {m['precision']:.4f} | {m['recall']:.4f} |",
    ]
    for name, pooled, mean, iou, split in ANCHORS:
        f = lambda v: "–" if v is None else f"{v:.4f}"  # noqa: E731
        rows.append(f"| {name} | {split} | {f(pooled)} | {f(mean)} | {f(iou)} | – | – |")
    return rows


def latency_table(seg: Segmenter, runs: int, threads: int) -> list[str]:
    import onnxruntime as ort

    rgb = read_photo(ROOT / "data/samples/fuseg/images/0082.jpg").rgb
    x, _ = preprocess(rgb, seg.spec)
    results: list[tuple[str, float, str]] = []
    results.append(
        (
            "ONNX Runtime CPU, whole pipeline (preprocess+net+postprocess)",
            median_ms(lambda: seg.segment(rgb), runs),
            seg.id,
        )
    )
    results.append(
        ("ONNX Runtime CPU, network only", median_ms(lambda: seg.run_batch(x), runs), seg.id)
    )
    int8 = seg.model_dir / "model.int8.onnx"
    if int8.exists():
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        s8 = ort.InferenceSession(str(int8), opts, providers=["CPUExecutionProvider"])
        results.append(
            (
                "ONNX Runtime CPU int8, network only",
                median_ms(lambda: s8.run(None, {"image": x}), runs),
                "int8 variant",
            )
        )
    try:
        import torch

        torch.set_num_threads(threads)
        from training.config import Config
        from training.train import build_model

        cfg = Config()
        arch = seg.spec.architecture
        cfg.model.encoder = arch.get("encoder", "lite0")
        cfg.model.decoder_channels = list(arch.get("decoder_channels", [128, 64, 48]))
        cfg.model.head_stride = arch.get("head_stride", 4)
        net = build_model(cfg, pretrained=False).eval()
        xt = torch.from_numpy(x)
        with torch.no_grad():
            results.append(
                (
                    "PyTorch eager CPU, same network",
                    median_ms(lambda: net(xt), max(5, runs // 2)),
                    seg.id,
                )
            )
        try:
            import segmentation_models_pytorch as smp

            b7 = smp.Unet("efficientnet-b7", encoder_weights=None, classes=1).eval()
            ob7 = ROOT / "benchmarks" / "out" / "unet-b7.onnx"
            ob7.parent.mkdir(parents=True, exist_ok=True)
            if not ob7.exists():
                torch.onnx.export(
                    b7, (xt,), str(ob7), input_names=["image"], opset_version=17, dynamo=False
                )
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            sb7 = ort.InferenceSession(str(ob7), opts, providers=["CPUExecutionProvider"])
            results.append(
                (
                    "ONNX Runtime CPU, U-Net EfficientNet-B7 (FUSegNet size), network only",
                    median_ms(lambda: sb7.run(None, {"image": x}), max(5, runs // 4)),
                    "reference",
                )
            )
        except ImportError:
            results.append(
                (
                    "U-Net EfficientNet-B7 reference",
                    float("nan"),
                    "segmentation-models-pytorch not installed",
                )
            )
    except ImportError:
        results.append(("PyTorch eager", float("nan"), "torch not installed"))
    ours = results[1][1]
    rows = [
        "| what (512x512, one photo) | median ms | ratio to ours (network) | note |",
        "|---|---|---|---|",
    ]
    for name, ms, note in results:
        rows.append(f"| {name} | {ms:.1f} | {ms / ours:.2f}x | {note} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default=None)
    ap.add_argument("--fuseg", type=Path, default=ROOT.parent / "shared" / "datasets" / "fuseg2021")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-accuracy", action="store_true")
    args = ap.parse_args()
    seg = Segmenter(resolve_model(args.model), threads=args.threads)
    out = [
        f"# Model benchmark: {seg.id}",
        "",
        f"Machine: {__import__('os').cpu_count()} CPU cores, ONNX Runtime {__import__('onnxruntime').__version__}, {args.threads} threads.",
        "",
    ]
    if not args.no_accuracy and (args.fuseg / "validation").is_dir():
        out += [
            "## Accuracy (FUSeg 2021 validation, 200 photos)",
            "",
            *accuracy_table(seg, args.fuseg),
            "",
        ]
    out += ["## Latency", "", *latency_table(seg, args.runs, args.threads), ""]
    text = "\n".join(out)
    print(text)
    (Path(__file__).parent / "RESULTS.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
