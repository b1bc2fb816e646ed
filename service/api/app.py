"""The FastAPI application factory.

``create_app(settings)`` builds an app; nothing is created at import time. The
lifespan opens the database (migrating the embedded SQLite default, refusing an
external database behind the code), the photo store and the worker pool, and
loads the model(s) once.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from service import __version__
from service.api.handlers import JSONAnswer, install_handlers, install_storage_handler
from service.api.limits import LimitsMiddleware, body_limit_bytes
from service.api.openapi import install_openapi
from service.api.routes import routers
from service.config import Settings, get_settings
from service.core.errors import ERROR_CODES
from service.persistence.db import Database
from service.persistence.orm import Study
from service.persistence.storage import open_store
from service.runtime.context import Runtime
from service.runtime.metrics import Metrics, RequestMiddleware, configure_logging

log = logging.getLogger("woundscope.app")

DESCRIPTION = """
Ulcer area (cm²) from clinical foot photographs with a printed calibration marker,
and the healing endpoints of a clinical trial.

Authenticate with `Authorization: Bearer <key>` (keys: `woundscope keys create`).
Errors answer `{"code": "...", "detail": "..."}`; the codes:

""" + "\n".join(
    f"- `{code}` ({status}): {meaning}" for code, (status, meaning) in ERROR_CODES.items()
)


def open_runtime(settings: Settings, metrics: Metrics | None = None) -> Runtime:
    """Database (schema checked), store, models: what a process needs to serve."""
    db = Database(settings.database_url)
    try:
        db.ensure_schema()
        store = open_store(settings.storage_url, settings.s3_endpoint_url)
    except BaseException:
        db.dispose()
        raise
    runtime = Runtime(settings, db, store, metrics or Metrics())
    runtime.models.load_default()
    with db.sessions() as session:
        pinned = sorted({m for m in session.scalars(select(Study.model)) if m})
    runtime.models.preload(pinned)
    return runtime


def _log_readiness(runtime: Runtime, settings: Settings) -> None:
    """ "service ready" only when /readyz would answer 200 (the same checks); else a
    warning that says what is not ready, as /readyz's 503 does."""
    from service.api.routes.health import readiness

    ok, checks = readiness(runtime)
    where = {
        "database": runtime.db.engine.dialect.name,
        "storage": settings.storage_url.split(":", 1)[0],
        "model": runtime.models.default_id,
    }
    if ok:
        log.info("service ready", extra=where)
        return
    failed = {name: check["error"] for name, check in checks.items() if check.get("ok") is False}
    log.warning(
        "service started but not ready (/readyz answers 503): "
        + "; ".join(f"{name}: {error}" for name, error in failed.items()),
        extra=where,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A second lifespan on a running app (a test harness or an ASGI host that starts
        # it again) shares the open runtime and leaves closing it to the first.
        if getattr(app.state, "runtime", None) is not None:
            yield
            return
        runtime = open_runtime(settings, metrics)
        app.state.runtime = runtime
        app.state.db = runtime.db
        app.state.settings = settings
        _log_readiness(runtime, settings)
        try:
            yield
        finally:
            app.state.runtime = None
            runtime.close()

    app = FastAPI(
        title="woundscope",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        default_response_class=JSONAnswer,
        docs_url=None,  # /docs and /redoc: api/routes/docs.py, from the service's own files
        redoc_url=None,
    )
    app.state.settings = settings
    install_handlers(app)
    install_storage_handler(app)
    install_openapi(app)
    for router in routers():
        app.include_router(router)

    @app.get("/", include_in_schema=False)
    def _home() -> RedirectResponse:
        return RedirectResponse("/dashboard/", status_code=307)

    app.add_middleware(LimitsMiddleware, max_upload_bytes=settings.max_upload_bytes)  # type: ignore[arg-type]
    app.add_middleware(
        RequestMiddleware,  # type: ignore[arg-type]
        metrics=metrics,
        max_body_bytes=body_limit_bytes(settings.max_upload_bytes),
    )
    return app
