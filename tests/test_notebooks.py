"""The model notebooks execute headless on the six sample photos."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT, SAMPLES

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", ["data_exploration.ipynb", "error_analysis.ipynb"])
def test_notebook_executes(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WOUNDSCOPE_NB_IMAGES", str(SAMPLES / "images"))
    monkeypatch.setenv("WOUNDSCOPE_NB_LABELS", str(SAMPLES / "labels"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.read(Path(ROOT / "notebooks" / name), as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "6 photos" in text or "pooled Dice" in text
