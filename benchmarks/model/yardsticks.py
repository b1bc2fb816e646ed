"""Every model on every yardstick, side by side (``service.runtime.yardsticks``).

    python -m benchmarks.model.yardsticks [--model ID|DIR ...] [--fuseg DIR] [--ood DIR]
                                          [--limit N] [--out benchmarks/model/YARDSTICKS.md]

For each model: FUSeg 2021 validation; the validation photos re-framed so the wound
fills 1, 3, 10, 25 and 40 % of a 224, 512 and 1024 px square; and injury-ood
(evaluation only). Pooled and per-image Dice, precision, recall, median area error per
photo, as the service segments (``model.json``'s passes and refinement). Writes the
table as markdown and every number as JSON beside it. ``--limit`` scores the first N
photos of each yardstick (a quick look; the release gate always uses all of them).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from service.runtime.artifacts import resolve_model
from service.runtime.inference import Segmenter
from service.runtime.yardsticks import score_all, summary_rows, yardsticks

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ROOT.parent / "shared" / "datasets"


def side_by_side(results: dict[str, dict[str, dict]]) -> list[str]:
    """Rows = yardsticks, columns = models: pooled Dice (precision / recall)."""
    models = list(results)
    names = list(next(iter(results.values())))
    rows = [
        "| yardstick | " + " | ".join(f"{m} Dice (P / R)" for m in models) + " |",
        "|---|" + "---|" * len(models),
    ]
    for name in names:
        cells = []
        for m in models:
            r = results[m][name]
            cells.append(f"{r['pooled_dice']:.3f} ({r['precision']:.2f} / {r['recall']:.2f})")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", action="append", help="repeat for several (default: the default)")
    ap.add_argument("--fuseg", type=Path, default=DATASETS / "fuseg2021")
    ap.add_argument("--ood", type=Path, default=DATASETS / "injury-ood")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "YARDSTICKS.md")
    args = ap.parse_args()
    sticks = yardsticks(args.fuseg, args.ood)
    if not sticks:
        raise SystemExit(f"no yardstick data under {args.fuseg} or {args.ood}")
    results: dict[str, dict[str, dict]] = {}
    seconds: dict[str, float] = {}
    for ref in args.model or [None]:
        seg = Segmenter(resolve_model(ref), threads=args.threads)
        t0 = time.perf_counter()
        results[seg.id] = score_all(lambda rgb, seg=seg: seg.segment(rgb).mask, sticks, args.limit)
        seconds[seg.id] = time.perf_counter() - t0
        print(f"{seg.id}: {seconds[seg.id]:.0f} s", flush=True)
    out = [
        "# Yardsticks",
        "",
        f"`python -m benchmarks.model.yardsticks {' '.join('--model ' + m for m in results)}"
        + (f" --limit {args.limit}" if args.limit else "")
        + "`",
        "",
        "FUSeg validation as it is, re-framed (`reframed-fNN-sSSS`: the wound fills NN % of"
        " an SSS px square), and injury-ood (evaluation only). Pooled Dice with pooled"
        " precision and recall.",
        "",
        *side_by_side(results),
        "",
    ]
    for model, res in results.items():
        out += [f"## {model}", "", *summary_rows(res), ""]
    text = "\n".join(out)
    print(text)
    args.out.write_text(text + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
