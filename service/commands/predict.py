from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from service.commands._util import fail

if TYPE_CHECKING:
    import numpy as np

    from service.runtime.inference import Segmenter


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


def _outline(segmenter: Segmenter, rgb: np.ndarray, entry: dict | None) -> tuple:
    """(0/255 mask, ms, engine): the assist engine's outline for a prompted photo (its
    entry of the prompts file), else the model's plain segmentation (engine None)."""
    import numpy as np

    if entry is None:
        seg = segmenter.segment(rgb)
        return seg.mask, seg.ms, None
    from service.core.assist import parse_prompt
    from service.runtime.assist import suggest

    h, w = rgb.shape[:2]
    found = suggest(segmenter, rgb, parse_prompt(entry.get("boxes"), entry.get("points"), w, h))
    return found.mask.astype(np.uint8) * np.uint8(255), found.ms, found.engine


def _predict_one(segmenter: Segmenter, photo_path: Path, entry: dict | None, out: Path) -> dict:
    """Outline one photo and write its mask: the JSON line. Raises ``ImageError`` (an
    unreadable photo) or ``DomainError`` (a prompt that does not fit it)."""
    import cv2
    import numpy as np

    from service.core.imaging import encode_png, read_photo

    mask, ms, engine = _outline(segmenter, read_photo(photo_path).rgb, entry)
    mask_path = out / f"{photo_path.stem}.png"
    mask_path.write_bytes(encode_png(mask))
    components = cv2.connectedComponents((mask > 0).astype(np.uint8), connectivity=8)[0] - 1
    line = {
        "photo": str(photo_path),
        "mask": str(mask_path),
        "wound_px": int(np.count_nonzero(mask)),
        "components": int(components),
        "ms": round(ms, 1),
    }
    return {**line, "engine": engine} if engine else line


def _read_prompts(prompts: Path | None, stems: dict[str, Path]) -> dict[str, dict]:
    from service.core.assist import prompts_file
    from service.core.errors import DomainError

    try:
        prompted = prompts_file(prompts.read_text()) if prompts is not None else {}
    except (OSError, DomainError) as exc:
        fail(f"--prompts {prompts}: {getattr(exc, 'detail', exc)}")
    unknown = sorted(set(prompted) - set(stems))
    if unknown:
        typer.echo(f"note: the prompts name photos not given: {', '.join(unknown)}", err=True)
    return prompted


def predict(
    paths: Annotated[list[Path], typer.Argument(help="photos or folders of photos")],
    out: Annotated[Path, typer.Option("--out", help="folder for the <stem>.png masks")],
    model: Annotated[
        str | None, typer.Option(help="model folder or installed id (default: highest)")
    ] = None,
    json_lines: Annotated[bool, typer.Option("--json", help="one JSON line per photo")] = False,
    prompts: Annotated[
        Path | None,
        typer.Option(
            "--prompts",
            help='JSON mapping a photo\'s stem to {"boxes": [[x0, y0, x1, y1], …], "points":'
            " [[x, y, 1|0], …]}: those photos are outlined by the assist engine (the union of"
            " the boxes' outlines, refined by the points); the others as usual",
        ),
    ] = None,
) -> None:
    """Segment photos: a 0/255 mask PNG per photo, same size, same stem."""
    import json

    from service.config import model_settings_from_env
    from service.core.errors import DomainError
    from service.runtime.artifacts import ModelNotFound
    from service.runtime.inference import load_segmenter

    files = _inputs(paths)
    stems: dict[str, Path] = {}
    for f in files:
        if f.stem in stems:
            fail(f"two inputs have the same stem {f.stem!r}: {stems[f.stem]} and {f}")
        stems[f.stem] = f
    prompted = _read_prompts(prompts, stems)
    try:
        segmenter = load_segmenter(model, model_settings_from_env())
    except ModelNotFound as exc:
        fail(str(exc))
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for f in files:
        try:
            line = _predict_one(segmenter, f, prompted.get(f.stem), out)
        except DomainError as exc:  # ImageError included
            typer.echo(f"error: {f}: {exc.detail} [{exc.code}]", err=True)
            failed += 1
            continue
        if json_lines:
            typer.echo(json.dumps(line))
        else:
            engine = f" ({line['engine']})" if "engine" in line else ""
            typer.echo(
                f"{f} -> {line['mask']}: {line['wound_px']} wound pixels in"
                f" {line['components']} component(s), {line['ms']:.0f} ms{engine}"
            )
    if failed:
        raise typer.Exit(1)
