"""The fast variant of ``benchmarks/durability``: kill -9 the service while 20 uploads
are in flight (SQLite + local photos), restart it, and check that nothing the client
saw acknowledged was lost, nothing is duplicated after retries, and fsck is clean."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "durability"))
import run_durability  # noqa: E402


@pytest.mark.slow
def test_kill9_during_uploads_loses_nothing(tmp_path: Path) -> None:
    checks = run_durability.scenario_kill(20, tmp_path, limit_s=150)
    assert checks["failures"] == []
    assert checks["acknowledged_before_kill"] >= 1
    assert checks["fsck_problems_after_crash"] == 0
    assert checks["assessments_after_retries"] == checks["distinct_assessments"] == 20
    assert checks["final_fsck_clean"]
    assert checks["ok"], checks
