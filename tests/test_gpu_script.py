"""The GPU check (benchmarks/gpu) runs on a lent machine only when a task is drawn
for one, so it must not rot here: run it on the CPU and check that it writes its
table, with every missing engine named in a note rather than a crash."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_gpu_benchmark_runs_end_to_end_without_a_gpu(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "benchmarks/gpu/bench_gpu.py", "--out", str(tmp_path), "--seconds", "0.1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "gpu.json").read_text())
    engines = {row["engine"] for row in result["rows"]}
    assert any("CPUExecutionProvider" in e for e in engines)
    if "CUDAExecutionProvider" not in result["onnxruntime_providers"]:
        assert any("no CUDAExecutionProvider" in n for n in result["notes"])
    assert (tmp_path / "gpu.md").read_text().startswith("# GPU throughput")
