"""Durability under faults: kill -9 the service mid-load; restart PostgreSQL mid-load.

    python benchmarks/durability/run_durability.py [--uploads 100] [--scenario kill|postgres|both]

``kill``: N uploads in flight at once against ``woundscope serve`` (SQLite + local
photos, the embedded default); after a third of them are acknowledged the server's
process group gets SIGKILL. It is restarted, and then: every upload the client saw
acknowledged (201) is there with its measurement and photo; ``woundscope fsck``
finds no row without its photo and no corrupt photo; the uploads that were never
acknowledged are retried with their Idempotency-Key and the wound ends with exactly
N assessments (no loss, no duplicate); the orphan photos the crash left (stored,
row never committed, never acknowledged) are counted and ``fsck --repair`` removes
them.

``postgres``: the same load against a private PostgreSQL cluster (initdb in a temp
dir, own port) that is stopped with ``-m immediate`` (a crash: WAL recovery on
start) and started again mid-load, while the service keeps running. Clients retry
503s and connection errors; 500s are counted as failures of the service.

Writes a table to stdout and ``--out`` (JSON), exit status 1 if any check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service_harness import Postgres, Service, photo_variants, setup_trial  # noqa: E402


@dataclass
class Load:
    base: str
    headers: dict[str, str]
    wound: str
    photos: list[bytes]
    acked: dict[int, dict[str, Any]] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)

    def form(self, i: int) -> dict[str, str]:
        return {"captured_at": f"2026-01-{1 + i % 28:02d}", "visit": f"V{i}"}


async def _upload(
    load: Load, client: httpx.AsyncClient, i: int, *, until: float, stop_on_disconnect: bool
) -> None:
    while time.monotonic() < until:
        try:
            r = await client.post(
                f"/v1/wounds/{load.wound}/assessments",
                data=load.form(i),
                files={"photo": (f"photo{i}.jpg", load.photos[i], "image/jpeg")},
                headers={**load.headers, "Idempotency-Key": f"durability-{i}"},
            )
        except httpx.HTTPError as exc:
            load.statuses[type(exc).__name__] += 1
            if stop_on_disconnect:
                return
            await asyncio.sleep(0.5)
            continue
        load.statuses[str(r.status_code)] += 1
        if r.status_code == 201:
            load.acked[i] = r.json()
            return
        if r.status_code != 503 and len(load.error_samples) < 5:
            load.error_samples.append(f"{r.status_code} {r.text[:300]}")
        if r.status_code in (500, 502, 503, 504):
            await asyncio.sleep(min(float(r.headers.get("Retry-After", "1")), 5.0))
            continue
        raise RuntimeError(f"upload {i}: unexpected {r.status_code} {r.text[:300]}")


async def drive(
    load: Load, indices: list[int], *, seconds: float, stop_on_disconnect: bool
) -> None:
    limits = httpx.Limits(max_connections=len(indices) or 1, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=load.base, timeout=120, limits=limits) as client:
        until = time.monotonic() + seconds
        await asyncio.gather(
            *(
                _upload(load, client, i, until=until, stop_on_disconnect=stop_on_disconnect)
                for i in indices
            )
        )


def when_acked(load: Load, count: int, action: Any, timeout_s: float = 600) -> threading.Thread:
    """Run ``action`` in a thread once ``count`` uploads are acknowledged."""

    def watch() -> None:
        deadline = time.monotonic() + timeout_s
        while len(load.acked) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        action()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def verify_acked(load: Load, acked: dict[int, dict[str, Any]]) -> list[str]:
    """Every acknowledged upload answers with its measurement and its photo."""
    failures = []
    with httpx.Client(base_url=load.base, headers=load.headers, timeout=60) as client:
        for i, answer in sorted(acked.items()):
            r = client.get(f"/v1/assessments/{answer['id']}")
            if r.status_code != 200:
                failures.append(
                    f"acknowledged upload {i} ({answer['id']}): GET answered {r.status_code}"
                )
                continue
            if not r.json().get("measurement"):
                failures.append(f"acknowledged upload {i} ({answer['id']}): no measurement")
            photo = client.get(answer["photo_url"])
            if photo.status_code != 200 or not photo.content:
                failures.append(f"acknowledged upload {i}: photo answered {photo.status_code}")
    return failures


def count_assessments(load: Load) -> list[str]:
    ids: list[str] = []
    with httpx.Client(base_url=load.base, headers=load.headers, timeout=60) as client:
        url: str | None = f"/v1/wounds/{load.wound}/assessments?limit=500"
        while url:
            r = client.get(url)
            r.raise_for_status()
            body = r.json()
            items = body["items"] if isinstance(body, dict) else body
            ids += [item["id"] for item in items]
            url = body.get("next") if isinstance(body, dict) else None
    return ids


def fsck(service: Service, *extra: str) -> dict[str, Any]:
    done = service.cli("fsck", "--json", "--grace-minutes", "0", *extra, check=False)
    try:
        return dict(json.loads(done.stdout))
    except json.JSONDecodeError as exc:
        raise RuntimeError(
            f"fsck printed no JSON ({done.returncode}): {done.stdout}\n{done.stderr}"
        ) from exc


def scenario_kill(uploads: int, work: Path, limit_s: float = 600) -> dict[str, Any]:
    service = Service(work / "data")
    key = service.admin_key()
    service.start()
    trial = setup_trial(service.base, key)
    load = Load(service.base, trial["headers"], trial["wound"], photo_variants(uploads))
    checks: dict[str, Any] = {}
    try:
        killer = when_acked(load, max(1, uploads // 3), service.kill9, timeout_s=limit_s)
        t0 = time.monotonic()
        asyncio.run(drive(load, list(range(uploads)), seconds=limit_s, stop_on_disconnect=True))
        killer.join(timeout=60)
        acked_before = dict(load.acked)
        phase1_s = time.monotonic() - t0
        after_crash = fsck(service)  # the server is down: only the files and the database
        service.start()
        failures = verify_acked(load, acked_before)
        missing = [i for i in range(uploads) if i not in load.acked]
        asyncio.run(drive(load, missing, seconds=limit_s, stop_on_disconnect=False))
        ids = count_assessments(load)
        failures += verify_acked(load, load.acked)
        service.stop()
        after_retry = fsck(service)
        repaired = fsck(service, "--repair")
        final = fsck(service)
        checks = {
            "uploads": uploads,
            "acknowledged_before_kill": len(acked_before),
            "in_flight_at_kill": uploads - len(acked_before),
            "seconds_to_kill": round(phase1_s, 1),
            "acknowledged_and_present_after_restart": len(acked_before)
            - len([f for f in failures if "GET answered" in f]),
            "assessments_after_retries": len(ids),
            "distinct_assessments": len(set(ids)),
            "fsck_problems_after_crash": len(after_crash["problems"]),
            "orphans_after_crash": len(after_crash["orphans"]),
            "temporary_files_after_crash": len(after_crash["temporary"]),
            "orphans_after_retries": len(after_retry["orphans"]),
            "fsck_problems_after_retries": len(after_retry["problems"]),
            "repair_deleted": len(repaired["deleted"]),
            "final_fsck_clean": final["clean"],
            "statuses": dict(load.statuses),
            "error_samples": load.error_samples,
            "server_errors_500": load.statuses.get("500", 0),
            "failures": failures,
        }
        checks["ok"] = (
            not failures
            and load.statuses.get("500", 0) == 0
            and len(ids) == uploads
            and len(set(ids)) == uploads
            and not after_crash["problems"]
            and not after_retry["problems"]
            and final["clean"]
        )
    finally:
        service.kill9()
    return checks


def scenario_postgres(uploads: int, work: Path) -> dict[str, Any]:
    if Postgres.bindir() is None:
        return {"ok": False, "failures": ["no PostgreSQL binaries under /usr/lib/postgresql/*/bin"]}
    pg = Postgres()
    pg.init()
    service = Service(work / "data-pg", database_url=pg.url)
    checks: dict[str, Any] = {}
    try:
        service.cli("db", "upgrade")
        key = service.admin_key()
        service.start()
        trial = setup_trial(service.base, key, study="DUR-PG")
        load = Load(service.base, trial["headers"], trial["wound"], photo_variants(uploads, seed=1))
        timeline: dict[str, float] = {}

        def crash_postgres() -> None:
            timeline["acked_at_crash"] = len(load.acked)
            t = time.monotonic()
            pg.restart_crash()
            timeline["postgres_down_s"] = round(time.monotonic() - t, 2)

        restarter = when_acked(load, max(1, uploads // 3), crash_postgres)
        t0 = time.monotonic()
        asyncio.run(drive(load, list(range(uploads)), seconds=600, stop_on_disconnect=False))
        restarter.join(timeout=120)
        elapsed = time.monotonic() - t0
        failures = verify_acked(load, load.acked)
        ids = count_assessments(load)
        service.stop()
        after = fsck(service)
        repaired = fsck(service, "--repair")
        final = fsck(service)
        checks = {
            "uploads": uploads,
            **timeline,
            "acknowledged": len(load.acked),
            "seconds": round(elapsed, 1),
            "assessments": len(ids),
            "distinct_assessments": len(set(ids)),
            "fsck_problems": len(after["problems"]),
            "orphans": len(after["orphans"]),
            "repair_deleted": len(repaired["deleted"]),
            "final_fsck_clean": final["clean"],
            "statuses": dict(load.statuses),
            "error_samples": load.error_samples,
            "server_errors_500": load.statuses.get("500", 0),
            "failures": failures,
        }
        checks["ok"] = (
            not failures
            and len(load.acked) == uploads
            and len(ids) == uploads
            and len(set(ids)) == uploads
            and not after["problems"]
            and final["clean"]
            and load.statuses.get("500", 0) == 0
        )
    finally:
        service.kill9()
        pg.destroy()
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="kill -9 / PostgreSQL-restart durability check")
    parser.add_argument("--uploads", type=int, default=100)
    parser.add_argument("--scenario", choices=["kill", "postgres", "both"], default="both")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="woundscope-durability-") as tmp:
        if args.scenario in ("kill", "both"):
            results["kill -9 service"] = scenario_kill(args.uploads, Path(tmp) / "kill")
        if args.scenario in ("postgres", "both"):
            results["PostgreSQL crash-restart"] = scenario_postgres(args.uploads, Path(tmp) / "pg")
    for name, checks in results.items():
        print(f"\n## {name}: {'PASS' if checks.get('ok') else 'FAIL'}\n")
        print("| check | value |\n| --- | --- |")
        for k, v in checks.items():
            if k != "ok":
                print(f"| {k} | {v} |")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0 if all(c.get("ok") for c in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
