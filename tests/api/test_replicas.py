"""Two service processes (uvicorn, `woundscope serve`) on one PostgreSQL database and
one photo store take concurrent uploads: no duplicate, no loss."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from service.persistence.db import Database, upgrade
from service.persistence.orm import Assessment
from service.persistence.storage import open_store
from tests.api.conftest import (
    ROOT,
    bearer,
    create_postgres_database,
    drop_postgres_database,
    need_model,
    sample_photo,
    server_admin_key,
)

pytestmark = pytest.mark.postgres


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"service exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}"
            )
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready after {timeout_s} s")


@pytest.fixture
def two_replicas(
    postgres_url: str, tmp_path: Path
) -> Iterator[tuple[list[str], str, str, Database]]:
    need_model()
    db_url = create_postgres_database(postgres_url)
    upgrade(db_url)
    storage_url = (tmp_path / "photos").as_uri()
    env = {
        **os.environ,
        "WOUNDSCOPE_DATA_DIR": str(tmp_path),
        "WOUNDSCOPE_DATABASE_URL": db_url,
        "WOUNDSCOPE_STORAGE_URL": storage_url,
        "WOUNDSCOPE_LOG_LEVEL": "WARNING",
        "WOUNDSCOPE_INFERENCE_WORKERS": "1",
        "WOUNDSCOPE_INFERENCE_QUEUE": "32",
        "WOUNDSCOPE_ORT_THREADS": "1",
    }
    procs, urls = [], []
    db = Database(db_url)
    try:
        for _ in range(2):
            port = _free_port()
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
                    env=env,
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs, strict=True):
            _wait_ready(url, proc)
        yield urls, server_admin_key(db), storage_url, db
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        db.dispose()
        drop_postgres_database(db_url)


def test_two_processes_concurrent_uploads_no_duplicate_no_loss(
    two_replicas: tuple[list[str], str, str, Database],
) -> None:
    urls, admin_key, storage_url, db = two_replicas
    admin = bearer(admin_key)
    with httpx.Client(base_url=urls[0], headers=admin, timeout=60) as c:
        assert c.post("/v1/studies", json={"id": "R1", "name": "replicas"}).status_code == 201
        assert c.post("/v1/studies/R1/sites", json={"id": "A"}).status_code == 201
        subject = c.post("/v1/studies/R1/subjects", json={"code": "S1", "site": "A"}).json()["id"]
        wound = c.post(f"/v1/subjects/{subject}/wounds", json={"label": "W1"}).json()["id"]
    photos = [sample_photo(n) for n in ("0078", "0082", "0128", "0133", "0887", "0901")]

    def upload(job: tuple[int, int]) -> tuple[int, int, str]:
        n, replica = job
        # every upload is sent to both replicas at once with the same key: a client
        # retrying against another replica behind the load balancer
        r = httpx.post(
            f"{urls[replica]}/v1/wounds/{wound}/assessments",
            files={"photo": (f"p{n}.jpg", photos[n % len(photos)], "image/jpeg")},
            data={"captured_at": f"2026-01-{n + 1:02d}", "px_per_mm": "10", "visit": f"V{n}"},
            headers={**admin, "Idempotency-Key": f"upload-{n}"},
            timeout=120,
        )
        assert r.status_code == 201, r.text
        return n, replica, r.json()["id"]

    uploads = 6
    jobs = [(n, replica) for n in range(uploads) for replica in (0, 1)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(upload, jobs))
    ids: dict[int, set[str]] = {}
    for n, _, assessment_id in results:
        ids.setdefault(n, set()).add(assessment_id)
    assert all(len(found) == 1 for found in ids.values()), ids  # both replicas answered the same
    assert len({next(iter(found)) for found in ids.values()}) == uploads  # no two uploads merged
    store = open_store(storage_url)
    with db.sessions() as session:
        rows = list(session.scalars(select(Assessment).where(Assessment.wound_id == wound)))
        assert len(rows) == uploads  # no duplicate
        assert session.scalar(select(func.count()).select_from(Assessment)) == uploads
        for row in rows:  # no loss: every acknowledged row has its photo and mask
            assert store.exists(row.photo_key)
            assert len(row.measurements) == 1 and store.exists(row.measurements[0].mask_key)
    with httpx.Client(base_url=urls[1], headers=admin, timeout=60) as c:
        listed = c.get(f"/v1/wounds/{wound}/assessments", params={"limit": 100}).json()
        assert listed["total"] == uploads
        assert [a["visit"] for a in listed["items"]] == [f"V{n}" for n in range(uploads)]
    replayed = 0.0
    for url in urls:
        for line in httpx.get(f"{url}/metrics").text.splitlines():
            if line.startswith('woundscope_uploads_total{outcome="replayed"}'):
                replayed += float(line.split()[-1])
    assert replayed == uploads  # of each pair of identical uploads, exactly one was a replay
