from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.commands._util import fail


def _inputs(paths: list[Path]) -> list[Path]:
    from service.core.imaging import PHOTO_SUFFIXES

    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix.lower() in PHOTO_SUFFIXES)
            for sub in sorted(f for f in p.iterdir() if f.is_dir()):
                typer.echo(
                    f"note: {sub} is a sub-folder: not read (name it to predict it)", err=True
                )
        elif p.exists():
            files.append(p)
        else:
            fail(f"{p}: no such file or folder")
    return files


def predict(
    paths: Annotated[list[Path], typer.Argument(help="photos or folders of photos")],
    out: Annotated[Path, typer.Option("--out", help="folder for the <stem>.png masks")],
    model: Annotated[
        str | None, typer.Option(help="model folder or installed id (default: highest)")
    ] = None,
    json_lines: Annotated[bool, typer.Option("--json", help="one JSON line per photo")] = False,
) -> None:
    """Segment photos: a 0/255 mask PNG per photo, same size, same stem."""
    import json

    from service.config import model_settings_from_env
    from service.core.imaging import ImageError, encode_png, read_photo
    from service.runtime.artifacts import ModelNotFound
    from service.runtime.inference import load_segmenter

    files = _inputs(paths)
    stems: dict[str, Path] = {}
    for f in files:
        if f.stem in stems:
            fail(f"two inputs have the same stem {f.stem!r}: {stems[f.stem]} and {f}")
        stems[f.stem] = f
    try:
        segmenter = load_segmenter(model, model_settings_from_env())
    except ModelNotFound as exc:
        fail(str(exc))
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for f in files:
        try:
            photo = read_photo(f)
        except ImageError as exc:
            typer.echo(f"error: {exc.detail} [{exc.code}]", err=True)
            failed += 1
            continue
        seg = segmenter.segment(photo.rgb)
        mask_path = out / f"{f.stem}.png"
        mask_path.write_bytes(encode_png(seg.mask))
        if json_lines:
            line = {
                "photo": str(f),
                "mask": str(mask_path),
                "wound_px": seg.wound_px,
                "components": seg.components,
                "ms": round(seg.ms, 1),
            }
            typer.echo(json.dumps(line))
        else:
            typer.echo(
                f"{f} -> {mask_path}: {seg.wound_px} wound pixels in {seg.components}"
                f" component(s), {seg.ms:.0f} ms"
            )
    if failed:
        raise typer.Exit(1)
