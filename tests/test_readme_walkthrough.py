"""The README's API walkthrough runs as written, against a live ``woundscope serve``.

The block is taken verbatim from README.md and run by bash in a folder laid out like
the checkout after ``make run``: ``.venv`` (this interpreter's environment, whose
``bin`` has the ``woundscope`` command), ``data/`` (the bundled samples) and
``var/demo`` (the server's data dir). Only ``URL`` is set, to the test server's port.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, need
from tests.hostile.live import live_server

README = (ROOT / "README.md").read_text()


def walkthrough() -> str:
    section = README[README.index("## Using the API") :]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "the README's 'Using the API' section has no sh block"
    return match.group(1)


def _documents(text: str) -> list[object]:
    """The JSON values the block printed, one after another."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        value, at = decoder.raw_decode(text, at)
        found.append(value)
    return found


@pytest.mark.slow
def test_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    venv = Path(sys.executable).parent.parent
    need((venv / "bin" / "woundscope").exists(), f"no woundscope command in {venv}/bin")
    need(shutil.which("curl") is not None and shutil.which("jq") is not None, "curl and jq")
    work = tmp_path / "checkout"
    work.mkdir()
    (work / ".venv").symlink_to(venv)
    (work / "data").symlink_to(ROOT / "data")
    data_dir = work / "var" / "demo"
    with live_server(tmp_path / "srv", WOUNDSCOPE_DATA_DIR=str(data_dir)) as live:
        env = {k: v for k, v in live.env.items() if k != "WOUNDSCOPE_DATA_DIR"}
        env["URL"] = live.url
        out = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", walkthrough()],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-3000:]
    documents = _documents(out.stdout)
    assert not [d for d in documents if isinstance(d, dict) and "detail" in d], out.stdout
    measured = [d for d in documents if isinstance(d, dict) and "calibration" in d]
    assert measured and measured[0]["calibration"] == "marker", out.stdout
    assert measured[0]["area_cm2"] > 0
    assert True in documents, "the clinician's acceptance did not make the photo count"
    endpoints = [d for d in documents if isinstance(d, dict) and "baseline_area_cm2" in d]
    assert endpoints and endpoints[0]["baseline_area_cm2"] == measured[0]["area_cm2"]
    rows = list(csv.DictReader(io.StringIO((work / "export.csv").read_text())))
    assert len(rows) == 1 and rows[0]["study"] == "REX-001"
    assert os.environ.get("WOUNDSCOPE_DATA_DIR") != str(data_dir)
