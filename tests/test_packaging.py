"""A non-editable install works from any folder: the wheel carries the bundled models
and the sample photos, and its declared dependencies are the ones it uses.

How (no network in tests): the wheel is built from a copy of the checkout and
installed with ``pip install --no-deps`` into a **fresh venv** (no system site
packages). That venv gets the dependencies from the test's own environment through a
``.pth`` line, so a dependency missing from ``pyproject.toml`` would not fail the
install by itself; instead the installed app is run through its paths (readyz, a
study, an upload with the bundled model, the marker sheet, every CLI command module)
and every module it loaded is mapped to its distribution, which must be woundscope,
the standard library, or in the closure of woundscope's declared requirements.
Then ``woundscope serve`` from that venv, started in an unrelated folder, answers
``/readyz`` 200 with the bundled default model, and ``woundscope simulate`` finds the
bundled samples.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.hostile.live import free_port

ROOT = Path(__file__).resolve().parents[1]
SKIP = {".git", ".venv", "var", "runs", "build", "dist", "__pycache__", ".mypy_cache"}
SKIP_SUFFIXES = (".egg-info", ".pyc")

CHECK = r"""
import importlib, importlib.metadata as md, json, re, sys, tempfile
from pathlib import Path

import service
from fastapi.testclient import TestClient
from service.api.app import create_app
from service.commands import COMMANDS
from service.config import Settings

out = {"service_file": service.__file__}
with tempfile.TemporaryDirectory() as tmp:
    app = create_app(Settings(data_dir=Path(tmp), log_level="WARNING"))
    with TestClient(app) as client:
        from service.domain.auth import create_key
        with app.state.db.session() as s:
            _, key = create_key(s, role="admin", holder="Packaging Test")
        h = {"Authorization": f"Bearer {key}"}
        out["readyz"] = client.get("/readyz").json()
        assert client.post("/v1/studies", json={"id": "P", "name": "p"}, headers=h).status_code == 201
        assert client.post("/v1/studies/P/sites", json={"id": "A"}, headers=h).status_code == 201
        subject = client.post("/v1/studies/P/subjects", json={"code": "S1", "site": "A"}, headers=h).json()["id"]
        wound = client.post(f"/v1/subjects/{subject}/wounds", json={"label": "W1"}, headers=h).json()["id"]
        from service.resources import samples_dir
        photo = (samples_dir() / "fuseg" / "images" / "0078.jpg").read_bytes()
        r = client.post(f"/v1/wounds/{wound}/assessments", files={"photo": ("p.jpg", photo)},
                        data={"captured_at": "2026-01-05", "px_per_mm": "10"}, headers=h)
        out["upload"] = r.status_code
        out["model"] = r.json()["measurement"]["model"]
        out["marker"] = client.get("/v1/marker.png").status_code
        out["export"] = client.get("/v1/studies/P/export.fhir.json", headers=h).status_code
        client.get("/dashboard/login")
for _, module, _ in COMMANDS:
    if module not in ("train", "export", "evaluate"):  # the training extra
        importlib.import_module(f"service.commands.{module}")

def name(req):
    return re.match(r"[A-Za-z0-9._-]+", req).group(0).lower().replace("_", "-")

declared, todo = set(), ["woundscope"]
while todo:
    dist = todo.pop()
    try:
        reqs = md.requires(dist) or []
    except md.PackageNotFoundError:
        continue
    for req in reqs:
        if "extra ==" in req and dist == "woundscope":
            continue  # woundscope's own extras (train, dev) are not the serving install
        n = name(req)
        if n not in declared:
            declared.add(n)
            todo.append(n)
owners = md.packages_distributions()
undeclared = set()
for mod in list(sys.modules):
    top = mod.split(".")[0]
    if top in sys.stdlib_module_names or top in ("service", "training", "__main__", "_distutils_hack"):
        continue
    for dist in owners.get(top, []):
        if name(dist) not in declared:
            undeclared.add(f"{top} ({dist})")
out["undeclared"] = sorted(undeclared)
print(json.dumps(out))
"""


def _copy_checkout(dest: Path) -> None:
    def ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if n in SKIP or n.endswith(SKIP_SUFFIXES)}

    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_and_serves(tmp_path: Path) -> None:
    src, wheels, venv, elsewhere = (tmp_path / n for n in ("src", "wheels", "venv", "elsewhere"))
    _copy_checkout(src)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + [str(src), "-w", str(wheels)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = wheels.glob("woundscope-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    purelib = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    # The dependencies, from this environment (not woundscope itself: it must come from
    # the wheel). A .pth line is read after the venv's own site-packages.
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (purelib / "zz_test_deps.pth").write_text("\n".join(deps) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WOUNDSCOPE_", "PYTHON"))}
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    elsewhere.mkdir()
    env["WOUNDSCOPE_DATA_DIR"] = str(tmp_path / "data")
    check = subprocess.run(
        [python, "-c", CHECK], capture_output=True, text=True, timeout=300, env=env, cwd=elsewhere
    )
    assert check.returncode == 0, check.stderr[-3000:]
    found = json.loads(check.stdout.strip().splitlines()[-1])
    assert found["service_file"].startswith(str(purelib)), found["service_file"]
    assert found["readyz"]["status"] == "ready", found["readyz"]
    assert found["upload"] == 201 and found["model"]["name"] == "ulcerseg", found
    assert found["marker"] == 200 and found["export"] == 200
    assert found["undeclared"] == [], f"imported but not declared: {found['undeclared']}"

    # The console script, from an unrelated folder, serves the bundled model...
    woundscope = venv / "bin" / "woundscope"
    assert woundscope.exists(), "the woundscope command was not installed"
    port = free_port()
    server = subprocess.Popen(
        [woundscope, "serve", "--port", str(port)],
        env=env,
        cwd=elsewhere,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read().decode()[-3000:]  # type: ignore[union-attr]
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "not ready in 120 s"
            time.sleep(0.3)
        assert "ulcerseg" in r.text, r.text
    finally:
        server.terminate()
        server.wait(timeout=20)
    # ...and simulate finds the bundled sample photos.
    sim = subprocess.run(
        [woundscope, "simulate", "--subjects", "1", "--weeks", "2"]
        + ["--seed", "1", "--out", str(elsewhere / "sim")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=elsewhere,
    )
    assert sim.returncode == 0, sim.stderr[-3000:]
    assert (elsewhere / "sim" / "truth.json").is_file()
