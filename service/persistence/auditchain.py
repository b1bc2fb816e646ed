"""The audit log as a hash chain: an edited, deleted, inserted or reordered entry shows.

Each entry stores ``prev_hash`` (the ``hash`` of the entry before it, ``GENESIS`` for
the first) and ``hash`` = SHA-256 of ``prev_hash`` and the entry's canonical JSON
(``at`` in UTC to the microsecond, actor, key id, action, resource, study, before,
after; keys sorted, no spaces). The table ``audit_head`` holds the last entry's id and
hash and the number of entries, so cutting entries off the end shows too.

Appending is serialised: ``append`` first updates the one row of ``audit_head`` (a row
lock on PostgreSQL held until commit; on SQLite the statement that takes the database's
write lock), and only then reads the head, so two transactions never chain onto the
same entry. The triggers of the first migration still refuse UPDATE and DELETE on
``audit_log``; the chain is what catches an edit made around them (a backup edited with
the triggers dropped). It is tamper-evident, not tamper-proof: whoever rewrites every
hash after an edit makes a consistent chain, so ``woundscope audit verify`` prints the
head hash for the operator to keep elsewhere and compare.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from service.persistence.orm import AuditEntry, AuditHead

GENESIS = "0" * 64
"""The ``prev_hash`` of the first entry."""
HEAD_ID = 1


def _plain_json(value: Any) -> Any:
    """``value`` as the JSON column gives it back (tuples as lists, keys as strings)."""
    return None if value is None else json.loads(json.dumps(value))


def canonical(entry: AuditEntry) -> str:
    """The entry's content as one canonical JSON text (what its hash covers)."""
    at = entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=UTC)
    content = {
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": entry.actor,
        "key_id": entry.key_id,
        "action": entry.action,
        "resource": entry.resource,
        "study_id": entry.study_id,
        "before": _plain_json(entry.before),
        "after": _plain_json(entry.after),
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(prev_hash: str, entry: AuditEntry) -> str:
    """SHA-256 (hex) of the previous hash and the entry's canonical JSON."""
    return hashlib.sha256(f"{prev_hash}\n{canonical(entry)}".encode()).hexdigest()


def append(session: Session, entry: AuditEntry) -> AuditEntry:
    """Add ``entry`` to the session's transaction, chained to the current head.

    Nothing is flushed here (a caller's pending row meets its constraints at the
    caller's own flush or commit): the head is read and moved with two statements of
    their own, and the entry is inserted with the transaction, still under the lock."""
    with session.no_autoflush:
        # The lock first (see the module docstring), and the head as it stands under it.
        previous = session.execute(
            update(AuditHead)
            .where(AuditHead.id == HEAD_ID)
            .values(entries=AuditHead.entries + 1)
            .returning(AuditHead.hash),
            execution_options={"synchronize_session": False},
        ).scalar_one_or_none()
        if previous is None:  # the migration makes the row; a database made otherwise
            session.execute(insert(AuditHead).values(id=HEAD_ID, entries=1, hash=GENESIS))
            previous = GENESIS
        entry.at = entry.at or datetime.now(UTC)
        entry.prev_hash = previous
        entry.hash = entry_hash(previous, entry)
        session.execute(
            update(AuditHead).where(AuditHead.id == HEAD_ID).values(hash=entry.hash),
            execution_options={"synchronize_session": False},
        )
        session.add(entry)
    return entry


@dataclass(frozen=True)
class ChainReport:
    entries: int
    """Entries read."""
    head_hash: str
    """The last entry's hash (keep it elsewhere to compare later)."""
    broken_id: int | None = None
    """The first entry whose link or hash does not hold (None: the chain holds)."""
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_id is None and not self.problem


def verify(session: Session, batch: int = 1000) -> ChainReport:
    """Walk the log in id order: every ``prev_hash`` names the entry before, every
    ``hash`` is recomputed, and the head names the last entry. The first break is
    reported (its id; for a cut-off tail, the id the head names)."""
    previous = GENESIS
    count = 0
    last_id: int | None = None
    after_id = 0
    while True:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.id > after_id).order_by(AuditEntry.id).limit(batch)
        ).all()
        if not rows:
            break
        for entry in rows:
            problem = _check_entry(entry, previous)
            if problem:
                return ChainReport(count, previous, entry.id, problem)
            previous, last_id, count = entry.hash or "", entry.id, count + 1
        after_id = rows[-1].id
        session.expunge_all()  # a long log is read in batches, not held in memory
    return _check_head(session, count, previous, last_id)


def _check_entry(entry: AuditEntry, previous: str) -> str:
    if entry.prev_hash != previous:
        return (
            f"its prev_hash does not name the entry before it (an entry before it was"
            f" deleted, inserted or edited): {entry.prev_hash} != {previous}"
        )
    if entry.hash != entry_hash(previous, entry):
        return "its content does not hash to its stored hash (the entry was edited)"
    return ""


def _check_head(session: Session, count: int, last_hash: str, last_id: int | None) -> ChainReport:
    """The head holds the last entry's hash and the number of entries: otherwise
    entries were cut off the end (the first missing one is named by its count)."""
    head = session.get(AuditHead, HEAD_ID)
    if head is None:
        if count:
            return ChainReport(count, last_hash, None, "the audit_head row is missing")
        return ChainReport(0, GENESIS)
    if head.hash != last_hash or head.entries != count:
        return ChainReport(
            count,
            last_hash,
            (last_id or 0) + 1,
            f"the head records {head.entries} entries ending in {head.hash}, but the log"
            f" holds {count} ending at entry {last_id} ({last_hash}): entries after"
            f" {last_id} were cut off the end",
        )
    return ChainReport(count, last_hash)
