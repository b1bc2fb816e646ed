"""A study of stored, unmeasured photos on a real database, and real `woundscope worker`
processes on a real broker: what the job engine's tests and `benchmarks/engine` share.

The photos are the bundled FUSeg samples, resized and each made distinct by a few
changed pixels, stored in a local photo store with a given scale (10 px/mm), so every
one is measured in cm². They are inserted as rows (no upload), so none has a
measurement yet: re-analysis has every photo to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from sqlalchemy import func, select

from service.persistence.db import Database
from service.persistence.orm import Assessment, AuditEntry, Measurement, Site, Study, Subject, Wound
from service.persistence.storage import open_store

if TYPE_CHECKING:
    from service.domain.batches import BatchStatus

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "samples" / "fuseg" / "images"
WOUNDSCOPE = [sys.executable, "-m", "service.cli"]


def photos(count: int, size: int = 256, seed: int = 0) -> list[bytes]:
    """``count`` distinct JPEG photos of wounds, ``size`` pixels a side."""
    rng = np.random.default_rng(seed)
    bases = [
        np.asarray(Image.open(p).convert("RGB").resize((size, size)))
        for p in sorted(SAMPLES.glob("*.jpg"))
    ]
    out = []
    for i in range(count):
        rgb = bases[i % len(bases)].copy()
        rgb[rng.integers(0, size, 8), rng.integers(0, size, 8)] = rng.integers(0, 255, (8, 3))
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=92)
        out.append(buf.getvalue())
    return out


def seed_study(
    db_url: str, storage_url: str, jpegs: list[bytes], *, study: str | None = None
) -> tuple[str, list[str]]:
    """A study with one subject and wound per 4 photos, the photos stored and their
    assessments inserted without a measurement: (study id, assessment ids in upload order)."""
    study = study or f"E{secrets.token_hex(4)}"
    store = open_store(storage_url)
    db = Database(db_url)
    ids: list[str] = []
    try:
        with db.session() as session:
            session.add(Study(id=study, name="engine test", marker_mm=20.0))
            site = Site(study_id=study, code="A", name="site A")
            session.add(site)
            session.flush()
            wound = None
            t0 = datetime(2026, 1, 5, 9, 0)
            for i, jpeg in enumerate(jpegs):
                if i % 4 == 0:
                    subject = Subject(study_id=study, code=f"S{i // 4:03d}", site_pk=site.pk)
                    session.add(subject)
                    session.flush()
                    wound = Wound(subject_id=subject.id, label="W1")
                    session.add(wound)
                    session.flush()
                assert wound is not None
                sha = hashlib.sha256(jpeg).hexdigest()
                w, h = Image.open(io.BytesIO(jpeg)).size
                row = Assessment(
                    wound_id=wound.id,
                    photo_key=store.put(jpeg, "jpg"),
                    photo_sha256=sha,
                    upload_sha256=sha,
                    photo_format="JPEG",
                    width=w,
                    height=h,
                    captured_at=t0 + timedelta(days=7 * (i % 4)),
                    px_per_mm=10.0,
                    uploaded_by="engine test",
                    created_at=t0 + timedelta(seconds=i),
                )
                session.add(row)
                session.flush()
                ids.append(row.id)
    finally:
        db.dispose()
    return study, ids


def measurements_per_photo(db_url: str, ids: list[str], model_version: str) -> dict[str, int]:
    """How many automatic measurements by that version each photo has."""
    db = Database(db_url)
    try:
        with db.sessions() as session:
            rows = session.execute(
                select(Measurement.assessment_id, func.count())
                .where(
                    Measurement.assessment_id.in_(ids),
                    Measurement.manual.is_(False),
                    Measurement.model_version == model_version,
                )
                .group_by(Measurement.assessment_id)
            ).all()
    finally:
        db.dispose()
    counts = dict.fromkeys(ids, 0)
    counts.update({a: int(n) for a, n in rows})
    return counts


def reanalysis_audits(db_url: str, study: str) -> int:
    db = Database(db_url)
    try:
        with db.sessions() as session:
            return int(
                session.scalar(
                    select(func.count()).where(
                        AuditEntry.study_id == study, AuditEntry.action == "measurement.reanalyze"
                    )
                )
                or 0
            )
    finally:
        db.dispose()


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Deployment:
    """The settings of one woundscope deployment (database, photo store, broker,
    queue), as the environment of its command-line processes."""

    data_dir: Path
    database_url: str
    broker_url: str = ""
    queue: str = field(default_factory=lambda: f"ws_test_{secrets.token_hex(4)}")
    ort_threads: int = 1
    workers: list[Worker] = field(default_factory=list)

    @property
    def storage_url(self) -> str:
        return (self.data_dir / "photos").resolve().as_uri()

    def env(self, *, broker: bool = True) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WOUNDSCOPE_")}
        env.update(
            PYTHONPATH=str(ROOT),
            WOUNDSCOPE_DATA_DIR=str(self.data_dir),
            WOUNDSCOPE_DATABASE_URL=self.database_url,
            WOUNDSCOPE_STORAGE_URL=self.storage_url,
            WOUNDSCOPE_BROKER_QUEUE=self.queue,
            WOUNDSCOPE_ORT_THREADS=str(self.ort_threads),
            WOUNDSCOPE_LOG_LEVEL="WARNING",
        )
        if broker and self.broker_url:
            env["WOUNDSCOPE_BROKER_URL"] = self.broker_url
        return env

    def run(self, *args: str, broker: bool = True) -> Ran:
        """``woundscope ARGS`` with this deployment's settings, in this process (a child
        process per command would cost the workers seconds of CPU each)."""
        from typer.testing import CliRunner

        from service.cli import app
        from service.config import get_settings

        env = {k: v for k, v in self.env(broker=broker).items() if k.startswith("WOUNDSCOPE_")}
        env.setdefault("WOUNDSCOPE_BROKER_URL", "")
        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(app, list(args), env=env)
        finally:
            get_settings.cache_clear()
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Ran(result.exit_code, result.stdout, result.stderr)

    def reanalyze(self, study: str, model: str, *, broker: bool = True) -> str:
        """Start a re-analysis; its batch id (the last line printed)."""
        out = self.run("reanalyze", "--study", study, "--model", model, broker=broker)
        assert out.returncode == 0, out.stdout + out.stderr
        last = out.stdout.strip().splitlines()[-1]
        assert last.startswith("batch "), out.stdout
        return last.split()[1]

    def start_worker(self, concurrency: int = 1, *, name: str = "") -> Worker:
        worker = Worker(self, concurrency, name or f"w{len(self.workers)}")
        worker.start()
        self.workers.append(worker)
        return worker

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.kill()

    def purge_queue(self) -> None:
        """Delete this deployment's queue from the broker (tests share the machine's)."""
        from kombu import Connection

        with contextlib.suppress(Exception), Connection(self.broker_url) as conn:
            channel = conn.channel()
            with contextlib.suppress(Exception):
                channel.queue_delete(self.queue)


@dataclass
class Worker:
    """One `woundscope worker` process (its own process group, as if its own machine)."""

    deployment: Deployment
    concurrency: int
    name: str
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        self.log = self.deployment.data_dir / f"worker-{self.name}-{self.starts}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    *WOUNDSCOPE,
                    "worker",
                    "--concurrency",
                    str(self.concurrency),
                    "--loglevel",
                    "INFO",
                ],
                env=self.deployment.env(),
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 120) -> None:
        """Until Celery says the worker is ready (connected, consuming)."""
        assert self.proc is not None and self.log is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"worker {self.name} exited {self.proc.returncode}:\n{self.output()}"
                )
            if " ready." in self.log.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise AssertionError(f"worker {self.name} not ready after {timeout} s:\n{self.output()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the worker's whole process group (its pool processes too)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)

    def output(self) -> str:
        return (
            self.log.read_text(errors="replace")[-4000:] if self.log and self.log.exists() else ""
        )


def wait_finished(dep: Deployment, batch: str, timeout: float = 300) -> BatchStatus:
    """Poll the batch's progress (in this process: a command per poll would take the
    workers' CPU) until nothing is pending; the last reading."""
    from service.jobs.batch import status

    db = Database(dep.database_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            current = status(db, batch)
            if current.finished:
                return current
            if time.monotonic() > deadline:
                logs = "\n".join(w.output() for w in dep.workers)
                raise AssertionError(
                    f"batch {batch} not finished after {timeout} s: {current}\n{logs}"
                )
            time.sleep(0.5)
    finally:
        db.dispose()


def wait_done(dep: Deployment, batch: str, at_least: int, timeout: float = 300) -> None:
    """Until at least ``at_least`` photos of the batch are done."""
    from service.jobs.batch import status

    db = Database(dep.database_url)
    deadline = time.monotonic() + timeout
    try:
        while status(db, batch).done < at_least:
            assert time.monotonic() < deadline, f"fewer than {at_least} done after {timeout} s"
            time.sleep(0.2)
    finally:
        db.dispose()


@contextlib.contextmanager
def running(dep: Deployment) -> Iterator[Deployment]:
    """Stop the deployment's workers and delete its queue at the end, whatever happens."""
    try:
        yield dep
    finally:
        dep.stop_workers()
        if dep.broker_url:
            dep.purge_queue()
