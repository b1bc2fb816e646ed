"""The printable marker sheet (true-size geometry) and sub-pixel marker detection."""

from __future__ import annotations

import io

import numpy as np
import pytest

from service.core.marker import detect_markers, marker_sheet_pdf, marker_sheet_png
from tests.conftest import has_module, need

PT_PER_MM = 72 / 25.4


def _pdf_shapes(
    pdf: bytes,
) -> tuple[list[tuple[float, float, float, float, float]], list[float], tuple[float, float]]:
    """Filled rectangles (x, y, w, h in pt, fill gray) and stroked line lengths (pt),
    in page space (each ``cm`` applied), and the page size (pt)."""
    need(has_module("pypdf"), "pypdf is not installed (the [dev] extra)")
    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    page = reader.pages[0]
    content = page.get_contents()
    ctm = np.eye(3)
    stack = []
    gray = 0.0
    rects, lines = [], []
    start = None
    for operands, op in content.operations:
        args = [float(a) for a in operands if isinstance(a, int | float)]
        if op == b"q":
            stack.append(ctm.copy())
        elif op == b"Q":
            ctm = stack.pop()
        elif op == b"cm":
            a, b, c, d, e, f = args
            ctm = np.array([[a, b, 0], [c, d, 0], [e, f, 1]]) @ ctm
        elif op == b"g":
            gray = args[0]
        elif op == b"re":
            x, y, w, h = args
            p0 = np.array([x, y, 1]) @ ctm
            p1 = np.array([x + w, y + h, 1]) @ ctm
            rects.append((p0[0], p0[1], p1[0] - p0[0], p1[1] - p0[1], gray))
        elif op == b"m":
            start = np.array([args[0], args[1], 1]) @ ctm
        elif op == b"l" and start is not None:
            end = np.array([args[0], args[1], 1]) @ ctm
            lines.append(float(np.hypot(*(end - start)[:2])))
    box = page.mediabox
    return rects, lines, (float(box.width), float(box.height))


@pytest.mark.parametrize("marker_mm", [20.0, 30.0])
def test_pdf_sheet_has_true_size_squares_and_a_50_mm_line(marker_mm):
    rects, lines, page = _pdf_shapes(marker_sheet_pdf(marker_mm))
    assert page == pytest.approx((210 * PT_PER_MM, 297 * PT_PER_MM), abs=0.01)  # A4, unscaled
    side_pt = marker_mm * PT_PER_MM
    black_squares = [
        r for r in rects if r[4] == 0 and abs(r[2] - side_pt) < 0.01 and abs(r[3] - side_pt) < 0.01
    ]
    assert len(black_squares) >= 6
    # White cells are exactly a sixth of the square: the marker's bit grid.
    white = [r for r in rects if r[4] == 1]
    assert white and all(abs(r[2] - side_pt / 6) < 0.01 for r in white)
    assert any(abs(length - 50 * PT_PER_MM) < 0.01 for length in lines)
    # Every square lies on the page.
    assert all(
        r[0] >= 0 and r[0] + r[2] <= page[0] and r[1] >= 0 and r[1] + r[3] <= page[1]
        for r in black_squares
    )


def test_png_sheet_is_true_size_and_its_markers_are_detected():
    from PIL import Image

    dpi = 300
    img = Image.open(io.BytesIO(marker_sheet_png(20.0, dpi=dpi)))
    assert img.info["dpi"] == pytest.approx((dpi, dpi), abs=0.01)
    assert img.size == (round(210 / 25.4 * dpi), round(297 / 25.4 * dpi))
    rgb = np.asarray(img.convert("RGB"))
    markers = detect_markers(rgb)
    assert sorted(m.marker_id for m in markers) == list(range(len(markers)))
    assert len(markers) >= 6
    side_px = 20.0 / 25.4 * dpi
    for m in markers:
        assert m.refined
        assert m.side_px == pytest.approx(side_px, abs=1.0)


def test_sheet_refuses_an_absurd_size():
    with pytest.raises(ValueError, match="marker_mm"):
        marker_sheet_pdf(1.0)


@pytest.mark.parametrize(("tilt_deg", "blur_sigma_px"), [(0, 0.5), (35, 1.2), (55, 0.8)])
def test_corners_are_sub_pixel(make_shot, tilt_deg, blur_sigma_px):
    shot = make_shot(
        tilt_deg=tilt_deg, blur_sigma_px=blur_sigma_px, tilt_axis_deg=70, marker_rotation_deg=40
    )
    (marker,) = detect_markers(shot.rgb)
    assert marker.marker_id == 7 and marker.refined
    refined_error = np.abs(marker.corners_px - shot.marker_corners_px).max()
    detector_error = np.abs(marker.corners_detector_px - shot.marker_corners_px).max()
    assert refined_error < 0.15
    assert refined_error < detector_error
    assert marker.edge_blur_px == pytest.approx(blur_sigma_px, abs=0.5)


def test_no_marker_no_detection(make_shot):
    assert detect_markers(make_shot(marker_centre_mm=None).rgb) == []
