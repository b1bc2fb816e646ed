"""A real ``woundscope serve`` in a subprocess, for attacks that need real sockets
(chunked bodies, connection handling) and a process whose memory and temporary
disk can be measured from outside. Its TMPDIR is a folder of its own, so what the
server spools to disk while parsing a body is what that folder grows by."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr + out.stdout
    return out.stdout


@dataclass
class Live:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    env: dict[str, str]
    spool: Path
    data_dir: Path
    admin_key: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.admin_key}"}


def server_env(data_dir: Path, spool: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "WOUNDSCOPE_DATA_DIR": str(data_dir),
        "WOUNDSCOPE_LOG_LEVEL": "WARNING",
        "TMPDIR": str(spool),
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    env.pop("WOUNDSCOPE_DATABASE_URL", None)
    env.pop("WOUNDSCOPE_STORAGE_URL", None)
    env.update(extra)
    return env


@contextmanager
def live_server(tmp: Path, **extra: str) -> Iterator[Live]:
    data_dir, spool = tmp / "data", tmp / "spool"
    spool.mkdir(parents=True, exist_ok=True)
    env = server_env(data_dir, spool, **extra)
    admin_key = cli(env, "keys", "create", "--role", "admin", "--holder", "Hostile Admin")
    admin_key = admin_key.strip().splitlines()[-1]
    port = free_port()
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp / "server.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server not ready in 120 s"
            time.sleep(0.3)
        yield Live(url, port, proc, env, spool, data_dir, admin_key)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            with suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def open_spool_bytes(pid: int, folder: Path) -> int:
    """Bytes in the files ``pid`` holds open under ``folder``, deleted ones included
    (Python's temporary files are unlinked at once, or never linked: O_TMPFILE)."""
    total = 0
    prefix = str(folder)
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        fds = list(fd_dir.iterdir())
    except OSError:
        return 0
    for fd in fds:
        try:
            if os.readlink(fd).startswith(prefix):
                total += os.stat(fd).st_size
        except OSError:
            pass
    return total


@dataclass
class Peaks:
    """Peak RSS growth of a process and peak size of a folder, sampled every 10 ms."""

    pid: int
    folder: Path
    rss_base: int = 0
    rss_peak: int = 0
    disk_peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Peaks:
        self.proc = psutil.Process(self.pid)
        self.rss_base = self.rss_peak = self.proc.memory_info().rss
        self.disk_base = folder_bytes(self.folder)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.rss_peak = max(self.rss_peak, self.proc.memory_info().rss)
            on_disk = folder_bytes(self.folder) - self.disk_base
            on_disk += open_spool_bytes(self.pid, self.folder)
            self.disk_peak = max(self.disk_peak, on_disk)
            time.sleep(0.01)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def rss_growth_mb(self) -> float:
        return (self.rss_peak - self.rss_base) / 2**20

    @property
    def disk_peak_mb(self) -> float:
        return self.disk_peak / 2**20


def send_chunked(
    port: int, path: str, headers: dict[str, str], total_bytes: int, chunk_bytes: int = 1 << 20
) -> tuple[int, bytes, int]:
    """POST ``total_bytes`` of zeros as ``Transfer-Encoding: chunked``, reading the answer
    as soon as the server sends one. Returns (status, raw answer, bytes sent)."""
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Transfer-Encoding: chunked"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    boundary = "hostileboundary"
    head.append(f"Content-Type: multipart/form-data; boundary={boundary}")
    preamble = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="x.jpg"'
        "\r\nContent-Type: image/jpeg\r\n\r\n"
    ).encode()
    chunk = b"\0" * chunk_bytes
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sock.sendall(f"{len(preamble):x}\r\n".encode() + preamble + b"\r\n")
        sock.setblocking(False)
        pending = b""
        while True:
            try:
                data = sock.recv(65536)
                if data:
                    answer += data
                    if b"\r\n\r\n" in answer:
                        break
                else:
                    break
            except BlockingIOError:
                pass
            except OSError:
                break
            if sent >= total_bytes and not pending:
                sock.setblocking(True)
                sock.settimeout(30)
                try:
                    sock.sendall(b"0\r\n\r\n")
                    answer += sock.recv(65536)
                except OSError:
                    pass
                break
            if not pending:
                pending = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
            try:
                n = sock.send(pending)
                sent += n
                pending = pending[n:]
            except BlockingIOError:
                time.sleep(0.002)
            except OSError:
                sock.setblocking(True)
                sock.settimeout(5)
                with suppress(OSError):
                    answer += sock.recv(65536)
                break
        sock.setblocking(True)
        sock.settimeout(5)
        try:
            while b"\r\n\r\n" in answer and len(answer) < 65536:
                more = sock.recv(65536)
                if not more:
                    break
                answer += more
        except OSError:
            pass
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    return status, answer, sent
