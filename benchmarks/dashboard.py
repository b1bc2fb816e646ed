"""First render of a wound page with 20 visits, in a real Chromium against a real
``woundscope serve``.

    python -m benchmarks.dashboard [--visits 20] [--runs 5]

Data: one study, site, subject and wound made through the API; the FUSeg sample photo
uploaded ``--visits`` times, 14 days apart (px/mm sent; the bundled model measures each).
Each run signs in through the sign-in form by HTTP only (so no asset is cached), then
opens the wound page and records, from the page's own clock (``performance``):

- **DOMContentLoaded**: ``domContentLoadedEventEnd`` of the navigation;
- **plot drawn**: when ``#area-plot`` gets ``data-rendered=true`` (set by dashboard.js
  after ``Plotly.newPlot`` resolves), seen by a MutationObserver installed before any
  page script runs.

**cold**: a fresh browser context (empty cache) per run; **warm**: the same page opened
again in that context (assets from the cache: hashed URLs are ``immutable``). One
untimed load first, so the server's one-off work (imports, hashing and gzipping
plotly.js) is not in the numbers. Printed as a table (median and max of ``--runs``) and
written to benchmarks/dashboard/RESULTS.md. Target: first render ≤ 1 s.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks" / "durability"))
from service_harness import Service  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
PHOTO = ROOT / "data" / "samples" / "fuseg" / "images" / "0078.jpg"
RESULTS = ROOT / "benchmarks" / "dashboard" / "RESULTS.md"
TARGET_MS = 1000.0

WATCH_PLOT = """
window.__plotDrawnMs = null;
new MutationObserver((_, observer) => {
  const plot = document.getElementById('area-plot');
  if (plot && plot.dataset.rendered === 'true') {
    window.__plotDrawnMs = performance.now();
    observer.disconnect();
  }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-rendered']});
"""


def make_wound(base: str, key: str, visits: int) -> str:
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=auth, timeout=120) as client:
        client.post("/v1/studies", json={"id": "BENCH", "name": "bench"}).raise_for_status()
        client.post("/v1/studies/BENCH/sites", json={"id": "A"}).raise_for_status()
        subject = client.post(
            "/v1/studies/BENCH/subjects", json={"code": "S01", "site": "A", "arm": "active"}
        )
        subject.raise_for_status()
        wound = client.post(
            f"/v1/subjects/{subject.json()['id']}/wounds",
            json={"label": "W1", "location": "left hallux", "index_leg": True},
        )
        wound.raise_for_status()
        wound_id = str(wound.json()["id"])
        photo = PHOTO.read_bytes()
        for visit in range(visits):
            day = date(2026, 1, 5) + timedelta(days=14 * visit)
            client.post(
                f"/v1/wounds/{wound_id}/assessments",
                data={"captured_at": day.isoformat(), "px_per_mm": "10.0"},
                files={"photo": ("photo.jpg", photo, "image/jpeg")},
            ).raise_for_status()
    return wound_id


def signed_in_context(browser: Any, base: str, key: str) -> Any:
    """A fresh context (empty cache) holding a dashboard session, made without
    loading any page in the browser."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.add_init_script(WATCH_PLOT)
    form = context.request.get(f"{base}/dashboard/login").text()
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token is not None
    answer = context.request.post(
        f"{base}/dashboard/login", form={"key": key, "csrf": token.group(1)}, max_redirects=0
    )
    assert answer.status == 303, answer.status
    return context


TIMINGS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const plotly = performance.getEntriesByType('resource')
    .find((r) => r.name.includes('/plotly.min.'));
  return [nav.responseEnd, plotly ? plotly.responseEnd : 0,
          nav.domContentLoadedEventEnd, window.__plotDrawnMs];
}"""
COLUMNS = ("page HTML", "plotly.js fetched", "DOMContentLoaded", "plot drawn")


def timed_load(page: Any, url: str) -> list[float]:
    """Milliseconds from navigation start: HTML received, plotly.js received (0 when
    from the memory cache), DOMContentLoaded, plot drawn."""
    page.goto(url)
    page.wait_for_function("window.__plotDrawnMs !== null", timeout=60_000)
    return [float(t) for t in page.evaluate(TIMINGS)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="ws-dash-bench-") as tmp:
        service = Service(Path(tmp) / "data")
        service.start()
        try:
            key = service.admin_key()
            wound_id = make_wound(service.base, key, args.visits)
            url = f"{service.base}/dashboard/wounds/{wound_id}"
            rows: dict[str, list[list[float]]] = {"cold": [], "warm": []}
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
                )
                warmup = signed_in_context(browser, service.base, key)
                timed_load(warmup.new_page(), url)
                warmup.close()
                for _ in range(args.runs):
                    context = signed_in_context(browser, service.base, key)
                    page = context.new_page()
                    rows["cold"].append(timed_load(page, url))
                    rows["warm"].append(timed_load(page, url))
                    context.close()
                browser.close()
        finally:
            service.stop()

    lines = [
        f"Wound page, {args.visits} visits, 1440 px, median (max) of {args.runs} runs, ms:",
        "",
        "| cache | " + " | ".join(COLUMNS) + " | plot drawn ≤ 1000 ms |",
        "|---" * (len(COLUMNS) + 2) + "|",
    ]
    for cache, samples in rows.items():
        cells = []
        for column in range(len(COLUMNS)):
            values = [sample[column] for sample in samples]
            cells.append(f"{statistics.median(values):.0f} ({max(values):.0f})")
        drawn = statistics.median(sample[-1] for sample in samples)
        ok = "yes" if drawn <= TARGET_MS else "no"
        lines.append(f"| {cache} | " + " | ".join(cells) + f" | {ok} |")
    table = "\n".join(lines)
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        "# Dashboard first render\n\n`python -m benchmarks.dashboard` (see its docstring).\n\n"
        + table
        + "\n"
    )


if __name__ == "__main__":
    main()
