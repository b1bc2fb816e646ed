"""What a service process holds: the loaded models and the bounded CPU worker pool.

CPU-bound work (decode, segment, measure, overlay) runs in a fixed thread pool
behind a bounded admission count; when workers and queue are full the caller gets
``Busy`` (503 + Retry-After) at once rather than an unbounded wait. Nothing here is
state another replica would need: models are read-only files, jobs are per request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from service.core.errors import Busy, DomainError, NoModel

if TYPE_CHECKING:
    from service.config import Settings
    from service.core.pipeline import Analysis
    from service.persistence.db import Database
    from service.persistence.storage import PhotoStore
    from service.runtime.inference import Segmenter
    from service.runtime.metrics import Metrics

T = TypeVar("T")
log = logging.getLogger("woundscope.runtime")


class WorkerPool:
    """A thread pool that refuses work beyond ``workers + queue`` jobs."""

    def __init__(self, workers: int, queue: int, retry_after_s: int):
        self.workers = workers
        self.limit = workers + queue
        self.retry_after_s = retry_after_s
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ws-cpu")
        self._lock = threading.Lock()
        self._admitted = 0

    @property
    def depth(self) -> int:
        """Jobs admitted and not finished (running + waiting)."""
        return self._admitted

    def _admit(self) -> None:
        with self._lock:
            if self._admitted >= self.limit:
                raise Busy(self.retry_after_s)
            self._admitted += 1

    def _release(self) -> None:
        with self._lock:
            self._admitted -= 1

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on a worker and wait for it (call from a request thread, not the loop)."""
        self._admit()
        try:
            return self._executor.submit(fn, *args, **kwargs).result()
        finally:
            self._release()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


class ModelRegistry:
    """Segmenters loaded once per process, several versions side by side.

    ``default`` is ``WOUNDSCOPE_MODEL`` or the highest installed version; a study's
    pinned version is loaded on first use (or at start-up, see ``preload``). Models are
    looked for in ``dirs`` (``artifacts.models_dirs``; None = the bundled ones).
    """

    def __init__(self, default_ref: str = "", threads: int = 0, dirs: list[Path] | None = None):
        self.default_ref = default_ref
        self.threads = threads
        self.dirs = dirs
        self._loaded: dict[str, Segmenter] = {}
        self._lock = threading.Lock()
        self.default_id: str | None = None
        self.error: str | None = None
        self.warmup_ms: float | None = None

    def load_default(self) -> None:
        from service.runtime.artifacts import ModelNotFound, resolve_model

        try:
            folder = resolve_model(self.default_ref or None, self.dirs)
        except ModelNotFound as exc:
            self.error = str(exc)
            log.warning("no model loaded: %s", exc)
            return
        try:
            segmenter = self._load_folder(folder)
            self.warmup_ms = self.check(segmenter)
        except Exception as exc:  # noqa: BLE001 - a broken model: not ready, say why
            self.error = f"model {folder} cannot run: {type(exc).__name__}: {exc}"
            log.error("model not loaded: %s", self.error)
            return
        self.default_id = segmenter.id
        self.error = None

    @staticmethod
    def check(segmenter: Segmenter) -> float:
        """Run the model once on a small blank photo: proves it loads *and* runs (and
        spares the first upload the warm-up). Returns the milliseconds it took."""
        import numpy as np

        t0 = time.perf_counter()
        segmenter.segment(np.zeros((64, 64, 3), dtype=np.uint8))
        return (time.perf_counter() - t0) * 1000

    def _load_folder(self, folder: Path) -> Segmenter:
        from service.runtime.inference import Segmenter

        with self._lock:
            from service.core.contract import load_spec

            spec_id = load_spec(folder).id
            if spec_id not in self._loaded:
                segmenter = Segmenter(folder, threads=self.threads or None)
                self._loaded[spec_id] = segmenter
                log.info("model loaded", extra={"model": spec_id, "provider": segmenter.provider})
            return self._loaded[spec_id]

    def preload(self, model_ids: list[str]) -> None:
        for model_id in model_ids:
            try:
                self.get(model_id)
            except DomainError as exc:
                log.warning("pinned model not loadable: %s", exc.detail)

    def get(self, model_id: str | None = None) -> Segmenter:
        """The segmenter of ``model_id`` (an installed id), or the default one."""
        from service.runtime.artifacts import ModelNotFound, resolve_model

        if not model_id:
            if self.default_id is None:
                raise NoModel(
                    f"{self.error or 'no model loaded'}; uploads are measured once one is installed"
                )
            return self._loaded[self.default_id]
        if model_id in self._loaded:
            return self._loaded[model_id]
        try:
            folder = resolve_model(model_id, self.dirs)
        except ModelNotFound as exc:
            raise NoModel(f"the study's model is not installed on this server: {exc}") from None
        return self._load_folder(folder)

    @property
    def loaded(self) -> dict[str, Segmenter]:
        return dict(self._loaded)

    def installed(self, model_id: str) -> bool:
        """Whether ``model_id`` is the id of a model installed in ``dirs``
        (``ulcerseg-2.0.0``). Only ids: a study's pin is set over the API, and a path
        there would let a study admin make the server load any folder on its disk."""
        from service.runtime.artifacts import installed_models

        return any(spec.id == model_id for spec, _ in installed_models(self.dirs))


DERIVED_CACHE_BYTES = 64 * 1024 * 1024
"""Memory for derived images (overlays), least recently used first out."""


class ByteCache:
    """A thread-safe LRU of byte strings bounded by their total size."""

    def __init__(self, max_bytes: int):
        from collections import OrderedDict

        self.max_bytes = max_bytes
        self._items: OrderedDict[object, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: object) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: object, value: bytes) -> None:
        if len(value) > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            self._size += len(value) - (len(old) if old is not None else 0)
            self._items[key] = value
            while self._size > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)


class Runtime:
    """A process's long-lived parts, on ``app.state.runtime``: settings, database, photo
    store, models, worker pool, metrics."""

    def __init__(self, settings: Settings, db: Database, store: PhotoStore, metrics: Metrics):
        self.settings = settings
        self.db = db
        self.store = store
        self.metrics = metrics
        from service.runtime.artifacts import models_dirs

        self.models = ModelRegistry(
            settings.model, settings.ort_threads, models_dirs(settings.models_dirs)
        )
        self.pool = WorkerPool(
            settings.inference_workers, settings.inference_queue, settings.retry_after_s
        )
        metrics.queue_depth.set_function(lambda: self.pool.depth)
        self.derived = ByteCache(DERIVED_CACHE_BYTES)
        self.large_photos = threading.BoundedSemaphore(1)
        """The lane of uploads above ``api.limits.LARGE_PHOTO_MEGAPIXELS``: one at a time."""

    def analyse(self, data: bytes, **kwargs: Any) -> Analysis:
        """``pipeline.analyse_upload`` with this service's limits (runs on a worker)."""
        from service.core import pipeline

        t0 = time.perf_counter()
        try:
            return pipeline.analyse_upload(
                data,
                max_bytes=self.settings.max_upload_bytes,
                max_pixels=self.settings.max_pixels,
                jpeg_quality=self.settings.photo_jpeg_quality,
                limits=self.settings.quality,
                **kwargs,
            )
        finally:
            self.metrics.pipeline.observe(time.perf_counter() - t0)

    def manual_mask(self, photo_jpeg: bytes, **kwargs: Any) -> tuple[bytes, dict[str, Any]]:
        from service.core import pipeline

        return pipeline.manual_mask(photo_jpeg, limits=self.settings.quality, **kwargs)

    def overlay(self, photo_jpeg: bytes, mask_png: bytes) -> bytes:
        from service.core import pipeline

        return pipeline.overlay_jpeg(photo_jpeg, mask_png)

    def overlay_of(self, photo_key: str, mask_key: str) -> bytes:
        """The overlay of a stored photo and mask, made once (on a worker) and then
        served from a bounded cache: both keys are the sha256 of their content, so an
        overlay never goes stale (it cost seconds of CPU per request on a large photo)."""
        cached = self.derived.get((photo_key, mask_key))
        if cached is not None:
            return cached
        photo, mask = self.store.get(photo_key), self.store.get(mask_key)
        jpeg: bytes = self.pool.run(self.overlay, photo, mask)
        self.derived.put((photo_key, mask_key), jpeg)
        return jpeg

    def close(self) -> None:
        self.pool.shutdown()
        self.db.dispose()
