"""Check photo storage against the database (``woundscope fsck``).

Finds rows whose stored object is missing, objects whose bytes do not hash to their
key (or to the sha256 the row recorded), and stored objects no row references
(orphans: what an upload interrupted between storing the photo and committing its
row leaves; the client never saw it acknowledged). Repair deletes orphans and
leftover temporary files, never a row and never a referenced photo.

It also checks the audit log's hash chain (``auditchain.verify``): an edited,
deleted or inserted entry makes the report not clean, naming the first broken entry.

Storage is listed *before* the database is read, and repair spares objects stored
less than ``grace_s`` ago, so running it beside a live service cannot delete the
photo of an upload that is about to commit (a re-upload of the same bytes refreshes
the object's time, see ``PhotoStore.put``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.persistence.auditchain import ChainReport
from service.persistence.auditchain import verify as verify_audit_chain
from service.persistence.orm import Assessment, Measurement
from service.persistence.storage import (
    LocalPhotoStore,
    PhotoNotFound,
    PhotoStore,
    StorageError,
    key_sha256,
)

DEFAULT_GRACE_S = 3600.0


@dataclass(frozen=True)
class Problem:
    kind: str
    """``missing``, ``corrupt``, ``sha_mismatch``, ``bad_key`` or ``unreadable``."""
    table: str
    row: str
    key: str
    detail: str


@dataclass
class FsckReport:
    rows: int = 0
    """Row references checked (assessment photos and measurement masks)."""
    stored: int = 0
    """Objects in the store."""
    problems: list[Problem] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    """Stored keys no row references (including recent ones spared by repair)."""
    temporary: list[str] = field(default_factory=list)
    """Temporary files an interrupted local write left behind."""
    deleted: list[str] = field(default_factory=list)
    """What ``repair`` removed (orphan keys and temporary file names)."""
    spared: list[str] = field(default_factory=list)
    """Orphans younger than the grace period, left in place."""
    audit: ChainReport | None = None
    """The audit log's hash chain (None: not checked)."""

    @property
    def clean(self) -> bool:
        """No row lacks its photo, nothing is corrupt, and no orphan remains."""
        remaining = set(self.orphans) - set(self.deleted)
        chain_ok = self.audit is None or self.audit.ok
        return not self.problems and not remaining and chain_ok

    def as_dict(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "stored": self.stored,
            "problems": [p.__dict__ for p in self.problems],
            "orphans": self.orphans,
            "temporary": self.temporary,
            "deleted": self.deleted,
            "spared": self.spared,
            "audit": None if self.audit is None else {**self.audit.__dict__, "ok": self.audit.ok},
            "clean": self.clean,
        }


def _references(session: Session) -> list[tuple[str, str, str, str | None]]:
    """(table, row id, key, recorded sha256 or None) for every stored object a row names."""
    refs: list[tuple[str, str, str, str | None]] = []
    for asm_id, key, sha in session.execute(
        select(Assessment.id, Assessment.photo_key, Assessment.photo_sha256)
    ):
        refs.append(("assessments", str(asm_id), key, sha))
    for m_id, key in session.execute(select(Measurement.id, Measurement.mask_key)):
        refs.append(("measurements", str(m_id), key, None))
    return refs


def fsck(
    session: Session,
    store: PhotoStore,
    *,
    repair: bool = False,
    verify: bool = True,
    grace_s: float = DEFAULT_GRACE_S,
    progress: Callable[[str], None] | None = None,
) -> FsckReport:
    """Check ``store`` against the rows of ``session``'s database.

    ``verify`` hashes every referenced object (reads all of them); without it only
    presence is checked. ``repair`` deletes orphans and temporary files older than
    ``grace_s`` seconds; rows are never touched.
    """
    report = FsckReport()
    now = time.time()
    stored = set(store.keys())  # before the rows: see the module docstring
    temporary = list(store.temporary_files()) if isinstance(store, LocalPhotoStore) else []
    report.stored = len(stored)
    report.temporary = [str(p) for p in temporary]

    refs = _references(session)
    report.rows = len(refs)
    hashed: dict[str, str] = {}
    for ref in refs:
        _check_reference(report, store, stored, ref, hashed if verify else None, progress)
    report.orphans = sorted(stored - {key for _, _, key, _ in refs})
    report.audit = verify_audit_chain(session)
    if repair:
        _delete_old_orphans(report, store, now, grace_s)
        _delete_old_temporary(report, temporary, now, grace_s)
    return report


def _check_reference(
    report: FsckReport,
    store: PhotoStore,
    stored: set[str],
    ref: tuple[str, str, str, str | None],
    hashed: dict[str, str] | None,
    progress: Callable[[str], None] | None,
) -> None:
    """Check one row's object: its key is a sha256 key, agrees with the sha256 the row
    recorded, and is stored; with ``hashed`` (verify: the hashes read so far, each
    object read once however many rows name it) its bytes hash to the key."""
    table, row, key, recorded = ref
    try:
        promised = key_sha256(key)
    except StorageError as exc:
        report.problems.append(Problem("bad_key", table, row, key, str(exc)))
        return
    if recorded is not None and recorded != promised:
        report.problems.append(
            Problem("sha_mismatch", table, row, key, f"row records sha256 {recorded}")
        )
    if key not in stored and not store.exists(key):
        report.problems.append(Problem("missing", table, row, key, "no stored object"))
        return
    if hashed is None:
        return
    if key not in hashed:
        try:
            hashed[key] = store.sha256_of(key)
        except PhotoNotFound:  # deleted since the listing
            report.problems.append(Problem("missing", table, row, key, "no stored object"))
            return
        except StorageError as exc:
            report.problems.append(Problem("unreadable", table, row, key, str(exc)))
            return
        if progress:
            progress(key)
    if hashed[key] != promised:
        report.problems.append(Problem("corrupt", table, row, key, f"bytes hash to {hashed[key]}"))


def _delete_old_orphans(report: FsckReport, store: PhotoStore, now: float, grace_s: float) -> None:
    """Repair: delete the orphans stored at least ``grace_s`` ago; a younger one may be
    the photo of an upload about to commit, so it is spared."""
    for key in report.orphans:
        try:
            young = now - store.modified_at(key) < grace_s
        except PhotoNotFound:
            continue
        if young:
            report.spared.append(key)
            continue
        store.delete(key)
        report.deleted.append(key)


def _delete_old_temporary(
    report: FsckReport, temporary: list[Path], now: float, grace_s: float
) -> None:
    """Repair: delete temporary files older than ``grace_s`` (a younger one may be a
    write in progress); one already gone is skipped."""
    for path in temporary:
        try:
            if now - path.stat().st_mtime >= grace_s:
                path.unlink()
                report.deleted.append(str(path))
        except FileNotFoundError:
            continue
