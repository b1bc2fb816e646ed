"""The printed calibration marker: detection with sub-pixel corners, and the sheet.

Detection: OpenCV's ArUco detector (``DICT_4X4_50``, any id) finds the marker and
its corners to about a pixel; then each of the four outer edges is located to a
fraction of a pixel from many intensity profiles across it (where the black
border ends, from the area under each normalised profile, in *linear* light so
that blur does not move it), a straight line is fitted to each edge, and the
corners are the intersections of adjacent lines. A perspective view keeps straight edges straight,
so this holds at any tilt. The scatter of the edge points around their lines gives
the corners' localisation error, which the measurement turns into an interval.

Several markers in one photo: the measurement uses the one nearest the wound (see
``service.core.measure``) because a homography from a 2 cm marker is extrapolated to the
wound, and its error grows with the distance; nearer markers are also likelier to
lie in the wound's plane on a curved foot. Separately printed markers lie in
unknown relative positions, so fitting them jointly is not possible without a
printed layout.

Sheet: ``marker_sheet_pdf`` / ``marker_sheet_png`` draw markers at true size (the
outer black square is ``marker_mm`` a side) with a white quiet zone, a dashed cut
line and a printed 50 mm check line.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import cv2
import numpy as np

ARUCO_DICTIONARY = cv2.aruco.DICT_4X4_50
"""The printed marker: the one home of its dictionary, cells and default size."""
MARKER_CELLS = 6
"""A DICT_4X4_50 marker is 4 x 4 data cells inside a one-cell black border."""
MARKER_MM = 20.0
"""Side of the printed marker's outer black square (mm), as the marker sheet prints it:
the default of a study, the sheet and the simulator."""


def marker_cells(marker_id: int) -> np.ndarray:
    """The marker's 6 x 6 cells (border included) as booleans, True = white."""
    if not 0 <= marker_id < 50:
        raise ValueError(f"marker_id {marker_id} is outside DICT_4X4_50 (0-49)")
    dictionary = cv2.aruco.getPredefinedDictionary(ARUCO_DICTIONARY)
    img = cv2.aruco.generateImageMarker(dictionary, marker_id, MARKER_CELLS)
    return np.asarray(img > 127)


# Detection runs on a copy at most this many pixels on its long side; the corners
# are then refined on the full-resolution photo.
DETECT_MAX_SIDE_PX = 1600
# Edge profiles use the middle of each edge: near the corners the other edge's blur
# bends the profile.
EDGE_SPAN = (0.12, 0.88)
PROFILE_STEP_PX = 0.25
MIN_EDGE_CONTRAST = 0.04
"""Least white-minus-black difference (linear light, 0-1) for a usable profile."""


@dataclass(frozen=True)
class DetectedMarker:
    """One marker found in a photo. Pixel coordinates: integer = pixel centre."""

    marker_id: int
    corners_px: np.ndarray
    """4 x 2 float64, ArUco's order: the marker's own top-left, top-right,
    bottom-right, bottom-left corner of the outer black square."""
    corners_detector_px: np.ndarray
    """The detector's own corners, before refinement."""
    corner_sigma_px: float
    """Standard error of each corner coordinate, pixels, from the edge fits."""
    edge_blur_px: float
    """Gaussian sigma of the marker's edges in the photo, pixels (blur + optics)."""
    refined: bool
    """False when the edges could not be located (too blurred, hidden, too small);
    the detector's corners are then all there is."""

    @property
    def side_px(self) -> float:
        """Mean side length of the outer square, pixels."""
        c = self.corners_px
        return float(np.mean(np.linalg.norm(c - np.roll(c, -1, axis=0), axis=1)))

    @property
    def centre_px(self) -> np.ndarray:
        return np.asarray(self.corners_px.mean(axis=0))


def _detector() -> cv2.aruco.ArucoDetector:
    params = cv2.aruco.DetectorParameters()
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_NONE
    # Small markers in large photos: the default (3 % of the long side) misses them.
    params.minMarkerPerimeterRate = 0.01
    dictionary = cv2.aruco.getPredefinedDictionary(ARUCO_DICTIONARY)
    return cv2.aruco.ArucoDetector(dictionary, params)


_SRGB_TO_LINEAR = np.array(
    [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in np.arange(256) / 255.0],
    dtype=np.float32,
)


def _linear_gray(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 -> linear-light luminance, float32 0-1."""
    lin = _SRGB_TO_LINEAR[rgb]
    return np.asarray(lin @ np.array([0.2126, 0.7152, 0.0722], np.float32), np.float32)


def detect_markers(rgb: np.ndarray) -> list[DetectedMarker]:
    """All DICT_4X4_50 markers in an RGB photo, corners refined to sub-pixel."""
    h, w = rgb.shape[:2]
    gray8 = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    scale = max(h, w) / DETECT_MAX_SIDE_PX
    if scale > 1:
        small = cv2.resize(
            gray8, (round(w / scale), round(h / scale)), interpolation=cv2.INTER_AREA
        )
        fx, fy = w / small.shape[1], h / small.shape[0]
    else:
        small, fx, fy = gray8, 1.0, 1.0
    corners, ids, _ = _detector().detectMarkers(small)
    if ids is None:
        return []
    found = []
    for quad, marker_id in zip(corners, ids.ravel(), strict=True):
        raw = quad.reshape(4, 2).astype(np.float64)
        raw = (raw + 0.5) * np.array([fx, fy]) - 0.5  # pixel centres stay centres
        found.append(refine_marker(rgb, int(marker_id), raw))
    return found


def refine_marker(rgb: np.ndarray, marker_id: int, corners_px: np.ndarray) -> DetectedMarker:
    """Refine a marker's four corners by fitting straight lines to its outer edges."""
    x0, y0 = np.floor(corners_px.min(axis=0)).astype(int)
    x1, y1 = np.ceil(corners_px.max(axis=0)).astype(int)
    side = float(np.mean(np.linalg.norm(corners_px - np.roll(corners_px, -1, axis=0), axis=1)))
    margin = int(math.ceil(side / 3)) + 4
    h, w = rgb.shape[:2]
    ox, oy = max(x0 - margin, 0), max(y0 - margin, 0)
    roi = _linear_gray(rgb[oy : min(y1 + margin, h), ox : min(x1 + margin, w)])
    offset = np.array([ox, oy], dtype=np.float64)
    corners = corners_px - offset
    result = None
    for _ in range(3):  # each pass re-centres the profiles on the refined edges
        fitted = _fit_edges(roi, corners)
        if fitted is None:
            break
        corners, sigma, blur = fitted
        result = (corners, sigma, blur)
    if result is None or float(np.max(np.abs(result[0] - (corners_px - offset)))) > max(
        3.0, side / 12
    ):
        return DetectedMarker(
            marker_id, corners_px.copy(), corners_px.copy(), 1.0, float("nan"), False
        )
    refined, sigma, blur = result
    return DetectedMarker(marker_id, refined + offset, corners_px.copy(), sigma, blur, True)


def _fit_edges(gray: np.ndarray, corners: np.ndarray) -> tuple[np.ndarray, float, float] | None:
    """One pass: a line per edge from its profiles; corners where the lines cross."""
    centre = corners.mean(axis=0)
    lines = []
    variances = []
    blurs = []
    for k in range(4):
        a, b = corners[k], corners[(k + 1) % 4]
        length = float(np.linalg.norm(b - a))
        # Profiles reach at most ~2/3 of a cell each way: inside, the black border is
        # one cell wide; outside, the quiet zone is at least one cell.
        cell_px = min(length, float(np.linalg.norm(corners[(k + 2) % 4] - b))) / MARKER_CELLS
        reach = float(np.clip(0.65 * cell_px, 1.5, 25.0))
        fit = _fit_edge(gray, a, b, centre, reach)
        if fit is None:
            return None
        point, direction, var_offset, var_angle, blur = fit
        lines.append((point, direction))
        # Each edge's uncertainty at its two ends (half its length from the centroid).
        variances.append(var_offset + var_angle * (length / 2) ** 2)
        blurs.append(blur)
    new = np.array([_intersect(lines[(k - 1) % 4], lines[k]) for k in range(4)])
    if not np.all(np.isfinite(new)):
        return None
    # A corner sits on two near-perpendicular lines: each moves it along its normal.
    sigma = float(math.sqrt(float(np.mean(variances))))
    return new, sigma, float(np.median(blurs))


def _fit_edge(
    gray: np.ndarray, a: np.ndarray, b: np.ndarray, centre: np.ndarray, reach: float
) -> tuple[np.ndarray, np.ndarray, float, float, float] | None:
    length = float(np.linalg.norm(b - a))
    direction = (b - a) / length
    normal = np.array([-direction[1], direction[0]])
    if np.dot((a + b) / 2 - centre, normal) < 0:
        normal = -normal  # point outwards, from black border to white paper
    n_along = int(np.clip(length * (EDGE_SPAN[1] - EDGE_SPAN[0]), 6, 400))
    t = np.linspace(EDGE_SPAN[0], EDGE_SPAN[1], n_along) * length
    offsets = np.arange(-reach, reach + 1e-9, PROFILE_STEP_PX)
    pts = a + t[:, None, None] * direction + offsets[None, :, None] * normal
    prof = cv2.remap(
        gray,
        pts[..., 0].astype(np.float32),
        pts[..., 1].astype(np.float32),
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    n_end = max(2, len(offsets) // 8)
    dark = prof[:, :n_end].mean(axis=1)
    bright = prof[:, -n_end:].mean(axis=1)
    contrast = bright - dark
    ok = contrast > MIN_EDGE_CONTRAST
    if ok.sum() < 5:
        return None
    norm = (prof[ok] - dark[ok, None]) / contrast[ok, None]
    # The edge is where the dark part of the profile ends, from the profile's area:
    # exact for a step blurred by any symmetric kernel, sharp and pixel-sampled
    # edges included (a 50 % crossing of interpolated pixels is off by up to 0.1 px).
    inside = np.clip(norm, -0.5, 1.5)
    area = np.sum((inside[:, 1:] + inside[:, :-1]) / 2, axis=1) * PROFILE_STEP_PX
    cross = offsets[-1] - area
    cross[np.abs(cross) > reach * 0.8] = np.nan
    good = np.isfinite(cross)
    if good.sum() < 5:
        return None
    along = t[ok][good]
    across = cross[good]
    # Robust straight-line fit across = c0 + c1 * along, one round of rejection.
    keep = np.ones(len(along), dtype=bool)
    for _ in range(2):
        coef = np.polyfit(along[keep], across[keep], 1)
        resid = across - np.polyval(coef, along)
        mad = float(np.median(np.abs(resid[keep] - np.median(resid[keep])))) * 1.4826
        keep = np.abs(resid) <= max(3 * mad, 0.05)
        if keep.sum() < 5:
            return None
    coef = np.polyfit(along[keep], across[keep], 1)
    resid = across[keep] - np.polyval(coef, along[keep])
    n = int(keep.sum())
    s2 = float(np.sum(resid**2) / max(n - 2, 1))
    centred = along[keep] - along[keep].mean()
    # Standard errors as if the profiles were independent; neighbours share pixels
    # and blur, which service.core.measure allows for (CORNER_FIT_SCALE).
    var_offset = s2 / n
    var_angle = s2 / float(np.sum(centred**2))
    point = (
        a + along[keep].mean() * direction + float(np.polyval(coef, along[keep].mean())) * normal
    )
    new_dir = direction + coef[0] * normal
    new_dir = new_dir / np.linalg.norm(new_dir)
    # Edge width from the 25 %-75 % rise (1.349 sigma for a Gaussian blur), on a
    # sample of the profiles: it only grades blur.
    sample = norm[:: max(1, len(norm) // 48)]
    width = np.array([_crossing(r, offsets, 0.75) - _crossing(r, offsets, 0.25) for r in sample])
    blur = float(np.nanmedian(width)) / 1.349 if np.any(np.isfinite(width)) else float("nan")
    return point, new_dir, var_offset, var_angle, blur


def _crossing(row: np.ndarray, offsets: np.ndarray, level: float) -> float:
    """Offset where a dark-to-bright profile crosses ``level``, nearest the middle."""
    above = row >= level
    idx = np.nonzero(above[1:] != above[:-1])[0]
    if len(idx) == 0:
        return float("nan")
    i = int(idx[np.argmin(np.abs(offsets[idx]))])
    r0, r1 = float(row[i]), float(row[i + 1])
    if r1 == r0:
        return float(offsets[i])
    return float(offsets[i] + (level - r0) / (r1 - r0) * (offsets[i + 1] - offsets[i]))


def _intersect(l1: tuple[np.ndarray, np.ndarray], l2: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    (p1, d1), (p2, d2) = l1, l2
    m = np.column_stack([d1, -d2])
    if abs(np.linalg.det(m)) < 1e-9:
        return np.array([np.nan, np.nan])
    s = np.linalg.solve(m, p2 - p1)
    return np.asarray(p1 + s[0] * d1)


# --------------------------------------------------------------------------- sheet

A4_MM = (210.0, 297.0)
CHECK_LINE_MM = 50.0


@dataclass(frozen=True)
class _Rect:
    x_mm: float
    y_mm: float  # from the top of the page
    w_mm: float
    h_mm: float
    black: bool


@dataclass(frozen=True)
class _Line:
    x0_mm: float
    y0_mm: float
    x1_mm: float
    y1_mm: float
    width_mm: float
    dashed: bool = False


@dataclass(frozen=True)
class _Text:
    x_mm: float
    y_mm: float  # baseline, from the top
    text: str
    size_pt: float


def _sheet(marker_mm: float) -> list[_Rect | _Line | _Text]:
    """Everything on the sheet, in mm from the page's top-left corner."""
    if not 5.0 <= marker_mm <= 150.0:
        raise ValueError(f"marker_mm {marker_mm} is outside 5-150 mm")
    page_w, _ = A4_MM
    items: list[_Rect | _Line | _Text] = []
    items.append(
        _Text(15, 20, f"woundscope calibration markers - {marker_mm:g} mm (DICT_4X4_50)", 14)
    )
    items.append(
        _Text(15, 27, 'Print at 100 % ("actual size", never "fit to page"), on matte paper.', 9)
    )
    items.append(
        _Text(
            15,
            32,
            "Check: the line below must measure exactly 50 mm with a ruler; if not, reprint.",
            9,
        )
    )
    # The 50 mm check line, with end ticks.
    y = 42.0
    items.append(_Line(15, y, 15 + CHECK_LINE_MM, y, 0.3))
    for x in (15.0, 15.0 + CHECK_LINE_MM):
        items.append(_Line(x, y - 3, x, y + 3, 0.3))
    items.append(_Text(15 + CHECK_LINE_MM + 4, y + 1.2, "50 mm", 9))
    items.append(
        _Text(
            15, 52, "Cut one marker out along the dashed line, keep the white border, and lay it", 9
        )
    )
    items.append(
        _Text(
            15,
            57,
            "flat on the skin beside the wound, in the same plane, fully visible. Any id works.",
            9,
        )
    )
    quiet_mm = max(marker_mm / MARKER_CELLS, 5.0)
    tile = marker_mm + 2 * quiet_mm
    gap = 6.0
    top = 66.0
    cols = max(1, int((page_w - 30 + gap) // (tile + gap)))
    rows = max(1, int((A4_MM[1] - top - 15 + gap) // (tile + gap)))
    cell = marker_mm / MARKER_CELLS
    for i in range(min(cols * rows, 50)):
        r, c = divmod(i, cols)
        tx, ty = 15 + c * (tile + gap), top + r * (tile + gap)
        for x0, y0, x1, y1 in (
            (tx, ty, tx + tile, ty),
            (tx + tile, ty, tx + tile, ty + tile),
            (tx + tile, ty + tile, tx, ty + tile),
            (tx, ty + tile, tx, ty),
        ):
            items.append(_Line(x0, y0, x1, y1, 0.15, dashed=True))
        mx, my = tx + quiet_mm, ty + quiet_mm
        # The outer black square in one piece, so its size is one rectangle on paper.
        items.append(_Rect(mx, my, marker_mm, marker_mm, black=True))
        cells = marker_cells(i)
        for j in range(MARKER_CELLS):
            for k in range(MARKER_CELLS):
                if cells[j, k]:
                    items.append(_Rect(mx + k * cell, my + j * cell, cell, cell, black=False))
        items.append(_Text(tx + 1, ty + tile - 1.2, f"id {i}", 5))
    return items


def marker_sheet_pdf(marker_mm: float = MARKER_MM) -> bytes:
    """An A4 PDF of markers at true size (outer black square ``marker_mm`` a side)."""
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    page_w, page_h = A4_MM
    pdf = canvas.Canvas(buf, pagesize=(page_w * mm, page_h * mm), pageCompression=0)
    pdf.setTitle(f"woundscope calibration markers {marker_mm:g} mm")
    pdf.setCreator("woundscope")
    for item in _sheet(marker_mm):
        if isinstance(item, _Rect):
            pdf.setFillGray(0 if item.black else 1)
            pdf.rect(
                item.x_mm * mm,
                (page_h - item.y_mm - item.h_mm) * mm,
                item.w_mm * mm,
                item.h_mm * mm,
                stroke=0,
                fill=1,
            )
        elif isinstance(item, _Line):
            pdf.setLineWidth(item.width_mm * mm)
            pdf.setDash([2 * mm, 1.5 * mm] if item.dashed else [])
            pdf.line(
                item.x0_mm * mm,
                (page_h - item.y0_mm) * mm,
                item.x1_mm * mm,
                (page_h - item.y1_mm) * mm,
            )
        else:
            pdf.setFillGray(0)
            pdf.setFont("Helvetica", item.size_pt)
            pdf.drawString(item.x_mm * mm, (page_h - item.y_mm) * mm, item.text)
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def marker_sheet_png(marker_mm: float = MARKER_MM, dpi: int = 600) -> bytes:
    """The same sheet as a PNG whose DPI tag makes it print at true size."""
    from PIL import Image, ImageDraw, ImageFont

    px_per_mm = dpi / 25.4
    page_w, page_h = A4_MM
    img = Image.new("L", (round(page_w * px_per_mm), round(page_h * px_per_mm)), 255)
    draw = ImageDraw.Draw(img)

    def px(v_mm: float) -> float:
        # Edges of pixels at integers: a rectangle from a to b mm covers pixels
        # round(a * px_per_mm) .. round(b * px_per_mm) - 1.
        return v_mm * px_per_mm

    for item in _sheet(marker_mm):
        if isinstance(item, _Rect):
            x0, y0 = round(px(item.x_mm)), round(px(item.y_mm))
            x1, y1 = round(px(item.x_mm + item.w_mm)), round(px(item.y_mm + item.h_mm))
            draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=0 if item.black else 255)
        elif isinstance(item, _Line):
            width = max(1, round(px(item.width_mm)))
            if item.dashed:
                _dashed(draw, item, px_per_mm, width)
            else:
                draw.line(
                    (px(item.x0_mm), px(item.y0_mm), px(item.x1_mm), px(item.y1_mm)),
                    fill=0,
                    width=width,
                )
        else:
            font = ImageFont.load_default(size=max(6, round(item.size_pt / 72 * dpi)))
            draw.text((px(item.x_mm), px(item.y_mm)), item.text, fill=0, font=font, anchor="ls")
    buf = io.BytesIO()
    img.save(buf, format="PNG", dpi=(dpi, dpi))
    return buf.getvalue()


def _dashed(draw: object, item: _Line, px_per_mm: float, width: int) -> None:
    from PIL import ImageDraw

    assert isinstance(draw, ImageDraw.ImageDraw)
    length = math.hypot(item.x1_mm - item.x0_mm, item.y1_mm - item.y0_mm)
    ux, uy = (item.x1_mm - item.x0_mm) / length, (item.y1_mm - item.y0_mm) / length
    pos = 0.0
    while pos < length:
        end = min(pos + 2.0, length)
        draw.line(
            (
                (item.x0_mm + ux * pos) * px_per_mm,
                (item.y0_mm + uy * pos) * px_per_mm,
                (item.x0_mm + ux * end) * px_per_mm,
                (item.y0_mm + uy * end) * px_per_mm,
            ),
            fill=0,
            width=width,
        )
        pos += 3.5
