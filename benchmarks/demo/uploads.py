"""The demo trial's uploads at several concurrencies, into one running service.

    python benchmarks/demo/uploads.py [--concurrency 1 3 1 3] [--port 8741]

Simulates the demo trial once, starts ``woundscope serve`` on a fresh data dir,
then replays the trial into a new study per run (alternating the concurrencies, so
that a busy machine's drift hits both) and prints the seconds of each run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 3, 1, 3])
    parser.add_argument("--port", type=int, default=8741)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="woundscope-uploads-") as tmp:
        data_dir, trial_dir = Path(tmp) / "data", Path(tmp) / "trial"
        os.environ["WOUNDSCOPE_DATA_DIR"] = str(data_dir)
        os.environ.pop("WOUNDSCOPE_DATABASE_URL", None)
        from service.core.marker import MARKER_MM
        from service.simulator.demo import (
            DEMO_SEED,
            DEMO_SUBJECTS,
            DEMO_WEEKS,
            create_study,
            first_admin_key,
            replay,
            wait_ready,
        )
        from service.simulator.simulate import SITES, simulate_trial

        simulate_trial(
            trial_dir,
            n_subjects=DEMO_SUBJECTS,
            weeks=DEMO_WEEKS,
            seed=DEMO_SEED,
            workers=os.cpu_count() or 1,
        )
        cmd = [sys.executable, "-m", "service.cli", "serve", "--port", str(args.port)]
        with open(Path(tmp) / "serve.log", "wb") as log:
            server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
            try:
                url = f"http://127.0.0.1:{args.port}"
                with httpx.Client(base_url=url, timeout=120.0) as client:
                    wait_ready(client, alive=lambda: server.poll() is None)
                    admin = first_admin_key("uploads benchmark")
                    for run, concurrency in enumerate(args.concurrency):
                        study = f"BENCH-{run}"
                        create_study(client, admin, study, study, MARKER_MM, list(SITES))
                        started = time.perf_counter()
                        loaded = replay(client, trial_dir, study, admin, concurrency=concurrency)
                        seconds = time.perf_counter() - started
                        print(
                            f"concurrency {concurrency}: {len(loaded.assessments)} photos"
                            f" in {seconds:.1f} s ({os.getloadavg()[0]:.1f} load)",
                            flush=True,
                        )
            finally:
                server.terminate()
                server.wait(timeout=30)


if __name__ == "__main__":
    main()
