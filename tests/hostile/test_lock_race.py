"""Writes after a lock (issue 28, medium): nothing commits after ``PATCH study
{"locked": true}`` commits.

``access.lock_study_for_write`` re-reads the lock inside the writing transaction,
under the lock the study's UPDATE needs: a writer in flight when the lock is set
either commits first (the lock waits for it) or is refused (``study_locked``).
Both orders are forced here with two real transactions, on SQLite and PostgreSQL;
tests/api/test_lock_race.py races the upload, the correction and the re-analysis
through the service itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.core.errors import StudyLocked
from service.domain import audit
from service.domain.access import lock_study_for_write
from service.domain.auth import Caller
from service.persistence.db import Database, upgrade
from service.persistence.orm import Study
from tests.api.conftest import create_postgres_database, drop_postgres_database

ADA = Caller(role="admin", holder="Ada Admin")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "postgres":
        url = create_postgres_database(request.getfixturevalue("postgres_url"))
    else:
        url = f"sqlite:///{tmp_path / 'woundscope.db'}"
    upgrade(url)
    database = Database(url)
    with database.session() as s:
        s.add(Study(id="S", name="study"))
    yield database
    database.dispose()
    if request.param == "postgres":
        drop_postgres_database(url)


def _lock_study(db: Database, done: threading.Event) -> None:
    with db.session() as s:
        study = s.get(Study, "S")
        assert study is not None
        study.locked = True
        audit.record(s, ADA, "study.lock", "study/S", study_id="S")
    done.set()


def test_a_writer_holding_the_lock_commits_before_the_lock(db: Database) -> None:
    """The writer checked first: the lock waits for its commit (audit order: write, lock)."""
    locked = threading.Event()
    with db.sessions() as writer:
        lock_study_for_write(writer, "S")
        locker = threading.Thread(target=_lock_study, args=(db, locked))
        locker.start()
        time.sleep(0.5)
        assert not locked.is_set(), "the lock did not wait for the writer in flight"
        audit.record(writer, ADA, "assessment.create", "assessment/a1", study_id="S")
        writer.commit()
    locker.join(timeout=30)
    assert locked.is_set()
    with db.sessions() as s:
        actions = [e.action for e in s.scalars(audit_rows())]
    assert actions == ["assessment.create", "study.lock"]


def test_a_writer_after_the_lock_is_refused(db: Database) -> None:
    """The lock is being committed while the writer checks: it waits, then is refused."""
    refused: list[BaseException] = []
    with db.sessions() as locker:
        study = locker.get(Study, "S")
        assert study is not None
        study.locked = True
        audit.record(locker, ADA, "study.lock", "study/S", study_id="S")
        locker.flush()

        def write() -> None:
            with db.sessions() as writer:
                try:
                    lock_study_for_write(writer, "S")
                    audit.record(writer, ADA, "assessment.create", "assessment/a2", study_id="S")
                    writer.commit()
                except StudyLocked as exc:
                    writer.rollback()
                    refused.append(exc)

        thread = threading.Thread(target=write)
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive(), "the writer did not wait for the lock in flight"
        locker.commit()
    thread.join(timeout=30)
    assert len(refused) == 1 and refused[0].code == "study_locked"
    with db.sessions() as s:
        assert [e.action for e in s.scalars(audit_rows())] == ["study.lock"]


def audit_rows():  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from service.persistence.orm import AuditEntry

    return select(AuditEntry).order_by(AuditEntry.id)
