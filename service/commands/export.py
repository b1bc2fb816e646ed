from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.commands._util import require_torch


def export(
    checkpoint: Annotated[Path, typer.Option(help="training checkpoint (last.pt)")],
    out: Annotated[Path, typer.Option(help="model folder to write, models/<name>-<version>")],
    version: Annotated[str | None, typer.Option(help="override the version")] = None,
    images: Annotated[Path | None, typer.Option(help="evaluate on these photos…")] = None,
    labels: Annotated[
        Path | None, typer.Option(help="…and masks; metrics go into model.json")
    ] = None,
) -> None:
    """Export a checkpoint to ONNX + model.json, parity-checked (needs the training extra)."""
    require_torch("export")
    import json

    from service.config import model_settings_from_env
    from service.core.contract import save_spec
    from service.runtime.evaluation import model_metrics
    from training.export import export as run
    from training.export import run_info

    spec = run(checkpoint, out, training_info=run_info(checkpoint.parent), version=version)
    typer.echo(
        f"exported {spec.id} to {out} (parity max |diff| {spec.training['parity_max_abs_diff']:.2e})"
    )
    if images and labels:
        metrics = model_metrics(out, images, labels, model_settings_from_env().ort_threads)
        spec.metrics = metrics
        save_spec(spec, out)
        typer.echo(json.dumps(metrics))
