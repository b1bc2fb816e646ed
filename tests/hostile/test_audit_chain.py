"""The audit log is tamper-evident, and sign-ins are in it (issue 28, medium).

Red team round 3 rewrote an entry's actor and deleted a ``key.revoke`` entry in a
backup (dropping the append-only triggers first) and ``woundscope fsck`` said clean.
Now every entry is chained to the one before it (``service.persistence.auditchain``):
``woundscope audit verify`` and ``fsck`` exit 1 naming the first broken entry, on
SQLite and PostgreSQL; concurrent writers never fork the chain; the migration chains
the entries already there. Dashboard sign-in, sign-out and refused sign-ins are
entries (never the key), and a client guessing keys is throttled.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from service.cli import app as cli
from service.config import get_settings
from service.domain import audit, signin
from service.domain.auth import Caller
from service.persistence import auditchain
from service.persistence.db import Database, upgrade
from service.persistence.orm import AuditEntry
from tests.api.conftest import (
    Service,
    create_postgres_database,
    drop_postgres_database,
    make_trial,
)

ADA = Caller(role="admin", holder="Ada Admin", key_id=1)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A new, migrated database of each backend."""
    if request.param == "postgres":
        url = create_postgres_database(request.getfixturevalue("postgres_url"))
    else:
        url = f"sqlite:///{tmp_path / 'woundscope.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()
    if request.param == "postgres":
        drop_postgres_database(url)


def _write(db: Database, n: int, action: str = "study.update") -> list[int]:
    ids = []
    with db.session() as session:
        for i in range(n):
            entry = audit.record(
                session, ADA, action, f"study/S{i}", study_id="S", after={"n": i, "x": 0.1}
            )
            session.flush()
            ids.append(entry.id)
    return ids


def _tamper(db: Database, statement: str, **params: object) -> None:
    """Edit the log around its append-only triggers, as an attacker with the file would."""
    with db.engine.begin() as conn:
        if db.is_sqlite:
            conn.execute(sa.text("DROP TRIGGER audit_log_no_update"))
            conn.execute(sa.text("DROP TRIGGER audit_log_no_delete"))
        else:
            conn.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        conn.execute(sa.text(statement), params)


def _verify(db: Database) -> auditchain.ChainReport:
    with db.sessions() as session:
        return auditchain.verify(session)


def _cli(db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *args: str) -> object:
    monkeypatch.setenv("WOUNDSCOPE_DATABASE_URL", db.url)
    monkeypatch.setenv("WOUNDSCOPE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(cli, list(args))
    finally:
        get_settings.cache_clear()


def test_the_chain_holds_and_the_commands_say_so(
    db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _write(db, 5)
    report = _verify(db)
    assert report.ok and report.entries == 5, report
    out = _cli(db, monkeypatch, tmp_path, "audit", "verify")
    assert out.exit_code == 0 and "chain holds" in out.output, out.output  # type: ignore[attr-defined]
    assert report.head_hash in out.output  # type: ignore[attr-defined]
    out = _cli(db, monkeypatch, tmp_path, "fsck")
    assert out.exit_code == 0 and "chain holds" in out.output, out.output  # type: ignore[attr-defined]


def test_an_edited_actor_is_found(
    db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ids = _write(db, 5)
    _tamper(db, "UPDATE audit_log SET actor = 'Eve' WHERE id = :id", id=ids[2])
    report = _verify(db)
    assert report.broken_id == ids[2] and "edited" in report.problem, report
    out = _cli(db, monkeypatch, tmp_path, "audit", "verify")
    assert out.exit_code == 1, out.output  # type: ignore[attr-defined]
    assert f"BROKEN at entry {ids[2]}" in out.output  # type: ignore[attr-defined]
    out = _cli(db, monkeypatch, tmp_path, "fsck")
    assert out.exit_code == 1 and "NOT CLEAN" in out.output, out.output  # type: ignore[attr-defined]
    assert f"BROKEN at entry {ids[2]}" in out.output  # type: ignore[attr-defined]


def test_an_edited_after_is_found(db: Database) -> None:
    ids = _write(db, 3)
    after = '{"n": 1, "x": 0.2}'
    _tamper(db, "UPDATE audit_log SET after = :a WHERE id = :id", a=after, id=ids[1])
    assert _verify(db).broken_id == ids[1]


def test_a_deleted_entry_is_found(db: Database) -> None:
    ids = _write(db, 3)
    ids += _write(db, 1, action="key.revoke")
    ids += _write(db, 2)
    _tamper(db, "DELETE FROM audit_log WHERE action = 'key.revoke'")
    report = _verify(db)
    assert report.broken_id == ids[4] and "deleted" in report.problem, report


def test_a_cut_off_tail_is_found(db: Database) -> None:
    ids = _write(db, 4)
    _tamper(db, "DELETE FROM audit_log WHERE id = :id", id=ids[-1])
    report = _verify(db)
    assert not report.ok and report.broken_id == ids[-1] and "cut off" in report.problem


def test_a_recomputed_entry_does_not_fix_the_next_link(db: Database) -> None:
    """Rewriting one entry and its own hash still breaks the link of the one after."""
    ids = _write(db, 3)
    with db.sessions() as session:
        entry = session.get(AuditEntry, ids[1])
        assert entry is not None
        entry.actor = "Eve"
        forged = auditchain.entry_hash(entry.prev_hash or "", entry)
    _tamper(db, "UPDATE audit_log SET actor='Eve', hash=:h WHERE id=:id", h=forged, id=ids[1])
    assert _verify(db).broken_id == ids[2]


def test_concurrent_writers_never_fork_the_chain(db: Database) -> None:
    threads, per_thread = 6, 8
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(per_thread):
                _write(db, 1)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors, errors
    report = _verify(db)
    assert report.ok and report.entries == threads * per_thread, report


def test_the_migration_chains_the_entries_already_there(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0004")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for i in range(3):
            conn.execute(
                sa.text(
                    "INSERT INTO audit_log (at, actor, action, resource, after)"
                    " VALUES ('2026-12-01 10:00:00.000001', 'Ada', 'study.create', :r, :a)"
                ),
                {"r": f"study/S{i}", "a": '{"name": "S"}'},
            )
    engine.dispose()
    upgrade(url)
    db = Database(url)
    try:
        assert _verify(db).ok and _verify(db).entries == 3
        _write(db, 2)
        assert _verify(db).ok and _verify(db).entries == 5
    finally:
        db.dispose()


# --- sign-ins ------------------------------------------------------------------------


def _login(client: TestClient, key: str) -> object:
    form = client.get("/dashboard/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token is not None
    return client.post(
        "/dashboard/login", data={"key": key, "csrf": token.group(1)}, follow_redirects=False
    )


def _entries(service: Service, since: int, action: str) -> list[AuditEntry]:
    with service.db.sessions() as s:
        return list(
            s.scalars(select(AuditEntry).where(AuditEntry.id > since, AuditEntry.action == action))
        )


def _last_id(service: Service) -> int:
    with service.db.sessions() as s:
        return s.scalar(select(sa.func.max(AuditEntry.id))) or 0


def test_sign_in_and_out_are_audited_without_the_key(service: Service) -> None:  # noqa: F811
    trial = make_trial(service)
    key = trial.keys["clinician"]["Authorization"].split(" ", 1)[1]
    since = _last_id(service)
    client = TestClient(service.app, client=("10.1.2.3", 5000))
    r = _login(client, key)
    assert r.status_code == 303  # type: ignore[attr-defined]
    page = client.get("/dashboard/").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    r = client.post("/dashboard/logout", data={"csrf": csrf.group(1)}, follow_redirects=False)
    assert r.status_code == 303
    started = _entries(service, since, "session.start")
    ended = _entries(service, since, "session.end")
    assert [e.actor for e in started] == ["clinician holder"]
    assert [e.actor for e in ended] == ["clinician holder"]
    assert started[0].study_id == trial.study and started[0].after["client"] == "10.1.2.3"  # type: ignore[index]
    assert started[0].resource == ended[0].resource
    with service.db.sessions() as s:
        logged = " ".join(auditchain.canonical(e) for e in s.scalars(select(AuditEntry)))
    assert key not in logged and key[:12] not in logged
    assert _verify(service.db).ok


def test_refused_sign_ins_are_audited_and_throttled(service: Service) -> None:  # noqa: F811
    since = _last_id(service)
    client = TestClient(service.app, client=("10.9.9.9", 5000))
    guesses = [f"ws_guess{i:02d}" for i in range(signin.MAX_REFUSALS)]
    for guess in guesses:
        r = _login(client, guess)
        assert r.status_code == 401  # type: ignore[attr-defined]
    r = _login(client, "ws_one_more")
    assert r.status_code == 429, r.text  # type: ignore[attr-defined]
    assert 0 < int(r.headers["retry-after"]) <= signin.REFUSAL_WINDOW.total_seconds()  # type: ignore[attr-defined]
    refused = _entries(service, since, "session.refused")
    assert len(refused) == signin.MAX_REFUSALS
    assert {e.resource for e in refused} == {"client/10.9.9.9"}
    assert len(_entries(service, since, "session.throttled")) == 1
    with service.db.sessions() as s:
        logged = " ".join(auditchain.canonical(e) for e in s.scalars(select(AuditEntry)))
    assert not any(guess in logged for guess in guesses)
    # another client is not throttled by this one
    trial = make_trial(service)
    other = TestClient(service.app, client=("10.9.9.10", 5000))
    key = trial.keys["monitor"]["Authorization"].split(" ", 1)[1]
    assert _login(other, key).status_code == 303  # type: ignore[attr-defined]


def test_wrong_api_keys_are_audited_up_to_a_limit_and_a_valid_key_still_works(
    service: Service,  # noqa: F811
) -> None:
    """Key guessing on the API shows in the log (``key.refused``: the client's address,
    never the key; then ``key.guessing``); past ``MAX_REFUSALS`` a wrong key is still
    401 but written no more; a valid key from that address keeps working."""
    trial = make_trial(service)
    since = _last_id(service)
    client = TestClient(service.app, client=("10.7.7.7", 5000))
    guesses = [f"ws_apiguess{i:02d}" for i in range(signin.MAX_REFUSALS + 5)]
    for guess in guesses:
        r = client.get("/v1/studies", headers={"Authorization": f"Bearer {guess}"})
        assert r.status_code == 401 and r.json()["code"] == "invalid_key", r.text
    refused = _entries(service, since, "key.refused")
    assert len(refused) == signin.MAX_REFUSALS
    assert {e.resource for e in refused} == {"client/10.7.7.7"}
    guessing = _entries(service, since, "key.guessing")
    assert len(guessing) == 1 and guessing[0].id > refused[-1].id
    assert client.get("/v1/studies", headers=trial.keys["monitor"]).status_code == 200
    # the dashboard's sign-in from that address is not throttled by the API's refusals
    assert _login(client, trial.keys["monitor"]["Authorization"][7:]).status_code == 303  # type: ignore[attr-defined]
    with service.db.sessions() as s:
        logged = " ".join(auditchain.canonical(e) for e in s.scalars(select(AuditEntry)))
    assert not any(guess in logged for guess in guesses)
    assert _verify(service.db).ok


def test_audit_page_far_past_the_end_is_a_4xx(service: Service) -> None:  # noqa: F811
    client = TestClient(service.app)
    key = service.admin["Authorization"].split(" ", 1)[1]
    assert _login(client, key).status_code == 303  # type: ignore[attr-defined]
    r = client.get("/dashboard/audit", params={"page": 10**20})
    assert 400 <= r.status_code < 500, r.status_code
