"""The capture page's in-browser marker detector (vendored js-aruco2, ``detector.js``) in
headless Chromium: it reads every DICT_4X4_50 id with OpenCV's corners; on a fake camera
filming a marker photo the page's phone-side guidance says "found", on one filming the
wound without a marker and on Chromium's default test pattern it says "none"; with the
service unreachable the phone's check alone enables the shutter."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from service.core.marker import ARUCO_DICTIONARY
from tests.api.capture.test_browser import (  # noqa: F401  (fixtures)
    browser,
    camera_scene,
    launch,
    marker_camera,
    new_wound,
    open_capture,
    playwright_,
    y4m,
)
from tests.api.conftest import encode
from tests.api.dashboard.test_browser import server  # noqa: F401  (fixture)
from tests.core.healing.seed import PHOTO, Trial

pytestmark = pytest.mark.browser

DETECT_JS = """async (png) => {
  const bytes = Uint8Array.from(atob(png), (c) => c.charCodeAt(0));
  const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/png" }));
  const c = document.createElement("canvas");
  c.width = bitmap.width; c.height = bitmap.height;
  c.getContext("2d").drawImage(bitmap, 0, 0);
  return window.markerDetector.check(c, 40);
}"""


def png_b64(rgb: np.ndarray) -> str:
    return base64.b64encode(encode(rgb, "PNG")).decode()


def no_marker_scene() -> np.ndarray:
    """1280 x 720: the wound photo alone on skin (no marker)."""
    return camera_scene(np.asarray(Image.open(PHOTO).convert("RGB")))


@pytest.fixture(scope="module")
def plain_camera(
    playwright_: Any,  # noqa: F811
    chromium_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Any]:
    """Chromium whose fake camera films the wound photo without a marker."""
    clip = y4m(no_marker_scene(), tmp_path_factory.mktemp("camera") / "plain.y4m")
    chromium = launch(playwright_, chromium_path, f"--use-file-for-fake-video-capture={clip}")
    yield chromium
    chromium.close()


def test_detector_reads_every_id_with_opencv_corners(
    server: tuple[str, Trial],  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    base, _ = server
    dictionary = cv2.aruco.getPredefinedDictionary(ARUCO_DICTIONARY)
    canvas = np.full((720, 1280), 255, np.uint8)
    expected: dict[int, np.ndarray] = {}
    for marker_id in range(50):
        row, col = divmod(marker_id, 10)
        y0, x0 = 30 + row * 135, 30 + col * 122
        canvas[y0 : y0 + 66, x0 : x0 + 66] = cv2.aruco.generateImageMarker(
            dictionary, marker_id, 66
        )
        # OpenCV's corners: top-left, top-right, bottom-right, bottom-left (pixel edges).
        expected[marker_id] = np.array(
            [[x0, y0], [x0 + 66, y0], [x0 + 66, y0 + 66], [x0, y0 + 66]], dtype=float
        )
    page = browser.new_page()
    page.goto(f"{base}/capture/")
    page.wait_for_function("() => window.markerDetector !== undefined")
    result = page.evaluate(DETECT_JS, png_b64(cv2.cvtColor(canvas, cv2.COLOR_GRAY2RGB)))
    found = {m["id"]: np.array(m["corners"]) for m in result["markers"]}
    assert sorted(found) == list(range(50))
    for marker_id, corners in found.items():
        assert np.abs(corners - expected[marker_id]).max() <= 2.5, marker_id
    # Rotated a quarter turn, the id is the same and the first corner follows the marker.
    turned = page.evaluate(
        DETECT_JS, png_b64(cv2.cvtColor(np.rot90(canvas).copy(), cv2.COLOR_GRAY2RGB))
    )
    assert sorted(m["id"] for m in turned["markers"]) == list(range(50))
    # A strongly blurred marker (Gaussian sigma 3.5 px) is still found: by the half-size
    # pass, as js-aruco2's fixed threshold window loses it at full size.
    blurred = page.evaluate(DETECT_JS, png_b64(cv2.GaussianBlur(camera_scene(), (0, 0), 3.5)))
    assert [m["id"] for m in blurred["markers"]] == [0]
    # No marker in the wound photo: nothing found.
    none = page.evaluate(DETECT_JS, png_b64(no_marker_scene()))
    assert none["found"] is False and none["markers"] == []
    page.close()


def test_fake_camera_marker_found_in_the_browser(
    server: tuple[str, Trial],  # noqa: F811
    marker_camera: Any,  # noqa: F811
) -> None:
    base, trial = server
    page = open_capture(marker_camera, base, trial.keys["uploader"])
    new_wound(page, trial, "S95")
    page.click("#start-camera")
    page.wait_for_selector("#guidance[data-phone=found]", timeout=30_000)
    page.wait_for_selector("#guidance[data-marker=found]", timeout=30_000)
    page.wait_for_function("() => !document.getElementById('shutter').disabled")
    # The service unreachable: the phone's own check keeps the shutter enabled.
    page.context.set_offline(True)
    page.wait_for_function(
        "() => document.getElementById('guidance').innerText.includes('No connection')",
        timeout=30_000,
    )
    assert page.get_attribute("#guidance", "data-phone") == "found"
    assert not page.is_disabled("#shutter")
    page.context.set_offline(False)
    page.context.close()


@pytest.mark.parametrize("camera", ["plain_camera", "browser"])
def test_fake_camera_without_marker_none_in_the_browser(
    server: tuple[str, Trial],  # noqa: F811
    camera: str,
    request: pytest.FixtureRequest,
) -> None:
    base, trial = server
    page = open_capture(request.getfixturevalue(camera), base, trial.keys["uploader"])
    new_wound(page, trial, f"S96{camera[0]}")
    page.click("#start-camera")
    page.wait_for_selector("#guidance[data-phone=none]", timeout=30_000)
    page.wait_for_selector("#guidance[data-marker=none]", timeout=30_000)
    # Several frames later the phone has still found nothing, and the shutter stays off.
    page.wait_for_timeout(1500)
    assert page.get_attribute("#guidance", "data-phone") == "none"
    assert page.is_disabled("#shutter")
    page.context.close()
