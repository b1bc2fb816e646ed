"""Box-assisted outlines: pooled Dice with the true box and time per outline.

    python -m benchmarks.assist [--model ID|DIR] [--sets fuseg-val injury-ood]
                                [--limit N] [--margins 0.15] [--no-hflip] [--threads 2]

For every photo of a set, one box per wound of the truth mask (its bounding box grown
by 10 % of its width and height each way, as a clinician drags it), the engine of
``service.runtime.assist`` outlines it, and the outline *as saved* (the polygons
filled) is scored against the truth: pooled Dice (2 sum|P∩T| / sum(|P|+|T|)), per-photo
mean Dice, precision, recall; and the milliseconds per photo (median, p90), measured
here. Beside it, the model's plain whole-photo segmentation (no prompt) on the same
photos. Prints a markdown table and writes it to benchmarks/assist/RESULTS.md.

``injury-ood`` is evaluation only: nothing is tuned on it. FUSeg validation is
reported, not tuned on; the engine's settings were chosen on FUSeg *train*
(``--sets fuseg-train``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from service.core.assist import Prompt
from service.core.imaging import read_mask, read_photo
from service.runtime.assist import suggest
from service.runtime.evaluation import pairs
from service.runtime.inference import Segmenter, load_segmenter

ROOT = Path(__file__).resolve().parents[2]
DATA = next(
    (
        p / "shared" / "datasets"
        for p in (ROOT.parent, ROOT.parent.parent)
        if (p / "shared").is_dir()
    ),
    ROOT.parent / "shared" / "datasets",
)
SETS = {
    "fuseg-val": ("fuseg2021/validation/images", "fuseg2021/validation/labels"),
    "fuseg-train": ("fuseg2021/train/images", "fuseg2021/train/labels"),
    "injury-ood": ("injury-ood/images", "injury-ood/labels"),
}
BOX_MARGIN = 0.10


def truth_boxes(truth: np.ndarray, margin: float = BOX_MARGIN) -> list[list[float]]:
    """One box per wound (8-connected component) of the truth, grown by ``margin``."""
    h, w = truth.shape
    n, _, stats, _ = cv2.connectedComponentsWithStats(truth.astype(np.uint8), connectivity=8)
    boxes = []
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        if area < 16:
            continue
        dx, dy = bw * margin, bh * margin
        box = [max(0.0, x - dx), max(0.0, y - dy), min(w, x + bw + dx), min(h, y + bh + dy)]
        if box[2] - box[0] >= 4 and box[3] - box[1] >= 4:
            boxes.append(box)
    return boxes


def score(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int, int]:
    return (
        int(np.count_nonzero(pred & truth)),
        int(np.count_nonzero(pred)),
        int(np.count_nonzero(truth)),
    )


def run_set(seg: Segmenter, name: str, limit: int | None, margin: float, hflip: bool) -> dict:
    images, labels = (DATA / p for p in SETS[name])
    tot = {"assist": [0, 0, 0], "plain": [0, 0, 0]}
    dices: dict[str, list[float]] = {"assist": [], "plain": []}
    ms: dict[str, list[float]] = {"assist": [], "plain": []}
    photos = 0
    for img, lab in list(pairs(images, labels))[:limit]:
        rgb = read_photo(img).rgb
        truth = read_mask(lab, shape=rgb.shape[:2]) > 0
        boxes = truth_boxes(truth)
        if not boxes:
            continue
        photos += 1
        t0 = time.perf_counter()
        s = suggest(seg, rgb, Prompt(boxes=[tuple(b) for b in boxes]), margin=margin, hflip=hflip)
        ms["assist"].append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        plain = seg.segment(rgb).mask > 0
        ms["plain"].append((time.perf_counter() - t0) * 1000)
        for key, pred in (("assist", s.mask), ("plain", plain)):
            inter, p, t = score(pred, truth)
            for i, v in enumerate((inter, p, t)):
                tot[key][i] += v
            dices[key].append(2 * inter / (p + t) if p + t else 1.0)
    out = {}
    for key in ("assist", "plain"):
        inter, p, t = tot[key]
        out[key] = {
            "photos": photos,
            "pooled_dice": 2 * inter / (p + t) if p + t else float("nan"),
            "mean_dice": statistics.fmean(dices[key]) if dices[key] else float("nan"),
            "precision": inter / p if p else float("nan"),
            "recall": inter / t if t else float("nan"),
            "median_ms": statistics.median(ms[key]) if ms[key] else float("nan"),
            "p90_ms": float(np.percentile(ms[key], 90)) if ms[key] else float("nan"),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="model id or folder (default: highest)")
    ap.add_argument("--sets", nargs="+", default=["fuseg-val", "injury-ood"], choices=list(SETS))
    ap.add_argument("--limit", type=int, default=None, help="first N photos of each set")
    ap.add_argument("--margins", type=float, nargs="+", default=[0.3])
    ap.add_argument("--no-hflip", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write", action="store_true", help="write benchmarks/assist/RESULTS.md")
    args = ap.parse_args()

    from service.config import model_settings_from_env

    settings = model_settings_from_env().model_copy(update={"ort_threads": args.threads})
    seg = load_segmenter(args.model, settings)
    hflip = not args.no_hflip
    lines = [
        f"Model {seg.id}, ONNX Runtime CPU, {args.threads} threads, hflip={hflip}."
        " Box = the true wound's bounding box + 10 % of its size each way.",
        "",
        "| set | engine | crop margin | photos | pooled Dice | mean Dice | precision | recall"
        " | median ms | p90 ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in args.sets:
        for margin in args.margins:
            res = run_set(seg, name, args.limit, margin, hflip)
            for key, label in (("assist", f"box crop ({seg.id})"), ("plain", "no prompt")):
                r = res[key]
                lines.append(
                    f"| {name} | {label} | {margin if key == 'assist' else '—'} | {r['photos']}"
                    f" | {r['pooled_dice']:.4f} | {r['mean_dice']:.4f} | {r['precision']:.3f}"
                    f" | {r['recall']:.3f} | {r['median_ms']:.0f} | {r['p90_ms']:.0f} |"
                )
                print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        (ROOT / "benchmarks" / "assist" / "RESULTS.md").write_text(
            "# Box-assisted outline\n\n`python -m benchmarks.assist --write`\n\n" + text
        )


if __name__ == "__main__":
    main()
