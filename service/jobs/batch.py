"""Start a batch and follow it: with ``WOUNDSCOPE_BROKER_URL`` the batch's photos are
sent to the Celery workers (``engine.send_photos``); without, they are measured here,
one after another, by the same function a worker runs (``work.run_with_retries``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from service.domain import batches
from service.domain.auth import Caller
from service.jobs.work import PhotoTask, WorkerContext, run_with_retries

if TYPE_CHECKING:
    from service.config import Settings
    from service.domain.batches import BatchStatus
    from service.persistence.db import Database
    from service.persistence.orm import Batch
    from service.runtime.inference import Segmenter

CELERY = "celery"
IN_PROCESS = "in_process"


def engine_of(settings: Settings) -> str:
    """Where a batch started with these settings runs."""
    return CELERY if settings.broker_url else IN_PROCESS


def start_reanalysis(
    db: Database, caller: Caller, study_id: str, model: dict[str, str], *, engine: str
) -> tuple[Batch, list[PhotoTask]]:
    """Record the batch (``batches.start_reanalysis``) and the task of each photo."""
    with db.sessions() as session:
        batch, todo = batches.start_reanalysis(session, caller, study_id, model, engine=engine)
    tasks = [
        PhotoTask(
            batch=batch.id,
            assessment=assessment,
            model=batch.model_id,
            model_sha256=batch.model_sha256,
            requested_by=batch.created_by,
        )
        for assessment in todo
    ]
    return batch, tasks


def enqueue(settings: Settings, tasks: list[PhotoTask]) -> int:
    """Send the tasks to the broker's durable queue; how many were sent."""
    from service.jobs.engine import send_photos

    return send_photos(settings, tasks)


def run_here(
    settings: Settings,
    tasks: Iterable[PhotoTask],
    *,
    segmenter: Segmenter | None = None,
    on_photo: Callable[[str], object] = lambda _: None,
) -> Counter[str]:
    """Measure the tasks' photos in this process, in order, with the engine's retry
    policy; ``on_photo`` is called with each photo's outcome (``measured``,
    ``already``, ``study_locked``, ``already_voided`` or ``failed``). Returns the
    count of each outcome. ``segmenter``: the batch's model, already loaded."""
    ctx = WorkerContext(settings)
    if segmenter is not None:
        ctx.use(segmenter)
    counts: Counter[str] = Counter()
    try:
        for task in tasks:
            outcome = run_with_retries(ctx, task, worker=IN_PROCESS)
            name = outcome.value if outcome is not None else "failed"
            counts[name] += 1
            on_photo(name)
    finally:
        ctx.close()
    return counts


def status(db: Database, batch_id: str) -> BatchStatus:
    """A batch's progress (``NotFound`` for an unknown id)."""
    with db.sessions() as session:
        return batches.status_of(session, batches.load_batch(session, batch_id))


def follow(
    db: Database,
    batch_id: str,
    *,
    on_status: Callable[[BatchStatus], object],
    poll_s: float = 1.0,
    timeout_s: float | None = None,
) -> BatchStatus:
    """Poll the batch's progress until nothing is pending (or ``timeout_s`` passed),
    calling ``on_status`` with each reading; the last reading."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        current = status(db, batch_id)
        on_status(current)
        if current.finished or (deadline is not None and time.monotonic() >= deadline):
            return current
        time.sleep(poll_s)
