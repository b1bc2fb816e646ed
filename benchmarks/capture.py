"""Capture page benchmark: shutter-to-area and live-guidance latency over loopback.

    python -m benchmarks.capture [--uploads 7] [--frames 30]

Against a real ``woundscope serve`` (temp data dir, bundled model, SQLite):

1. shutter to area: the upload of a 12-megapixel photo (4000 x 3000, a FUSeg ulcer
   beside a 20 mm marker) as the capture page sends it, each with a new
   Idempotency-Key; the time until the answer with the area, and until the overlay
   the page shows next has arrived too. Median of ``--uploads``.
2. guidance: ``POST /v1/precheck`` of a 1280 x 720 JPEG preview frame of the same
   scene, one after the other as the page sends them; median and p90, and the
   updates a second that allows. The in-process ``precheck_rgb`` time is printed
   beside it (the rest is HTTP, decode and the worker pool).

The browser's own JPEG encode of the frame and of the photo is not counted.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import cv2
import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks" / "durability"))
from service_harness import Service, setup_trial  # noqa: E402

from service.core.precheck import precheck_rgb  # noqa: E402
from service.simulator.scene import MARKER_MM, paste_marker  # noqa: E402

SAMPLE = ROOT / "data" / "samples" / "fuseg" / "images" / "0078.jpg"
PLANE_PX_PER_MM = 30.0  # the sample (about 10 px/mm) enlarged 3x


def scene_12mp() -> np.ndarray:
    """4000 x 3000: the sample ulcer enlarged 3x on skin, a 20 mm marker below it."""
    wound = np.asarray(Image.open(SAMPLE).convert("RGB"))
    wound = cv2.resize(wound, (wound.shape[1] * 3, wound.shape[0] * 3), cv2.INTER_CUBIC)
    h, w = wound.shape[:2]
    plane = np.empty((3000, 4000, 3), dtype=np.uint8)
    plane[:] = wound[-8:].mean(axis=(0, 1)).astype(np.uint8)
    y0, x0 = 150, (4000 - w) // 2
    plane[y0 : y0 + h, x0 : x0 + w] = wound[: 3000 - y0]
    centre_mm = (2000 / PLANE_PX_PER_MM, 2100 / PLANE_PX_PER_MM)
    out, _ = paste_marker(plane, PLANE_PX_PER_MM, centre_mm, MARKER_MM)
    # Sensor noise, so the JPEG is the size of a phone's (a flat plane compresses to
    # a tenth of it and decodes faster than a real photo).
    noise = np.random.default_rng(0).normal(0, 4, out.shape)
    return np.clip(out + noise, 0, 255).astype(np.uint8)


def jpeg(rgb: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def preview_frame(rgb: np.ndarray) -> np.ndarray:
    """The 16:9 centre of the scene at 1280 x 720, as a phone's preview stream."""
    h = rgb.shape[1] * 9 // 16
    top = (rgb.shape[0] - h) // 2
    return cv2.resize(rgb[top : top + h], (1280, 720), interpolation=cv2.INTER_AREA)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uploads", type=int, default=7)
    parser.add_argument("--frames", type=int, default=30)
    args = parser.parse_args()

    scene = scene_12mp()
    photo = jpeg(scene, 92)
    frame_rgb = preview_frame(scene)
    frame = jpeg(frame_rgb, 70)
    with tempfile.TemporaryDirectory(prefix="woundscope-capture-bench-") as work:
        service = Service(Path(work) / "data")
        key = service.admin_key()
        service.start()
        try:
            ids = setup_trial(service.base, key, study="CAPTURE-BENCH")
            headers = ids["headers"]
            with httpx.Client(base_url=service.base, headers=headers, timeout=120) as client:
                # Warm-up (first model run, first precheck) is not counted.
                client.post(
                    "/v1/precheck", files={"frame": ("f.jpg", frame, "image/jpeg")}
                ).raise_for_status()
                to_area: list[float] = []
                to_overlay: list[float] = []
                areas: list[float] = []
                for i in range(args.uploads + 1):
                    t0 = time.perf_counter()
                    r = client.post(
                        f"/v1/wounds/{ids['wound']}/assessments",
                        files={"photo": ("camera.jpg", photo, "image/jpeg")},
                        data={"captured_at": f"2026-01-{i + 1:02d}"},
                        headers={"Idempotency-Key": str(uuid.uuid4())},
                    )
                    r.raise_for_status()
                    t1 = time.perf_counter()
                    client.get(r.json()["overlay_url"]).raise_for_status()
                    t2 = time.perf_counter()
                    if i == 0:
                        continue
                    to_area.append(t1 - t0)
                    to_overlay.append(t2 - t0)
                    areas.append(r.json()["measurement"]["area_cm2"])
                checks: list[float] = []
                verdicts: list[bool] = []
                codes: Counter[str] = Counter()
                for _ in range(args.frames):
                    t0 = time.perf_counter()
                    r = client.post(
                        "/v1/precheck",
                        files={"frame": ("frame.jpg", frame, "image/jpeg")},
                        data={"study": ids["study"]},
                    )
                    if r.status_code == 429:  # the page's own pace would not hit it
                        time.sleep(float(r.headers.get("Retry-After", "1")))
                        continue
                    r.raise_for_status()
                    checks.append(time.perf_counter() - t0)
                    verdicts.append(bool(r.json()["ok"]))
                    codes.update(q["code"] for q in r.json()["quality"])
        finally:
            service.stop()
    t0 = time.perf_counter()
    for _ in range(5):
        precheck_rgb(frame_rgb, marker_mm=MARKER_MM)
    in_process_s = (time.perf_counter() - t0) / 5

    print(f"photo: {scene.shape[1]}x{scene.shape[0]} JPEG {len(photo) / 1e6:.1f} MB")
    print(
        f"shutter to area (upload answered), median of {len(to_area)}:"
        f" {statistics.median(to_area):.2f} s (min {min(to_area):.2f}, max {max(to_area):.2f})"
    )
    print(f"shutter to area + overlay, median: {statistics.median(to_overlay):.2f} s")
    print(f"area measured: {statistics.median(areas):.2f} cm²")
    med = statistics.median(checks)
    print(
        f"precheck 1280x720 ({len(frame) / 1e3:.0f} kB), median of {len(checks)}:"
        f" {1000 * med:.0f} ms, p90 {1000 * pct(checks, 0.9):.0f} ms"
        f" -> {1 / med:.1f} guidance updates/s; marker ok in {sum(verdicts)}/{len(verdicts)}"
        f" {dict(codes) or ''}"
    )
    print(f"precheck_rgb in process: {1000 * in_process_s:.0f} ms")


if __name__ == "__main__":
    main()
