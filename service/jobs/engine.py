"""The Celery app: one task, ``woundscope.reanalyze_photo``, and the worker.

Delivery is at least once, and the task is idempotent (``reanalysis.ensure_measurement``:
the database holds one automatic measurement per photo and model version), so a
message delivered twice measures once. What makes "at least once" hold:

- ``task_acks_late``: a message is acknowledged after its task ran, so a worker
  killed mid-task leaves it on the broker for another (RabbitMQ gives it back when
  the worker's connection drops; Redis after ``VISIBILITY_TIMEOUT_S``);
- ``task_reject_on_worker_lost``: a pool process that dies gives its message back
  instead of acknowledging it;
- ``worker_prefetch_multiplier = 1``: a process reserves one message at a time, so a
  killed worker strands at most one per process and a slow one hoards nothing;
- a durable queue, persistent messages and publisher confirms on RabbitMQ: a broker
  restart loses no sent message;
- transient errors (database, photo store) are retried through the broker with
  exponential backoff (``work.backoff_s``), ``work.MAX_ATTEMPTS`` tries in all;
  then the photo's dead-letter record says why.

No result backend: results are the measurements in the database.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from service.jobs.work import (
    MAX_ATTEMPTS,
    PhotoTask,
    WorkerContext,
    backoff_s,
    give_up,
    is_transient,
    run_photo,
    worker_name,
)

if TYPE_CHECKING:
    from celery import Celery

    from service.config import Settings

TASK = "woundscope.reanalyze_photo"
VISIBILITY_TIMEOUT_S = 600
"""Redis only: a message a worker took and did not acknowledge (it was killed) is
delivered again after this long. Longer than any task with its retries."""


def transport_options(broker_url: str) -> dict[str, Any]:
    """Broker-specific options: publisher confirms on RabbitMQ (``send`` returns once
    the broker has the message), the visibility timeout on Redis."""
    if broker_url.startswith("redis"):
        return {"visibility_timeout": VISIBILITY_TIMEOUT_S}
    return {"confirm_publish": True}


def make_celery(settings: Settings, *, ort_threads: int = 0) -> Celery:
    """The Celery app on ``settings.broker_url`` with the task registered; a worker
    process builds its database, store and models on its first task."""
    from celery import Celery
    from kombu import Queue

    app = Celery("woundscope", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=settings.broker_queue,
        task_queues=[Queue(settings.broker_queue, durable=True)],
        task_default_delivery_mode="persistent",
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        broker_transport_options=transport_options(settings.broker_url),
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker waits out a broker restart
        # On a lost broker connection a running task finishes and writes; its message
        # comes back after the reconnect and finds the measurement there (no waste).
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    _register(app, settings, ort_threads)
    return app


def _register(app: Celery, settings: Settings, ort_threads: int) -> None:
    contexts: dict[int, WorkerContext] = {}

    def context() -> WorkerContext:
        # One per process: a prefork child must not use the database engine (or ONNX
        # Runtime session) of the process it was forked from.
        pid = os.getpid()
        if pid not in contexts:
            contexts[pid] = WorkerContext(settings, ort_threads=ort_threads)
        return contexts[pid]

    @app.task(name=TASK, bind=True, max_retries=MAX_ATTEMPTS - 1)
    def reanalyze_photo(self: Any, **message: str) -> str:
        """Ensure one photo's measurement; retried through the broker on transient
        errors, recorded as failed for good otherwise."""
        task = PhotoTask(**message)
        ctx, worker = context(), worker_name()
        retries = int(self.request.retries or 0)
        try:
            return run_photo(ctx, task, worker=worker).value
        except Exception as exc:  # noqa: BLE001 - every error ends in retry or dead letter
            if is_transient(exc) and retries + 1 < MAX_ATTEMPTS:
                raise self.retry(exc=exc, countdown=backoff_s(retries)) from exc
            give_up(ctx, task, exc, attempts=retries + 1, worker=worker)
            return "failed"


def send_photos(settings: Settings, tasks: list[PhotoTask]) -> int:
    """Publish one message per photo on the durable queue (one connection for all);
    returns how many were sent. Raises when the broker cannot be reached."""
    app = make_celery(settings)
    with app.producer_or_acquire() as producer:
        for task in tasks:
            app.send_task(
                TASK, kwargs=task.message(), queue=settings.broker_queue, producer=producer
            )
    return len(tasks)


def worker_argv(queue: str, concurrency: int, loglevel: str = "INFO") -> list[str]:
    """The Celery worker's arguments: a prefork pool of ``concurrency`` processes, each
    loading the model once (on its first task). Prefork also for one process: the
    ``solo`` pool stalled 10 s between tasks now and then on RabbitMQ (measured with
    ``benchmarks/engine``). A node name per worker, so that workers on one host are
    told apart."""
    return [
        "worker",
        f"--concurrency={concurrency}",
        "--pool=prefork",
        f"--queues={queue}",
        f"--loglevel={loglevel}",
        f"--hostname=woundscope-{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


def redacted(broker_url: str) -> str:
    """The broker URL without its password, to print."""
    from kombu.utils.url import maybe_sanitize_url

    return str(maybe_sanitize_url(broker_url))
