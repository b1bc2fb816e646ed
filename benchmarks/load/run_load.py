"""Load benchmark: concurrent uploaders against a real ``woundscope serve`` on loopback,
compared with the same pipeline run in-process in the same run.

    python benchmarks/load/run_load.py                       # ~90 s: 8 users for 45 s
    python benchmarks/load/run_load.py --users 8 --duration 600   # the full 10-minute run

Phases, one after the other so they do not compete for the CPU:

1. in-process baselines (``--baseline-seconds`` each), with as many threads as the
   service has CPU workers: raw ONNX Runtime on the preprocessed input, and the
   pipeline (decode + marker + model + measurement, ``pipeline.analyse_upload``'s
   steps without HTTP, database or storage);
2. load: ``--users`` closed-loop uploaders for ``--duration`` seconds;
3. memory: 8 simultaneous uploads of a 12-megapixel photo (peak RSS of the server);
4. overload: ``--overload-users`` uploaders that do not wait: the server must shed
   load with 503 + Retry-After, never time out and never answer another 5xx.

Photos are virtual-trial photos (``woundscope simulate``: a healing ulcer beside a
calibration marker, 1024 x 768). Writes ``RESULTS.md`` and ``results.json`` to
``--out`` (default: this folder).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
from PIL import Image

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks" / "durability"))
from service_harness import Service, setup_trial  # noqa: E402


@dataclass
class Phase:
    name: str
    users: int
    seconds: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    retry_after_missing: int = 0
    peak_rss_mb: float = 0.0

    @property
    def ok(self) -> int:
        return self.statuses.get("201", 0)

    def row(self) -> dict[str, Any]:
        lat = sorted(self.latencies_s)

        def pct(p: float) -> float | None:
            return round(float(np.percentile(lat, p)) * 1000, 0) if lat else None

        errors = {k: v for k, v in self.statuses.items() if k != "201"}
        return {
            "phase": self.name,
            "users": self.users,
            "seconds": round(self.seconds, 1),
            "uploads_ok": self.ok,
            "uploads_per_s": round(self.ok / self.seconds, 3) if self.seconds else 0.0,
            "p50_ms": pct(50),
            "p95_ms": pct(95),
            "p99_ms": pct(99),
            "errors": errors,
            "retry_after_missing": self.retry_after_missing,
            "peak_rss_mb": round(self.peak_rss_mb, 0),
        }


class RssMonitor:
    """Peak resident memory of a process tree, sampled every 50 ms."""

    def __init__(self, pid: int):
        self.proc = psutil.Process(pid)
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in procs)
                self.peak = max(self.peak, rss / 2**20)
            except psutil.Error:
                pass
            time.sleep(0.05)

    def __enter__(self) -> RssMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def _user(
    phase: Phase,
    client: httpx.AsyncClient,
    wound: str,
    photos: list[bytes],
    until: float,
    *,
    wait_on_503: bool,
) -> None:
    i = 0
    while time.monotonic() < until:
        photo = photos[i % len(photos)]
        i += 1
        t0 = time.perf_counter()
        try:
            r = await client.post(
                f"/v1/wounds/{wound}/assessments",
                data={"captured_at": "2026-01-05"},
                files={"photo": ("photo.jpg", photo, "image/jpeg")},
            )
        except httpx.HTTPError as exc:
            phase.statuses[type(exc).__name__] += 1
            continue
        status = str(r.status_code)
        phase.statuses[status] += 1
        if r.status_code == 201:
            phase.latencies_s.append(time.perf_counter() - t0)
        elif r.status_code == 503:
            retry = r.headers.get("Retry-After")
            if retry is None:
                phase.retry_after_missing += 1
            await asyncio.sleep(float(retry or 1) if wait_on_503 else 0.05)


async def run_phase(
    phase: Phase,
    base: str,
    headers: dict[str, str],
    wound: str,
    photos: list[bytes],
    seconds: float,
    *,
    wait_on_503: bool,
) -> None:
    limits = httpx.Limits(max_connections=phase.users)
    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=300, limits=limits
    ) as client:
        start = time.monotonic()
        until = start + seconds
        await asyncio.gather(
            *(
                _user(phase, client, wound, photos[u:] + photos[:u], until, wait_on_503=wait_on_503)
                for u in range(phase.users)
            )
        )
        phase.seconds = time.monotonic() - start


def baselines(photos: list[bytes], threads: int, seconds: float) -> dict[str, Any]:
    """Raw ONNX Runtime and the in-process pipeline, ``threads`` at a time."""
    from service.core.contract import preprocess
    from service.core.imaging import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, decode_photo
    from service.core.pipeline import Calibration, analyse_upload, measure_mask
    from service.runtime.artifacts import resolve_model
    from service.runtime.inference import Segmenter
    from service.simulator.scene import MARKER_MM

    segmenter = Segmenter(resolve_model(os.environ.get("WOUNDSCOPE_MODEL") or None))
    decoded = [decode_photo(p).rgb for p in photos]
    inputs = [preprocess(rgb, segmenter.spec)[0] for rgb in decoded]

    def loop(work: Any) -> float:
        count = [0] * threads
        until = time.monotonic() + seconds

        def worker(k: int) -> None:
            i = k
            while time.monotonic() < until:
                work(i)
                count[k] += 1
                i += threads

        start = time.monotonic()
        pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        return sum(count) / (time.monotonic() - start)

    def raw(i: int) -> None:
        segmenter.run_batch(inputs[i % len(inputs)])

    def pipeline(i: int) -> None:
        rgb = decode_photo(photos[i % len(photos)]).rgb
        seg = segmenter.segment(rgb)
        measure_mask(rgb, seg.mask, marker_mm=MARKER_MM, cal=Calibration())

    def upload_work(i: int) -> None:
        # Everything a service worker does for an upload: also the re-encode of the
        # stored JPEG (what is measured), its decode, and the mask PNG.
        analyse_upload(
            photos[i % len(photos)],
            name="photo.jpg",
            segmenter=segmenter,
            marker_mm=MARKER_MM,
            cal=Calibration(),
            max_bytes=DEFAULT_MAX_BYTES,
            max_pixels=DEFAULT_MAX_PIXELS,
        )

    return {
        "provider": segmenter.provider,
        "threads": threads,
        "raw_onnxruntime_per_s": round(loop(raw), 3),
        "in_process_pipeline_per_s": round(loop(pipeline), 3),
        "in_process_upload_work_per_s": round(loop(upload_work), 3),
    }


def make_photos(work: Path) -> list[bytes]:
    out = work / "sim"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "service.cli",
            "simulate",
            "--out",
            str(out),
            "--subjects",
            "2",
            "--weeks",
            "2",
        ],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    return [p.read_bytes() for p in sorted((out / "photos").glob("*.jpg"))]


def twelve_megapixels(photo: bytes) -> bytes:
    img = (
        Image.open(io.BytesIO(photo)).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
    )
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def write_results(out: Path, result: dict[str, Any]) -> str:
    base = result["baseline"]
    rows = result["phases"]
    load = next(r for r in rows if r["phase"] == "load")
    lines = [
        "# Load benchmark",
        "",
        f"Run {result['when']} on {result['machine']}; command: `{result['command']}`.",
        f"Service: one `woundscope serve` process, {result['workers']} CPU workers,"
        f" provider {base['provider']}; photos 1024x768 virtual-trial photos with a marker.",
        "",
        "| phase | users | s | uploads ok | uploads/s | p50 ms | p95 ms | p99 ms | non-201 answers | 503 without Retry-After | peak RSS MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for r in rows:
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(r["errors"].items())) or "none"
        lines.append(
            f"| {r['phase']} | {r['users']} | {r['seconds']} | {r['uploads_ok']} | {r['uploads_per_s']} |"
            f" {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {errors} | {r['retry_after_missing']} |"
            f" {r['peak_rss_mb']} |"
        )
    ratio_pipe = load["uploads_per_s"] / base["in_process_pipeline_per_s"]
    ratio_raw = load["uploads_per_s"] / base["raw_onnxruntime_per_s"]
    lines += [
        "",
        f"In-process, same run, {base['threads']} threads: raw ONNX Runtime"
        f" {base['raw_onnxruntime_per_s']} images/s; pipeline (decode + marker + model +"
        f" measurement) {base['in_process_pipeline_per_s']} photos/s; a worker's whole upload"
        f" work (that, plus the stored JPEG re-encoded and decoded again, and the mask PNG)"
        f" {base.get('in_process_upload_work_per_s', 'not measured')} photos/s.",
        "",
        f"**Service / in-process pipeline = {ratio_pipe:.2f}** (the service adds"
        f" {max(0.0, 1 - ratio_pipe) * 100:.0f} %; goal ≤ 15 %). Service / raw ONNX Runtime ="
        f" {ratio_raw:.2f}.",
        "",
    ]
    if base.get("in_process_upload_work_per_s"):
        ratio_work = load["uploads_per_s"] / base["in_process_upload_work_per_s"]
        lines += [
            f"Service / a worker's whole upload work in-process = {ratio_work:.2f}: what HTTP,"
            " the database and the photo store add on top of the CPU work.",
            "",
        ]
    text = "\n".join(lines)
    (out / "RESULTS.md").write_text(text)
    (out / "results.json").write_text(json.dumps(result, indent=1))
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="load benchmark (loopback)")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--duration", type=float, default=45.0, help="seconds of the load phase")
    parser.add_argument("--baseline-seconds", type=float, default=8.0)
    parser.add_argument("--overload-users", type=int, default=40)
    parser.add_argument("--overload-seconds", type=float, default=10.0)
    parser.add_argument("--no-memory-phase", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    workers = int(os.environ.get("WOUNDSCOPE_INFERENCE_WORKERS", "2"))
    result: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.node()}, {os.cpu_count()} CPUs",
        "command": "python benchmarks/load/run_load.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "workers": workers,
        "phases": [],
    }
    with tempfile.TemporaryDirectory(prefix="woundscope-load-") as tmp:
        work = Path(tmp)
        photos = make_photos(work)
        result["baseline"] = baselines(photos, workers, args.baseline_seconds)
        service = Service(work / "data")
        key = service.admin_key()
        service.start()
        try:
            trial = setup_trial(service.base, key, study="LOAD-001")
            wound, headers = trial["wound"], trial["headers"]
            phases = [("load", args.users, photos, args.duration, True)]
            if not args.no_memory_phase:
                big = twelve_megapixels(photos[0])
                phases.append(("memory: 8 x 12 MP at once", 8, [big], 1.0, True))
            phases.append(("overload", args.overload_users, photos, args.overload_seconds, False))
            for name, users, pics, seconds, wait in phases:
                phase = Phase(name, users)
                with RssMonitor(service.pid) as rss:
                    asyncio.run(
                        run_phase(
                            phase, service.base, headers, wound, pics, seconds, wait_on_503=wait
                        )
                    )
                phase.peak_rss_mb = rss.peak
                result["phases"].append(phase.row())
                print(json.dumps(phase.row()), flush=True)
            result["server_alive_after"] = service.proc is not None and service.proc.poll() is None
        finally:
            service.stop()
    print(write_results(args.out, result))
    over = next(r for r in result["phases"] if r["phase"] == "overload")
    server_errors = sum(v for k, v in over["errors"].items() if k.startswith("5") and k != "503")
    healthy = (
        result["server_alive_after"] and server_errors == 0 and over["retry_after_missing"] == 0
    )
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
