"""Installed models: ``models/<name>-<version>/`` folders, resolved by path or id."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from service.core.contract import ModelSpec, load_spec
from service.resources import bundled_models_dir

BUNDLED_MODELS_DIR = bundled_models_dir()


class ModelNotFound(LookupError):
    pass


def _version_key(version: str) -> tuple:
    core, _, pre = version.partition("-")
    nums = tuple(int(p) if p.isdigit() else 0 for p in core.split("."))
    # a release sorts after its pre-releases
    return nums, pre == "", pre


def models_dirs(extra: Sequence[Path] = ()) -> list[Path]:
    """Where installed models are looked for: ``extra`` (``WOUNDSCOPE_MODELS_DIR``, as
    ``ModelSettings.models_dirs``), then the bundled ones."""
    return [*extra, BUNDLED_MODELS_DIR]


def installed_models(dirs: list[Path] | None = None) -> list[tuple[ModelSpec, Path]]:
    """Every valid model folder in ``dirs`` (None: the bundled ones), highest version first."""
    found: dict[str, tuple[ModelSpec, Path]] = {}
    for root in dirs or models_dirs():
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if (folder / "model.json").is_file() and (folder / "model.onnx").is_file():
                spec = load_spec(folder)
                found.setdefault(spec.id, (spec, folder))
    return sorted(found.values(), key=lambda sp: _version_key(sp[0].version), reverse=True)


def resolve_model(ref: str | os.PathLike | None = None, dirs: list[Path] | None = None) -> Path:
    """A model folder from a path or an id installed in ``dirs`` (``ulcerseg-1.0.0``);
    None = the highest."""
    if ref is not None and str(ref) and Path(ref).is_dir():
        path = Path(ref)
        if not (path / "model.json").is_file():
            raise ModelNotFound(f"{path} has no model.json")
        return path
    models = installed_models(dirs)
    if not models:
        raise ModelNotFound("no model installed yet: put one in models/<name>-<version>/")
    if ref is None or not str(ref):
        return models[0][1]
    for spec, folder in models:
        if spec.id == str(ref):
            return folder
    ids = ", ".join(spec.id for spec, _ in models)
    raise ModelNotFound(f"model {ref!r} is not installed (installed: {ids})")
