"""A scripted reader clears a review queue of 20 photos in Chromium, counting every click
and key press: 15 accepted in one batch, 5 corrected with one box each.

    python -m benchmarks.assist.reader [--photos 20] [--correct 5] [--width 1440]

Starts its own server (temporary data dir, the default model), a study with central
reading (every model outline waits for a clinician), 20 uploads of the bundled sample,
and a clinician. The reader: "select all", un-ticks the 5 photos it will correct,
"Accept selected"; then for each of the 5 (now first in the queue) presses C, drags a
box around the wound on the photo, and presses "Save correction" (the reason is filled
in with the suggestion; the form returns to the queue). It checks the end state over the
API (queue empty; 15 accepted, 5 corrected) and prints the counts and times. Target
(issue 25): at most 30 clicks and key presses in all. Navigation by URL (opening the
queue) and sign-in are not counted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from service.domain.auth import create_key
from service.persistence.db import Database

ROOT = Path(__file__).resolve().parents[2]
PHOTO = ROOT / "data" / "samples" / "fuseg" / "images" / "0078.jpg"
WOUND_BOX = (155, 176, 220, 288)  # the sample's wound, photo px
CHROMIUM = "/usr/bin/chromium"


def start_server(data_dir: Path) -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "WOUNDSCOPE_DATA_DIR": str(data_dir),
        "WOUNDSCOPE_LOG_LEVEL": "WARNING",
        "WOUNDSCOPE_LOG_JSON": "false",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "service.api.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError("the server did not start")


def seed(base: str, data_dir: Path, photos: int) -> tuple[str, str, list[str]]:
    """(study, clinician key, assessment ids in queue order)."""
    db = Database(f"sqlite:///{data_dir / 'woundscope.db'}")
    with db.session() as session:
        _, admin = create_key(session, role="admin", holder="Bench admin")
    h = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=base, timeout=120, headers=h) as c:
        c.post("/v1/studies", json={"id": "RDR", "name": "reader"}).raise_for_status()
        c.patch("/v1/studies/RDR", json={"review": "all"}).raise_for_status()
        c.post("/v1/studies/RDR/sites", json={"id": "A"}).raise_for_status()
        key = c.post(
            "/v1/keys", json={"role": "clinician", "holder": "Reader", "study": "RDR", "site": "A"}
        )
        key.raise_for_status()
        subject = c.post("/v1/studies/RDR/subjects", json={"code": "R01", "site": "A"}).json()
        ids = []
        for i in range(photos):
            wound = c.post(f"/v1/subjects/{subject['id']}/wounds", json={"label": f"W{i:02d}"})
            up = c.post(
                f"/v1/wounds/{wound.json()['id']}/assessments",
                data={"captured_at": "2026-03-02", "px_per_mm": "10"},
                files={"photo": ("p.jpg", PHOTO.read_bytes(), "image/jpeg")},
            )
            up.raise_for_status()
            ids.append(up.json()["id"])
    return "RDR", key.json()["key"], ids


class Counter:
    def __init__(self) -> None:
        self.clicks = 0
        self.keys = 0
        self.log: list[tuple[str, int, int]] = []

    def step(self, what: str, clicks: int = 0, keys: int = 0) -> None:
        self.clicks += clicks
        self.keys += keys
        self.log.append((what, clicks, keys))


def read_queue(base: str, study: str, key: str, ids: list[str], n_correct: int, width: int):
    from playwright.sync_api import sync_playwright

    count = Counter()
    to_correct = ids[-n_correct:]  # the reader's judgement: these outlines are wrong
    correction_s: list[float] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto(f"{base}/dashboard/login")
        page.fill("input[name=key]", key)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/dashboard/")
        t0 = time.perf_counter()
        page.goto(f"{base}/dashboard/studies/{study}/review")
        page.click("#pick-all")
        count.step("select all", clicks=1)
        for i in to_correct:
            page.locator(
                f"article.review-item[data-assessment='{i}'] input[name=assessment]"
            ).click()
        count.step(f"un-tick the {n_correct} to correct", clicks=n_correct)
        page.click("#accept-picked")
        page.wait_for_selector(f"article.review-item.done >> nth={len(ids) - n_correct - 1}")
        count.step(f"accept {len(ids) - n_correct} in one batch", clicks=1)
        for _ in to_correct:
            t1 = time.perf_counter()
            with page.expect_navigation():
                page.keyboard.press("c")
            panel = page.locator("details.correct[open]")
            page.wait_for_selector("details.correct[open] .outline-editor[data-ready=true]")
            panel.locator(".outline-editor").scroll_into_view_if_needed()
            corners = page.evaluate(
                """(b) => { const svg = document.querySelector('details.correct[open] svg');
                    return [[b[0], b[1]], [b[2], b[3]]].map(([x, y]) => {
                      const p = svg.createSVGPoint(); p.x = x; p.y = y;
                      const s = p.matrixTransform(svg.getScreenCTM()); return [s.x, s.y]; }); }""",
                list(WOUND_BOX),
            )
            page.mouse.move(*corners[0])
            page.mouse.down()
            page.mouse.move(*corners[1], steps=5)
            page.mouse.up()
            page.wait_for_selector("details.correct[open] .outline-editor[data-suggested]")
            with page.expect_navigation():
                panel.locator("form[action$='/correct'] button[type=submit]").click()
            assert f"/dashboard/studies/{study}/review" in page.url, page.url
            correction_s.append(time.perf_counter() - t1)
            count.step("C, drag a box, Save", clicks=2, keys=1)
        total_s = time.perf_counter() - t0
        browser.close()
    return count, total_s, correction_s, to_correct


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=int, default=20)
    ap.add_argument("--correct", type=int, default=5)
    ap.add_argument("--width", type=int, default=1440)
    ap.add_argument("--write", action="store_true", help="write benchmarks/assist/READER.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, base = start_server(Path(tmp))
        try:
            study, key, ids = seed(base, Path(tmp), args.photos)
            count, total_s, corr_s, corrected = read_queue(
                base, study, key, ids, args.correct, args.width
            )
            h = {"Authorization": f"Bearer {key}"}
            queue = httpx.get(f"{base}/v1/studies/{study}/review", headers=h, timeout=60).json()
            states = [
                httpx.get(f"{base}/v1/assessments/{i}", headers=h, timeout=60).json() for i in ids
            ]
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    manual = sum(1 for s in states if s["measurement"]["manual"])
    accepted = sum(1 for s in states if s["review"]["status"] == "accepted")
    lines = [
        f"{args.photos} photos waiting (central reading), Chromium {args.width} px, this machine.",
        "",
        "| step | clicks | keys |",
        "|---|---|---|",
        *[f"| {what} | {c} | {k} |" for what, c, k in count.log],
        f"| **total** | **{count.clicks}** | **{count.keys}** |",
        "",
        f"clicks + keys: **{count.clicks + count.keys}** (target ≤ 30); queue left:"
        f" {queue['total']}; accepted {accepted}, corrected {manual} ({len(corrected)} asked);"
        f" {total_s:.1f} s in all, a box correction {statistics.median(corr_s):.1f} s median"
        " (queue -> saved, back in the queue).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        (ROOT / "benchmarks" / "assist" / "READER.md").write_text(
            "# A scripted reader clears the review queue\n\n"
            "`python -m benchmarks.assist.reader --write`\n\n" + text
        )


if __name__ == "__main__":
    main()
