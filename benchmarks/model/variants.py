"""Accuracy/speed trade-off of one released model: input size x precision.

    python -m benchmarks.model.variants [--model ID|DIR] [--sizes 384 448 512] [--runs 15]

For each variant: pooled and mean per-image Dice on the FUSeg validation split and
the median latency of the network on one photo (ONNX Runtime CPU, --threads),
measured side by side in one run. The int8 rows need model.int8.onnx in the model
folder (python -m training.quantize). Writes benchmarks/model/VARIANTS.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnxruntime as ort

from benchmarks.model.__main__ import median_ms
from service.core.contract import preprocess
from service.core.imaging import read_photo
from service.runtime.artifacts import resolve_model
from service.runtime.evaluation import evaluate
from service.runtime.inference import Segmenter

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default=None)
    ap.add_argument("--fuseg", type=Path, default=ROOT.parent / "shared" / "datasets" / "fuseg2021")
    ap.add_argument("--sizes", type=int, nargs="+", default=[384, 448, 512])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    model_dir = resolve_model(args.model)
    images, labels = args.fuseg / "validation" / "images", args.fuseg / "validation" / "labels"
    rgb = read_photo(ROOT / "data/samples/fuseg/images/0082.jpg").rgb
    precisions = ["fp32"] + (["int8"] if (model_dir / "model.int8.onnx").exists() else [])
    rows = [
        "| input | precision | pooled Dice | mean Dice | network median ms |",
        "|---|---|---|---|---|",
    ]
    for precision in precisions:
        seg = Segmenter(model_dir, threads=args.threads)
        if precision == "int8":
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = args.threads
            seg.session = ort.InferenceSession(
                str(model_dir / "model.int8.onnx"), opts, providers=["CPUExecutionProvider"]
            )
        for size in args.sizes:
            seg.spec.input.size = size
            m = evaluate(seg, images, labels)
            x, _ = preprocess(rgb, seg.spec)
            ms = median_ms(lambda x=x, seg=seg: seg.run_batch(np.ascontiguousarray(x)), args.runs)
            rows.append(
                f"| {size} | {precision} | {m['pooled_dice']:.4f} | {m['mean_dice']:.4f} | {ms:.1f} |"
            )
            print(rows[-1], flush=True)
    text = "\n".join(
        [
            f"# Variants of {model_dir.name} (FUSeg validation, {args.threads} threads)",
            "",
            *rows,
            "",
        ]
    )
    print(text)
    (Path(__file__).parent / "VARIANTS.md").write_text(text)


if __name__ == "__main__":
    main()
