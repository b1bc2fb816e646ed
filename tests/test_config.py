"""Settings: every WOUNDSCOPE_* variable the service reads is a typed field of
``service.config``, documented once in the README and known to the misspelling check."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from service.config import (
    ConfigError,
    ModelSettings,
    Settings,
    model_settings_from_env,
    unknown_variables,
)
from tests.conftest import need

ROOT = Path(__file__).resolve().parents[1]


def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """No WOUNDSCOPE_* variable of the caller's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("WOUNDSCOPE_"):
            monkeypatch.delenv(name)


def test_model_and_store_variables_are_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _isolated(monkeypatch)
    extra = [tmp_path / "a", tmp_path / "b"]
    monkeypatch.setenv("WOUNDSCOPE_MODELS_DIR", os.pathsep.join(map(str, extra)))
    monkeypatch.setenv("WOUNDSCOPE_ORT_THREADS", "3")
    monkeypatch.setenv("WOUNDSCOPE_S3_ENDPOINT_URL", "http://127.0.0.1:9000")
    settings = Settings(data_dir=tmp_path)
    assert settings.models_dirs == extra
    assert settings.ort_threads == 3
    assert settings.s3_endpoint_url == "http://127.0.0.1:9000"
    assert ModelSettings().models_dirs == extra
    monkeypatch.delenv("WOUNDSCOPE_MODELS_DIR")
    assert Settings(data_dir=tmp_path).models_dirs == []


def test_unknown_variables_knows_every_setting() -> None:
    env = {
        "WOUNDSCOPE_MODELS_DIR": "/models",
        "WOUNDSCOPE_ORT_THREADS": "2",
        "WOUNDSCOPE_S3_ENDPOINT_URL": "http://minio:9000",
        "WOUNDSCOPE_QUALITY__MAX_TILT_DEG": "30",
        "WOUNDSCOPE_TEST_POSTGRES_URL": "postgresql://x",
        "WOUNDSCOPE_MODELS_DIRS": "/typo",
        "WOUNDSCOPE_S3_ENDPOINT": "http://typo",
        "AWS_ENDPOINT_URL": "http://not-ours",
    }
    assert unknown_variables(env) == ["WOUNDSCOPE_MODELS_DIRS", "WOUNDSCOPE_S3_ENDPOINT"]
    every = {f"WOUNDSCOPE_{name.upper()}": "x" for name in Settings.model_fields}
    assert unknown_variables(every) == []


def test_model_settings_need_no_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """predict / measure / evaluate read only the model settings: a database URL they
    never use does not stop them, a bad thread count is named with its variable."""
    _isolated(monkeypatch)
    monkeypatch.setenv("WOUNDSCOPE_DATABASE_URL", "mysql://nope")
    assert model_settings_from_env().ort_threads == 0
    monkeypatch.setenv("WOUNDSCOPE_ORT_THREADS", "many")
    with pytest.raises(ConfigError, match="WOUNDSCOPE_ORT_THREADS='many'"):
        model_settings_from_env()


def test_readme_lists_every_setting_once() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration") :]
    table = table[: table.index("\n## ")]
    rows = [line for line in table.splitlines() if line.startswith("| `WOUNDSCOPE_")]
    firsts = [re.findall(r"`(WOUNDSCOPE_[A-Z0-9_]+)`", row.split(" | ")[0]) for row in rows]
    named = [name.split("__")[0] for names in firsts for name in names]
    for field in Settings.model_fields:
        variable = f"WOUNDSCOPE_{field.upper()}"
        assert named.count(variable) == 1, (
            f"README's settings table: {variable} x{named.count(variable)}"
        )
    assert len(named) == len(set(named)) == len(Settings.model_fields)


def test_only_config_reads_the_environment() -> None:
    """Settings are read in one place and passed in; the demo's subprocess environment
    (``service/simulator/demo.py``) is the one other use, and it only passes it on."""
    allowed = {"service/config.py", "service/simulator/demo.py"}
    readers = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "service").rglob("*.py")
        if re.search(r"os\.environ|getenv", path.read_text())
    )
    assert set(readers) <= allowed, readers


def test_the_registry_finds_models_in_the_settings_folders(tmp_path: Path) -> None:
    """A model installed only under WOUNDSCOPE_MODELS_DIR can be pinned by a study."""
    from service.runtime.artifacts import BUNDLED_MODELS_DIR, installed_models, models_dirs
    from service.runtime.context import ModelRegistry

    bundled = installed_models([BUNDLED_MODELS_DIR])
    need(bool(bundled), f"no model bundled in {BUNDLED_MODELS_DIR}")
    spec, folder = bundled[0]
    target = tmp_path / "models" / f"{spec.name}-98.0.0"
    target.mkdir(parents=True)
    meta = json.loads((folder / "model.json").read_text()) | {"version": "98.0.0"}
    (target / "model.json").write_text(json.dumps(meta))
    (target / "model.onnx").symlink_to(folder / "model.onnx")
    settings = ModelSettings(models_dir=str(tmp_path / "models"))
    registry = ModelRegistry(dirs=models_dirs(settings.models_dirs))
    assert registry.installed(f"{spec.name}-98.0.0")
    assert registry.installed(spec.id)  # the bundled ones still count
    assert not ModelRegistry(dirs=models_dirs()).installed(f"{spec.name}-98.0.0")
