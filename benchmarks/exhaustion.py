"""Can one key exhaust the server? (issue 28): another site's upload latency while four
keys loop uploading 7000 x 7000 photos, before and after the bounded decode and the
per-key rates.

    python benchmarks/exhaustion.py                         # this checkout
    python benchmarks/exhaustion.py --source /work/main     # another checkout (before)
    python benchmarks/exhaustion.py --source /work/main --source .   # both, one table
    python benchmarks/exhaustion.py --victim-side 3024      # the victim sends a phone-sized photo

For each source tree: a real ``woundscope serve`` (SQLite, bundled model) on loopback;
the victim (site B) uploads a 1024 px photo ``--victim-uploads`` times alone, then
again while four site-A keys each upload a 49-megapixel PNG (143 kB: a flat photo)
and a 49-megapixel JPEG in a closed loop for ``--attack-seconds``. Prints the
victim's median latency alone and under attack, the attackers' answers by status,
and the server's peak RSS. Numbers only: nothing here is asserted.
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import psutil
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "samples" / "fuseg" / "images" / "0078.jpg"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def big_png(side: int = 7000) -> bytes:
    """A flat skin-coloured photo with one dark ellipse: 49 MP in ~150 kB of PNG."""
    img = Image.new("RGB", (side, side), (200, 150, 130))
    ImageDraw.Draw(img).ellipse((side // 3, side // 3, side // 2, side // 2), fill=(90, 30, 30))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def big_jpeg(side: int = 7000) -> bytes:
    img = Image.new("RGB", (side, side), (200, 150, 130))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=30)
    return buf.getvalue()


class Server:
    def __init__(self, source: Path, tmp: Path):
        self.source = source
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("WOUNDSCOPE_")},
            "WOUNDSCOPE_DATA_DIR": str(tmp / "data"),
            "WOUNDSCOPE_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(source),
        }
        out = subprocess.run(
            [sys.executable, "-m", "service.cli", "keys", "create", "--role", "admin",
             "--holder", "Bench Admin"],
            env=self.env, cwd=source, capture_output=True, text=True, timeout=300, check=True,
        )  # fmt: skip
        self.admin = {"Authorization": f"Bearer {out.stdout.strip().splitlines()[-1]}"}
        self.url = f"http://127.0.0.1:{_free_port()}"
        self.log = (tmp / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", self.url.rsplit(":", 1)[1]],
            env=self.env, cwd=source, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"server from {source} did not start")
            time.sleep(0.5)
        self.peak_rss_mb = 0.0
        self._watching = True
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        proc = psutil.Process(self.proc.pid)
        while self._watching:
            try:
                self.peak_rss_mb = max(self.peak_rss_mb, proc.memory_info().rss / 2**20)
            except psutil.Error:
                return
            time.sleep(0.1)

    def stop(self) -> None:
        self._watching = False
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _setup(server: Server) -> tuple[list[tuple[dict[str, str], str]], tuple[dict[str, str], str]]:
    """A study, four site-A uploader keys with a wound each, one site-B key and wound."""
    c = httpx.Client(base_url=server.url, timeout=600)
    study = "BENCH"
    assert c.post(
        "/v1/studies", json={"id": study, "name": "bench"}, headers=server.admin
    ).is_success
    for site in ("A", "B"):
        c.post(f"/v1/studies/{study}/sites", json={"id": site}, headers=server.admin)

    def key_and_wound(site: str, n: int) -> tuple[dict[str, str], str]:
        body = {"role": "uploader", "holder": f"bench {site}{n}", "study": study, "site": site}
        key = {
            "Authorization": f"Bearer {c.post('/v1/keys', json=body, headers=server.admin).json()['key']}"
        }
        subject = c.post(
            f"/v1/studies/{study}/subjects", json={"code": f"S{site}{n}"}, headers=key
        ).json()["id"]
        wound = c.post(f"/v1/subjects/{subject}/wounds", json={"label": "W1"}, headers=key).json()[
            "id"
        ]
        return key, wound

    return [key_and_wound("A", n) for n in range(4)], key_and_wound("B", 0)


def _upload(url: str, key: dict[str, str], wound: str, photo: bytes, day: int) -> tuple[int, float]:
    t0 = time.perf_counter()
    r = httpx.post(
        f"{url}/v1/wounds/{wound}/assessments",
        files={"photo": ("p", photo, "application/octet-stream")},
        data={"captured_at": f"2026-01-{1 + day % 28:02d}", "px_per_mm": "10"},
        headers=key,
        timeout=600,
    )
    return r.status_code, time.perf_counter() - t0


def victim_photo_of(side: int) -> bytes:
    """The FUSeg sample as sent (512 px), or brought to ``side`` x ``side`` px as a phone
    would send it (JPEG 90): the upload whose latency is watched."""
    if not side:
        return SAMPLE.read_bytes()
    img = Image.open(SAMPLE).convert("RGB").resize((side, side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def run(source: Path, args: argparse.Namespace) -> dict[str, object]:
    victim_photo = victim_photo_of(args.victim_side)
    attack_photos = [big_png(), big_jpeg()]
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(source, Path(tmp))
        try:
            attackers, (victim_key, victim_wound) = _setup(server)
            alone = [_upload(server.url, victim_key, victim_wound, victim_photo, i)[1]
                     for i in range(args.victim_uploads)]  # fmt: skip
            rss_alone = server.peak_rss_mb
            stop = time.monotonic() + args.attack_seconds
            answers: Counter[int] = Counter()

            def attack(key: dict[str, str], wound: str) -> None:
                i = 0
                while time.monotonic() < stop:
                    status, _ = _upload(server.url, key, wound, attack_photos[i % 2], i)
                    answers[status] += 1
                    if status == 429:
                        time.sleep(0.2)  # a real attacker would just retry
                    i += 1

            threads = [threading.Thread(target=attack, args=a) for a in attackers]
            for t in threads:
                t.start()
            time.sleep(min(5.0, args.attack_seconds / 4))
            under = []
            while time.monotonic() < stop and len(under) < args.victim_uploads:
                under.append(_upload(server.url, victim_key, victim_wound, victim_photo, 40)[1])
            for t in threads:
                t.join()
            return {
                "source": str(source),
                "alone_s": statistics.median(alone),
                "under_attack_s": statistics.median(under) if under else float("nan"),
                "victim_uploads_under_attack": len(under),
                "attacker_answers": dict(answers),
                "rss_alone_mb": rss_alone,
                "rss_peak_mb": server.peak_rss_mb,
            }
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--source", type=Path, action="append", help="checkout(s) to serve")
    parser.add_argument("--attack-seconds", type=float, default=60.0)
    parser.add_argument("--victim-uploads", type=int, default=5)
    parser.add_argument(
        "--victim-side", type=int, default=0, help="victim photo side in px (0: the 512 px sample)"
    )
    args = parser.parse_args()
    sources = [s.resolve() for s in (args.source or [ROOT])]
    load = os.getloadavg()
    rows = [run(source, args) for source in sources]
    print(
        f"\nload average at start: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; cores {os.cpu_count()};"
        f" victim photo {args.victim_side or 512} px a side"
    )
    print(
        f"{'source':40} {'alone s':>8} {'attack s':>9} {'ratio':>6} {'victim n':>8} {'RSS alone':>10} {'RSS peak':>9}  attackers"
    )
    for r in rows:
        ratio = float(r["under_attack_s"]) / float(r["alone_s"])  # type: ignore[arg-type]
        print(
            f"{str(r['source'])[-40:]:40} {r['alone_s']:8.2f} {r['under_attack_s']:9.2f} {ratio:6.1f}"
            f" {r['victim_uploads_under_attack']:8} {r['rss_alone_mb']:9.0f}M {r['rss_peak_mb']:8.0f}M"
            f"  {r['attacker_answers']}"
        )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
