from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.commands._util import fail


def evaluate(
    images: Annotated[Path, typer.Option(help="folder of photos")],
    labels: Annotated[Path, typer.Option(help="folder of 0/255 masks, same stems")],
    model: Annotated[str | None, typer.Option(help="model folder or installed id")] = None,
    per_photo: Annotated[Path | None, typer.Option(help="write a per-photo CSV here")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON line")] = False,
) -> None:
    """Pooled and per-image Dice, IoU, precision, recall and area error of a model (ONNX)."""
    import json

    from service.config import model_settings_from_env
    from service.runtime.artifacts import ModelNotFound
    from service.runtime.evaluation import evaluate as run
    from service.runtime.inference import load_segmenter

    try:
        segmenter = load_segmenter(model, model_settings_from_env())
        summary = run(segmenter, images, labels, per_photo)
    except (ModelNotFound, FileNotFoundError) as exc:
        fail(str(exc))
    if json_out:
        typer.echo(json.dumps(summary))
        return
    for key, value in summary.items():
        typer.echo(f"{key:28s} {value:.4f}" if isinstance(value, float) else f"{key:28s} {value}")
