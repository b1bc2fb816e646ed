"""Every dashboard page in Chromium, at 1440 and 390 px, for an admin, a monitor and a
site clinician: axe-core finds no serious or critical violation, the browser asks no
host but the service's own, and the console shows no error."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.api.dashboard.test_browser import browser, server, sign_in  # noqa: F401  (fixtures)
from tests.core.healing.seed import Trial

pytestmark = pytest.mark.browser

SERIOUS = ("serious", "critical")


def pages_of(trial: Trial, role: str) -> list[str]:
    wound = trial.wounds["S01-W1"]
    pages = [
        "/dashboard/",
        f"/dashboard/studies/{trial.study}",
        f"/dashboard/studies/{trial.study}/quality",
        f"/dashboard/studies/{trial.study}/review",
        f"/dashboard/subjects/{trial.subjects['S01']}",
        f"/dashboard/wounds/{wound}",
        f"/dashboard/wounds/{wound}/compare",
    ]
    if role == "admin":  # the audit page is admin-only (others get 403)
        pages.append("/dashboard/audit")
    return pages


def own_host(url: str, base: str) -> bool:
    return url.startswith((f"{base}/", "data:", "blob:")) or url == base


@pytest.mark.parametrize("width", (1440, 390))
@pytest.mark.parametrize("role", ("admin", "monitor", "clinician"))
def test_every_page_is_accessible_local_and_quiet(
    server: tuple[str, Trial],  # noqa: F811
    browser: Any,  # noqa: F811
    role: str,
    width: int,
) -> None:
    from axe_playwright_python.sync_playwright import Axe

    base, trial = server
    page = sign_in(browser, base, trial.keys[role])
    page.set_viewport_size({"width": width, "height": 900})
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    def console(message: Any) -> None:
        if message.type == "error":
            errors.append(f"{page.url}: {message.text}")

    page.on("console", console)
    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    axe = Axe()
    found: list[tuple[str, str, str, list[str]]] = []
    for path in pages_of(trial, role):
        answer = page.goto(f"{base}{path}")
        assert answer is not None and answer.status == 200, (role, path)
        page.wait_for_load_state("load")
        for plot in page.locator(".plot").all():
            page.wait_for_selector(
                f"#{plot.get_attribute('id')}[data-rendered=true]", timeout=30_000
            )
        for violation in axe.run(page).response["violations"]:
            if violation["impact"] in SERIOUS:
                targets = [str(node["target"]) for node in violation["nodes"][:3]]
                found.append((path, violation["id"], violation["impact"], targets))
    assert found == []
    assert [u for u in requests if not own_host(u, base)] == []
    # The recording works, and every asset came by its content-hashed URL.
    statics = [u.split("?")[0] for u in requests if "/dashboard/static/" in u]
    assert any("plotly.min." in u for u in statics), requests
    assert [u for u in statics if not re.search(r"\.[0-9a-f]{8}\.(js|css|svg)$", u)] == []
    assert errors == []
    page.context.close()
