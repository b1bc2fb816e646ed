"""Seconds to simulate the demo trial (its subjects, weeks and seed) with N workers.

python benchmarks/demo/simulate_time.py [WORKERS]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from service.simulator.demo import DEMO_SEED, DEMO_SUBJECTS, DEMO_WEEKS
from service.simulator.simulate import simulate_trial

if __name__ == "__main__":  # spawned workers import this module: simulate only here
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    with tempfile.TemporaryDirectory(prefix="woundscope-simulate-") as tmp:
        started = time.perf_counter()
        truth = simulate_trial(
            Path(tmp), n_subjects=DEMO_SUBJECTS, weeks=DEMO_WEEKS, seed=DEMO_SEED, workers=workers
        )
        seconds = time.perf_counter() - started
        size_mb = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 1e6
        print(
            f"workers {workers}: {len(truth['photos'])} photos, {size_mb:.1f} MB, {seconds:.1f} s"
        )
