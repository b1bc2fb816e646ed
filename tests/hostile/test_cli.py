"""Small things a new user trips over at the command line (run as the installed
``woundscope`` command is: ``python -m service.cli``, so ``main()`` runs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.conftest import SAMPLES, need_model
from tests.hostile.live import ROOT


def woundscope(tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("WOUNDSCOPE_")}
    base["WOUNDSCOPE_DATA_DIR"] = str(tmp / "data")
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def test_a_bad_value_names_its_variable(tmp_path: Path) -> None:
    out = woundscope(tmp_path, "keys", "list", WOUNDSCOPE_MAX_UPLOAD_BYTES="forty megabytes")
    assert out.returncode == 2, out.stderr
    assert "WOUNDSCOPE_MAX_UPLOAD_BYTES='forty megabytes'" in out.stderr
    assert "Traceback" not in out.stderr
    out = woundscope(tmp_path, "serve", "--port", "1", WOUNDSCOPE_INFERENCE_WORKERS="0")
    assert out.returncode == 2 and "WOUNDSCOPE_INFERENCE_WORKERS='0'" in out.stderr


def test_a_misspelled_variable_is_reported(tmp_path: Path) -> None:
    out = woundscope(tmp_path, "keys", "list", WOUNDSCOPE_MODLE="ulcerseg-2.0.0")
    assert out.returncode == 0, out.stderr
    assert "WOUNDSCOPE_MODLE is not a woundscope setting" in out.stderr


def test_marker_out_creates_its_folder(tmp_path: Path) -> None:
    target = tmp_path / "sheets" / "site A" / "marker.pdf"
    out = woundscope(tmp_path, "marker", "--out", str(target))
    assert out.returncode == 0, out.stderr
    assert target.read_bytes().startswith(b"%PDF")


def test_predict_says_what_it_did_without_json(tmp_path: Path) -> None:
    need_model()
    photos = tmp_path / "photos"
    (photos / "later").mkdir(parents=True)
    (photos / "0078.jpg").write_bytes((SAMPLES / "images" / "0078.jpg").read_bytes())
    out = woundscope(tmp_path, "predict", str(photos), "--out", str(tmp_path / "masks"))
    assert out.returncode == 0, out.stderr
    assert "0078.jpg" in out.stdout and "0078.png" in out.stdout and "wound pixels" in out.stdout
    assert "later" in out.stderr and "sub-folder" in out.stderr


def test_serve_refuses_a_busy_port_before_loading(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = woundscope(tmp_path, "serve", "--port", str(port))
    assert out.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr
    assert "service ready" not in out.stderr


@pytest.mark.slow
def test_stopping_the_demo_by_pid_stops_its_service(tmp_path: Path) -> None:
    """``kill PID`` of ``make run`` (``woundscope demo --serve``) stops the service too."""
    import signal
    import time

    import httpx

    from tests.hostile.live import free_port

    need_model()
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("WOUNDSCOPE_")}
    base["WOUNDSCOPE_DATA_DIR"] = str(tmp_path / "demo")
    demo = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "demo", "--serve", "--port", str(port)],
        env=base,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert demo.poll() is None, "the demo stopped early"
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.3)
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(url, timeout=1)
            except httpx.HTTPError:
                return  # nothing listens any more
            time.sleep(0.3)
        raise AssertionError("the service still answers after the demo was stopped")
    finally:
        if demo.poll() is None:
            demo.kill()


def test_version_is_printed_by_both_flags(tmp_path: Path) -> None:
    from service import __version__

    for flag in ("--version", "-V"):
        out = woundscope(tmp_path, flag)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == f"woundscope {__version__}"


def test_a_bad_data_dir_is_one_error_line_naming_the_variable(tmp_path: Path) -> None:
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    unmakeable = "/proc/woundscope-cannot-be-made"  # even root cannot mkdir in /proc
    for data_dir in (a_file, a_file / "below", unmakeable):
        out = woundscope(tmp_path, "keys", "list", WOUNDSCOPE_DATA_DIR=str(data_dir))
        assert out.returncode == 2, (data_dir, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
        assert f"WOUNDSCOPE_DATA_DIR='{data_dir}'" in lines[0], lines[0]
        assert "Traceback" not in out.stderr


def test_demo_without_serve_says_what_it_waits_for_and_gives_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing listens at the URL: the demo says so at once and stops after
    ``UNREACHABLE_S`` (shortened here), without making anything."""
    import time

    from service.simulator import demo
    from service.simulator.demo import DemoError, run_demo
    from tests.hostile.live import free_port

    monkeypatch.setattr(demo, "UNREACHABLE_S", 1.0)
    url = f"http://127.0.0.1:{free_port()}"
    said: list[str] = []
    started = time.monotonic()
    with pytest.raises(DemoError, match="nothing answers at .* after 1 s") as refused:
        run_demo(url, tmp_path / "data", say=said.append)
    assert time.monotonic() - started < 30
    assert said == [f"waiting for {url} (a running `woundscope serve`) ..."]
    assert "woundscope demo --serve" in str(refused.value)
    assert not (tmp_path / "data").exists()


def test_demo_serve_refuses_a_busy_port_before_starting(tmp_path: Path) -> None:
    """Another process on the port: the demo says so instead of loading into it."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = woundscope(tmp_path, "demo", "--serve", "--port", str(port))
    assert out.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr
    assert not (tmp_path / "data" / "demo-keys.json").exists()
