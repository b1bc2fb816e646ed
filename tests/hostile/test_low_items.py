"""The low findings of red team round 3 (issue 28): each is a 4xx with a code, or a log
line that stays JSON."""

from __future__ import annotations

import io
import json
import logging

from service.runtime.metrics import configure_logging
from tests.api.conftest import Service


def test_revoking_an_id_beyond_any_integer_is_a_4xx(service: Service) -> None:  # noqa: F811
    for key in ("99999999999999999999999", "0", "-1"):
        r = service.client.delete(f"/v1/keys/{key}", headers=service.admin)
        assert 400 <= r.status_code < 500, (key, r.status_code, r.text)
        assert r.json()["code"] in ("invalid_request", "not_found")


def test_uvicorn_tracebacks_stay_json() -> None:
    configure_logging("INFO", as_json=True)
    handler = next(
        h for h in logging.getLogger("uvicorn").handlers if getattr(h, "_woundscope", False)
    )
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    old = handler.setStream(stream)
    try:
        try:
            raise ValueError("boom\nsecond line")
        except ValueError:
            logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    finally:
        handler.setStream(old)
    lines = stream.getvalue().splitlines()
    assert lines, "nothing logged"
    for line in lines:
        record = json.loads(line)
        assert record["logger"] == "uvicorn.error"
    assert "ValueError" in json.loads(lines[0])["error"]
