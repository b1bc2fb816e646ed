"""The README's `make run` as a new user meets it: a busy port said before anything is
installed (naming PORT=), TERM to make stops the demo and its service (the recipe
execs the demo), and `make stop` stops them.

`make run` runs here against this interpreter's venv (VENV= a folder whose ``bin`` is
this venv's, with the install stamp made), so nothing is installed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import need_model
from tests.conftest import ROOT, need
from tests.hostile.live import free_port


def _make_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WOUNDSCOPE_", "MAKE"))}
    env["PYTHONPATH"] = str(ROOT)  # this checkout's code, whatever the venv's install names
    return env


def _venv(tmp_path: Path) -> Path:
    """A VENV for make: this venv's bin/, and the serving install's stamp (newer than
    pyproject.toml), so `make run` installs nothing."""
    need(shutil.which("make") is not None, "make is not installed")
    real = Path(sys.executable).parent
    need((real / "woundscope").exists(), f"no woundscope command in {real}")
    venv = tmp_path / "venv"
    if not venv.exists():
        venv.mkdir()
        (venv / "bin").symlink_to(real)
    (venv / ".serve").touch()
    return venv


def test_a_busy_port_is_said_before_anything_is_installed(tmp_path: Path) -> None:
    need(shutil.which("make") is not None, "make is not installed")
    venv = tmp_path / "venv-not-made"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            ["make", "-s", "run", f"PORT={port}", f"VENV={venv}", f"DATA_DIR={tmp_path / 'd'}"],
            cwd=ROOT,
            env=_make_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode != 0
    assert f"port {port} on 127.0.0.1 is in use" in out.stderr, out.stderr
    assert "make run PORT=" in out.stderr
    assert not venv.exists(), "make installed before it checked the port"


@contextmanager
def _make_run(tmp_path: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """`make run` in the background until its service answers /healthz."""
    venv, data_dir = _venv(tmp_path), tmp_path / "demo"
    log = (tmp_path / "make-run.log").open("wb")
    make = subprocess.Popen(
        ["make", "run", f"PORT={port}", f"VENV={venv}", f"DATA_DIR={data_dir}"],
        cwd=ROOT,
        env=_make_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 300
        while not _answers(port):
            assert make.poll() is None, (tmp_path / "make-run.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the service did not answer in 300 s"
            time.sleep(0.5)
        yield make
    finally:
        if make.poll() is None:
            make.kill()
            make.wait()
        log.close()


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _stops_answering(port: int, within_s: float = 30) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not _answers(port):
            return True
        time.sleep(0.3)
    return False


@pytest.mark.slow
def test_term_to_make_and_make_stop_stop_the_demo_and_its_service(tmp_path: Path) -> None:
    need_model()
    port = free_port()
    pid_file = tmp_path / "demo" / "make-run.pid"
    with _make_run(tmp_path, port) as make:
        demo_pid = int(pid_file.read_text())
        make.send_signal(signal.SIGTERM)
        make.wait(timeout=60)
        assert _stops_answering(port), "the service still answers after TERM to make"
        with pytest.raises(ProcessLookupError):
            os.kill(demo_pid, 0)  # the demo (what the recipe exec'd) is gone too

    port = free_port()
    with _make_run(tmp_path, port) as make:
        stop = subprocess.run(
            ["make", "-s", "stop", f"DATA_DIR={tmp_path / 'demo'}"],
            cwd=ROOT,
            env=_make_env(),
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert "stopped make run" in stop.stdout
        make.wait(timeout=60)
        assert _stops_answering(port)
        assert not pid_file.exists()
    again = subprocess.run(
        ["make", "-s", "stop", f"DATA_DIR={tmp_path / 'demo'}"],
        cwd=ROOT,
        env=_make_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert again.returncode == 0 and "no make run is running" in again.stdout
