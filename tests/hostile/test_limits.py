"""Request bodies against a real ``woundscope serve`` (uvicorn, real sockets).

A chunked body (no Content-Length) used to bypass the body limit: 300 MB streamed
without a key was spooled to disk before the 401. Now a body is admitted only with a
valid key, and it is counted as it streams: each attack below answers its 4xx with a
registered code while the server's temporary folder and memory stay small.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from service.core.errors import ERROR_CODES
from tests.hostile.live import Live, Peaks, live_server, send_chunked

LIMIT_BYTES = 2 * 1024 * 1024
DISK_LIMIT_MB = 8.0
RSS_LIMIT_MB = 80.0


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_server(
        tmp_path_factory.mktemp("live-limits"), WOUNDSCOPE_MAX_UPLOAD_BYTES=str(LIMIT_BYTES)
    ) as server:
        yield server


def _error(answer: bytes) -> dict[str, str]:
    body = answer.split(b"\r\n\r\n", 1)[1]
    error: dict[str, str] = json.loads(body)
    assert error["code"] in ERROR_CODES and error["detail"], error
    return error


def _attack(live: Live, headers: dict[str, str], total_mb: int) -> tuple[int, bytes, int, Peaks]:
    with Peaks(live.pid, live.spool) as peaks:
        status, answer, sent = send_chunked(
            live.port, "/v1/wounds/wnd_000000000000/assessments", headers, total_mb << 20
        )
    return status, answer, sent, peaks


def test_chunked_without_key_is_refused_before_the_body(live: Live) -> None:
    status, answer, sent, peaks = _attack(live, {}, 300)
    assert status == 401, answer[:300]
    assert _error(answer)["code"] == "missing_key"
    assert b"www-authenticate: bearer" in answer.lower()
    assert sent < 300 << 20, "the client could stream the whole 300 MB"
    assert peaks.disk_peak_mb < 0.1, f"{peaks.disk_peak_mb:.1f} MB spooled before the 401"
    assert peaks.rss_growth_mb < RSS_LIMIT_MB


def test_chunked_with_a_revoked_or_unknown_key_is_refused(live: Live) -> None:
    status, answer, _, peaks = _attack(live, {"Authorization": "Bearer ws_not-a-key"}, 100)
    assert status == 401, answer[:300]
    assert _error(answer)["code"] == "invalid_key"
    assert peaks.disk_peak_mb < 0.1


def test_chunked_over_the_limit_is_cut_off_on_the_stream(live: Live) -> None:
    status, answer, sent, peaks = _attack(live, live.headers(), 200)
    assert status == 413, answer[:300]
    assert _error(answer)["code"] == "payload_too_large"
    assert sent < 200 << 20
    assert peaks.disk_peak_mb < DISK_LIMIT_MB, f"{peaks.disk_peak_mb:.1f} MB spooled"
    assert peaks.rss_growth_mb < RSS_LIMIT_MB, f"grew {peaks.rss_growth_mb:.0f} MB"
    # ...and the server still answers.
    assert httpx.get(f"{live.url}/healthz", timeout=10).status_code == 200


def test_declared_length_over_the_limit_is_refused_at_once(live: Live) -> None:
    r = httpx.post(
        f"{live.url}/v1/studies",
        content=b"{" + b" " * (LIMIT_BYTES + 2 * 1024 * 1024) + b"}",
        headers={**live.headers(), "Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"


def test_anonymous_body_is_small(live: Live) -> None:
    """The sign-in form is the one body taken without a key: 64 KB at most."""
    r = httpx.post(
        f"{live.url}/dashboard/login",
        data={"key": "x" * (200 * 1024), "csrf": "y"},
        timeout=30,
    )
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"


def test_every_answer_says_nosniff_and_401_says_how(live: Live) -> None:
    for path in ("/healthz", "/v1/studies", "/dashboard/login", "/nowhere"):
        r = httpx.get(f"{live.url}{path}", timeout=10)
        assert r.headers.get("x-content-type-options") == "nosniff", path
    r = httpx.get(f"{live.url}/v1/studies", timeout=10)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")


def test_data_files_are_private(live: Live) -> None:
    """The database, the photos and their folders are the service user's alone."""
    httpx.post(
        f"{live.url}/v1/studies",
        json={"id": "PRIV", "name": "private"},
        headers=live.headers(),
        timeout=10,
    )
    paths = [live.data_dir, *live.data_dir.rglob("*")]
    assert any(p.name == "woundscope.db" for p in paths)
    loose = [
        f"{p} {oct(p.stat().st_mode & 0o777)}"
        for p in paths
        if p.exists() and p.stat().st_mode & 0o077
    ]
    assert not loose, loose
