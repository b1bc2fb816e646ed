"""The wound page's live outline editor and the side-by-side comparison of two visits:
the rectification maths (pure), then headless Chromium against a real server at 1440
and 390 px (the fixtures of test_browser)."""

from __future__ import annotations

import json
from typing import Any

import cv2
import numpy as np
import pytest

from service.core import rectify
from service.core.measure import homography_from_4_points
from tests.api.dashboard.test_browser import (  # noqa: F401  (fixtures)
    WIDTHS,
    area_points,
    browser,
    server,
    sign_in,
)
from tests.conftest import ROOT, need
from tests.core.healing.seed import PX_PER_MM, Trial, area_cm2


def shoelace_px2(points: list[list[float]]) -> float:
    xs = np.array([p[0] for p in points], dtype=float)
    ys = np.array([p[1] for p in points], dtype=float)
    return float(abs(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))) / 2)


# ---------------------------------------------------------------- pure


def square_mask(side_px: int, size: int = 400, x0: int = 100) -> np.ndarray:
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[x0 : x0 + side_px, x0 : x0 + side_px] = 1
    return mask


def rectified_mask_area_px(out: np.ndarray) -> float:
    """Pixels inside the drawn (yellow) outline of a rectified image (the outer edge of
    its 3 px stroke less the stroke, for a square-ish outline)."""
    yellow = (out[..., 0] > 200) & (out[..., 1] > 180) & (out[..., 2] < 90)
    contours, _ = cv2.findContours(
        yellow.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    return float(np.sqrt(max(cv2.contourArea(c) for c in contours)) - 3) ** 2


def test_a_scale_homography_puts_one_mm_on_the_asked_pixels() -> None:
    rgb = np.full((400, 400, 3), 90, dtype=np.uint8)
    # 10 px/mm in the photo: a 100 px square is 10 mm; rendered at 6 px/mm, 60 px.
    h = rectify.photo_to_mm(
        rgb, square_mask(100), calibration="px_per_mm", px_per_mm=10.0, marker_mm=20
    )
    assert h is not None
    out = rectify.rectify(rgb, square_mask(100), h, side_mm=30.0, px_per_mm=6.0)
    assert out.shape == (180, 180, 3)
    assert rectified_mask_area_px(out) == pytest.approx(60 * 60, rel=0.08)


def test_a_tilted_photo_is_rectified_to_the_plane() -> None:
    # The plane seen in perspective: a 20 mm square of the plane spans a trapezoid.
    plane_mm = np.array([[0, 0], [20, 0], [20, 20], [0, 20]], dtype=np.float64)
    photo_px = np.array([[120, 100], [300, 110], [320, 300], [100, 280]], dtype=np.float64)
    h_photo_to_mm = homography_from_4_points(photo_px, plane_mm)
    mask = np.zeros((400, 400), dtype=np.uint8)
    cv2.fillPoly(mask, [photo_px.astype(np.int32)], 1)
    rgb = np.full((400, 400, 3), 90, dtype=np.uint8)
    out = rectify.rectify(rgb, mask, h_photo_to_mm, side_mm=40.0, px_per_mm=5.0)
    assert out.shape == (200, 200, 3)
    # The trapezoid becomes the 20 mm square: 100 x 100 px at 5 px/mm.
    assert rectified_mask_area_px(out) == pytest.approx(100 * 100, rel=0.08)


def test_uncalibrated_photos_have_no_plane() -> None:
    rgb = np.zeros((50, 50, 3), dtype=np.uint8)
    assert (
        rectify.photo_to_mm(
            rgb, square_mask(10, 50, 5), calibration="none", px_per_mm=None, marker_mm=20
        )
        is None
    )


def test_the_comparison_window_holds_the_longer_wound_within_the_size_limit() -> None:
    side_mm, px_per_mm = rectify.comparison_scale([12.0, 30.0])
    assert side_mm == 2 * 30 + 2 * rectify.WINDOW_MARGIN_MM
    assert side_mm * px_per_mm <= rectify.RECTIFIED_MAX_SIDE_PX + 1
    small_side, small_scale = rectify.comparison_scale([None, 0.0])
    assert small_side == 2 * rectify.WINDOW_MARGIN_MM
    assert small_scale == rectify.RECTIFIED_MAX_PX_PER_MM


def test_the_editors_outline_of_a_square_is_its_four_corners() -> None:
    polygons = rectify.outline_polygons(square_mask(100) * 255)
    assert len(polygons) == 1
    assert sorted(map(tuple, polygons[0])) == [(100, 100), (100, 199), (199, 100), (199, 199)]
    # A ragged outline is simplified to what a hand can drag.
    rng = np.random.default_rng(1)
    blob = np.zeros((400, 400), dtype=np.uint8)
    angles = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    radii = 120 + rng.uniform(-15, 15, angles.size)
    pts = np.column_stack([200 + radii * np.cos(angles), 200 + radii * np.sin(angles)])
    cv2.fillPoly(blob, [pts.astype(np.int32)], 255)
    (ragged,) = rectify.outline_polygons(blob)
    assert 3 <= len(ragged) <= rectify.OUTLINE_MAX_VERTICES
    assert shoelace_px2(ragged) == pytest.approx(np.count_nonzero(blob), rel=0.05)


# ---------------------------------------------------------------- browser


def polygon_of(panel: Any) -> list[list[float]]:
    return json.loads(panel.locator("textarea[name=polygon]").input_value())


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_drag_and_keyboard_edit_the_outline_then_save(
    server: tuple[str, Trial],  # noqa: F811
    browser: Any,  # noqa: F811
    width: int,
) -> None:
    base, trial = server
    page = sign_in(browser, base, trial.keys["clinician"])
    page.set_viewport_size({"width": width, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    # One photo per width: the first (100 px square) at 1440, the second (70 px) at 390.
    index = WIDTHS.index(width)
    target = trial.assessments["S01-W1"][index]
    page.goto(f"{base}/dashboard/wounds/{trial.wounds['S01-W1']}?correct={target}")
    panel = page.locator(f"details.correct[data-assessment='{target}']")
    page.wait_for_selector(
        f"details.correct[data-assessment='{target}'] .outline-editor[data-ready=true]",
        timeout=30_000,
    )
    # It starts from the outline that counts: the seeded square's four corners.
    side = (100, 70)[index]
    start = polygon_of(panel)
    assert sorted(map(tuple, start)) == sorted(
        [(40, 40), (40 + side, 40), (40 + side, 40 + side), (40, 40 + side)]
    )
    vertices = panel.locator("circle.vertex")
    assert vertices.count() == 4
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    before_src = panel.locator("img.outline-source").get_attribute("src")

    # Mouse: drag the vertex at the square's far corner outwards.
    far = next(i for i, p in enumerate(start) if p == [40 + side, 40 + side])
    panel.locator("img.outline-source").scroll_into_view_if_needed()
    box = vertices.nth(far).bounding_box()
    img_box = panel.locator("img.outline-source").bounding_box()
    assert box is not None and img_box is not None
    photo_px_per_screen_px = 512 / img_box["width"]
    drag_screen = 30 / photo_px_per_screen_px  # 30 photo px
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + drag_screen / 2, cy + drag_screen / 2, steps=4)
    page.mouse.move(cx + drag_screen, cy + drag_screen, steps=4)
    page.mouse.up()
    dragged = polygon_of(panel)
    assert dragged[far][0] == pytest.approx(40 + side + 30, abs=2)
    assert dragged[far][1] == pytest.approx(40 + side + 30, abs=2)
    assert [p for i, p in enumerate(dragged) if i != far] == [
        p for i, p in enumerate(start) if i != far
    ]

    # Keyboard: focus the first corner, Shift+Left twice (20 px), Up three times (3 px).
    first = next(i for i, p in enumerate(start) if p == [40, 40])
    vertices.nth(first).focus()
    for key in ("Shift+ArrowLeft", "Shift+ArrowLeft", "ArrowUp", "ArrowUp", "ArrowUp"):
        page.keyboard.press(key)
    moved = polygon_of(panel)
    assert moved[first] == [20, 37]
    # Insert adds a vertex halfway to the next; Delete takes it away again.
    page.keyboard.press("Insert")
    assert len(polygon_of(panel)) == 5
    assert vertices.count() == 5
    page.keyboard.press("Delete")
    assert polygon_of(panel) == moved

    expected_cm2 = shoelace_px2(moved) / PX_PER_MM**2 / 100
    assert expected_cm2 > area_cm2(side) * 1.3
    panel.locator("form[action$='/correct'] input[name=reason]").fill("edited on the photo")
    with page.expect_navigation():
        panel.locator("form[action$='/correct'] button[type=submit]").click()

    # The panel shows the new outline (a new versioned URL), and it is the editor's start.
    panel = page.locator(f"details.correct[data-assessment='{target}']")
    after_src = panel.locator("img.outline-source").get_attribute("src")
    assert before_src and after_src and after_src != before_src and "?measurement=" in after_src
    row = page.locator(f"#measurements tr[data-assessment='{target}']")
    assert float(row.locator("td.area").inner_text()) == pytest.approx(expected_cm2, rel=0.03)
    assert "manual" in row.locator("td.made-by").inner_text()
    assert "edited on the photo" in row.locator("td.made-by").inner_text()
    points = area_points(page)
    at = points["ids"].index(target)
    assert points["y"][at] == pytest.approx(expected_cm2, rel=0.03)
    symbol = page.evaluate(
        f"""() => document.getElementById('area-plot').data
            .find((t) => t.name === 'area (cm²)').marker.symbol[{at}]"""
    )
    assert symbol == "square"  # the clinician's-outline marker
    page.locator(f"details.correct[data-assessment='{target}'] > summary").click()
    page.wait_for_selector(
        f"details.correct[data-assessment='{target}'] .outline-editor[data-ready=true]",
        timeout=30_000,
    )
    reloaded = polygon_of(panel)
    assert shoelace_px2(reloaded) == pytest.approx(shoelace_px2(moved), rel=0.03)
    assert errors == [], errors
    page.context.close()


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_compare_two_visits_at_one_mm_scale(
    server: tuple[str, Trial],  # noqa: F811
    browser: Any,  # noqa: F811
    width: int,
) -> None:
    base, trial = server
    wound = trial.wounds["S02-W1"]  # 120 px square, then 100 px: 1.44 -> 1.00 cm²
    first, second = trial.assessments["S02-W1"]
    page = sign_in(browser, base, trial.keys["monitor"])
    page.set_viewport_size({"width": width, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{base}/dashboard/wounds/{wound}")
    with page.expect_navigation():
        page.click("#compare-link")
    # Default: the first and the latest visits.
    assert page.locator("#compare-first").input_value() == first
    assert page.locator("#compare-second").input_value() == second
    a1 = float(page.locator("#compare-area-first").inner_text())
    a2 = float(page.locator("#compare-area-second").inner_text())
    assert a1 == pytest.approx(area_cm2(120), rel=0.03)
    assert a2 == pytest.approx(area_cm2(100), rel=0.03)
    assert float(page.locator("#compare-change").inner_text()) == pytest.approx(a2 - a1, abs=0.01)
    par = 100 * (a1 - a2) / a1
    assert par == pytest.approx(100 * (1 - (100 / 120) ** 2), abs=1.5)
    assert float(page.locator("#compare-par").inner_text()) == pytest.approx(par, abs=0.2)

    images = page.locator(".compare img")
    assert images.count() == 2
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.compare img'))"
        ".every((img) => img.complete && img.naturalWidth > 0)",
        timeout=30_000,
    )
    sizes = page.evaluate(
        "() => Array.from(document.querySelectorAll('.compare img'))"
        ".map((img) => [img.naturalWidth, img.naturalHeight, img.getBoundingClientRect().width])"
    )
    assert sizes[0][:2] == sizes[1][:2]
    assert sizes[0][2] == pytest.approx(sizes[1][2], abs=1)  # shown at the same size too
    compare = page.locator(".compare")
    side_mm = float(compare.get_attribute("data-side-mm") or 0)
    px_per_mm = float(compare.get_attribute("data-px-per-mm") or 0)
    assert sizes[0][0] == round(side_mm * px_per_mm)
    # The window holds the longer wound (12 mm square: 17 mm across) twice, plus margins.
    assert side_mm == pytest.approx(2 * 12 * 2**0.5 + 2 * rectify.WINDOW_MARGIN_MM, abs=0.5)
    # Each image's own wound has its true size in mm: count the outlined pixels.
    srcs = [images.nth(i).get_attribute("src") for i in range(2)]
    outlined = []
    for src, mm in zip(srcs, (12, 10), strict=True):
        answer = page.request.get(f"{base}{src}")
        assert answer.status == 200
        assert float(answer.headers["x-px-per-mm"]) == px_per_mm
        out = cv2.cvtColor(
            cv2.imdecode(np.frombuffer(answer.body(), np.uint8), cv2.IMREAD_COLOR),
            cv2.COLOR_BGR2RGB,
        )
        outlined.append(rectified_mask_area_px(out))
        assert outlined[-1] == pytest.approx((mm * px_per_mm) ** 2, rel=0.15)
    assert outlined[1] / outlined[0] == pytest.approx(a2 / a1, rel=0.1)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    if width == WIDTHS[0]:
        # Side by side on a wide screen; stacked on a phone.
        boxes = [images.nth(i).bounding_box() for i in range(2)]
        assert boxes[0] and boxes[1] and boxes[0]["y"] == pytest.approx(boxes[1]["y"], abs=2)
    # Picking the same visit twice: no change.
    page.select_option("#compare-second", first)
    with page.expect_navigation():
        page.click(".compare-pick button[type=submit]")
    assert float(page.locator("#compare-change").inner_text()) == pytest.approx(0, abs=0.001)
    assert errors == [], errors
    page.context.close()


@pytest.mark.browser
def test_compare_refuses_a_photo_of_another_wound_and_another_sites_wound(
    server: tuple[str, Trial],  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    base, trial = server
    page = sign_in(browser, base, trial.keys["clinician"])
    mine, theirs = trial.assessments["S01-W1"][0], trial.assessments["S02-W1"][0]
    wrong = page.goto(
        f"{base}/dashboard/wounds/{trial.wounds['S01-W1']}/compare?first={mine}&second={theirs}"
    )
    assert wrong is not None and wrong.status == 422
    assert "not_comparable" in page.content()
    other_site = page.goto(f"{base}/dashboard/wounds/{trial.wounds['S02-W1']}/compare")
    assert other_site is not None and other_site.status == 404
    image = page.request.get(
        f"{base}/dashboard/assessments/{theirs}/rectified.jpg?measurement=1&side_mm=40&px_per_mm=5"
    )
    assert image.status == 404
    huge = page.request.get(
        f"{base}/dashboard/assessments/{mine}/rectified.jpg?measurement=1&side_mm=1000&px_per_mm=50"
    )
    assert huge.status == 422 and huge.json()["code"] == "invalid_request"
    outline = page.request.get(f"{base}/dashboard/assessments/{mine}/outline.json")
    assert outline.status == 200 and len(outline.json()["polygons"]) == 1
    page.context.close()


MARKER_PHOTO = ROOT / "data" / "samples" / "marker" / "wound-with-marker.jpg"


def test_a_marker_photo_taken_at_a_tilt_is_rectified_by_its_marker() -> None:
    """The sample with its 20 mm marker at 10 px/mm, then the same scene seen at a tilt
    (a perspective warp of the photo): through the re-detected marker, a 10 mm square
    of the scene is 10 mm in both rectified images."""
    need(MARKER_PHOTO.is_file(), f"the marker sample is not at {MARKER_PHOTO}")
    rgb = cv2.cvtColor(cv2.imread(str(MARKER_PHOTO)), cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    mask = np.zeros((h, w), dtype=np.uint8)
    mask[100:200, 150:250] = 1  # 10 mm at 10 px/mm
    tilt = cv2.getPerspectiveTransform(
        np.float32([[0, 0], [w, 0], [w, h], [0, h]]),
        np.float32([[0.08 * w, 0], [0.92 * w, 0.04 * h], [w, h], [0, 0.95 * h]]),
    )
    tilted = cv2.warpPerspective(rgb, tilt, (w, h))
    tilted_mask = cv2.warpPerspective(mask, tilt, (w, h), flags=cv2.INTER_NEAREST)
    sides = []
    for photo, outline in ((rgb, mask), (tilted, tilted_mask)):
        hom = rectify.photo_to_mm(
            photo, outline, calibration="marker", px_per_mm=None, marker_mm=20.0
        )
        assert hom is not None
        out = rectify.rectify(photo, outline, hom, side_mm=40.0, px_per_mm=5.0)
        sides.append(np.sqrt(rectified_mask_area_px(out)) / 5.0)
    assert sides[0] == pytest.approx(10.0, rel=0.06)
    assert sides[1] == pytest.approx(10.0, rel=0.06)


@pytest.mark.browser
def test_draw_anew_from_the_keyboard_alone(
    server: tuple[str, Trial],  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    base, trial = server
    page = sign_in(browser, base, trial.keys["clinician"])
    target = trial.assessments["S01-W1"][3]
    page.goto(f"{base}/dashboard/wounds/{trial.wounds['S01-W1']}?correct={target}")
    panel = page.locator(f"details.correct[data-assessment='{target}']")
    page.wait_for_selector(
        f"details.correct[data-assessment='{target}'] .outline-editor[data-ready=true]",
        timeout=30_000,
    )
    panel.locator("button.outline-new").focus()
    page.keyboard.press("Enter")
    triangle = polygon_of(panel)
    assert len(triangle) == 3
    # The first vertex has the focus: move it and add one, all without a pointer.
    page.keyboard.press("Shift+ArrowUp")
    page.keyboard.press("+")
    drawn = polygon_of(panel)
    assert len(drawn) == 4
    assert drawn[0] == [triangle[0][0], triangle[0][1] - 10]
    assert "vertex 2 of 4" in (
        page.evaluate("() => document.activeElement.getAttribute('aria-label')") or ""
    )
    page.context.close()


@pytest.mark.parametrize("turn_deg", (90.0, 180.0, 35.0))
def test_the_later_visit_is_turned_to_line_up_with_the_earlier(turn_deg: float) -> None:
    """Issue 25: compare showed day 83 upside down against day 0 (each rectified to its
    own marker, which lay another way round). A visit turned by some angle about the
    wound is turned back by ``alignment_deg``, even a wound symmetric under 180°."""
    rng = np.random.default_rng(7)
    skin = cv2.GaussianBlur(rng.integers(60, 200, (240, 240, 3), dtype=np.uint8), (9, 9), 0)
    mask = np.zeros((240, 240), dtype=np.uint8)
    cv2.ellipse(mask, (120, 120), (60, 25), 20, 0, 360, 255, -1)  # symmetric under 180°
    centre = (119.5, 119.5)
    back = cv2.getRotationMatrix2D(centre, -turn_deg, 1.0)
    moved = cv2.warpAffine(skin, back, (240, 240), borderValue=(128, 128, 128))
    moved_mask = cv2.warpAffine(mask, back, (240, 240), flags=cv2.INTER_NEAREST)
    found = rectify.alignment_deg((skin, mask), (moved, moved_mask))
    assert abs((found - turn_deg + 180.0) % 360.0 - 180.0) <= rectify.ALIGN_STEP_DEG
    assert rectify.alignment_deg((skin, mask), (skin, mask)) == 0.0
