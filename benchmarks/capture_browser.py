"""In-browser marker detection (vendored js-aruco2) vs the server pre-check, on the
same camera frames in a real Chromium.

    python -m benchmarks.capture_browser [--frames 30]

Each scene is a 1280 x 720 picture (a FUSeg ulcer on skin, with a printed 20 mm
DICT_4X4_50 marker at some size, place, rotation, blur, light or tilt, or without a
marker), played as a fake camera (``--use-file-for-fake-video-capture``, a Y4M clip of
10 frames, each with its own sensor noise and a shift of a few pixels). For every frame
the page grabs from the camera, in the page:

- **js**: ``markerDetector.check`` on the 1280 x 720 canvas, what the capture page
  runs: the frame, then a half-size copy when the frame showed no marker; beside it
  each pass alone, ``js@1280`` (the frame only) and ``js@640`` (a 640 x 360 copy only);
- **server**: the canvas encoded as the page sends it (JPEG 0.7) and ``POST
  /v1/precheck`` to a real ``woundscope serve`` over loopback (encode + round trip).

Printed: per scene, how many frames each found the marker in, the median and p90 time
per frame, and how far the browser's marker side is from the server's. A marker found
on a scene without one is a false positive.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks" / "durability"))
from service_harness import Service, setup_trial  # noqa: E402

from service.simulator.scene import MARKER_MM, paste_marker  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
SAMPLES = ROOT / "data" / "samples" / "fuseg" / "images"
W, H = 1280, 720
CLIP_FRAMES = 10

# (name, sample, marker px/mm or None, marker centre px, rotation deg, blur sigma px,
#  light factor, tilt deg)
SCENES: list[tuple[str, str, float | None, tuple[int, int], float, float, float, float]] = [
    ("centre 120px", "0078", 6.0, (640, 610), 0, 0, 1.0, 0),
    ("left 80px 20deg", "0082", 4.0, (300, 560), 20, 0, 1.0, 0),
    ("corner 60px 45deg", "0128", 3.0, (1080, 130), 45, 0, 1.0, 0),
    ("160px blurred", "0133", 8.0, (900, 500), 10, 1.2, 1.0, 0),
    ("50px", "0887", 2.5, (640, 650), 0, 0, 1.0, 0),
    ("100px blur 2px", "0901", 5.0, (220, 160), 30, 2.0, 1.0, 0),
    ("120px tilt 35deg", "0078", 6.0, (640, 560), 5, 0, 1.0, 35),
    ("100px dim", "0082", 5.0, (900, 560), 0, 0, 0.45, 0),
    ("40px", "0128", 2.0, (640, 650), 15, 0, 1.0, 0),
    ("120px blur 3.5px", "0133", 6.0, (300, 560), 0, 3.5, 1.0, 0),
    ("120px tilt 55deg", "0887", 6.0, (640, 560), 0, 0, 1.0, 55),
    ("no marker 0078", "0078", None, (0, 0), 0, 0, 1.0, 0),
    ("no marker 0133", "0133", None, (0, 0), 0, 0, 1.0, 0),
    ("no marker 0901", "0901", None, (0, 0), 0, 0, 1.0, 0),
]


def scene(
    sample: str,
    px_per_mm: float | None,
    centre_px: tuple[int, int],
    rotation_deg: float,
    blur_px: float,
    light: float,
    tilt_deg: float,
) -> np.ndarray:
    photo = np.asarray(Image.open(SAMPLES / f"{sample}.jpg").convert("RGB"))
    scale = 700 / photo.shape[0]
    photo = cv2.resize(photo, (round(photo.shape[1] * scale), 700), interpolation=cv2.INTER_AREA)
    plane = np.empty((H, W, 3), dtype=np.uint8)
    plane[:] = photo[-4:].mean(axis=(0, 1)).astype(np.uint8)
    x0 = (W - photo.shape[1]) // 2
    plane[10:710, x0 : x0 + photo.shape[1]] = photo
    if px_per_mm is not None:
        centre_mm = (centre_px[0] / px_per_mm, centre_px[1] / px_per_mm)
        plane, _ = paste_marker(plane, px_per_mm, centre_mm, MARKER_MM, rotation_deg=rotation_deg)
    if tilt_deg:  # the camera turned about the horizontal axis: the far side shrinks
        shrink = W * (1 - math.cos(math.radians(tilt_deg))) / 2
        src = np.float32([[0, 0], [W, 0], [W, H], [0, H]])
        dst = np.float32([[shrink, 0], [W - shrink, 0], [W, H], [0, H]])
        plane = cv2.warpPerspective(
            plane, cv2.getPerspectiveTransform(src, dst), (W, H), borderMode=cv2.BORDER_REPLICATE
        )
    if blur_px:
        plane = cv2.GaussianBlur(plane, (0, 0), blur_px)
    return np.clip(plane.astype(np.float64) * light, 0, 255).astype(np.uint8)


def y4m(rgb: np.ndarray, path: Path, seed: int) -> Path:
    """CLIP_FRAMES frames of the still, each with its own noise and a small shift."""
    rng = np.random.default_rng(seed)
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{W} H{H} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(CLIP_FRAMES):
            dy, dx = rng.integers(-3, 4, size=2)
            frame = np.roll(rgb, (int(dy), int(dx)), axis=(0, 1)).astype(np.float64)
            frame = np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8)
            f.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


MEASURE_JS = """async ([frames, key, study]) => {
  const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 } });
  const v = document.createElement("video");
  v.muted = true; v.playsInline = true; v.srcObject = stream;
  document.body.appendChild(v);
  await v.play();
  const nextFrame = () => new Promise((ok) => {
    const t = setTimeout(ok, 150);
    v.requestVideoFrameCallback(() => { clearTimeout(t); ok(); });
  });
  const canvas = (w, h) => { const c = document.createElement("canvas"); c.width = w; c.height = h; return c; };
  const full = canvas(v.videoWidth, v.videoHeight), half = canvas(v.videoWidth / 2, v.videoHeight / 2);
  const out = [];
  for (let i = 0; i < frames; i++) {
    await nextFrame();
    full.getContext("2d", { willReadFrequently: true }).drawImage(v, 0, 0, full.width, full.height);
    half.getContext("2d", { willReadFrequently: true }).drawImage(v, 0, 0, half.width, half.height);
    const js = window.markerDetector.check(full, 40);
    const js1280 = window.markerDetector.check(full, 40, { halfPass: false });
    const js640 = window.markerDetector.check(half, 20, { halfPass: false });
    const t0 = performance.now();
    let answer = null, t1 = 0, t2 = 0;
    for (;;) {
      const blob = await new Promise((ok) => full.toBlob(ok, "image/jpeg", 0.7));
      t1 = performance.now();
      const form = new FormData();
      form.append("frame", blob, "frame.jpg");
      form.append("study", study);
      const r = await fetch("/v1/precheck", { method: "POST", body: form, headers: { Authorization: "Bearer " + key } });
      t2 = performance.now();
      if (r.status === 429) { await new Promise((ok) => setTimeout(ok, 1000 * Number(r.headers.get("Retry-After") || 1))); continue; }
      answer = await r.json();
      break;
    }
    out.push({
      js_found: js.found, js_ms: js.ms, js_side: js.side_px, js_ids: js.markers.map((m) => m.id),
      js_pass: js.pass, js1280_found: js1280.found, js1280_ms: js1280.ms,
      js640_found: js640.found, js640_ms: js640.ms,
      server_found: answer.marker_found, server_ok: answer.ok, server_side: answer.marker_side_px,
      server_codes: (answer.quality || []).map((q) => q.code),
      encode_ms: t1 - t0, server_ms: t2 - t0, roundtrip_ms: t2 - t1,
    });
  }
  for (const t of stream.getTracks()) t.stop();
  return out;
}"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--json", type=Path, help="write every frame's numbers here")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    rows: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="woundscope-capture-browser-") as work:
        service = Service(Path(work) / "data")
        key = service.admin_key()
        service.start()
        try:
            ids = setup_trial(service.base, key, study="CAPTURE-BROWSER")
            with sync_playwright() as playwright:
                for i, (name, sample, ppmm, centre, rot, blur, light, tilt) in enumerate(SCENES):
                    clip = y4m(
                        scene(sample, ppmm, centre, rot, blur, light, tilt),
                        Path(work) / f"scene{i}.y4m",
                        seed=i,
                    )
                    chromium = playwright.chromium.launch(
                        executable_path=str(CHROMIUM),
                        headless=True,
                        args=[
                            "--no-sandbox",
                            "--disable-gpu",
                            "--use-fake-device-for-media-stream",
                            "--use-fake-ui-for-media-stream",
                            f"--use-file-for-fake-video-capture={clip}",
                        ],
                    )
                    try:
                        context = chromium.new_context(permissions=["camera"])
                        page = context.new_page()
                        page.goto(f"{service.base}/capture/")
                        page.wait_for_function("() => window.markerDetector !== undefined")
                        assert page.evaluate("window.markerDetector !== null"), "no detector"
                        page.evaluate(MEASURE_JS, [2, key, ids["study"]])  # warm-up
                        rows[name] = page.evaluate(MEASURE_JS, [args.frames, key, ids["study"]])
                    finally:
                        chromium.close()
        finally:
            service.stop()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))

    def med(xs: list[float]) -> str:
        return f"{statistics.median(xs):5.1f}" if xs else "    -"

    kinds = ("js", "js1280", "js640", "server")
    print(
        f"{'scene':20} {'js':>5} {'@1280':>5} {'@640':>5} {'server':>6} {'srv ok':>6} | ms/frame"
        f" median (p90): {'js':>12} {'js@1280':>12} {'js@640':>12} {'server':>12} | side js-srv px"
    )
    totals: dict[str, list[float]] = {k: [] for k in kinds}
    counts = {"marker": [0] * 5, "none": [0] * 5}
    for name, _, ppmm, *_rest in SCENES:
        r = rows[name]
        n = len(r)
        found = [sum(x[f"{k}_found"] for x in r) for k in kinds]
        ok = sum(x["server_ok"] for x in r)
        kind = "marker" if ppmm is not None else "none"
        for j, v in enumerate([*found, n]):
            counts[kind][j] += v
        ms = {k: [x[f"{k}_ms"] for x in r] for k in kinds}
        for k in totals:
            totals[k] += ms[k]
        diffs = [
            abs(x["js_side"] - x["server_side"]) for x in r if x["js_side"] and x["server_side"]
        ]
        codes = sorted({c for x in r for c in x["server_codes"]})
        print(
            f"{name:20} "
            + " ".join(f"{v:2}/{n:<2}" for v in found)
            + f" {ok:3}/{n:<2} | "
            + " ".join(f"{med(ms[k])} ({pct(ms[k], 0.9):5.1f})" for k in kinds)
            + f" | {med(diffs)} {' '.join(codes)}"
        )
    m, z = counts["marker"], counts["none"]
    names = ("js", "js@1280", "js@640", "server")
    print(
        "marker frames found: "
        + ", ".join(f"{k} {v}/{m[4]}" for k, v in zip(names, m[:4], strict=True))
        + "; false positives on frames without a marker: "
        + ", ".join(f"{k} {v}/{z[4]}" for k, v in zip(names, z[:4], strict=True))
    )
    print(
        "per frame, all scenes, median (p90) ms: "
        + ", ".join(f"{k} {med(v).strip()} ({pct(v, 0.9):.1f})" for k, v in totals.items())
        + " (server = JPEG encode in the page + POST /v1/precheck over loopback)"
    )


if __name__ == "__main__":
    main()
