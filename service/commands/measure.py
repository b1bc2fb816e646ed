from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from service.commands._util import fail

if TYPE_CHECKING:
    from service.core.pipeline import Calibration


def _point(text: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError(f"--target {text!r} must be x,y (pixels in the photo as displayed)")
    return float(parts[0]), float(parts[1])


def measure(
    photo: Annotated[Path, typer.Argument(help="the photo (JPEG, PNG, WebP, HEIC)")],
    mask: Annotated[
        Path | None,
        typer.Option("--mask", help="wound mask PNG (0/255, photo size); no model is run"),
    ] = None,
    px_per_mm: Annotated[
        float | None,
        typer.Option(
            "--px-per-mm",
            help="the photo's scale (px/mm); a marker that disagrees with it raises scale_conflict",
        ),
    ] = None,
    ruler: Annotated[
        str | None, typer.Option("--ruler", help="x1,y1,x2,y2,mm: two points and their distance")
    ] = None,
    marker_mm: Annotated[
        float, typer.Option("--marker-mm", help="side of the marker's outer black square, mm")
    ] = 20.0,
    target: Annotated[
        str | None, typer.Option("--target", help="x,y: measure only the wound at this point")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="model folder or installed id (default: highest)")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="one JSON line")] = False,
) -> None:
    """Measure a wound in cm² (marker-calibrated, perspective-corrected) with quality flags."""
    import json

    cal = _calibration(px_per_mm, ruler, marker_mm, target)
    data = _measurement(photo, mask, model, marker_mm, cal)
    if json_out:
        typer.echo(json.dumps(data))
        return
    _print_measurement(photo, data)


def _calibration(
    px_per_mm: float | None, ruler: str | None, marker_mm: float, target: str | None
) -> Calibration:
    """The options checked and parsed before the photo is read: a bad one exits 2."""
    import math

    from service.core.measure import Ruler, scale_problem
    from service.core.pipeline import Calibration

    try:
        ruler_value = Ruler.parse(ruler) if ruler else None
        target_point = _point(target) if target else None
    except ValueError as exc:
        fail(str(exc), 2)
    if px_per_mm is not None and (problem := scale_problem(px_per_mm, "--px-per-mm")):
        fail(problem, 2)
    if not (math.isfinite(marker_mm) and 1 < marker_mm < 500):
        fail(f"--marker-mm must be between 1 and 500 mm, not {marker_mm:g}", 2)
    return Calibration(px_per_mm, ruler_value, target_point)


def _measurement(
    photo: Path, mask: Path | None, model: str | None, marker_mm: float, cal: Calibration
) -> dict[str, Any]:
    """The measurement as ``--json`` prints it: of a person's outline (``--mask``: no
    model, no outline uncertainty), else of the model's segmentation."""
    from service.core.imaging import ImageError, read_mask, read_photo
    from service.core.measure import measure as run

    try:
        rgb = read_photo(photo).rgb
        if mask is not None:
            wound = read_mask(mask, shape=rgb.shape[:2])
    except ImageError as exc:
        fail(f"{exc.detail} [{exc.code}]")
    if mask is not None:
        return run(
            rgb,
            wound,
            marker_mm=marker_mm,
            px_per_mm=cal.px_per_mm,
            ruler=cal.ruler,
            target_point=cal.target_point,
        ).to_json()
    from service.config import model_settings_from_env
    from service.core.pipeline import segment_and_measure
    from service.runtime.artifacts import ModelNotFound
    from service.runtime.inference import load_segmenter

    try:
        segmenter = load_segmenter(model, model_settings_from_env())
    except ModelNotFound as exc:
        fail(f"{photo}: no mask given and {exc}")
    _, _, data = segment_and_measure(rgb, segmenter, marker_mm=marker_mm, cal=cal)
    return data


def _print_measurement(photo: Path, data: dict[str, Any]) -> None:
    """The human-readable report: cm² figures only when calibrated, then the flags."""
    typer.echo(f"photo        {photo}")
    if data["calibrated"]:
        typer.echo(
            f"area         {data['area_cm2']:.2f} cm²  (95 % {data['area_cm2_low']:.2f}"
            f"-{data['area_cm2_high']:.2f})  [{data['calibration']}]"
        )
        typer.echo(f"perimeter    {data['perimeter_cm']:.2f} cm")
        typer.echo(
            f"length×width {data['length_cm']:.2f} × {data['width_cm']:.2f} cm"
            f" = {data['length_x_width_cm2']:.2f} cm²"
        )
        if data["tilt_deg"] is not None:
            typer.echo(f"tilt         {data['tilt_deg']:.0f}°")
        typer.echo(f"scale        {data['px_per_mm']:.2f} px/mm")
    else:
        typer.echo("area         uncalibrated (no marker, no scale): cm² not measured")
    typer.echo(f"area_px      {data['area_px']}  ({data['components']} component(s))")
    for flag in data["quality"]:
        typer.echo(f"{'SEVERE ' if flag['severe'] else ''}{flag['code']}: {flag['message']}")
