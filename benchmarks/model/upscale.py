"""What "never upscale beyond native resolution" buys at inference (issue 24).

    python -m benchmarks.model.upscale [--model ID|DIR ...] [--out benchmarks/model/UPSCALE.md]

The service brings every photo to the model's input square (512 px): a photo smaller
than that is *upscaled*, which softens its edges, the very thing the model outlines
inside of. The alternative shows a small photo at its own resolution in the square
(``contract.zoomed`` with zoom = its longer side / the input size; the rest of the
square reflect-padded, as the zoomed-out check look does). Both ways, one look, no
refinement, the contract's threshold and cleanup; scored on the yardsticks whose photos
are smaller than the input: FUSeg validation re-framed into 224 px squares,
woundseg-dfu validation (384 px photos), and injury-ood (the photos under 512 px are
scored both ways; the others are identical either way and left out).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from service.core.contract import PassSpec, binarize
from service.runtime.artifacts import resolve_model
from service.runtime.inference import Segmenter
from service.runtime.yardsticks import FUSEG_VAL, REFRAME_FILLS, Yardstick, score, yardsticks

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ROOT.parent / "shared" / "datasets"


def _ways(seg: Segmenter) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """One look each (``Segmenter.look``): the plain letterbox (zoom 1), or the photo at
    its own size in the square (zoom = its longer side / the input, when smaller)."""

    def look(zoom: Callable[[np.ndarray], float]) -> Callable[[np.ndarray], np.ndarray]:
        return lambda rgb: binarize(seg.look(rgb, PassSpec(zoom=zoom(rgb))), seg.spec)

    size = seg.spec.input.size
    return {
        "upscaled to the input": look(lambda rgb: 1.0),
        "native resolution": look(lambda rgb: min(1.0, max(rgb.shape[:2]) / size)),
    }


def _small_only(stick: Yardstick, size: int) -> Yardstick:
    def gen():
        for name, rgb, truth in stick.photos():
            if max(rgb.shape[:2]) < size:
                yield name, rgb, truth

    return Yardstick(stick.name + f" (<{size} px)", gen)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", action="append", default=None)
    ap.add_argument("--fuseg", type=Path, default=DATASETS / "fuseg2021")
    ap.add_argument("--ood", type=Path, default=DATASETS / "injury-ood")
    ap.add_argument("--other-clinic", type=Path, default=DATASETS / "woundseg-dfu")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "model" / "UPSCALE.md")
    args = ap.parse_args()
    rows = ["| model | yardstick | way | photos | pooled Dice | P | R | median area error |"]
    rows.append("|---|---|---|---|---|---|---|---|")
    results: dict = {}
    for ref in args.model or [None]:
        seg = Segmenter(resolve_model(ref, [ROOT / "models"]), threads=2)
        size = seg.spec.input.size
        sticks = yardsticks(args.fuseg, args.ood, REFRAME_FILLS, (224,), args.other_clinic)
        sticks = [s for s in sticks if s.name != FUSEG_VAL]
        sticks = [_small_only(s, size) if s.name == "injury-ood" else s for s in sticks]
        for stick in sticks:
            for way, segment in _ways(seg).items():
                m = score(segment, stick)
                results.setdefault(seg.id, {}).setdefault(stick.name, {})[way] = m
                rows.append(
                    f"| {seg.id} | {stick.name} | {way} | {m['photos']} | {m['pooled_dice']:.4f}"
                    f" | {m['precision']:.3f} | {m['recall']:.3f}"
                    f" | {m['median_abs_rel_area_error']:.1%} |"
                )
                print(rows[-1], flush=True)
    text = "# Never upscale? One look at the input size vs at native resolution\n\n"
    text += "`python -m benchmarks.model.upscale` (module docstring: what each way does).\n\n"
    args.out.write_text(text + "\n".join(rows) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
