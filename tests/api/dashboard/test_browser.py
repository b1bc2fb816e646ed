"""The dashboard in headless Chromium against a real uvicorn server (temp data dir)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.persistence.db import Database
from tests.conftest import ROOT, need
from tests.core.healing.seed import MODEL_DIR, PHOTO, SERIES, Trial, area_cm2, seed, square

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Trial]]:
    need((MODEL_DIR / "model.onnx").is_file(), f"the bundled model is not at {MODEL_DIR}")
    need(PHOTO.is_file(), f"the sample photo is not at {PHOTO}")
    data_dir: Path = tmp_path_factory.mktemp("dashboard")
    port = free_port()
    env = {
        **os.environ,
        "WOUNDSCOPE_DATA_DIR": str(data_dir),
        "WOUNDSCOPE_MODEL": str(MODEL_DIR),
        "WOUNDSCOPE_LOG_JSON": "false",
        "WOUNDSCOPE_LOG_LEVEL": "WARNING",
    }
    log = (data_dir / "server.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "service.api.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((data_dir / "server.log").read_text()[-3000:])
            time.sleep(0.3)
        with httpx.Client(base_url=base, timeout=60) as client:
            trial = seed(client, Database(f"sqlite:///{data_dir / 'woundscope.db'}"))
        yield base, trial
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


@pytest.fixture(scope="module")
def browser(chromium_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium_path), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def sign_in(browser: Any, base: str, key: str) -> Any:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{base}/dashboard/")
    assert page.url.endswith("/dashboard/login")
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/dashboard/")
    return page


def area_points(page: Any) -> dict[str, Any]:
    page.wait_for_selector("#area-plot[data-rendered=true]", timeout=30_000)
    return page.evaluate(
        """() => {
            const trace = document.getElementById('area-plot').data
                .find((t) => t.name === 'area (cm²)');
            return {x: trace.x, y: trace.y, ids: trace.customdata.map((c) => c[2])};
        }"""
    )


def test_sign_in_open_a_wound_plot_has_one_point_per_assessment(
    server: tuple[str, Trial], browser: Any
) -> None:
    base, trial = server
    page = sign_in(browser, base, trial.keys["clinician"])
    cookie = next(c for c in page.context.cookies() if c["name"] == "ws_session")
    assert cookie["httpOnly"] is True
    page.click(f"a[href='/dashboard/studies/{trial.study}']")
    page.wait_for_selector("#km-plot[data-rendered=true]", timeout=30_000)
    # Site A's clinician sees site A's subject only.
    assert page.locator("#subjects tbody tr").count() == 1
    page.click("text=S01")
    page.click("#wounds a")
    points = area_points(page)
    assert len(points["x"]) == len(SERIES["S01-W1"])
    assert points["ids"] == trial.assessments["S01-W1"]
    assert points["y"][0] == pytest.approx(area_cm2(100), rel=0.05)
    assert page.locator("#measurements tbody tr").count() == len(SERIES["S01-W1"])
    # Every plot downloads as PNG (plotly's camera) or SVG (our button), client-side.
    page.hover("#area-plot")
    assert page.locator("#area-plot .modebar-btn[data-title='Download plot as SVG']").count() == 1
    assert page.locator("#area-plot .modebar-btn[data-title='Download plot as a PNG']").count() == 1
    # The photo strip shows overlays served through the session.
    page.locator(".strip img").first.scroll_into_view_if_needed()
    page.wait_for_function(
        "() => { const img = document.querySelector('.strip img');"
        " return img.complete && img.naturalWidth > 0; }",
        timeout=30_000,
    )
    # Local assets only: no request left this server.
    assert "cdn" not in page.content().lower()


def test_a_clinicians_correction_appears_in_plot_and_table(
    server: tuple[str, Trial], browser: Any
) -> None:
    base, trial = server
    page = sign_in(browser, base, trial.keys["clinician"])
    page.goto(f"{base}/dashboard/wounds/{trial.wounds['S01-W1']}")
    target = trial.assessments["S01-W1"][1]
    panel = page.locator(f"details.correct[data-assessment='{target}']")
    panel.locator("> summary").click()
    before = panel.locator("img.outline-source").get_attribute("src")
    panel.locator(".advanced > summary").click()  # the coordinates are behind "Advanced"
    panel.locator("textarea[name=polygon]").fill(square(50))
    panel.locator("form[action$='/correct'] input[name=reason]").fill("outline missed the slough")
    with page.expect_navigation():
        panel.locator("form[action$='/correct'] button[type=submit]").click()
    # The saved outline shows at once: the overlay URL names the new measurement.
    page.wait_for_function(
        "([id, before]) => { const img = document.querySelector("
        "`details.correct[data-assessment='${id}'] img.outline-source`);"
        " return img && img.getAttribute('src') !== before; }",
        arg=[target, before],
        timeout=20_000,
    )
    after = panel.locator("img.outline-source").get_attribute("src")
    assert before and after and "?measurement=" in after and after != before
    points = area_points(page)
    assert points["y"][1] == pytest.approx(area_cm2(50), rel=0.1)
    row = page.locator(f"#measurements tr[data-assessment='{target}']")
    assert float(row.locator("td.area").inner_text()) == pytest.approx(area_cm2(50), abs=0.02)
    assert "outline missed the slough" in row.locator("td.made-by").inner_text()


def test_another_sites_subject_cannot_be_reached(server: tuple[str, Trial], browser: Any) -> None:
    base, trial = server
    page = sign_in(browser, base, trial.keys["clinician"])
    for path in (
        f"/dashboard/subjects/{trial.subjects['S02']}",
        f"/dashboard/wounds/{trial.wounds['S02-W1']}",
    ):
        response = page.goto(f"{base}{path}")
        assert response.status == 404
        assert "not_found" in page.content()
        assert "S02" not in page.locator("main").inner_text()


def test_a_monitor_cannot_correct(server: tuple[str, Trial], browser: Any) -> None:
    base, trial = server
    page = sign_in(browser, base, trial.keys["monitor"])
    page.goto(f"{base}/dashboard/wounds/{trial.wounds['S02-W1']}")
    before = area_points(page)["y"]
    assert page.locator("details.correct").count() == 0
    # Even a hand-made request with the monitor's own CSRF token is refused.
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    target = trial.assessments["S02-W1"][0]
    response = page.request.post(
        f"{base}/dashboard/assessments/{target}/correct",
        multipart={"csrf": csrf, "polygon": square(30), "reason": "monitor tries"},
        max_redirects=0,
    )
    assert response.status == 403
    page.reload()
    assert area_points(page)["y"] == before


def test_forms_need_the_csrf_token(server: tuple[str, Trial], browser: Any) -> None:
    base, trial = server
    page = sign_in(browser, base, trial.keys["clinician"])
    target = trial.assessments["S01-W1"][0]
    response = page.request.post(
        f"{base}/dashboard/assessments/{target}/correct",
        multipart={"csrf": "forged", "polygon": square(30), "reason": "cross-site"},
        max_redirects=0,
    )
    assert response.status == 403


WIDTHS = (1440, 390)
SHARE_BUTTONS = (
    ".modebar-btn[data-title*='Share' i], .modebar-btn[data-title*='Chart Studio' i],"
    " .modebar-btn[data-title*='cloud' i], .modebar-btn[data-attr='sendDataToCloud']"
)


def pages_of(trial: Trial) -> list[str]:
    return [
        "/dashboard/",
        f"/dashboard/studies/{trial.study}",
        f"/dashboard/studies/{trial.study}/review",
        f"/dashboard/studies/{trial.study}/quality",
        f"/dashboard/subjects/{trial.subjects['S01']}",
        f"/dashboard/wounds/{trial.wounds['S01-W1']}",
    ]


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_fits_the_screen_and_shares_nothing(
    server: tuple[str, Trial], browser: Any, width: int
) -> None:
    base, trial = server
    for role in ("admin", "monitor", "clinician"):
        page = sign_in(browser, base, trial.keys[role])
        page.set_viewport_size({"width": width, "height": 900})
        errors: list[str] = []

        def console(message: Any, errors: list[str] = errors) -> None:
            if message.type == "error":
                errors.append(message.text)

        page.on("console", console)
        for path in pages_of(trial):
            page.goto(f"{base}{path}")
            page.wait_for_load_state("load")
            for plot in page.locator(".plot").all():
                plot_id = plot.get_attribute("id")
                page.wait_for_selector(f"#{plot_id}[data-rendered=true]", timeout=30_000)
                plot.hover()
                assert page.locator(f"#{plot_id} .modebar-btn").count() > 0
                assert (
                    page.locator(
                        f"#{plot_id} {SHARE_BUTTONS}".replace(", .", f", #{plot_id} .")
                    ).count()
                    == 0
                )
                # The legend sits under the plot: the plotting area keeps most of the
                # plot's own width (two plots may share a row on a wide screen).
                plot_w, box_w = page.evaluate(
                    f"() => {{ const d = document.getElementById('{plot_id}');"
                    " return [d._fullLayout._size.w, d.clientWidth]; }"
                )
                assert plot_w >= box_w * 0.6, (path, plot_id, plot_w, box_w)
                assert box_w >= min(width - 60, 400), (path, plot_id, box_w)
            assert page.locator(SHARE_BUTTONS).count() == 0, path
            scroll_w = page.evaluate("() => document.documentElement.scrollWidth")
            assert scroll_w <= width, (role, path, scroll_w)
        assert errors == [], errors
        page.context.close()


def test_a_thumbnail_enlarges(server: tuple[str, Trial], browser: Any) -> None:
    base, trial = server
    page = sign_in(browser, base, trial.keys["clinician"])
    page.goto(f"{base}/dashboard/wounds/{trial.wounds['S01-W1']}")
    link = page.locator(".strip a.lightbox").first
    href = link.get_attribute("href")
    assert href is not None and "?measurement=" in href
    link.click()
    dialog = page.locator("dialog#lightbox")
    assert dialog.is_visible()
    page.wait_for_function(
        "() => { const img = document.querySelector('#lightbox img');"
        " return img.complete && img.naturalWidth > 0; }",
        timeout=30_000,
    )
    page.keyboard.press("Escape")
    assert not dialog.is_visible()


@pytest.fixture(scope="module")
def awaiting(server: tuple[str, Trial]) -> tuple[str, str]:
    """Central reading (policy ``all``) and a model-measured photo of a new wound of S01:
    it waits in the review queue. Returns (wound, assessment)."""
    base, trial = server
    admin = trial.auth("admin")
    with httpx.Client(base_url=base, timeout=120) as client:
        client.patch(
            f"/v1/studies/{trial.study}", json={"review": "all"}, headers=admin
        ).raise_for_status()
        wound = client.post(
            f"/v1/subjects/{trial.subjects['S01']}/wounds",
            json={"label": "W9", "location": "left heel", "index_leg": False},
            headers=admin,
        )
        wound.raise_for_status()
        upload = client.post(
            f"/v1/wounds/{wound.json()['id']}/assessments",
            data={"captured_at": "2026-01-05", "px_per_mm": "10"},
            files={"photo": ("photo.jpg", PHOTO.read_bytes(), "image/jpeg")},
            headers=admin,
        )
        upload.raise_for_status()
    return wound.json()["id"], upload.json()["id"]


@pytest.mark.parametrize("width", WIDTHS)
def test_review_accept_unaccept_void_in_the_browser(
    server: tuple[str, Trial], browser: Any, awaiting: tuple[str, str], width: int
) -> None:
    base, trial = server
    wound, target = awaiting
    page = sign_in(browser, base, trial.keys["clinician"])
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{base}/dashboard/studies/{trial.study}")
    link = page.locator("#review-link")
    if width == WIDTHS[-1]:
        # Second run: the first voided the photo.
        assert "0" in link.inner_text()
        return
    assert "1 photo awaiting" in link.inner_text()
    link.click()
    item = page.locator(f"article.review-item[data-assessment='{target}']")
    assert item.locator(".flags, p").count() > 0
    page.wait_for_function(
        "() => { const img = document.querySelector('.review-photo img');"
        " return img.complete && img.naturalWidth > 0; }",
        timeout=30_000,
    )
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    item.locator("form[action$='/accept'] button").click()  # accepted in place, undoable
    page.wait_for_selector(f"article.review-item.done[data-assessment='{target}']")
    page.reload()
    assert page.locator("article.review-item").count() == 0
    # Un-accept on the wound page sends it back to the queue.
    page.goto(f"{base}/dashboard/wounds/{wound}?correct={target}")
    panel = page.locator(f"details#correct-{target}")
    assert panel.get_attribute("open") is not None
    with page.expect_navigation():
        panel.locator("form.accept button").click()
    page.goto(f"{base}/dashboard/studies/{trial.study}/review")
    assert page.locator("article.review-item").count() == 1
    # Void with a reason.
    item = page.locator(f"article.review-item[data-assessment='{target}']")
    item.locator("form.void input[name=reason]").fill("photo of the wrong foot")
    item.locator("form.void button").click()
    assert page.locator("#confirm-void-reason").input_value() == "photo of the wrong foot"
    with page.expect_navigation():
        page.locator("#confirm-void-go").click()
    assert page.locator("article.review-item").count() == 0
    page.goto(f"{base}/dashboard/wounds/{wound}")
    assert page.locator(".void-reason").first.inner_text() == "photo of the wrong foot"
