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


STATUS_LINE = re.compile(r"(\w+): HTTP (\d{3})")


def _parse(stdout: str) -> tuple[dict[str, int], list[object], list[dict[str, str]]]:
    """What one run printed: the creates' statuses (``study: HTTP 201``), the JSON
    values one after another, then the CSV export (from its header line to the end).
    Each JSON answer must end its line: a value followed by more text on the same
    line (answers that run together) fails here."""
    statuses: dict[str, int] = {}
    decoder, documents, at = json.JSONDecoder(), [], 0
    while at < len(stdout):
        if stdout[at].isspace():
            at += 1
            continue
        line = stdout[at : stdout.find("\n", at) if "\n" in stdout[at:] else len(stdout)]
        status = STATUS_LINE.fullmatch(line)
        if status:
            statuses[status.group(1)] = int(status.group(2))
            at += len(line)
            continue
        if line.startswith("study,"):  # the CSV export's header: the rest is the CSV
            return statuses, documents, list(csv.DictReader(io.StringIO(stdout[at:])))
        value, at = decoder.raw_decode(stdout, at)
        assert stdout[at : at + 1] in ("\n", ""), f"answers run together: {stdout[at : at + 40]!r}"
        documents.append(value)
    return statuses, documents, []


def _checked(stdout: str, created: int) -> tuple[float, list[dict[str, str]]]:
    """One run's output as the README describes it; the area and the CSV rows."""
    statuses, documents, rows = _parse(stdout)
    assert statuses == dict.fromkeys(("study", "site", "subject", "wound"), created), stdout
    assert not [d for d in documents if isinstance(d, dict) and "detail" in d], stdout
    measured = [d for d in documents if isinstance(d, dict) and "calibration" in d]
    assert measured and measured[0]["calibration"] == "marker", stdout
    assert measured[0]["area_cm2"] > 0
    assert True in documents, "the clinician's acceptance did not make the photo count"
    endpoints = [d for d in documents if isinstance(d, dict) and "baseline_area_cm2" in d]
    assert endpoints and endpoints[0]["baseline_area_cm2"] == measured[0]["area_cm2"]
    return float(measured[0]["area_cm2"]), rows


@pytest.mark.slow
def test_readme_walkthrough_runs_as_written_twice(tmp_path: Path) -> None:
    """Run as written, then again (same server, same data dir): the second run finds
    what the first made (409, same ids, the upload replayed, not duplicated), and
    neither leaves a file in the checkout."""
    venv = Path(sys.executable).parent.parent
    need((venv / "bin" / "woundscope").exists(), f"no woundscope command in {venv}/bin")
    need(shutil.which("curl") is not None and shutil.which("jq") is not None, "curl and jq")
    work = tmp_path / "checkout"
    work.mkdir()
    (work / ".venv").symlink_to(venv)
    (work / "data").symlink_to(ROOT / "data")
    data_dir = work / "var" / "demo"
    outputs = []
    with live_server(tmp_path / "srv", WOUNDSCOPE_DATA_DIR=str(data_dir)) as live:
        env = {k: v for k, v in live.env.items() if k != "WOUNDSCOPE_DATA_DIR"}
        env["URL"] = live.url
        for _ in range(2):
            out = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", walkthrough()],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-3000:]
            outputs.append(out.stdout)
    first_area, first_rows = _checked(outputs[0], created=201)
    again_area, again_rows = _checked(outputs[1], created=409)
    assert again_area == first_area
    assert len(first_rows) == 1 and first_rows[0]["study"] == "REX-001"
    assert again_rows == first_rows  # the replayed upload added nothing
    assert sorted(p.name for p in work.iterdir()) == [".venv", "data", "var"]
    assert os.environ.get("WOUNDSCOPE_DATA_DIR") != str(data_dir)
