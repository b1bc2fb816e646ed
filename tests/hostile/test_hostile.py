"""Every file of the hostile corpus (``make_corpus.py``) uploaded to the real app.

Each answer is a 201 (a supported-but-unusual photo, converted) or a 4xx whose body
is ``{"code", "detail"}`` with one of the case's expected codes; never a 5xx. A
refused upload leaves nothing behind: no stored object, no assessment, measurement
or audit row. Memory stays bounded: the process grows by less than ``RSS_LIMIT_MB``
while one hostile upload is processed (a 50 000 x 50 000 PNG is refused before it
is decoded). SQLite only: the PostgreSQL path of the upload is covered by tests/api.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from sqlalchemy import func, select

from service.persistence.orm import Assessment, AuditEntry, Measurement
from tests.api.conftest import Service, Trial, make_trial
from tests.hostile.make_corpus import Case, build

RSS_LIMIT_MB = 700
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Case]]:
    folder = tmp_path_factory.mktemp("hostile-corpus")
    return folder, {case.name: case for case in build(folder)}


@pytest.fixture(scope="module")
def hostile_trial(service: Service) -> tuple[Trial, str]:  # noqa: F811
    trial = make_trial(service)
    return trial, trial.wound("A")


def _state(service: Service) -> tuple[int, int, int, frozenset[str]]:  # noqa: F811
    with service.db.session() as s:
        counts = [
            s.scalar(select(func.count()).select_from(t)) or 0
            for t in (Assessment, Measurement, AuditEntry)
        ]
    store = service.app.state.runtime.store
    return counts[0], counts[1], counts[2], frozenset(store.keys())


class PeakRss:
    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.01)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.base) / 2**20


def _post(trial: Trial, wound: str, case: Case, data: bytes) -> Any:
    fields = {"captured_at": "2026-01-05", **case.fields}
    part: tuple[Any, ...] = (
        (case.filename, data, case.content_type) if case.content_type else (case.filename, data)
    )
    return trial.client.post(
        f"/v1/wounds/{wound}/assessments",
        files={"photo": part},
        data=fields,
        headers=trial.keys["uploader"],
    )


def _check(
    name: str, case: Case, data: bytes, trial: Trial, wound: str, service: Service
) -> str | None:  # noqa: F811
    """What is wrong with the service's answer to this case, or None."""
    before = _state(service)
    with PeakRss() as rss:
        r = _post(trial, wound, case, data)
    if r.status_code >= 500:
        return f"{r.status_code} {r.text[:300]}"
    if rss.growth_mb >= RSS_LIMIT_MB:
        return f"the process grew by {rss.growth_mb:.0f} MB"
    if r.status_code == 201:
        if case.expect not in ("accept", "either"):
            return f"accepted: {r.text[:200]}"
        body = r.json()
        if body["measurement"] is None:
            return "accepted without a measurement"
        photo = trial.client.get(body["photo_url"], headers=trial.keys["uploader"])
        if photo.status_code != 200 or photo.content[:3] != b"\xff\xd8\xff":
            return f"stored photo answers {photo.status_code}"
        # What is stored and served is the re-encoded photo: no appended payload, no GPS
        for secret in (b"secret payload", b"PK\x03\x04", b"Dr. Secret Name", b"HostileCam"):
            if secret in photo.content:
                return f"the served photo still contains {secret!r}"
        return None
    if case.expect not in ("refuse", "either") or not 400 <= r.status_code < 500:
        return f"{r.status_code} {r.text[:300]}"
    error = r.json()
    if not (set(error) >= {"code", "detail"} and SNAKE.match(error["code"]) and error["detail"]):
        return f"malformed error body {error}"
    if error["code"] not in case.codes:
        return f"{r.status_code} {error['code']} not in {case.codes}: {error['detail'][:200]}"
    if _state(service) != before:
        return "refused, but left a stored object or a row behind"
    return None


def test_hostile_corpus(
    corpus: tuple[Path, dict[str, Case]],
    hostile_trial: tuple[Trial, str],
    service: Service,  # noqa: F811
) -> None:
    """One test over the whole corpus (built once), every failure listed."""
    folder, cases = corpus
    assert len(cases) >= 30
    trial, wound = hostile_trial
    failures = []
    for name, case in cases.items():
        problem = _check(name, case, (folder / name).read_bytes(), trial, wound, service)
        if problem:
            failures.append(f"{name}: {problem}")
    assert not failures, "\n".join(failures)
