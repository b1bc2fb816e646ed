"""Liveness, readiness (database, storage and model checked for real) and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service import __version__
from service.api.deps import RuntimeDep
from service.api.handlers import JSONAnswer
from service.runtime.context import Runtime

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up (checks nothing else: see /readyz)."""
    return {"status": "ok", "version": __version__}


def readiness(runtime: Runtime) -> tuple[bool, dict[str, Any]]:
    checks: dict[str, Any] = {}
    ok = True
    try:
        from service.persistence.db import current_revision, head_revision

        runtime.db.check()
        current, head = current_revision(runtime.db.engine), head_revision(runtime.db.url)
        if current != head:
            raise RuntimeError(
                f"schema {current or 'empty'} but the code needs {head}: run `woundscope db upgrade`"
            )
        checks["database"] = {"ok": True, "dialect": runtime.db.engine.dialect.name}
    except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
        ok = False
        checks["database"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    try:
        runtime.store.check()
        checks["storage"] = {"ok": True, "kind": runtime.store.url.split(":", 1)[0]}
    except Exception as exc:  # noqa: BLE001
        ok = False
        checks["storage"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    models = runtime.models
    if models.default_id is None:
        ok = False
        checks["model"] = {"ok": False, "error": models.error or "no model loaded"}
    else:
        default = models.get()
        checks["model"] = {
            "ok": True,
            "default": default.id,
            "sha256": default.sha256,
            "provider": default.provider,
            "warmup_ms": None if models.warmup_ms is None else round(models.warmup_ms, 1),
            "loaded": sorted(models.loaded),
        }
    checks["queue"] = {"depth": runtime.pool.depth, "limit": runtime.pool.limit}
    return ok, checks


@router.get("/readyz")
def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Ready to measure: database reachable and migrated, photo store writable, a model
    loaded (and which ONNX Runtime provider runs it). 503 with the reasons otherwise."""
    ok, checks = readiness(runtime)
    body: dict[str, Any] = {"status": "ready" if ok else "not_ready", "checks": checks}
    if not ok:
        failed = [name for name, c in checks.items() if c.get("ok") is False]
        body.update(
            code="not_ready",
            detail="; ".join(f"{name}: {checks[name]['error']}" for name in failed),
        )
    return JSONAnswer(body, status_code=200 if ok else 503)


@router.get("/metrics", response_class=Response)
def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus metrics: requests, latency, inference time, queue depth."""
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
