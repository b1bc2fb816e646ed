"""Packaging hook (the rest is in pyproject.toml): a built wheel carries the bundled
models (``models/``) and sample photos (``data/samples/``) inside the package, as
``service/_data/``, so an installed woundscope finds them from any folder
(``service.resources``). Editable installs read them from the checkout instead."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
MODEL_FILES = ("model.json", "model.onnx", "MODEL_CARD.md")


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "service" / "_data"
        shutil.rmtree(target, ignore_errors=True)
        for folder in sorted((HERE / "models").iterdir()):
            if (folder / "model.json").is_file() and (folder / "model.onnx").is_file():
                out = target / "models" / folder.name
                out.mkdir(parents=True)
                for name in MODEL_FILES:
                    if (folder / name).is_file():
                        shutil.copy2(folder / name, out / name)
        shutil.copytree(HERE / "data" / "samples", target / "samples")


setup(cmdclass={"build_py": BuildWithData})
