"""The one-gesture editor and the review queue in headless Chromium (1440 and 390 px):
a box gives a suggested outline that saves to a new area; points add and remove parts;
a drag at high zoom moves the vertex aimed at; batch accept and its undo; void asks
first. Real server, real model (the fixtures of test_browser)."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx
import pytest

from tests.api.dashboard.test_browser import (  # noqa: F401  (fixtures)
    WIDTHS,
    area_points,
    browser,
    server,
    sign_in,
)
from tests.core.healing.seed import PHOTO, Trial

pytestmark = pytest.mark.browser

WOUND_BOX = (155, 176, 220, 288)  # sample 0078's wound (x 160-214, y 186-278), photo px
WOUND_CENTRE = (187, 232)


def polygon_of(panel: Any) -> list:
    text = panel.locator("textarea[name=polygon]").input_value()
    return json.loads(text) if text.strip() else []


def to_screen(page: Any, panel: Any, x: float, y: float) -> tuple[float, float]:
    """Photo pixels -> screen through the editor's SVG (whatever the zoom)."""
    return tuple(
        page.evaluate(
            """([id, x, y]) => {
                const svg = document.querySelector(`details.correct[data-assessment='${id}'] svg`);
                const p = svg.createSVGPoint(); p.x = x; p.y = y;
                const s = p.matrixTransform(svg.getScreenCTM());
                return [s.x, s.y];
            }""",
            [panel.get_attribute("data-assessment"), x, y],
        )
    )


def open_editor(page: Any, base: str, wound: str, target: str) -> Any:
    page.goto(f"{base}/dashboard/wounds/{wound}?correct={target}")
    selector = f"details.correct[data-assessment='{target}']"
    page.wait_for_selector(f"{selector} .outline-editor[data-ready=true]", timeout=30_000)
    panel = page.locator(selector)
    panel.locator(".outline-editor").scroll_into_view_if_needed()
    return panel


def drag(page: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, steps=3)
    page.mouse.move(*end, steps=3)
    page.mouse.up()


def wait_suggestion(page: Any, panel: Any, after: int = 0) -> None:
    page.wait_for_function(
        "([id, after]) => { const e = document.querySelector("
        "`details.correct[data-assessment='${id}'] .outline-editor`);"
        " return Number(e.dataset.suggested || 0) > after && e.dataset.busy !== 'true'; }",
        arg=[panel.get_attribute("data-assessment"), after],
        timeout=30_000,
    )


def box_suggestion(page: Any, panel: Any) -> float:
    x0, y0 = to_screen(page, panel, WOUND_BOX[0], WOUND_BOX[1])
    x1, y1 = to_screen(page, panel, WOUND_BOX[2], WOUND_BOX[3])
    drag(page, (x0, y0), (x1, y1))
    wait_suggestion(page, panel)
    return float(panel.locator(".suggestion").get_attribute("data-area-cm2") or "nan")


@pytest.mark.parametrize("width", WIDTHS)
def test_box_suggestion_save_shows_the_new_area(
    server: tuple[str, Trial],  # noqa: F811
    browser: Any,  # noqa: F811
    width: int,
) -> None:
    base, trial = server
    page = sign_in(browser, base, trial.keys["clinician"])
    page.set_viewport_size({"width": width, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    target = trial.assessments["S01-W1"][WIDTHS.index(width)]
    panel = open_editor(page, base, trial.wounds["S01-W1"], target)
    area = box_suggestion(page, panel)
    polygon = polygon_of(panel)
    assert len(polygon) >= 3 and not isinstance(polygon[0][0], list)
    xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
    assert WOUND_BOX[0] - 8 <= min(xs) and max(xs) <= WOUND_BOX[2] + 8
    assert WOUND_BOX[1] - 8 <= min(ys) and max(ys) <= WOUND_BOX[3] + 8
    # 0078's wound is about 2,050 px at 10 px/mm: ~0.2 cm²
    assert 0.1 < area < 0.4
    reason = panel.locator("form[action$='/correct'] input[name=reason]")
    assert reason.input_value()  # filled in for the one-gesture save
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    with page.expect_navigation():
        panel.locator("form[action$='/correct'] button[type=submit]").click()
    row = page.locator(f"#measurements tr[data-assessment='{target}']")
    assert float(row.locator("td.area").inner_text()) == pytest.approx(area, abs=0.006)
    assert "manual" in row.locator("td.made-by").inner_text()
    points = area_points(page)
    assert points["y"][points["ids"].index(target)] == pytest.approx(area, abs=0.006)
    assert errors == [], errors
    page.context.close()


def test_points_add_and_remove_parts_and_undo(
    server: tuple[str, Trial],  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    base, trial = server
    page = sign_in(browser, base, trial.keys["clinician"])
    page.set_viewport_size({"width": 1440, "height": 900})
    target = trial.assessments["S01-W1"][2]
    panel = open_editor(page, base, trial.wounds["S01-W1"], target)
    box_suggestion(page, panel)
    boxed = polygon_of(panel)
    assert boxed
    # "− region" on the wound takes it out
    panel.locator("button.tool[data-tool=remove]").click()
    page.mouse.click(*to_screen(page, panel, *WOUND_CENTRE))
    wait_suggestion(page, panel, 1)
    assert polygon_of(panel) == []
    # Ctrl+Z brings it back (no request)
    panel.locator(".outline-editor").focus()
    page.keyboard.press("Control+z")
    assert polygon_of(panel) == boxed
    # "+ region" on plain skin far from the wound adds a part there
    panel.locator("button.tool[data-tool=add]").click()
    page.mouse.click(*to_screen(page, panel, 420, 80))
    wait_suggestion(page, panel, 2)
    parts = polygon_of(panel)
    assert isinstance(parts[0][0], list) and len(parts) == 2  # the wound and the new part
    page.context.close()


def test_a_drag_at_high_zoom_moves_the_vertex_aimed_at(
    server: tuple[str, Trial],  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    base, trial = server
    page = sign_in(browser, base, trial.keys["admin"])
    page.set_viewport_size({"width": 1440, "height": 900})
    target = trial.assessments["S02-W1"][0]
    panel = open_editor(page, base, trial.wounds["S02-W1"], target)
    # Two vertices 3 photo px apart: at 1x they overlap on screen.
    panel.locator(".advanced > summary").click()
    close = [[40, 40], [43, 40], [160, 40], [160, 160], [40, 160]]
    field = panel.locator("textarea[name=polygon]")
    field.fill(json.dumps(close))
    field.dispatch_event("change")
    handle = panel.locator("circle.vertex").nth(1)
    size_1x = handle.bounding_box()
    assert size_1x is not None
    # Zoom in with the wheel over the two vertices (about 8x).
    at = to_screen(page, panel, 41.5, 40)
    page.mouse.move(*at)
    for _ in range(6):
        page.mouse.wheel(0, -250)
    zoom = float(panel.locator(".outline-editor").get_attribute("data-zoom") or 1)
    assert zoom > 4
    size_zoomed = handle.bounding_box()
    assert size_zoomed is not None
    assert size_zoomed["width"] == pytest.approx(size_1x["width"], abs=2)  # same screen size
    # Aim at vertex 2 (43, 40) and drag it 40 screen px down.
    start = to_screen(page, panel, 43, 40)
    drag(page, start, (start[0], start[1] + 40))
    moved = polygon_of(panel)
    assert moved[0] == [40, 40]  # the neighbour stayed
    assert moved[1][0] == pytest.approx(43, abs=1)
    assert moved[1][1] == pytest.approx(40 + 40 / (zoom * size_ratio(page, panel)), abs=1.5)
    # the buttons zoom too, and Fit goes back to the whole photo
    panel.locator("button.zoom-fit").click()
    assert float(panel.locator(".outline-editor").get_attribute("data-zoom") or 0) == 1
    panel.locator("button.zoom-in").click()
    assert float(panel.locator(".outline-editor").get_attribute("data-zoom") or 0) > 1
    page.context.close()


def size_ratio(page: Any, panel: Any) -> float:
    """Screen px per photo px at zoom 1 (the photo's drawn width / its width)."""
    return float(
        page.evaluate(
            """(id) => { const img = document.querySelector(
                `details.correct[data-assessment='${id}'] img.outline-source`);
                return img.clientWidth / img.naturalWidth; }""",
            panel.get_attribute("data-assessment"),
        )
    )


def queue_of(base: str, trial: Trial, n: int) -> tuple[str, list[str]]:
    """Central reading and ``n`` new model-measured photos of a new wound of S01 (site
    A): they wait in the queue. (wound, assessments)."""
    admin = trial.auth("admin")
    with httpx.Client(base_url=base, timeout=120) as client:
        client.patch(
            f"/v1/studies/{trial.study}", json={"review": "all"}, headers=admin
        ).raise_for_status()
        wound = client.post(
            f"/v1/subjects/{trial.subjects['S01']}/wounds",
            json={"label": f"Q{secrets.token_hex(3)}", "location": "left heel", "index_leg": False},
            headers=admin,
        )
        wound.raise_for_status()
        ids = []
        for day in range(n):
            upload = client.post(
                f"/v1/wounds/{wound.json()['id']}/assessments",
                data={"captured_at": f"2026-03-{day + 1:02d}", "px_per_mm": "10"},
                files={"photo": ("photo.jpg", PHOTO.read_bytes(), "image/jpeg")},
                headers=admin,
            )
            upload.raise_for_status()
            ids.append(upload.json()["id"])
    return wound.json()["id"], ids


def review_status(base: str, trial: Trial, assessment: str) -> str:
    answer = httpx.get(
        f"{base}/v1/assessments/{assessment}", headers=trial.auth("clinician"), timeout=30
    )
    return str(answer.json()["review"]["status"])


@pytest.mark.parametrize("width", WIDTHS)
def test_batch_accept_undo_and_void_confirmation(
    server: tuple[str, Trial],  # noqa: F811
    browser: Any,  # noqa: F811
    width: int,
) -> None:
    base, trial = server
    _, ids = queue_of(base, trial, 3)
    page = sign_in(browser, base, trial.keys["clinician"])
    page.set_viewport_size({"width": width, "height": 844 if width < 500 else 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{base}/dashboard/studies/{trial.study}/review")
    assert page.locator(".queue-counts li").count() >= 1
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    cards = {i: page.locator(f"article.review-item[data-assessment='{i}']") for i in ids}
    if width < 500:  # one card per photo, the photo first
        card = cards[ids[0]]
        photo_box = card.locator(".review-photo").bounding_box()
        body_box = card.locator(".review-body").bounding_box()
        assert photo_box and body_box and photo_box["y"] < body_box["y"]
        assert photo_box["width"] > 0.8 * width - 40
    # pick two, accept them in one go: marked in place, accepted in the API
    for i in ids[:2]:
        cards[i].locator("input[name=assessment]").check()
    assert page.locator("#picked-count").inner_text() == "2"
    page.locator("#accept-picked").click()
    page.wait_for_selector("article.review-item.done >> nth=1", timeout=30_000)
    assert [review_status(base, trial, i) for i in ids] == ["accepted", "accepted", "awaiting"]
    # undo in place
    page.locator("#undo-last").click()
    page.wait_for_function("() => !document.querySelector('article.review-item.done')")
    assert [review_status(base, trial, i) for i in ids] == ["awaiting"] * 3
    # void asks first: cancel keeps the photo, no reason is refused, a reason voids
    card = cards[ids[2]]
    card.locator("form.void button").click()
    dialog = page.locator("dialog#confirm-void")
    assert dialog.is_visible()
    dialog.locator("button[value=cancel]").click()
    assert not dialog.is_visible()
    assert review_status(base, trial, ids[2]) == "awaiting"
    card.locator("form.void button").click()
    page.locator("#confirm-void-go").click()
    assert dialog.is_visible() and page.locator("#confirm-void-error").is_visible()
    page.locator("#confirm-void-reason").fill("photo of the other foot")
    with page.expect_navigation():
        page.locator("#confirm-void-go").click()
    assert page.locator(f"article.review-item[data-assessment='{ids[2]}']").count() == 0
    voided = httpx.get(
        f"{base}/v1/assessments/{ids[2]}", headers=trial.auth("clinician"), timeout=30
    ).json()
    assert voided["voided"] is True and voided["void_reason"] == "photo of the other foot"
    # keyboard: J to the next photo, A accepts it, U undoes
    page.keyboard.press("j")
    focused = page.evaluate("() => document.activeElement.dataset.assessment")
    page.keyboard.press("a")
    page.wait_for_selector(f"article.review-item.done[data-assessment='{focused}']")
    assert review_status(base, trial, focused) == "accepted"
    page.keyboard.press("u")
    page.wait_for_function("() => !document.querySelector('article.review-item.done')")
    assert review_status(base, trial, focused) == "awaiting"
    assert errors == [], errors
    # leave the queue empty for the next run
    httpx.patch(
        f"{base}/v1/studies/{trial.study}", json={"review": "flagged"}, headers=trial.auth("admin")
    )
    page.context.close()
