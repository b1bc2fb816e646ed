from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.commands._util import fail


def marker(
    out: Annotated[Path, typer.Option("--out", help="FILE.pdf or FILE.png")],
    marker_mm: Annotated[
        float, typer.Option("--marker-mm", help="side of the outer black square, mm")
    ] = 20.0,
    dpi: Annotated[int, typer.Option(help="PNG resolution (the PDF is vector)")] = 600,
) -> None:
    """Write the printable calibration-marker sheet at true size, with a 50 mm check line."""
    from service.core.marker import marker_sheet_pdf, marker_sheet_png

    suffix = out.suffix.lower()
    if suffix not in (".pdf", ".png"):
        fail(f"{out}: --out must end in .pdf or .png", 2)
    try:
        data = marker_sheet_pdf(marker_mm) if suffix == ".pdf" else marker_sheet_png(marker_mm, dpi)
    except ValueError as exc:
        fail(str(exc), 2)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    except OSError as exc:
        fail(f"{out}: {exc.strerror}")
    typer.echo(f"{out}: print at 100 % and check that the line measures 50 mm")
