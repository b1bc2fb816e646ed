"""The printable calibration marker sheet (no key needed: it holds no data)."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

router = APIRouter(tags=["marker"])


@lru_cache(maxsize=8)
def _sheet(kind: str, marker_mm: float) -> bytes:
    """The sheet is the same for every caller: drawn once per size and kept."""
    from service.marker import marker_sheet_pdf, marker_sheet_png

    return marker_sheet_pdf(marker_mm) if kind == "pdf" else marker_sheet_png(marker_mm)


MarkerMm = Annotated[float, Query(gt=5, le=100, description="Outer black square side (mm)")]


@router.get("/v1/marker.pdf", response_class=Response)
def marker_pdf(marker_mm: MarkerMm = 20.0) -> Response:
    """An A4 PDF of ArUco markers (DICT_4X4_50) at true size: print at 100 %."""
    return Response(
        _sheet("pdf", marker_mm),
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="woundscope-marker-{marker_mm:g}mm.pdf"'
        },
    )


@router.get("/v1/marker.png", response_class=Response)
def marker_png(marker_mm: MarkerMm = 20.0) -> Response:
    """The same sheet as a 600-dpi PNG."""
    return Response(_sheet("png", marker_mm), media_type="image/png")
