"""The low findings of red team round 3 (issue 28): each is a 4xx with a code, or a log
line that stays JSON."""

from __future__ import annotations

import io
import json
import logging

import pytest

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


def _raw(
    service: Service,  # noqa: F811
    headers: list[tuple[bytes, bytes]],
    length: int = 10**9,
    stall: bool = False,
) -> tuple[int, dict[bytes, bytes]]:
    """The answer's status and headers to a POST declaring a ``length`` body (none
    sent; with ``stall``, none ever arrives)."""
    import anyio

    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        if stall:
            await anyio.sleep(3600)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/studies",
        "raw_path": b"/v1/studies",
        "query_string": b"",
        "headers": [(b"content-length", str(length).encode()), (b"host", b"test"), *headers],
        "scheme": "http",
        "server": ("test", 80),
        "client": ("127.0.0.1", 1),
        "http_version": "1.1",
        "root_path": "",
        "app": service.app,
    }
    anyio.run(service.app, scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return int(start["status"]), dict(start["headers"])  # type: ignore[arg-type,call-overload]


def test_a_large_body_without_a_key_is_401_with_the_security_headers(service: Service) -> None:  # noqa: F811
    status, headers = _raw(service, [(b"content-type", b"application/json")])
    assert status == 401
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert headers[b"x-frame-options"] == b"DENY" and b"www-authenticate" in headers
    key = service.admin["Authorization"].encode()
    status, headers = _raw(
        service, [(b"authorization", key), (b"content-type", b"application/json")]
    )
    assert status == 413
    assert headers[b"x-frame-options"] == b"DENY" and headers[b"cache-control"] == b"no-store"


def test_a_stalled_body_is_408(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from service.api import limits

    monkeypatch.setattr(limits, "BODY_IDLE_TIMEOUT_S", 0.5)
    key = service.admin["Authorization"].encode()
    status, headers = _raw(
        service, [(b"authorization", key), (b"content-type", b"application/json")], 100, True
    )
    assert status == 408


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_pages_use_no_cdn(service: Service, page: str) -> None:  # noqa: F811
    import re

    r = service.client.get(page)
    assert r.status_code == 200
    assert "Content-Security-Policy" in r.headers and r.headers["X-Frame-Options"] == "DENY"
    sources = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert sources and all(s.startswith("/docs/static/") for s in sources), sources
    assert "<script>" not in r.text  # no inline script: the CSP allows this origin only
    for source in sources:
        asset = service.client.get(source)
        assert asset.status_code == 200 and len(asset.content) > 100, source
