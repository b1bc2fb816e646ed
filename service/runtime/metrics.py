"""Prometheus metrics and one structured log line per request (no patient data).

Each app has its own registry, so several apps (tests) never clash. Requests are
labelled by route *template* (``/v1/subjects/{subject}``), never by the ids or the
query string, so neither metrics nor logs carry subject codes.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("woundscope.http")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "woundscope_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "woundscope_request_seconds",
            "HTTP request latency by route template",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32),
        )
        self.inference = Histogram(
            "woundscope_inference_seconds",
            "Segmentation time per photo by model",
            ["model"],
            registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16),
        )
        self.pipeline = Histogram(
            "woundscope_pipeline_seconds",
            "Decode + segment + measure time per upload",
            registry=self.registry,
            buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32),
        )
        self.queue_depth = Gauge(
            "woundscope_queue_depth",
            "CPU jobs admitted and not finished (running + waiting)",
            registry=self.registry,
        )
        self.uploads = Counter(
            "woundscope_uploads", "Uploads by outcome", ["outcome"], registry=self.registry
        )


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra fields passed with ``extra=`` are included."""

    _skip = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update({k: v for k, v in record.__dict__.items() if k not in self._skip})
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


LOGGERS = ("woundscope", "uvicorn")
"""Loggers written in the service's format: its own, and uvicorn's (whose "Exception in
ASGI application" tracebacks would otherwise reach stderr as plain text and break a
JSON log)."""


def configure_logging(level: str, as_json: bool) -> None:
    for name in LOGGERS:
        root = logging.getLogger(name)
        if name == "woundscope":
            root.setLevel(level)
        if not any(getattr(h, "_woundscope", False) for h in root.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler._woundscope = True  # type: ignore[attr-defined]
            root.addHandler(handler)
            root.propagate = False
        for existing in root.handlers:
            if getattr(existing, "_woundscope", False):
                existing.setFormatter(
                    JsonFormatter() if as_json else logging.Formatter("%(levelname)s %(message)s")
                )


class RequestMiddleware:
    """Counts and times requests and logs one line each (body limits: ``api.limits``)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int):
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = {"code": 500}

        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        # Body limits are ``service.api.limits``'s, after authentication: refusing a large
        # body here, first, answered 413 to a caller without a key (who should hear 401)
        # and without the security headers.
        await self.app(scope, receive, _send)
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        elapsed = time.perf_counter() - t0
        self.metrics.requests.labels(scope["method"], template, str(status["code"])).inc()
        self.metrics.latency.labels(scope["method"], template).observe(elapsed)
        log.info(
            "request",
            extra={
                "method": scope["method"],
                "route": template,
                "status": status["code"],
                "ms": round(elapsed * 1000, 1),
            },
        )
