"""The console command from a base install, and the rule that the service never imports torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.commands import COMMANDS
from tests.conftest import ROOT

runner = CliRunner()


@pytest.mark.parametrize("name", [c[0] for c in COMMANDS])
def test_every_subcommand_answers_help(name: str) -> None:
    result = runner.invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_every_subcommand_of_the_product_card_exists() -> None:
    wanted = {
        "serve",
        "predict",
        "measure",
        "marker",
        "keys",
        "train",
        "evaluate",
        "export",
        "reanalyze",
        "simulate",
        "demo",
    }
    for name in wanted:
        module = next(m for n, m, _ in COMMANDS if n == name)
        assert (ROOT / "service" / "commands" / f"{module}.py").exists(), (
            f"woundscope {name} is missing"
        )


def test_service_never_imports_torch_or_albumentations() -> None:
    code = (
        "import importlib, pkgutil, sys, service\n"
        "for m in pkgutil.walk_packages(service.__path__, 'service.'):\n"
        "    if '.migrations' not in m.name: importlib.import_module(m.name)\n"
        "from service.cli import app\n"
        "bad = [m for m in ('torch', 'albumentations', 'training') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]


def test_torch_commands_name_the_extra_when_torch_is_missing(tmp_path: Path) -> None:
    # A fake site dir where torch cannot be found.
    (tmp_path / "sitecustomize.py").write_text(
        "import importlib.util as u\n_f = u.find_spec\n"
        "u.find_spec = lambda n, *a, **k: None if n.split('.')[0] in ('torch', 'albumentations') else _f(n, *a, **k)\n"
    )
    import os

    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    for cmd in (["train", "--config", "x.yaml"], ["export", "--checkpoint", "x.pt", "--out", "x"]):
        done = subprocess.run(
            [sys.executable, "-m", "service.cli", *cmd],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
        )
        assert done.returncode == 2
        assert "woundscope[train]" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_the_serving_path_does_not_import_the_simulator() -> None:
    """The marker's definition lives in ``service.marker``; the simulated camera
    (``service.scene``) and the virtual trial are for tests, benchmarks and the demo."""
    code = (
        "import sys\n"
        "import service.app, service.pipeline, service.measure, service.marker, service.exports\n"
        "bad = [m for m in ('service.scene', 'service.simulate') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]


PURE_CORES = (
    "errors",
    "imaging",
    "marker",
    "measure",
    "contract",
    "segmetrics",
    "uncertainty",
    "endpoints",
    "exports",
    "pipeline",
    "reframe",
    "review",
    "inference",
    "yardsticks",
)


@pytest.mark.parametrize("core", PURE_CORES)
def test_the_pure_cores_import_no_web_or_database_module(core: str) -> None:
    """The maths and rules can be read, tested and reused without the web stack or the
    database (``service.handlers`` answers their errors over HTTP)."""
    code = (
        "import sys\n"
        f"import service.{core}\n"
        "web = ('fastapi', 'starlette', 'sqlalchemy', 'service.db', 'service.orm')\n"
        "bad = [m for m in web if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.xfail(
    strict=True,
    reason="known debt (issue 19): the dashboard and the export routes still import the"
    " endpoint routes' helpers; remove this mark when they read the domain modules instead",
)
def test_routes_do_not_import_routes() -> None:
    import ast

    for path in sorted((ROOT / "service" / "routes").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "service.routes"
            ):
                pytest.fail(f"{path.name} imports {node.module}: move the shared part out")
