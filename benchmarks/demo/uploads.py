"""The demo trial's uploads at several concurrencies, into one running service.

    python benchmarks/demo/uploads.py [--concurrency 1 3 1 3] [--port 8741]

Uses the shipped demo trial (or simulates it once), starts ``woundscope serve`` on a
fresh data dir, then replays the trial into a new study per run (alternating the
concurrencies, so that a busy machine's drift hits both) and prints the seconds of
each run, and the CPU seconds the service and this client spent (the cost, whatever
else runs on the machine).
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


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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
            shipped_trial,
            wait_ready,
        )
        from service.simulator.simulate import SITES, simulate_trial

        shipped = shipped_trial()
        if shipped is not None:
            trial_dir = shipped
        else:
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
                        server_cpu, own_cpu = _cpu_s(server.pid), _own_cpu_s()
                        loaded = replay(client, trial_dir, study, admin, concurrency=concurrency)
                        seconds = time.perf_counter() - started
                        server_cpu = _cpu_s(server.pid) - server_cpu
                        own_cpu = _own_cpu_s() - own_cpu
                        print(
                            f"concurrency {concurrency}: {len(loaded.assessments)} photos"
                            f" in {seconds:.1f} s, CPU {server_cpu:.1f} s service +"
                            f" {own_cpu:.1f} s client ({os.getloadavg()[0]:.1f} load)",
                            flush=True,
                        )
            finally:
                server.terminate()
                server.wait(timeout=30)


if __name__ == "__main__":
    main()
