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
    """The marker's definition lives in ``service.core.marker``; the simulated camera
    (``service.simulator.scene``) and the virtual trial are for tests, benchmarks and the demo."""
    code = (
        "import sys\n"
        "import service.api.app, service.core.pipeline, service.core.measure, service.core.marker, service.core.exports\n"
        "bad = [m for m in ('service.simulator.scene', 'service.simulator.simulate') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]


WEB_OR_DATABASE = ("fastapi", "starlette", "sqlalchemy")
CORE_MODULES = sorted(
    p.stem for p in (ROOT / "service" / "core").glob("*.py") if p.stem != "__init__"
)


@pytest.mark.parametrize("core", CORE_MODULES)
def test_the_pure_cores_import_no_web_database_or_runtime_module(core: str) -> None:
    """The maths and rules can be read, tested and reused without the web stack, the
    database or ONNX Runtime (``service.api.handlers`` answers their errors over HTTP).
    Checked on ``sys.modules`` after import, so an import inside a dependency counts."""
    code = (
        "import sys\n"
        f"import service.core.{core}\n"
        f"forbidden = {WEB_OR_DATABASE + ('onnxruntime',)!r}\n"
        "outside = ('service.api', 'service.domain', 'service.persistence', 'service.runtime',"
        " 'service.simulator', 'service.commands')\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in forbidden or m.startswith(outside)]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("module", ["runtime.inference", "runtime.yardsticks", "runtime.artifacts"])
def test_the_model_runtime_imports_no_web_or_database_module(module: str) -> None:
    code = (
        "import sys\n"
        f"import service.{module}\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {WEB_OR_DATABASE!r}]\n"
        "bad += [m for m in sys.modules if m.startswith(('service.api', 'service.domain'))]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]


# What each part of the service may import (besides itself and third-party code); the
# same table is in docs/ARCHITECTURE.md. Checked on the source, lazy imports included.
MAY_IMPORT: dict[str, set[str]] = {
    "core": set(),
    "config": {"core"},
    "resources": set(),
    "persistence": {"core"},
    "runtime": {"core", "config", "persistence", "resources"},
    "domain": {"core", "config", "persistence", "runtime"},
    "simulator": {"core", "config", "persistence", "runtime", "domain", "resources"},
    "api": {"core", "config", "persistence", "runtime", "domain", "resources"},
    "jobs": {"core", "config", "persistence", "runtime", "domain"},
    "commands": {
        "core",
        "config",
        "persistence",
        "runtime",
        "domain",
        "simulator",
        "api",
        "jobs",
        "resources",
    },
    "cli": {"commands", "config"},
}


def _service_imports(path: Path) -> set[str]:
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
            if node.module == "service":
                names = [f"service.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n for n in names if n.startswith("service.")}
    return found


def _part(path: Path) -> str:
    parts = path.relative_to(ROOT / "service").parts
    return parts[0] if len(parts) > 1 else path.stem


def test_each_part_of_the_service_imports_only_what_it_may() -> None:
    bad = []
    for path in sorted((ROOT / "service").rglob("*.py")):
        if (
            "migrations" in path.parts
            or path.name == "__init__.py"
            and path.parent.name == "service"
        ):
            continue
        part = _part(path)
        assert part in MAY_IMPORT, f"{path}: a new part of the service: add it to MAY_IMPORT"
        for module in _service_imports(path):
            other = module.split(".")[1]
            if other not in (part, "__version__") and other not in MAY_IMPORT[part]:
                bad.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not bad, "\n".join(bad)


ROUTES = "service.api.routes"


def _route_imports(source: str) -> list[str]:
    """The route modules a route module's source imports, in any form: ``import
    service.api.routes.x``, ``from service.api.routes(.x) import y``, ``from service.api
    import routes``, and relative imports (``from . import x``, ``from .x import y``)."""
    import ast

    def is_routes(name: str) -> bool:
        return name == ROUTES or name.startswith(f"{ROUTES}.")

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if is_routes(a.name)]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level or is_routes(module):
                found.append(f"{'.' * node.level}{module}")
            elif module == "service.api" and any(a.name == "routes" for a in node.names):
                found.append(ROUTES)
    return found


@pytest.mark.parametrize(
    "source",
    [
        "from service.api.routes.healing import wound_answer",
        "from service.api.routes import exports",
        "import service.api.routes.dashboard",
        "import service.api.routes.dashboard as d",
        "from service.api import routes",
        "from . import exports",
        "from .healing import study_answer",
        "def f():\n    from service.api.routes import capture\n",
    ],
)
def test_the_route_import_check_finds_each_form(source: str) -> None:
    assert _route_imports(source), source


def test_the_route_import_check_lets_shared_modules_be() -> None:
    shared = (
        "from service.api import views, uploads\n"
        "from service.api.sessions import signed_in\n"
        "import service.api.routesmith\n"
        "from service.domain import outcomes\n"
    )
    assert _route_imports(shared) == []


def test_routes_do_not_import_routes() -> None:
    """A route module is thin: what two of them share lives in ``service.domain`` (the
    answers, the exports) or in a module of ``service.api`` outside ``routes``
    (sessions, uploads, downloads), never in another route module."""
    bad = [
        f"{path.name} imports {module}"
        for path in sorted((ROOT / "service" / "api" / "routes").glob("*.py"))
        for module in _route_imports(path.read_text())
    ]
    assert not bad, "move the shared part out:\n" + "\n".join(bad)
