"""The job engine end to end: real `woundscope worker` processes on the machine's
RabbitMQ (and Redis), PostgreSQL, a local photo store, the bundled model.

Every photo of a batch is measured exactly once, whatever the delivery does: two
workers share a study; a worker killed with SIGKILL mid-batch and restarted loses
nothing and doubles nothing; the same task sent twice measures once; a locked
study's tasks end without writing; the in-process path measures what the workers do.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from service.config import Settings
from service.domain.batches import FAILURE_CODES
from service.jobs.batch import status
from service.jobs.engine import send_photos
from service.jobs.work import PhotoTask
from service.persistence.db import Database
from service.persistence.orm import Measurement, Study
from tests.api.conftest import need_model
from tests.jobs.study import (
    Deployment,
    measurements_per_photo,
    photos,
    reanalysis_audits,
    seed_study,
    wait_done,
    wait_finished,
)

pytestmark = pytest.mark.postgres

PHOTOS = 24
VERSION = "2.0.0"


def _model() -> str:
    model = need_model()
    assert model.endswith(VERSION), f"the tests expect the bundled {VERSION} as the highest"
    return model


def test_two_workers_measure_every_photo_once(broker: Deployment) -> None:
    _model()
    study, ids = seed_study(broker.database_url, broker.storage_url, photos(PHOTOS))
    if broker.broker_url.startswith("amqp"):
        workers = [
            broker.start_worker(),
            broker.start_worker(),
        ]  # two machines, one pool process each
    else:
        workers = [broker.start_worker(concurrency=2)]  # one machine, a pool of two processes
    for w in workers:
        w.wait_ready()
    batch = broker.reanalyze(study, VERSION)
    final = wait_finished(broker, batch)
    assert (final.total, final.done, final.failed, final.pending) == (PHOTOS, PHOTOS, 0, 0)
    assert set(measurements_per_photo(broker.database_url, ids, VERSION).values()) == {1}
    assert reanalysis_audits(broker.database_url, study) == PHOTOS
    db = Database(broker.database_url)
    try:
        with db.sessions() as session:
            by = set(
                session.scalars(
                    select(Measurement.created_by).where(Measurement.assessment_id.in_(ids))
                )
            )
    finally:
        db.dispose()
    # the audit names who started the batch and which process measured: two did
    assert len(by) == 2 and all(b.startswith("cli:reanalyze") and " via " in b for b in by), by
    out = broker.run("jobs", "status", batch, broker=False)
    assert out.returncode == 0 and out.stdout.strip().endswith(f"pending 0 done {PHOTOS} failed 0")
    again = broker.run("reanalyze", "--study", study, "--model", VERSION)
    assert again.returncode == 0 and f"{study}: 0 photos to measure" in again.stdout


def test_a_worker_killed_mid_batch_loses_and_doubles_nothing(amqp: Deployment) -> None:
    _model()
    study, ids = seed_study(amqp.database_url, amqp.storage_url, photos(PHOTOS))
    victim, other = amqp.start_worker(name="victim"), amqp.start_worker(name="other")
    victim.wait_ready()
    other.wait_ready()
    batch = amqp.reanalyze(study, VERSION)
    wait_done(amqp, batch, at_least=6)
    victim.kill()  # SIGKILL to its process group, mid-task: its message is not acknowledged
    assert victim.proc is not None and victim.proc.returncode == -9
    wait_done(amqp, batch, at_least=12)  # the other goes on meanwhile
    victim.start()
    victim.wait_ready()
    final = wait_finished(amqp, batch)
    assert (final.done, final.failed, final.pending) == (PHOTOS, 0, 0), final
    assert set(measurements_per_photo(amqp.database_url, ids, VERSION).values()) == {1}
    assert reanalysis_audits(amqp.database_url, study) == PHOTOS


def test_the_same_task_sent_twice_measures_once(broker: Deployment) -> None:
    _model()
    study, ids = seed_study(broker.database_url, broker.storage_url, photos(4))
    batch = broker.reanalyze(study, VERSION)  # no worker yet: the tasks wait on the queue
    settings = Settings(
        data_dir=broker.data_dir,
        database_url=broker.database_url,
        broker_url=broker.broker_url,
        broker_queue=broker.queue,
    )
    current = status(Database(broker.database_url), batch)
    assert (current.pending, current.done) == (4, 0)
    model_sha = _batch_sha(broker, batch)
    twins = [PhotoTask(batch, a, f"ulcerseg-{VERSION}", model_sha, "test twin") for a in ids]
    assert send_photos(settings, twins) == 4  # each photo's task now twice on the queue
    for _ in range(2):
        broker.start_worker().wait_ready()
    final = wait_finished(broker, batch)
    assert (final.done, final.failed) == (4, 0)
    assert set(measurements_per_photo(broker.database_url, ids, VERSION).values()) == {1}
    assert reanalysis_audits(broker.database_url, study) == 4


def _batch_sha(dep: Deployment, batch: str) -> str:
    from service.persistence.orm import Batch

    db = Database(dep.database_url)
    try:
        with db.sessions() as session:
            row = session.get(Batch, batch)
            assert row is not None
            return row.model_sha256
    finally:
        db.dispose()


def test_a_locked_study_writes_nothing_and_says_so(amqp: Deployment) -> None:
    _model()
    study, ids = seed_study(amqp.database_url, amqp.storage_url, photos(6))
    batch = amqp.reanalyze(study, VERSION)  # sent while open; no worker yet
    db = Database(amqp.database_url)
    try:
        with db.session() as session:
            row = session.get(Study, study)
            assert row is not None
            row.locked = True  # an admin locks it before the workers get there
    finally:
        db.dispose()
    masks_before = sorted((amqp.data_dir / "photos").rglob("*.png"))
    amqp.start_worker().wait_ready()
    final = wait_finished(amqp, batch)
    assert (final.done, final.failed, final.pending) == (0, 6, 0)
    assert {f.code for f in final.failures} == {"study_locked"}
    assert final.failures[0].reason == FAILURE_CODES["study_locked"]
    assert set(measurements_per_photo(amqp.database_url, ids, VERSION).values()) == {0}
    assert reanalysis_audits(amqp.database_url, study) == 0
    assert sorted((amqp.data_dir / "photos").rglob("*.png")) == masks_before == []
    out = amqp.run("jobs", "status", batch, broker=False)
    assert out.returncode == 0 and "study_locked" in out.stdout and "failed 6" in out.stdout
    refused = amqp.run("reanalyze", "--study", study, "--model", VERSION)
    assert refused.returncode == 1 and "locked" in refused.stderr


def test_in_process_measures_what_the_workers_measure(amqp: Deployment) -> None:
    _model()
    jpegs = photos(8, seed=3)
    by_workers, ids_w = seed_study(amqp.database_url, amqp.storage_url, jpegs)
    in_process, ids_p = seed_study(amqp.database_url, amqp.storage_url, jpegs)
    out = amqp.run("reanalyze", "--study", in_process, "--model", VERSION, broker=False)
    assert out.returncode == 0, out.stderr
    assert "added 8 measurements" in out.stdout and out.stdout.strip().splitlines()[-1].startswith(
        "batch "
    )
    amqp.start_worker().wait_ready()
    wait_finished(amqp, amqp.reanalyze(by_workers, VERSION))
    db = Database(amqp.database_url)
    try:
        with db.sessions() as session:

            def data(ids: list[str]) -> list[dict]:
                rows = {
                    m.assessment_id: m
                    for m in session.scalars(
                        select(Measurement).where(Measurement.assessment_id.in_(ids))
                    )
                }
                return [{**rows[a].data, "mask": rows[a].mask_key} for a in ids]

            workers, here = data(ids_w), data(ids_p)
    finally:
        db.dispose()
    assert workers == here
    assert all(m["area_cm2"] is not None for m in here)  # calibrated: a real comparison
