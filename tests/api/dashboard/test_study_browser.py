"""Study page filters, cumulative incidence, data quality, subject events and the audit
page in headless Chromium at 1440 and 390 px (issue 16), on test_browser's server."""

# ruff: noqa: F811  (the fixtures are test_browser's: one uvicorn server per module)
from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.dashboard.test_browser import SHARE_BUTTONS, WIDTHS, browser, server, sign_in
from tests.core.healing.seed import Trial

pytestmark = pytest.mark.browser

__all__ = ["browser", "server"]


def watch_console(page: Any) -> list[str]:
    errors: list[str] = []

    def console(message: Any) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", console)
    return errors


def fits(page: Any, width: int) -> None:
    scroll_w = page.evaluate("() => document.documentElement.scrollWidth")
    assert scroll_w <= width, (page.url, scroll_w)


@pytest.mark.parametrize("width", WIDTHS)
def test_study_filters_plots_and_quality(
    server: tuple[str, Trial], browser: Any, width: int
) -> None:
    base, trial = server
    for role in ("admin", "monitor"):
        page = sign_in(browser, base, trial.keys[role])
        page.set_viewport_size({"width": width, "height": 900})
        errors = watch_console(page)
        page.goto(f"{base}/dashboard/studies/{trial.study}")
        for plot_id in ("km-plot", "incidence-plot"):
            page.wait_for_selector(f"#{plot_id}[data-rendered=true]", timeout=30_000)
            page.locator(f"#{plot_id}").hover()
            assert page.locator(f"#{plot_id} .modebar-btn").count() > 0
        assert page.locator(SHARE_BUTTONS).count() == 0
        rows = page.locator("#subjects tbody tr[data-subject]")
        assert rows.count() == 2
        fits(page, width)
        # Filter by keyboard-reachable form controls; the URL carries the filter.
        page.select_option("#subject-filters select[name=site]", "A")
        with page.expect_navigation():
            page.locator("#subject-filters button[type=submit]").click()
        assert "site=A" in page.url
        assert [r.get_attribute("data-subject") for r in rows.all()] == ["S01"]
        page.fill("#subject-filters input[name=q]", "S02")
        page.select_option("#subject-filters select[name=site]", "")
        with page.expect_navigation():
            page.locator("#subject-filters input[name=q]").press("Enter")
        assert [r.get_attribute("data-subject") for r in rows.all()] == ["S02"]
        # The link is shareable: a fresh page at that URL shows the same.
        shared = page.url
        page.goto(shared)
        assert [r.get_attribute("data-subject") for r in rows.all()] == ["S02"]
        page.goto(f"{base}/dashboard/studies/{trial.study}")
        page.click("#quality-link")
        assert page.locator("#site-quality tr[data-site]").count() == 2
        fits(page, width)
        assert errors == [], errors
        page.context.close()


def test_events_recorded_and_voided_in_the_browser(server: tuple[str, Trial], browser: Any) -> None:
    base, trial = server
    subject = trial.subjects["S02"]
    page = sign_in(browser, base, trial.keys["clinician_b"])
    errors = watch_console(page)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{base}/dashboard/subjects/{subject}")
        fits(page, width)
    form = page.locator("#event-form")
    form.locator("select[name=kind]").select_option("major_amputation")
    form.locator("input[name=on]").fill("2026-03-10")
    form.locator("input[name=note]").fill("below knee")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    # Refused (no leg): the page keeps what was typed and says why.
    assert page.locator("#event-form .error").count() == 1
    assert page.locator("#event-form input[name=note]").input_value() == "below knee"
    # The refused form's page answers 422 (as the API); Chromium logs that status.
    assert [e for e in errors if "422" not in e] == []
    errors.clear()
    page.locator("#event-form select[name=leg]").select_option("contralateral")
    with page.expect_navigation():
        page.locator("#event-form button[type=submit]").click()
    row = page.locator("#event-list tr[data-event]")
    assert row.count() == 1 and "major amputation" in row.inner_text()
    row.locator("input[name=reason]").fill("entered for the wrong subject")
    with page.expect_navigation():
        row.locator("button").click()
    row = page.locator("#event-list tr[data-event]")
    assert "voided: entered for the wrong subject" in row.inner_text()
    assert row.get_attribute("class") == "voided"
    events = httpx.get(
        f"{base}/v1/subjects/{subject}/events", headers=trial.auth("admin"), timeout=30
    ).json()
    assert [(e["kind"], e["leg"], e["voided"]) for e in events] == [
        ("major_amputation", "contralateral", True)
    ]
    assert errors == [], errors
    page.context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_audit_page_for_admins_only(server: tuple[str, Trial], browser: Any, width: int) -> None:
    base, trial = server
    page = sign_in(browser, base, trial.keys["admin"])
    page.set_viewport_size({"width": width, "height": 900})
    page.click("#audit-link")
    assert page.locator("#audit tbody tr[data-action]").count() > 0
    fits(page, width)
    page.fill("#audit-filters input[name=action]", "study.")
    with page.expect_navigation():
        page.locator("#audit-filters button[type=submit]").click()
    actions = [r.get_attribute("data-action") for r in page.locator("#audit tr[data-action]").all()]
    assert actions and all(a.startswith("study.") for a in actions)
    page.context.close()
    page = sign_in(browser, base, trial.keys["monitor"])
    assert page.locator("#audit-link").count() == 0
    answer = page.goto(f"{base}/dashboard/audit")
    assert answer is not None and answer.status == 403
    page.context.close()
