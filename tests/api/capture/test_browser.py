"""The capture page in headless Chromium at a phone's width (390 px), against a real
uvicorn server with the bundled model: sign in, pick or create subject and wound, send a
photo through the file fallback, see the area; a photo sent offline is kept and sent
exactly once when the network returns; the fake camera's guidance says "no marker"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from tests.api.conftest import encode, marker_photo_rgb
from tests.api.dashboard.test_browser import CHROMIUM_ARGS, server  # noqa: F401  (fixture)
from tests.core.healing.seed import PHOTO, Trial

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def y4m(rgb: np.ndarray, path: Path, frames: int = 3) -> Path:
    """A Y4M clip (4:2:0) of one still: what Chromium's fake camera plays in a loop."""
    h, w = rgb.shape[:2]
    i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes()
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + i420)
    return path


def camera_scene(photo: np.ndarray | None = None) -> np.ndarray:
    """1280 x 720: a photo (default the marker photo, ulcer + 20 mm marker) on skin, as a
    preview sees it."""
    photo = marker_photo_rgb() if photo is None else photo
    scale = 700 / photo.shape[0]
    photo = cv2.resize(photo, (round(photo.shape[1] * scale), 700), interpolation=cv2.INTER_AREA)
    plane = np.empty((720, 1280, 3), dtype=np.uint8)
    plane[:] = photo[-4:].mean(axis=(0, 1)).astype(np.uint8)
    x0 = (1280 - photo.shape[1]) // 2
    plane[10:710, x0 : x0 + photo.shape[1]] = photo
    return plane


@pytest.fixture(scope="module")
def playwright_(chromium_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


def launch(playwright: Any, chromium_path: Path, *extra: str) -> Any:
    return playwright.chromium.launch(
        executable_path=str(chromium_path),
        headless=True,
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            *extra,
        ],
    )


@pytest.fixture(scope="module")
def browser(playwright_: Any, chromium_path: Path) -> Iterator[Any]:
    """Chromium with the default fake camera (a test pattern: no marker)."""
    chromium = launch(playwright_, chromium_path)
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def marker_camera(
    playwright_: Any, chromium_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """Chromium whose fake camera films a virtual-trial photo with a marker."""
    clip = y4m(camera_scene(), tmp_path_factory.mktemp("camera") / "marker.y4m")
    chromium = launch(playwright_, chromium_path, f"--use-file-for-fake-video-capture={clip}")
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def marker_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("capture") / "marker-photo.jpg"
    path.write_bytes(encode(marker_photo_rgb(), "JPEG", quality=92))
    return path


def open_capture(browser: Any, base: str, key: str) -> Any:
    context = browser.new_context(viewport=PHONE, permissions=["camera"])
    page = context.new_page()
    page.goto(f"{base}/dashboard/login")
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/dashboard/")
    page.click("a[href='/capture/']")
    page.wait_for_url(f"{base}/capture/")
    page.wait_for_selector("#pick:not([hidden])")
    return page


def new_wound(page: Any, trial: Trial, code: str) -> None:
    page.select_option("#study", trial.study)
    page.fill("#new-subject", code)
    page.click("#add-subject")
    page.wait_for_function(
        "(code) => document.querySelector('#subject').selectedOptions[0]?.text.startsWith(code)",
        arg=code,
    )
    page.fill("#new-wound", "W1")
    page.click("#add-wound")
    page.wait_for_selector("#shoot:not([hidden])")


def wound_assessments(base: str, trial: Trial, page: Any) -> list[dict[str, Any]]:
    wound = page.eval_on_selector("#wound", "el => el.value")
    r = httpx.get(
        f"{base}/v1/wounds/{wound}/assessments",
        headers={"Authorization": f"Bearer {trial.keys['admin']}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def test_phone_sign_in_pick_upload_see_area(
    server: tuple[str, Trial],  # noqa: F811
    browser: Any,  # noqa: F811
    marker_file: Path,
) -> None:
    base, trial = server
    page = open_capture(browser, base, trial.keys["uploader"])
    new_wound(page, trial, "S90")
    page.check("input[name=drainage][value=true]")
    page.set_input_files("#file", str(marker_file))
    page.wait_for_selector("#review:not([hidden])")
    page.click("#send")
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)
    assert "cm²" in page.inner_text("#area")
    assert "95 % interval" in page.inner_text("#interval")
    page.wait_for_function(
        "() => { const i = document.getElementById('overlay');"
        " return i.complete && i.naturalWidth > 0; }",
        timeout=30_000,
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    items = wound_assessments(base, trial, page)
    assert len(items) == 1
    assert items[0]["drainage"] is True
    assert items[0]["measurement"]["area_cm2"] > 0
    # Nothing stays on the phone once the service has answered.
    assert (
        page.evaluate(
            """() => new Promise((ok) => { const r = indexedDB.open('woundscope-capture', 1);
            r.onsuccess = () => { const g = r.result.transaction('pending').objectStore('pending')
              .count(); g.onsuccess = () => ok(g.result); }; })"""
        )
        == 0
    )
    page.context.close()


def test_offline_photo_is_kept_then_sent_exactly_once(
    server: tuple[str, Trial],  # noqa: F811
    browser: Any,  # noqa: F811
    marker_file: Path,
) -> None:
    base, trial = server
    page = open_capture(browser, base, trial.keys["uploader"])
    new_wound(page, trial, "S91")
    page.context.set_offline(True)
    page.set_input_files("#file", str(marker_file))
    page.click("#send")
    page.wait_for_selector("#queue li", timeout=30_000)
    assert "kept on this phone" in page.inner_text("#status")
    assert wound_assessments(base, trial, page) == []
    page.context.set_offline(False)
    page.wait_for_selector("#queue-box[hidden]", state="attached", timeout=60_000)
    items = wound_assessments(base, trial, page)
    assert len(items) == 1
    # Its result shows when it arrives: area and the stored flags, in the Sent list.
    sent = page.locator(f"#sent li[data-assessment='{items[0]['id']}']")
    assert sent.count() == 1 and "cm²" in sent.inner_text()
    assert "reconnecting" in sent.inner_text()
    stored = [q["code"] for q in items[0]["measurement"]["quality"]]
    assert [li.get_attribute("data-code") for li in sent.locator(".flags li").all()] == stored
    # A second flush (the timer, another 'online') finds nothing left to send.
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.wait_for_timeout(1500)
    assert len(wound_assessments(base, trial, page)) == 1
    page.context.close()


def test_fake_camera_guidance_says_no_marker(
    server: tuple[str, Trial],  # noqa: F811
    browser: Any,
) -> None:
    base, trial = server
    page = open_capture(browser, base, trial.keys["uploader"])
    new_wound(page, trial, "S92")
    page.click("#start-camera")
    page.wait_for_selector("#guidance[data-marker=none]", timeout=30_000)
    assert "No marker" in page.inner_text("#guidance")
    assert page.is_disabled("#shutter")
    # Overriding with a reason enables the shutter.
    page.click("#override summary")
    page.fill("#override-reason", "marker lost, patient leaving")
    page.wait_for_function("() => !document.getElementById('shutter').disabled")
    page.context.close()


def test_camera_fills_the_phone_one_stream_one_list(
    server: tuple[str, Trial],  # noqa: F811
    marker_camera: Any,
) -> None:
    """Issue 25: the shutter was at y=1252 of an 844 px screen, "Use the camera" stayed
    visible and a second press opened a second stream, and the phone's box said "marker
    near the edge" in red while the server's said "take the photo" in green."""
    base, trial = server
    page = open_capture(marker_camera, base, trial.keys["uploader"])
    page.evaluate(
        """() => { window.__streams = 0; const md = navigator.mediaDevices;
        const get = md.getUserMedia.bind(md);
        md.getUserMedia = (c) => { window.__streams += 1; return get(c); }; }"""
    )
    new_wound(page, trial, "S95")
    page.click("#start-camera")
    page.wait_for_selector("#guidance[data-marker=found]", timeout=30_000)
    page.wait_for_function("() => !document.getElementById('shutter').disabled", timeout=30_000)
    box = page.locator("#shutter").bounding_box()
    assert box is not None
    assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"]
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert box["y"] > PHONE["height"] / 2  # the lower half: within the thumb's reach
    preview = page.locator("#preview").bounding_box()
    assert preview is not None and preview["width"] >= PHONE["width"] - 1
    assert page.is_hidden("#start-camera")
    page.evaluate("() => document.getElementById('start-camera').click()")
    page.wait_for_timeout(800)
    assert page.evaluate("window.__streams") == 1
    # One list, never contradicting itself: sampled over a few seconds, a list that
    # says "take the photo" holds no problem, and the shutter follows the list.
    for _ in range(8):
        state = page.evaluate(
            """() => ({ ok: document.querySelectorAll('#guidance li.ok').length,
                bad: document.querySelectorAll('#guidance li.bad').length,
                shutter: !document.getElementById('shutter').disabled,
                lists: document.querySelectorAll('.guidance').length })"""
        )
        assert state["lists"] == 1
        assert not (state["ok"] and state["bad"]), state
        assert state["shutter"] == bool(state["ok"]), state
        page.wait_for_timeout(400)
    page.click("#close-camera")
    assert page.is_visible("#start-camera")
    page.context.close()


def test_fake_camera_with_marker_guides_shoots_and_measures(
    server: tuple[str, Trial],  # noqa: F811
    marker_camera: Any,
) -> None:
    base, trial = server
    page = open_capture(marker_camera, base, trial.keys["uploader"])
    new_wound(page, trial, "S93")
    page.click("#start-camera")
    page.wait_for_selector("#guidance[data-marker=found]", timeout=30_000)
    assert "Marker found" in page.inner_text("#guidance")
    page.wait_for_function("() => !document.getElementById('shutter').disabled")
    page.click("#shutter")
    page.wait_for_selector("#review:not([hidden])")
    page.click("#send")
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)
    assert "cm²" in page.inner_text("#area")
    items = wound_assessments(base, trial, page)
    assert len(items) == 1 and items[0]["width"] == 1280 and items[0]["height"] == 720
    assert items[0]["measurement"]["calibration"] == "marker"
    page.context.close()


def test_retake_advice_and_accessibility(
    server: tuple[str, Trial],  # noqa: F811
    browser: Any,
) -> None:
    from axe_playwright_python.sync_playwright import Axe

    base, trial = server
    page = open_capture(browser, base, trial.keys["uploader"])
    new_wound(page, trial, "S94")
    page.set_input_files("#file", str(PHOTO))  # no marker in view
    page.click("#send")
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)
    flag = page.locator("#flags li[data-code=marker_not_found]")
    assert "place the printed" in flag.inner_text()
    assert "pixels" in page.inner_text("#area")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    results = Axe().run(page)
    serious = [
        (v["id"], v["impact"])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == []
    # The phone's list is the stored photo's flags (none added, none dropped).
    first = wound_assessments(base, trial, page)
    assert [li.get_attribute("data-code") for li in page.locator("#flags li").all()] == [
        q["code"] for q in first[0]["measurement"]["quality"]
    ]
    # Retake: a reason is asked (beside its field), then the new photo replaces the old.
    page.click("#retake")
    page.click("#retake-go")
    assert page.is_visible("#retake-error") and page.is_visible("#result")
    page.fill("#retake-reason", "marker not in view")
    page.click("#retake-go")
    assert page.is_hidden("#result")
    page.click("#close-camera")
    page.set_input_files("#file", str(PHOTO))
    assert "replaces the earlier one" in page.inner_text("#replacing")
    page.click("#send")
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)
    live = wound_assessments(base, trial, page)
    assert len(live) == 1 and live[0]["id"] != first[0]["id"]
    earlier = httpx.get(
        f"{base}/v1/assessments/{first[0]['id']}", headers=trial.auth("admin"), timeout=30
    ).json()
    assert earlier["voided"] and earlier["void_reason"] == "retaken: marker not in view"
    page.context.close()
