"""Every dashboard page as issue 25 asks, in headless Chromium at 390 and 1440 px, on
test_browser's server: no sideways scroll (the sign-in page included), no console error
(a favicon, no 404), thumbnails drawn at their photo's aspect ratio, the columns that
decide the trial inside a 1440 px screen without scrolling, the plot tool bar clear of
the plot titles on a phone, and a refused form that keeps its input, shows its error
beside the control, and whose URL opened again is a page, never JSON."""

# ruff: noqa: F811  (the fixtures are test_browser's: one uvicorn server per module)
from __future__ import annotations

from typing import Any

import pytest

from tests.api.dashboard.test_a11y import SERIOUS, pages_of
from tests.api.dashboard.test_browser import WIDTHS, browser, server, sign_in
from tests.core.healing.seed import Trial

pytestmark = pytest.mark.browser

__all__ = ["browser", "server"]

ASPECT_TOLERANCE = 0.05


def watch_console(page: Any) -> list[str]:
    errors: list[str] = []
    page.on(
        "console", lambda m: errors.append(f"{page.url}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
    return errors


def thumbnail_aspects(page: Any) -> list[dict[str, Any]]:
    """Every loaded thumbnail's drawn and natural aspect ratio (each scrolled into view
    first: they load lazily)."""
    for img in page.locator("a.lightbox img").all():
        img.scroll_into_view_if_needed()
    page.wait_for_function(
        "() => [...document.querySelectorAll('a.lightbox img')]"
        ".every((i) => i.complete && i.naturalWidth > 0)",
        timeout=30_000,
    )
    aspects: list[dict[str, Any]] = page.evaluate(
        """() => [...document.querySelectorAll('a.lightbox img')].map((i) => {
            const box = i.getBoundingClientRect();
            return {src: i.src, drawn: box.width / box.height,
                    natural: i.naturalWidth / i.naturalHeight};
        })"""
    )
    return aspects


def inside_viewport(page: Any, selector: str, width: int) -> bool:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return bool(box["x"] >= 0 and box["x"] + box["width"] <= width)


def boxes_overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_fits_and_shows_what_counts(
    server: tuple[str, Trial], browser: Any, width: int
) -> None:
    base, trial = server
    # The sign-in page first: it scrolled sideways at 390 (a 50-character input).
    context = browser.new_context(viewport={"width": width, "height": 900})
    login = context.new_page()
    errors = watch_console(login)
    login.goto(f"{base}/dashboard/login")
    assert login.evaluate("document.documentElement.scrollWidth") <= width
    icon = login.locator("link[rel=icon]").get_attribute("href")
    assert icon and login.request.get(f"{base}{icon}").status == 200
    context.close()
    assert errors == []

    page = sign_in(browser, base, trial.keys["admin"])
    page.set_viewport_size({"width": width, "height": 900})
    errors = watch_console(page)
    for path in pages_of(trial, "admin"):
        page.goto(f"{base}{path}")
        for plot in page.locator(".plot").all():
            page.wait_for_selector(
                f"#{plot.get_attribute('id')}[data-rendered=true]", timeout=30_000
            )
            if width < 700:  # the tool bar (top right) never covers the plot's title
                plot.hover()
                bar = plot.locator(".modebar").bounding_box()
                title = plot.locator(".gtitle").bounding_box()
                assert bar and title and not boxes_overlap(bar, title), (path, bar, title)
        scroll_w = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_w <= width, (path, scroll_w)
        for thumb in thumbnail_aspects(page):
            ratio = thumb["drawn"] / thumb["natural"]
            assert abs(ratio - 1) <= ASPECT_TOLERANCE, (path, thumb)
    # The columns that decide the trial, seen at 1440 px without scrolling; reachable
    # (in the table's own scroll box) at 390.
    counted = "#measurements thead th:has-text('counted')"
    closed = "#measurements thead th:has-text('closed')"
    closure = "#subjects thead th:has-text('time to closure')"
    if width == 1440:
        page.goto(f"{base}/dashboard/wounds/{trial.wounds['S01-W1']}")
        assert inside_viewport(page, counted, width) and inside_viewport(page, closed, width)
        page.goto(f"{base}/dashboard/studies/{trial.study}")
        assert inside_viewport(page, closure, width)
        page.goto(f"{base}/dashboard/subjects/{trial.subjects['S01']}")
        assert inside_viewport(page, "#wounds thead th:has-text('time to closure')", width)
    else:
        page.goto(f"{base}/dashboard/wounds/{trial.wounds['S01-W1']}")
        page.locator(counted).scroll_into_view_if_needed()
        assert inside_viewport(page, counted, width)
    assert errors == [], errors
    page.context.close()


def test_a_refused_form_keeps_its_input_and_its_url_is_a_page(
    server: tuple[str, Trial], browser: Any
) -> None:
    base, trial = server
    subject = trial.subjects["S01"]
    page = sign_in(browser, base, trial.keys["clinician"])
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/dashboard/subjects/{subject}")
    form = page.locator("#event-form")
    form.locator("select[name=kind]").select_option("major_amputation")
    form.locator("input[name=on]").fill("2026-03-10")
    form.locator("input[name=note]").fill("below knee, theatre list 4")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    # Refused (no leg): what was typed is kept, the error sits in the form, in view,
    # in words (the code is not the text).
    error = page.locator("#event-form .error")
    assert error.count() == 1 and "leg" in error.inner_text()
    assert "invalid_request" not in error.inner_text()
    assert form.locator("input[name=note]").input_value() == "below knee, theatre list 4"
    assert form.locator("input[name=on]").input_value() == "2026-03-10"
    assert form.locator("select[name=kind]").input_value() == "major_amputation"
    page.wait_for_function(
        "() => { const b = document.querySelector('#event-form .error').getBoundingClientRect();"
        " return b.top >= 0 && b.bottom <= window.innerHeight; }",
        timeout=5_000,
    )
    # The URL left behind, opened again, is the subject page, not {"code": ...}.
    answer = page.goto(page.url)
    assert answer is not None and answer.status == 200
    assert page.url.startswith(f"{base}/dashboard/subjects/{subject}")
    assert not page.locator("body").inner_text().lstrip().startswith("{")
    # So are the photo forms' URLs.
    photo = trial.assessments["S01-W1"][0]
    for action in ("void", "accept", "correct", "observe"):
        answer = page.goto(f"{base}/dashboard/assessments/{photo}/{action}")
        assert answer is not None and answer.status == 200, action
        assert page.url.startswith(f"{base}/dashboard/wounds/{trial.wounds['S01-W1']}")
    page.context.close()


def test_subject_warnings_are_grouped_and_pages_pass_axe(
    server: tuple[str, Trial], browser: Any
) -> None:
    from axe_playwright_python.sync_playwright import Axe

    base, trial = server
    page = sign_in(browser, base, trial.keys["admin"])
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/dashboard/subjects/{trial.subjects['S01']}")
    groups = page.locator(".warning-group")
    keys = [(g.get_attribute("data-wound"), g.get_attribute("data-code")) for g in groups.all()]
    assert len(keys) == len(set(keys))  # one line per wound and flag
    found = []
    for path in (
        f"/dashboard/subjects/{trial.subjects['S01']}",
        "/dashboard/audit",
        f"/dashboard/wounds/{trial.wounds['S01-W1']}/compare",
    ):
        page.goto(f"{base}{path}")
        for violation in Axe().run(page).response["violations"]:
            if violation["impact"] in SERIOUS:
                found.append((path, violation["id"]))
    page.context.close()
    context = browser.new_context(viewport={"width": 390, "height": 844})
    login = context.new_page()
    login.goto(f"{base}/dashboard/login")
    found += [
        ("login", v["id"])
        for v in Axe().run(login).response["violations"]
        if v["impact"] in SERIOUS
    ]
    context.close()
    assert found == []
