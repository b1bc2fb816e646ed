from __future__ import annotations

import json
from typing import Annotated

import typer


def fsck(
    repair: Annotated[
        bool, typer.Option("--repair", help="delete orphan photos and temporary files (never rows)")
    ] = False,
    quick: Annotated[
        bool, typer.Option("--quick", help="check presence only; do not read and hash every photo")
    ] = False,
    grace_minutes: Annotated[
        float,
        typer.Option(
            "--grace-minutes",
            min=0,
            help="repair spares orphans stored less than this long ago (uploads in flight)",
        ),
    ] = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Check photo storage against the database (missing or corrupt photos, orphans)
    and the audit log's hash chain.

    Exit status 0 when clean, 1 when a row lacks its photo, a photo is corrupt, an
    orphan remains, or the audit chain is broken. Safe beside a running service.
    """
    from service.commands._util import fail
    from service.config import get_settings
    from service.persistence.db import Database
    from service.persistence.fsck import fsck as run
    from service.persistence.storage import StorageError, open_store

    settings = get_settings()
    db = Database(settings.database_url)
    try:
        db.ensure_schema()
        store = open_store(settings.storage_url, settings.s3_endpoint_url)
        with db.session() as session:
            report = run(
                session, store, repair=repair, verify=not quick, grace_s=grace_minutes * 60
            )
    except StorageError as exc:
        fail(str(exc))
        return
    except Exception as exc:  # noqa: BLE001 - database errors: one line, not a traceback
        fail(f"{type(exc).__name__}: {exc}")
        return
    finally:
        db.dispose()
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=1))
    else:
        typer.echo(f"storage  {store.url}: {report.stored} objects")
        typer.echo(f"database {report.rows} photo and mask references")
        for p in report.problems:
            typer.echo(f"{p.kind:12} {p.table}/{p.row} {p.key}: {p.detail}")
        for key in report.orphans:
            state = (
                "deleted"
                if key in report.deleted
                else "spared (recent)"
                if key in report.spared
                else ""
            )
            typer.echo(f"orphan       {key} {state}".rstrip())
        for path in report.temporary:
            state = "deleted" if path in report.deleted else ""
            typer.echo(f"temporary    {path} {state}".rstrip())
        chain = report.audit
        if chain is not None:
            state = "chain holds" if chain.ok else f"BROKEN at entry {chain.broken_id}"
            typer.echo(f"audit    {chain.entries} entries, {state}: head {chain.head_hash}")
            if not chain.ok:
                typer.echo(f"audit        entry {chain.broken_id}: {chain.problem}")
        typer.echo("clean" if report.clean else "NOT CLEAN")
    raise typer.Exit(0 if report.clean else 1)
