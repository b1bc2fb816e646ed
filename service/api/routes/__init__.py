"""API routers, one module per area. The app includes every module listed here that
exists and exposes ``router`` (so an area can be added without editing the app)."""

from __future__ import annotations

import importlib

from fastapi import APIRouter

ROUTER_MODULES: list[str] = [
    "health",
    "studies",
    "subjects",
    "wounds",
    "assessments",
    "audit",
    "keys",
    "marker",
    "healing",
    "exports",
    "review",
    "reanalyses",
    "assist",
    "queue",
    "dashboard",
    "capture",
    "docs",
]


def routers() -> list[APIRouter]:
    found = []
    for name in ROUTER_MODULES:
        try:
            module = importlib.import_module(f"service.api.routes.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"service.api.routes.{name}":
                continue  # not built yet
            raise
        found.append(module.router)
    return found
