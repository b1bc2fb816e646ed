"""Run a real ``woundscope serve`` process (and, when asked, a private PostgreSQL
cluster) for the fault and load benchmarks. Loopback only; everything in temp dirs.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
WOUNDSCOPE = [sys.executable, "-m", "service.cli"]
SAMPLES = ROOT / "data" / "samples" / "fuseg" / "images"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def photo_variants(count: int, size: int = 512, seed: int = 0) -> list[bytes]:
    """``count`` distinct JPEG photos (the sample photos, each with a few pixels changed)."""
    rng = np.random.default_rng(seed)
    bases = [
        np.asarray(Image.open(p).convert("RGB").resize((size, size)))
        for p in sorted(SAMPLES.glob("*.jpg"))
    ]
    out = []
    for i in range(count):
        rgb = bases[i % len(bases)].copy()
        rgb[rng.integers(0, size, 8), rng.integers(0, size, 8)] = rng.integers(0, 255, (8, 3))
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=92)
        out.append(buf.getvalue())
    return out


@dataclass
class Postgres:
    """A throwaway PostgreSQL cluster: initdb in its own temp dir, its own port, trust
    auth. As root, the cluster runs as the ``postgres`` system user (initdb refuses root)."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="woundscope-pg-")))
    port: int = field(default_factory=free_port)

    @staticmethod
    def bindir() -> Path | None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        return Path(found[-1]).parent if found else None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/woundscope"

    def _run(self, *args: str) -> None:
        bindir = self.bindir()
        assert bindir is not None
        cmd = [str(bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        env = dict(os.environ)
        env.pop("PGDATA", None)
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {done.stdout}{done.stderr}")

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            "initdb", "-D", str(self.root / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        self.start()
        self._run(
            "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "woundscope"
        )

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._run(
            "pg_ctl",
            "-D",
            str(self.root / "data"),
            "-o",
            opts,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", mode, "-w", "stop")

    def restart_crash(self) -> None:
        """Stop as a crash would (immediate: no checkpoint; WAL recovery on start), start."""
        self.stop("immediate")
        self.start()

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class Service:
    """``woundscope serve`` as a child process with its own data dir."""

    def __init__(
        self, data_dir: Path, database_url: str = "", extra_env: dict[str, str] | None = None
    ):
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ)
        self.env.update(
            {
                "WOUNDSCOPE_DATA_DIR": str(data_dir),
                "WOUNDSCOPE_LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(ROOT),
            }
        )
        for name in ("WOUNDSCOPE_DATABASE_URL", "WOUNDSCOPE_STORAGE_URL"):
            self.env.pop(name, None)
        if database_url:
            self.env["WOUNDSCOPE_DATABASE_URL"] = database_url
        self.env.update(extra_env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "serve.log"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*WOUNDSCOPE, *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"woundscope {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
        return done

    def admin_key(self) -> str:
        out = self.cli("keys", "create", "--role", "admin", "--holder", "benchmark operator")
        return out.stdout.strip().splitlines()[-1].strip()

    def start(self, timeout_s: float = 120) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        logf = self.log.open("ab")
        self.proc = subprocess.Popen(
            [*WOUNDSCOPE, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            cwd=ROOT,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # The server runs in its own session (so kill9 takes its whole group); make
        # sure an interrupted benchmark or test does not leave it running.
        atexit.register(self.kill9)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"woundscope serve exited {self.proc.returncode}: {self.log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(
            f"woundscope serve not ready after {timeout_s} s: {self.log.read_text()[-3000:]}"
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill9(self) -> None:
        """SIGKILL the server and everything it started (its process group)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        except ProcessLookupError:
            pass
        self.proc = None


def setup_trial(base: str, admin_key: str, study: str = "DUR-001") -> dict[str, Any]:
    """Study, site, subject and wound through the API; returns their ids and the header."""
    headers = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        r = client.post("/v1/studies", json={"id": study, "name": "durability"})
        r.raise_for_status()
        client.post(
            f"/v1/studies/{study}/sites", json={"id": "A", "name": "site A"}
        ).raise_for_status()
        subject = client.post(f"/v1/studies/{study}/subjects", json={"code": "S001", "site": "A"})
        subject.raise_for_status()
        wound = client.post(f"/v1/subjects/{subject.json()['id']}/wounds", json={"label": "W1"})
        wound.raise_for_status()
    return {
        "study": study,
        "subject": subject.json()["id"],
        "wound": wound.json()["id"],
        "headers": headers,
    }
