"""The start-up log agrees with /readyz: "service ready" only when /readyz answers 200;
a service whose model did not load says it is not ready, and why."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi.testclient import TestClient

from service.api.app import create_app
from tests.api.conftest import make_settings, need_model


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _start(tmp_path: Path, **overrides: str) -> tuple[int, list[str]]:
    """/readyz's status and what the app logged (``woundscope.app``) at start-up."""
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'w.db'}")
    app = create_app(settings.model_copy(update={"log_level": "INFO", **overrides}))
    kept, logger = _Kept(), logging.getLogger("woundscope.app")
    logger.addHandler(kept)
    try:
        with TestClient(app) as client:
            return client.get("/readyz").status_code, kept.messages
    finally:
        logger.removeHandler(kept)


def test_no_service_ready_when_readyz_answers_503(tmp_path: Path) -> None:
    status, messages = _start(tmp_path, model="ulcerseg-0.0.0")
    assert status == 503
    assert "service ready" not in messages, messages
    (warning,) = [m for m in messages if "not ready" in m]
    assert "/readyz answers 503" in warning and "ulcerseg-0.0.0" in warning


def test_service_ready_when_readyz_answers_200(tmp_path: Path) -> None:
    need_model()
    status, messages = _start(tmp_path)
    assert status == 200
    assert "service ready" in messages
