"""The printable calibration marker sheet (no key needed: it holds no data).

Anyone may ask for it, so what it costs is bounded: the size is a multiple of
``MARKER_STEP_MM`` between ``MARKER_MM_RANGE`` (a finite set of sheets), each drawn
once and kept (``CACHED_SHEETS``), and only one sheet is drawn at a time: a request
for an undrawn size while another is being drawn answers 503 ``busy``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from service.core.errors import Busy, InvalidRequest

router = APIRouter(tags=["marker"])

MARKER_MM_RANGE = (5.0, 100.0)
MARKER_STEP_MM = 0.5
CACHED_SHEETS = 32
"""Sheets kept (PNG about 150 kB, PDF 20 kB each)."""
RETRY_AFTER_S = 2

_drawing = threading.Lock()
_kept = threading.Lock()
_sheets: OrderedDict[tuple[str, float], bytes] = OrderedDict()


def quantised_marker_mm(marker_mm: float) -> float:
    """``marker_mm`` when it is a multiple of the step in range; else ``InvalidRequest``."""
    low, high = MARKER_MM_RANGE
    steps = marker_mm / MARKER_STEP_MM
    if not (low <= marker_mm <= high) or abs(steps - round(steps)) > 1e-9:
        raise InvalidRequest(
            f"marker_mm must be {low:g}-{high:g} mm in steps of {MARKER_STEP_MM:g} mm"
            f" (e.g. 20 or 20.5), not {marker_mm:g}"
        )
    return round(steps) * MARKER_STEP_MM


def _sheet(kind: str, marker_mm: float) -> bytes:
    """The sheet is the same for every caller: drawn once per size and kept."""
    from service.core.marker import marker_sheet_pdf, marker_sheet_png

    key = (kind, quantised_marker_mm(marker_mm))
    with _kept:
        if key in _sheets:
            _sheets.move_to_end(key)
            return _sheets[key]
    if not _drawing.acquire(blocking=False):
        raise Busy(RETRY_AFTER_S)
    try:
        data = marker_sheet_pdf(key[1]) if kind == "pdf" else marker_sheet_png(key[1])
    finally:
        _drawing.release()
    with _kept:
        _sheets[key] = data
        while len(_sheets) > CACHED_SHEETS:
            _sheets.popitem(last=False)
    return data


MarkerMm = Annotated[
    float,
    Query(
        ge=MARKER_MM_RANGE[0],
        le=MARKER_MM_RANGE[1],
        multiple_of=MARKER_STEP_MM,
        description="Outer black square side (mm), in steps of 0.5 mm",
    ),
]


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
