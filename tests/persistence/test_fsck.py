"""``woundscope fsck`` and ``woundscope backup`` on a real SQLite database and photo store."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.persistence.db import Database, upgrade
from service.persistence.fsck import fsck
from service.persistence.orm import Assessment, Measurement, Site, Study, Subject, Wound
from service.persistence.storage import LocalPhotoStore, key_sha256

PHOTO = b"\xff\xd8\xff" + b"photo bytes" * 50
MASK = b"\x89PNG\r\n\x1a\n" + b"mask bytes" * 50


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Database, LocalPhotoStore]:
    from service.config import get_settings

    data = tmp_path / "data"
    monkeypatch.setenv("WOUNDSCOPE_DATA_DIR", str(data))
    monkeypatch.delenv("WOUNDSCOPE_DATABASE_URL", raising=False)
    monkeypatch.delenv("WOUNDSCOPE_STORAGE_URL", raising=False)
    get_settings.cache_clear()
    settings = get_settings()
    upgrade(settings.database_url)
    db = Database(settings.database_url)
    yield db, LocalPhotoStore(data / "photos")
    db.dispose()
    get_settings.cache_clear()


def _assessment(db: Database, store: LocalPhotoStore, photo: bytes, mask: bytes) -> str:
    photo_key = store.put(photo, "jpg")
    mask_key = store.put(mask, "png")
    with db.session() as s:
        if s.get(Study, "S1") is None:
            s.add(Study(id="S1", name="study"))
            s.flush()
            site = Site(study_id="S1", code="A")
            s.add(site)
            s.flush()
            subject = Subject(study_id="S1", code="001", site_pk=site.pk)
            s.add(subject)
            s.flush()
            s.add(Wound(id="wnd_1", subject_id=subject.id, label="W1"))
            s.flush()
        asm = Assessment(
            wound_id="wnd_1",
            photo_key=photo_key,
            photo_sha256=key_sha256(photo_key),
            upload_sha256=hashlib.sha256(photo).hexdigest(),
            photo_format="JPEG",
            width=10,
            height=10,
            captured_at=datetime(2026, 1, 5),
            uploaded_by="nurse",
        )
        s.add(asm)
        s.flush()
        s.add(
            Measurement(
                assessment_id=asm.id,
                data={},
                mask_key=mask_key,
                model_name="m",
                model_version="1.0.0",
                model_sha256="0" * 64,
                created_by="nurse",
            )
        )
        return asm.id


def _age(store: LocalPhotoStore, key: str) -> None:
    os.utime(store.root / key, (1, 1))


def test_clean_store(env: tuple[Database, LocalPhotoStore]) -> None:
    db, store = env
    _assessment(db, store, PHOTO, MASK)
    with db.session() as s:
        report = fsck(s, store)
    assert report.clean and report.rows == 2 and report.stored == 2


def test_missing_corrupt_and_orphans_found_and_repair_deletes_only_old_orphans(
    env: tuple[Database, LocalPhotoStore],
) -> None:
    db, store = env
    _assessment(db, store, PHOTO, MASK)
    asm_b = _assessment(db, store, PHOTO + b"b", MASK + b"b")
    with db.session() as s:
        b = s.get(Assessment, asm_b)
        assert b is not None
        missing_key, corrupt_key = b.photo_key, b.measurements[0].mask_key
    store.delete(missing_key)
    (store.root / corrupt_key).write_bytes(b"rot")
    old_orphan = store.put(b"orphan: stored, never committed", "jpg")
    new_orphan = store.put(b"upload in flight", "jpg")
    _age(store, old_orphan)
    tmp = (store.root / old_orphan).parent / ".tmp-crashed"
    tmp.write_bytes(b"half")
    os.utime(tmp, (1, 1))

    with db.session() as s:
        report = fsck(s, store, repair=True)
    kinds = sorted((p.kind, p.key) for p in report.problems)
    assert kinds == sorted([("missing", missing_key), ("corrupt", corrupt_key)])
    assert report.orphans == sorted([old_orphan, new_orphan])
    assert report.deleted == [old_orphan, str(tmp)]
    assert report.spared == [new_orphan]
    assert not report.clean
    assert not store.exists(old_orphan) and store.exists(new_orphan) and not tmp.exists()
    with db.session() as s:  # rows are never touched
        assert s.query(Assessment).count() == 2 and s.query(Measurement).count() == 2


def test_quick_mode_skips_hashing(env: tuple[Database, LocalPhotoStore]) -> None:
    db, store = env
    asm = _assessment(db, store, PHOTO, MASK)
    with db.session() as s:
        a = s.get(Assessment, asm)
        assert a is not None
        (store.root / a.photo_key).write_bytes(b"rot")
        assert fsck(s, store, verify=False).clean
        assert [p.kind for p in fsck(s, store).problems] == ["corrupt"]


def test_fsck_and_backup_commands(env: tuple[Database, LocalPhotoStore], tmp_path: Path) -> None:
    db, store = env
    _assessment(db, store, PHOTO, MASK)
    runner = CliRunner()
    result = runner.invoke(app, ["fsck"])
    assert result.exit_code == 0, result.output
    assert "clean" in result.output

    orphan = store.put(b"orphan", "jpg")
    _age(store, orphan)
    result = runner.invoke(app, ["fsck", "--json"])
    assert result.exit_code == 1 and orphan in result.output
    result = runner.invoke(app, ["fsck", "--repair"])
    assert result.exit_code == 0, result.output
    assert not store.exists(orphan)

    dest = tmp_path / "backup"
    for _ in range(2):  # a second run refreshes the same folder
        result = runner.invoke(app, ["backup", str(dest)])
        assert result.exit_code == 0, result.output
    assert "verified" in result.output
    copy = LocalPhotoStore(dest / "photos")
    assert sorted(copy.keys()) == sorted(store.keys())
    with sqlite3.connect(dest / "woundscope.db") as conn:
        assert conn.execute("select count(*) from assessments").fetchone() == (1,)
        assert conn.execute("pragma integrity_check").fetchone() == ("ok",)
    assert not list(dest.glob("*.partial"))


def test_backup_prints_advice_for_postgres_and_s3(
    env: tuple[Database, LocalPhotoStore], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.config import get_settings

    monkeypatch.setenv("WOUNDSCOPE_DATABASE_URL", "postgresql+psycopg://u:secret@db.example/w")
    monkeypatch.setenv("WOUNDSCOPE_STORAGE_URL", "s3://bucket/photos")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["backup", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert "pg_dump" in result.output and "versioning" in result.output
    assert "secret" not in result.output
