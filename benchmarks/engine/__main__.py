"""The job engine against the in-process loop, on PostgreSQL and RabbitMQ.

    python -m benchmarks.engine [--photos 60] [--runs throughput,kill,broker] [--out FILE]

Throughput (photos/s) of re-analysing a study of ``--photos`` stored photos (256 px,
given scale) with the bundled model:

- ``model``: the pipeline alone (decode, segment, measure; no database, no store, no
  queue), in this process, ONNX Runtime on all cores: the per-photo model cost;
- ``in-process``: `woundscope reanalyze` without a broker (the same loop a worker
  runs, with the database, photo store and audit);
- ``1 worker``: one `woundscope worker --concurrency 1` (one pool process, all cores);
- ``2 workers``: one `woundscope worker --concurrency 2` (two processes, one core
  each): what a 2-core node runs.

Workers are started and warmed (a 2-photo batch, so the model is loaded) before the
clock starts; the clock runs from the first message sent to the last photo done.
From the workers' logs, each task's own time (``succeeded in Xs``): the queue's
overhead per photo is the wall time per photo minus the task time, compared with the
model cost.

``kill``: two workers, SIGKILL to one (its process group) a third of the way in,
restarted 2 s later. ``broker``: two workers on a private RabbitMQ node (own port and
data), SIGKILLed a third of the way in and started again on the same data. Both
count photos lost (no measurement when the batch is done) and doubled (more than
one), and tasks delivered again (they found the measurement there).

Prints a table; ``--out`` writes the numbers as JSON. Exit 1 if a photo is lost or
doubled. Not a test: the numbers move with the machine's load (reported beside them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from service.config import Settings
from service.core.pipeline import Calibration, reanalyse
from service.domain.auth import Caller
from service.jobs import batch as jobs
from service.persistence.db import Database, upgrade
from service.runtime.artifacts import installed_models
from service.runtime.inference import Segmenter
from tests.api.conftest import create_postgres_database, drop_postgres_database
from tests.jobs.study import Deployment, measurements_per_photo, photos, seed_study

BASE_URL = os.environ.get(
    "WOUNDSCOPE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
AMQP = "amqp://guest:guest@127.0.0.1:5672//"
TASK_TIME = re.compile(r"succeeded in ([0-9.]+)s: '(\w+)'")
RECEIVED = re.compile(r"reanalyze_photo\[([0-9a-f-]+)\] received")


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def model_cost_s(jpegs: list[bytes], threads: int | None) -> float:
    """Seconds per photo of the pipeline alone (second pass; the first warms up)."""
    segmenter = Segmenter(installed_models()[0][1], threads=threads)
    cal = Calibration(10.0, None, None)
    for jpeg in jpegs[:2]:
        reanalyse(jpeg, segmenter=segmenter, marker_mm=20.0, cal=cal)
    t0 = time.perf_counter()
    for jpeg in jpegs:
        reanalyse(jpeg, segmenter=segmenter, marker_mm=20.0, cal=cal)
    return (time.perf_counter() - t0) / len(jpegs)


def settings_of(dep: Deployment, broker: bool) -> Settings:
    return Settings(
        data_dir=dep.data_dir,
        database_url=dep.database_url,
        storage_url=dep.storage_url,
        broker_url=dep.broker_url if broker else "",
        broker_queue=dep.queue,
        ort_threads=0,
        log_level="WARNING",
    )


def start_batch(
    dep: Deployment, study: str, model: dict[str, str], engine: str
) -> tuple[str, list]:
    db = Database(dep.database_url)
    try:
        batch, tasks = jobs.start_reanalysis(
            db, Caller.cli("benchmark"), study, model, engine=engine
        )
    finally:
        db.dispose()
    return batch.id, tasks


def wait_batch(dep: Deployment, batch: str, timeout: float = 3600) -> Any:
    db = Database(dep.database_url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            current = jobs.status(db, batch)
            if current.finished or time.monotonic() > deadline:
                return current
            time.sleep(0.1)
    finally:
        db.dispose()


def _logs(dep: Deployment) -> list[str]:
    return [
        log.read_text(errors="replace")
        for w in dep.workers
        for log in sorted(dep.data_dir.glob(f"worker-{w.name}-*.log"))
    ]


def task_times(dep: Deployment) -> list[tuple[float, str]]:
    """(seconds, outcome) of each task a worker finished, from the workers' logs."""
    return [(float(s), o) for text in _logs(dep) for s, o in TASK_TIME.findall(text)]


def delivered_again(dep: Deployment) -> int:
    """Messages a worker received more than once (after a kill or a broker restart)."""
    ids = [i for text in _logs(dep) for i in RECEIVED.findall(text)]
    return len(ids) - len(set(ids))


def publish_rate(settings: Settings, count: int = 2000) -> float:
    """Messages/s one client publishes (with publisher confirms) to a scratch queue."""
    from service.jobs.engine import send_photos
    from service.jobs.work import PhotoTask

    scratch = settings.model_copy(update={"broker_queue": f"{settings.broker_queue}_rate"})
    tasks = [PhotoTask("bat_rate", f"asm_{i:012d}", "m-0", "0" * 64, "rate") for i in range(count)]
    send_photos(scratch, tasks[:10])  # connection and queue declared
    t0 = time.perf_counter()
    send_photos(scratch, tasks)
    rate = count / (time.perf_counter() - t0)
    Deployment(
        settings.data_dir,
        settings.database_url,
        broker_url=settings.broker_url,
        queue=scratch.broker_queue,
    ).purge_queue()
    return rate


def run_in_process(
    dep: Deployment, jpegs: list[bytes], model: dict[str, str], segmenter: Segmenter
) -> dict:
    study, _ = seed_study(dep.database_url, dep.storage_url, jpegs)
    batch, tasks = start_batch(dep, study, model, "in_process")
    t0 = time.perf_counter()
    counts = jobs.run_here(settings_of(dep, broker=False), tasks, segmenter=segmenter)
    wall = time.perf_counter() - t0
    assert counts == {"measured": len(jpegs)}, counts
    return {"run": "in-process", "photos": len(jpegs), "wall_s": wall, "load": load()}


def run_workers(
    dep: Deployment, jpegs: list[bytes], model: dict[str, str], concurrency: int, label: str
) -> dict:
    """Workers warmed on a 2-photo batch, then the timed batch."""
    worker = dep.start_worker(concurrency=concurrency, name=label.replace(" ", ""))
    worker.wait_ready()
    warm, _ = seed_study(dep.database_url, dep.storage_url, photos(2 * concurrency, seed=99))
    wb, wt = start_batch(dep, warm, model, "celery")
    jobs.enqueue(settings_of(dep, broker=True), wt)
    wait_batch(dep, wb)
    before = len(task_times(dep))
    study, ids = seed_study(dep.database_url, dep.storage_url, jpegs)
    batch, tasks = start_batch(dep, study, model, "celery")
    t0 = time.perf_counter()
    jobs.enqueue(settings_of(dep, broker=True), tasks)
    enqueue_s = time.perf_counter() - t0
    final = wait_batch(dep, batch)
    wall = time.perf_counter() - t0
    time.sleep(1.0)  # the last log lines
    times = [t for t, _ in task_times(dep)[before:]]
    # The same tasks again: every photo is measured, so each task is the engine alone
    # (delivery, the idempotence check, acknowledgement) without the model.
    seen = len(task_times(dep))
    t1 = time.perf_counter()
    jobs.enqueue(settings_of(dep, broker=True), tasks)
    while len(task_times(dep)) < seen + len(tasks) and time.perf_counter() - t1 < 600:
        time.sleep(0.05)
    empty_wall = time.perf_counter() - t1
    empty = [t for t, o in task_times(dep)[seen:] if o == "already"]
    worker.kill()
    dep.workers.remove(worker)
    assert final.done == len(jpegs), final
    return {
        "run": label,
        "photos": len(jpegs),
        "wall_s": wall,
        "enqueue_s": enqueue_s,
        "task_s_mean": sum(times) / max(1, len(times)),
        "tasks_logged": len(times),
        "empty_wall_s": empty_wall,
        "empty_task_s_mean": sum(empty) / max(1, len(empty)),
        "empty_tasks": len(empty),
        "load": load(),
    }


def run_fault(
    dep: Deployment, jpegs: list[bytes], model: dict[str, str], fault: str, rabbit: Any = None
) -> dict:
    """Two single-process workers; the fault a third of the way in; lost and doubled."""
    workers = [dep.start_worker(name=f"{fault}{i}") for i in range(2)]
    for w in workers:
        w.wait_ready()
    study, ids = seed_study(dep.database_url, dep.storage_url, jpegs)
    batch, tasks = start_batch(dep, study, model, "celery")
    t0 = time.perf_counter()
    jobs.enqueue(settings_of(dep, broker=True), tasks)
    db = Database(dep.database_url)
    try:
        while jobs.status(db, batch).done < len(jpegs) // 3:
            time.sleep(0.1)
    finally:
        db.dispose()
    down_s = 0.0
    if fault == "kill":
        workers[0].kill()
        time.sleep(2.0)
        workers[0].start()
    else:
        rabbit.kill()
        time.sleep(2.0)
        down_s = rabbit.start()
    final = wait_batch(dep, batch, timeout=1800)
    wall = time.perf_counter() - t0
    time.sleep(1.0)
    per_photo = measurements_per_photo(dep.database_url, ids, model["version"])
    again, already = delivered_again(dep), [o for _, o in task_times(dep)].count("already")
    for w in workers:
        w.kill()
    dep.workers.clear()
    return {
        "run": f"{fault} -9" if fault == "kill" else "RabbitMQ kill -9 + restart",
        "photos": len(jpegs),
        "wall_s": wall,
        "lost": sum(n == 0 for n in per_photo.values()),
        "doubled": sum(n > 1 for n in per_photo.values()),
        "delivered_again": again,
        "found_measured": already,
        "failed": final.failed,
        "broker_restart_s": down_s,
        "load": load(),
    }


def table(rows: list[dict], model_1t: float, model_all: float) -> str:
    lines = [
        f"model cost per photo (decode+segment+measure, no DB/queue): {model_all * 1000:.0f} ms on all cores,"
        f" {model_1t * 1000:.0f} ms on one core",
        "",
        "| run | photos | wall s | photos/s | vs in-process | task ms (worker log) | queue overhead ms/photo | share of model cost | engine alone ms/task | its share of model cost | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    base = next((r for r in rows if r["run"] == "in-process"), None)
    for r in rows:
        if "lost" in r:
            continue
        rate = r["photos"] / r["wall_s"]
        ratio = f"{rate / (base['photos'] / base['wall_s']):.2f}" if base else "-"
        task = overhead = share = alone = alone_share = "-"
        if "task_s_mean" in r:
            workers = 2 if r["run"].startswith("2") else 1
            per_photo_s = r["wall_s"] / r["photos"] * workers  # each process's time per photo
            cost = model_1t if workers == 2 else model_all
            task = f"{r['task_s_mean'] * 1000:.0f}"
            overhead = f"{(per_photo_s - r['task_s_mean']) * 1000:.0f}"
            share = f"{(per_photo_s - r['task_s_mean']) / cost * 100:.1f} %"
            alone_s = r["empty_wall_s"] / max(1, r["empty_tasks"]) * workers
            alone = f"{alone_s * 1000:.0f}"
            alone_share = f"{alone_s / cost * 100:.1f} %"
        lines.append(
            f"| {r['run']} | {r['photos']} | {r['wall_s']:.1f} | {rate:.2f} | {ratio} | {task} | {overhead} | {share} | {alone} | {alone_share} | {r['load']} |"
        )
    faults = [r for r in rows if "lost" in r]
    if faults:
        lines += [
            "",
            "| fault run | photos | wall s | lost | doubled | delivered again | of which already measured | failed | broker back after s | load avg |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in faults:
            lines.append(
                f"| {r['run']} | {r['photos']} | {r['wall_s']:.1f} | {r['lost']} | {r['doubled']} |"
                f" {r['delivered_again']} | {r['found_measured']} | {r['failed']} | {r['broker_restart_s']:.1f} | {r['load']} |"
            )
    return "\n".join(lines)


def projection(
    rows: list[dict], publish: float, nodes: int = 10, photos_total: int = 50_000
) -> str:
    two = next((r for r in rows if r["run"] == "2 workers"), None)
    if two is None:
        return ""
    x_node = two["photos"] / two["wall_s"]
    x_all = nodes * x_node
    return (
        f"\nprojection: X({nodes} nodes) = min({nodes} × X_node, R_publish, R_db)"
        f" with X_node = {x_node:.2f} photos/s (2 workers on this 2-core machine, measured),"
        f" R_publish = {publish:.0f} messages/s (one enqueuing client, measured),"
        f" R_db = the commits/s PostgreSQL sustains (3 short transactions a photo: read,"
        f" write+lock check, none held during the model run; thousands/s on one server)"
        f"\n  = {x_all:.1f} photos/s while {x_all:.1f} ≪ R_publish and R_db:"
        f" {photos_total:,} photos in {photos_total / x_all / 60:.0f} min"
        f" (enqueueing them: {photos_total / publish / 60:.1f} min, overlapping the work)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=60)
    parser.add_argument("--runs", default="throughput,kill,broker")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    runs = set(args.runs.split(","))
    spec, folder = installed_models()[0]
    segmenter = Segmenter(folder)
    model = segmenter.info()
    jpegs = photos(args.photos)
    model_all, model_1t = model_cost_s(jpegs, None), model_cost_s(jpegs, 1)
    rows: list[dict] = []
    publish = 0.0
    url = create_postgres_database(BASE_URL)
    upgrade(url)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            dep = Deployment(Path(tmp), url, broker_url=AMQP, ort_threads=0)
            try:
                if "throughput" in runs:
                    publish = publish_rate(settings_of(dep, broker=True))
                    rows.append(run_in_process(dep, jpegs, model, segmenter))
                    print(rows[-1], file=sys.stderr)
                    rows.append(run_workers(dep, jpegs, model, 1, "1 worker"))
                    print(rows[-1], file=sys.stderr)
                    rows.append(run_workers(dep, jpegs, model, 2, "2 workers"))
                    print(rows[-1], file=sys.stderr)
                if "kill" in runs:
                    dep.ort_threads = 1
                    rows.append(run_fault(dep, jpegs, model, "kill"))
                    print(rows[-1], file=sys.stderr)
            finally:
                dep.stop_workers()
                dep.purge_queue()
            if "broker" in runs:
                from benchmarks.engine.rabbit import PrivateRabbit

                rabbit = PrivateRabbit()
                try:
                    rabbit.start()
                    bdep = Deployment(Path(tmp) / "b", url, broker_url=rabbit.url, ort_threads=1)
                    bdep.data_dir.mkdir()
                    try:
                        rows.append(run_fault(bdep, jpegs, model, "broker", rabbit))
                        print(rows[-1], file=sys.stderr)
                    finally:
                        bdep.stop_workers()
                finally:
                    rabbit.stop()
    finally:
        drop_postgres_database(url)
    print(
        f"{spec.id}, {args.photos} photos of 256 px, PostgreSQL and RabbitMQ on this machine ({os.cpu_count()} cores)"
    )
    print(table(rows, model_1t, model_all))
    if "throughput" in runs:
        print(projection(rows, publish))
    if args.out:
        args.out.write_text(
            json.dumps(
                {"model_s": {"all_cores": model_all, "one_core": model_1t}, "runs": rows}, indent=2
            )
        )
    bad = [r for r in rows if r.get("lost") or r.get("doubled")]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
