from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from service.persistence.storage import LocalPhotoStore


def backup(
    dest: Annotated[Path, typer.Argument(help="folder to write the backup into (created)")],
) -> None:
    """Back up the embedded database (SQLite online backup) and the local photo store.

    Safe while the service runs. The database is copied first, then the photos, so
    every photo the copied database names is in the backup. Run it again into the
    same folder to refresh it (photos already there are kept). For PostgreSQL and S3
    it prints what to run instead (pg_dump, bucket versioning).
    """
    from sqlalchemy import make_url

    from service.commands._util import fail
    from service.config import get_settings
    from service.persistence.storage import LocalPhotoStore, StorageError, open_store

    settings = get_settings()
    dest.mkdir(parents=True, exist_ok=True)
    url = make_url(settings.database_url)
    store = open_store(settings.storage_url, settings.s3_endpoint_url)
    copied_db = False
    try:
        if url.get_backend_name() == "sqlite" and url.database:
            target = dest / "woundscope.db"
            backup_sqlite(Path(url.database).expanduser(), target)
            typer.echo(f"database  {url.database} -> {target}")
            copied_db = True
        else:
            typer.echo(
                "database  PostgreSQL is not copied by this command; run\n"
                f"          pg_dump --format=custom --file {dest / 'woundscope.pgdump'}"
                f" '{url.render_as_string(hide_password=True)}'\n"
                "          (restore with pg_restore --clean --dbname URL FILE)"
            )
        if isinstance(store, LocalPhotoStore):
            count = backup_photos(
                store,
                dest / "photos",
            )
            typer.echo(f"photos    {store.url} -> {dest / 'photos'} ({count} objects)")
            if copied_db:
                problems = verify_backup(dest / "woundscope.db", dest / "photos")
                if problems:
                    fail(
                        f"the backup is inconsistent: {problems[0]} (and {len(problems) - 1} more)"
                    )
                typer.echo("verified  every photo and mask the backed-up database names is present")
        else:
            typer.echo(
                f"photos    {store.url} is object storage: enable bucket versioning\n"
                "          (aws s3api put-bucket-versioning --bucket BUCKET"
                " --versioning-configuration Status=Enabled) and replicate the bucket, or copy\n"
                f"          it: aws s3 sync {store.url} {dest / 'photos'}"
            )
    except (StorageError, OSError) as exc:
        fail(str(exc))


def backup_sqlite(source: Path, target: Path) -> None:
    """Copy a live SQLite database with the online backup API (consistent, WAL included)."""
    import os
    import sqlite3

    if not source.is_file():
        raise OSError(f"no database at {source}")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(partial)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()
    with partial.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(partial, target)


def backup_photos(store: LocalPhotoStore, target: Path) -> int:
    """Copy every photo into a content-addressed store at ``target`` (verified, atomic)."""
    from service.persistence.storage import LocalPhotoStore, key_sha256

    copy = LocalPhotoStore(target)
    count = 0
    stored = store.keys()
    for key in stored:
        count += 1
        if not (copy.exists(key) and copy.sha256_of(key) == key_sha256(key)):
            copy.put(store.get(key), key.rsplit(".", 1)[1])
    return count


def verify_backup(database: Path, photos: Path) -> list[str]:
    """Every photo and mask the backed-up database names, present and intact in the copy."""
    from service.persistence.db import Database
    from service.persistence.fsck import fsck
    from service.persistence.storage import LocalPhotoStore

    db = Database(f"sqlite:///{database}")
    try:
        with db.session() as session:
            report = fsck(session, LocalPhotoStore(photos), verify=True)
    finally:
        db.dispose()
    return [f"{p.kind} {p.table}/{p.row} {p.key}" for p in report.problems]
