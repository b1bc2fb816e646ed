"""One photo's task, the same wherever it runs (a Celery worker or the in-process
loop), and the retry policy: transient errors (the database or the photo store
unreachable) are retried with exponential backoff; anything else, or a transient
error that outlasts every retry, ends in the batch's dead-letter record.

No Celery import here: the in-process path runs on a serving install without it.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from service.domain import batches, reanalysis
from service.domain.auth import Caller
from service.domain.reanalysis import Outcome

if TYPE_CHECKING:
    from service.config import Settings
    from service.persistence.db import Database
    from service.persistence.storage import PhotoStore
    from service.runtime.context import ModelRegistry
    from service.runtime.inference import Segmenter

log = logging.getLogger("woundscope.jobs")

MAX_ATTEMPTS = 6
"""Tries of one photo before a transient error is given up on (about a minute of
backoff in all: 1 + 2 + 4 + 8 + 16 s between them, each up to 50 % longer)."""
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 60.0


def backoff_s(retries: int, *, jitter: float | None = None) -> float:
    """Seconds to wait before try ``retries + 1``: 1, 2, 4, … capped at a minute, each
    stretched by up to 50 % (``jitter`` in [0, 1); random when None) so that workers
    that failed together do not retry together."""
    base = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**retries)
    return base * (1 + 0.5 * (random.random() if jitter is None else jitter))


def is_transient(exc: BaseException) -> bool:
    """An error worth retrying: the database or the photo store could not be reached
    (not a photo that is missing or corrupt: that stays so)."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    from service.persistence.storage import CorruptPhoto, PhotoNotFound, StorageError

    if isinstance(exc, PhotoNotFound | CorruptPhoto):
        return False
    if isinstance(exc, StorageError | OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def failure_of(exc: BaseException) -> tuple[str, str]:
    """The dead-letter (code, reason) of an error that ended a photo's task."""
    from service.core.errors import DomainError, NoModel
    from service.core.imaging import ImageError
    from service.persistence.storage import StorageError

    reason = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ModelMismatch):
        return "model_mismatch", str(exc)
    if isinstance(exc, NoModel):
        return "model_not_installed", exc.detail
    if is_transient(exc):
        return "gave_up", f"after {MAX_ATTEMPTS} tries: {reason}"
    if isinstance(exc, ImageError | StorageError):
        return "photo_unreadable", reason
    if isinstance(exc, DomainError):
        return "internal_error", f"{exc.code}: {exc.detail}"
    return "internal_error", reason


def worker_name() -> str:
    """``host:pid`` of this process, as dead-letter records and audit entries name it."""
    return f"{socket.gethostname()}:{os.getpid()}"


class ModelMismatch(Exception):
    """This worker's copy of the batch's model has other weights (sha256)."""


@dataclass(frozen=True)
class PhotoTask:
    """One photo of a batch: what a task message carries (JSON)."""

    batch: str
    assessment: str
    model: str
    """The installed model id (``ulcerseg-2.0.0``)."""
    model_sha256: str
    requested_by: str
    """Who started the batch: the audit entry's actor, with the worker beside it."""

    def message(self) -> dict[str, str]:
        return asdict(self)


class WorkerContext:
    """What one worker process holds for all its tasks: one database engine, the photo
    store and the models, each loaded once (on first use)."""

    def __init__(self, settings: Settings, *, ort_threads: int = 0):
        from service.persistence.db import Database
        from service.persistence.storage import open_store
        from service.runtime.artifacts import models_dirs
        from service.runtime.context import ModelRegistry

        self.settings = settings
        self.db: Database = Database(settings.database_url)
        self.store: PhotoStore = open_store(settings.storage_url, settings.s3_endpoint_url)
        self.models: ModelRegistry = ModelRegistry(
            settings.model, ort_threads or settings.ort_threads, models_dirs(settings.models_dirs)
        )
        self._given: dict[str, Segmenter] = {}

    def use(self, segmenter: Segmenter) -> None:
        """Serve ``segmenter`` (already loaded by the caller) for its model id."""
        self._given[segmenter.id] = segmenter

    def segmenter(self, model_id: str) -> Segmenter:
        """The model ``model_id`` (an installed id), loaded on first use."""
        return self._given.get(model_id) or self.models.get(model_id)

    def close(self) -> None:
        self.db.dispose()


def run_photo(ctx: WorkerContext, task: PhotoTask, *, worker: str) -> Outcome:
    """Ensure the photo's measurement by the task's model (``reanalysis.ensure_measurement``).

    A locked study or a voided photo ends in the dead-letter record at once. Errors
    propagate (``ModelMismatch`` when this worker's model has other weights than the
    batch's): the caller retries the transient ones (``is_transient``) and records
    the rest with ``give_up``."""
    segmenter = ctx.segmenter(task.model)
    sha256 = segmenter.info()["sha256"]
    if sha256 != task.model_sha256:
        raise ModelMismatch(
            f"{task.model} on {worker} has sha256 {sha256[:12]}…, the batch's {task.model_sha256[:12]}…"
        )
    caller = Caller.cli(f"{task.requested_by} via {worker}")
    with ctx.db.sessions() as session:
        outcome = reanalysis.ensure_measurement(
            session, ctx.store, segmenter, caller, task.assessment, ctx.settings.quality
        )
    if outcome in (Outcome.LOCKED, Outcome.VOIDED):
        _dead_letter(
            ctx,
            task,
            outcome.value,
            batches.FAILURE_CODES[outcome.value],
            attempts=1,
            worker=worker,
        )
    return outcome


def give_up(
    ctx: WorkerContext, task: PhotoTask, exc: BaseException, *, attempts: int, worker: str
) -> None:
    """Record the photo as failed for good (its dead-letter record) after ``exc``."""
    code, reason = failure_of(exc)
    log.warning(
        "photo failed for good",
        extra={"batch": task.batch, "assessment": task.assessment, "code": code},
    )
    _dead_letter(ctx, task, code, reason, attempts=attempts, worker=worker)


def _dead_letter(
    ctx: WorkerContext, task: PhotoTask, code: str, reason: str, *, attempts: int, worker: str
) -> None:
    with ctx.db.sessions() as session:
        batches.record_failure(
            session,
            task.batch,
            task.assessment,
            code=code,
            reason=reason,
            attempts=attempts,
            worker=worker,
        )


def run_with_retries(
    ctx: WorkerContext,
    task: PhotoTask,
    *,
    worker: str,
    sleep: Callable[[float], Any] = time.sleep,
) -> Outcome | None:
    """``run_photo`` with the engine's retry policy, in this process (the in-process
    path; a Celery worker retries through the broker instead). None when the photo
    failed for good (its dead-letter record is written)."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            return run_photo(ctx, task, worker=worker)
        except Exception as exc:  # noqa: BLE001 - every error ends in retry or dead letter
            if is_transient(exc) and attempt + 1 < MAX_ATTEMPTS:
                sleep(backoff_s(attempt))
                continue
            give_up(ctx, task, exc, attempts=attempt + 1, worker=worker)
            return None
    return None
