"""The demo's virtual trial shipped in data/samples/ is what the simulator writes.

``woundscope demo`` uploads the shipped trial instead of simulating it (a first start
on a shared 2-core machine spent one to two minutes there). This test simulates it
again with the demo's seed and size and compares: the truth (areas, observations,
endpoints) and the scenes equal, every mask equal, every photo equal or, where another
JPEG encoder build rounds differently, within one grey level on average.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from service.simulator.demo import (
    DEMO_SEED,
    DEMO_SUBJECTS,
    DEMO_WEEKS,
    shipped_trial,
    simulate_command,
    trial_name,
)
from service.simulator.simulate import simulate_trial
from tests.conftest import need


def _close(shipped: object, fresh: object, where: str = "") -> list[str]:
    """Where two JSON values differ (numbers to 1e-6 relative)."""
    if isinstance(shipped, dict) and isinstance(fresh, dict):
        if set(shipped) != set(fresh):
            return [f"{where}: keys {sorted(set(shipped) ^ set(fresh))}"]
        return [d for k in shipped for d in _close(shipped[k], fresh[k], f"{where}.{k}")]
    if isinstance(shipped, list) and isinstance(fresh, list):
        if len(shipped) != len(fresh):
            return [f"{where}: {len(shipped)} items vs {len(fresh)}"]
        return [
            d
            for i, (a, b) in enumerate(zip(shipped, fresh, strict=True))
            for d in _close(a, b, f"{where}[{i}]")
        ]
    if isinstance(shipped, float) or isinstance(fresh, float):
        ok = isinstance(shipped, int | float) and isinstance(fresh, int | float)
        if ok and shipped == pytest.approx(fresh, rel=1e-6, abs=1e-9):
            return []
    elif shipped == fresh:
        return []
    return [f"{where}: shipped {shipped!r}, simulated {fresh!r}"]


def test_the_demo_uses_the_shipped_trial_for_its_own_size() -> None:
    shipped = shipped_trial()
    need(shipped is not None, f"data/samples/{trial_name()} is missing")
    assert shipped is not None and shipped.name == trial_name(DEMO_SUBJECTS, DEMO_WEEKS)
    assert shipped_trial(1, 1) is None  # another size is simulated
    assert simulate_command() in (shipped / "README.md").read_text()


@pytest.mark.slow
def test_the_shipped_demo_trial_is_what_the_simulator_writes(tmp_path: Path) -> None:
    import cv2

    shipped = shipped_trial()
    need(shipped is not None, f"data/samples/{trial_name()} is missing")
    assert shipped is not None
    simulate_trial(tmp_path, n_subjects=DEMO_SUBJECTS, weeks=DEMO_WEEKS, seed=DEMO_SEED, workers=2)
    for name in ("truth.json", "scene.json"):
        differences = _close(
            json.loads((shipped / name).read_text()), json.loads((tmp_path / name).read_text())
        )
        assert not differences, f"{name}: {differences[:5]}; run `{simulate_command()}` again"
    files = sorted(p.relative_to(shipped) for p in shipped.rglob("*.*") if p.parent != shipped)
    assert files == sorted(
        p.relative_to(tmp_path) for p in tmp_path.rglob("*.*") if p.parent != tmp_path
    )
    for relative in files:
        old, new = (shipped / relative).read_bytes(), (tmp_path / relative).read_bytes()
        if old == new:
            continue
        a = cv2.imdecode(np.frombuffer(old, np.uint8), cv2.IMREAD_UNCHANGED).astype(np.int16)
        b = cv2.imdecode(np.frombuffer(new, np.uint8), cv2.IMREAD_UNCHANGED).astype(np.int16)
        assert relative.suffix == ".jpg", f"{relative} differs: run `{simulate_command()}` again"
        assert a.shape == b.shape and np.abs(a - b).mean() <= 1.0, relative
