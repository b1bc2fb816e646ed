"""Weight-space interpolation of a fine-tuned checkpoint with the one it started from
(WiSE-FT: Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022).

Fine-tuning a converged model on a new data recipe (soft photos, another clinic's
outlines) moves it towards the new photos and, at the same time, away from what it
did well (issue 24: every candidate lost 0.008-0.03 FUSeg Dice). Along the straight line
between the two weight vectors the loss stays low when both share one basin, which
holds when one was fine-tuned from the other with BatchNorm frozen (its statistics are
identical in both ends, ``train.freeze_batchnorm``): ``alpha = 0`` is the start,
``alpha = 1`` the fine-tuned model, and values between often keep most of the new
robustness at little cost on the old photos. Which ``alpha`` is chosen by measuring,
never assumed:

    python -m training.soup --base runs/recovered-2.0.0.pt \\
        --tuned runs/fuseg-lite0-v3c-soft-frozen-bn/last.pt \\
        --alpha 0.3 --alpha 0.5 --alpha 0.7 --screen

``--screen`` scores each mix (PyTorch, the service's pre/post-processing) on FUSeg
validation, the far re-framed views, ``injury-ood`` and woundseg-dfu validation; ``--out
DIR`` writes ``DIR/alpha-<a>/last.pt`` for ``training.release`` (with the tuned run's
``config.yaml`` and ``manifest.json`` copied beside it, and the mix recorded).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
import typer

from service.core.contract import ModelSpec
from service.runtime.yardsticks import Yardstick, score_all, yardsticks
from training.config import Config
from training.train import build_model, model_spec, torch_segment

State = dict[str, torch.Tensor]


def interpolate(base: State, tuned: State, alpha: float) -> State:
    """``base + alpha * (tuned - base)`` for every floating-point tensor; integer buffers
    (BatchNorm's batch counters) are taken from ``tuned``. Both must hold the same keys
    and shapes: a mix of two different networks is refused."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha {alpha} outside [0, 1]: that extrapolates, it does not mix")
    if base.keys() != tuned.keys():
        raise ValueError(
            f"different networks: keys differ ({sorted(base.keys() ^ tuned.keys())[:3]})"
        )
    out: State = {}
    for key, t in tuned.items():
        b = base[key]
        if b.shape != t.shape:
            raise ValueError(f"different networks: {key} is {tuple(b.shape)} vs {tuple(t.shape)}")
        out[key] = b + alpha * (t - b) if t.is_floating_point() else t.clone()
    return out


def _load(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


def mixed_checkpoint(base: Path, tuned: Path, alpha: float) -> dict[str, Any]:
    """A checkpoint ``training.release`` accepts: the tuned run's config, the mixed
    weights, and where they came from (``soup``)."""
    b, t = _load(base), _load(tuned)
    return {
        "model": interpolate(b["model"], t["model"], alpha),
        "config": t["config"],
        "soup": {"base": str(base), "tuned": str(tuned), "alpha": alpha},
    }


def _segmenter(ckpt: dict[str, Any]) -> tuple[torch.nn.Module, ModelSpec]:
    cfg = Config.model_validate(ckpt["config"])
    net = build_model(cfg, pretrained=False)
    net.load_state_dict(ckpt["model"])
    return net.eval(), model_spec(cfg)


SCREEN_FILLS = (0.01, 0.03, 0.25)
"""The re-framed fills a screen looks at (at 512 px): the far shots every candidate lost
on, and a close-up; the release gate measures all of them."""


def screen_sticks(fuseg: Path, ood: Path, other_clinic: Path) -> list[Yardstick]:
    return yardsticks(fuseg, ood, SCREEN_FILLS, (512,), other_clinic)


def main(
    base: Path = typer.Option(..., help="the checkpoint fine-tuning started from"),
    tuned: Path = typer.Option(..., help="the fine-tuned checkpoint (last.pt)"),
    alpha: list[float] = typer.Option(..., help="weight of the tuned model; repeatable"),
    screen: bool = typer.Option(False, help="score each mix on the screening yardsticks"),
    out: Path | None = typer.Option(None, help="write DIR/alpha-<a>/last.pt for each mix"),
    fuseg: Path = typer.Option(Path("../shared/datasets/fuseg2021")),
    ood: Path = typer.Option(Path("../shared/datasets/injury-ood")),
    other_clinic: Path = typer.Option(Path("../shared/datasets/woundseg-dfu")),
    threads: int = typer.Option(2),
) -> None:
    torch.set_num_threads(threads)
    sticks = screen_sticks(fuseg, ood, other_clinic) if screen else []
    for a in alpha:
        ckpt = mixed_checkpoint(base, tuned, a)
        if out is not None:
            run = out / f"alpha-{a:g}"
            run.mkdir(parents=True, exist_ok=True)
            for name in ("config.yaml", "manifest.json"):
                if (tuned.parent / name).exists():
                    shutil.copy(tuned.parent / name, run / name)
            torch.save(ckpt, run / "last.pt")
            print(f"alpha {a:g}: wrote {run / 'last.pt'}", flush=True)
        if sticks:
            net, spec = _segmenter(ckpt)
            scores = score_all(torch_segment(net, spec), sticks)
            for name, m in scores.items():
                print(
                    f"alpha {a:g}  {name:22s} pooled {m['pooled_dice']:.4f}"
                    f"  mean {m['mean_dice']:.4f}  P {m['precision']:.3f}  R {m['recall']:.3f}"
                    f"  median area err {m['median_abs_rel_area_error']:.3f}",
                    flush=True,
                )


if __name__ == "__main__":
    typer.run(main)
