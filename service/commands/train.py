from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.commands._util import require_torch


def train(
    config: Annotated[Path, typer.Option("--config", help="YAML training config")],
    resume: Annotated[Path | None, typer.Option(help="checkpoint (last.pt) to resume")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="override a config key: train.epochs=2")
    ] = None,
) -> None:
    """Train a segmentation model (needs the training extra: pip install woundscope\\[train]). Works under torchrun for DDP."""
    require_torch("train")
    import yaml

    from training.config import load_config
    from training.train import train as run

    overrides = {}
    for item in set_ or []:
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)
    metrics = run(load_config(config, overrides), resume=resume)
    typer.echo(metrics)
