from __future__ import annotations

import typer

app = typer.Typer(help="The audit log: check its hash chain.", no_args_is_help=True)


@app.command()
def verify() -> None:
    """Check the audit log's hash chain (every entry's link and hash, and the head).

    Exit status 0 when it holds; 1 when an entry was edited, deleted, inserted or cut
    off the end, printing the first broken entry's id. Prints the head hash: keep it
    elsewhere (a ticket, a printout) to tell later that the whole chain was not rewritten.
    """
    from service.commands._util import fail
    from service.config import get_settings
    from service.persistence.auditchain import verify as run
    from service.persistence.db import Database

    db = Database(get_settings().database_url)
    try:
        db.ensure_schema()
        with db.sessions() as session:
            report = run(session)
    except Exception as exc:  # noqa: BLE001 - database errors: one line, not a traceback
        fail(f"{type(exc).__name__}: {exc}")
    finally:
        db.dispose()
    typer.echo(f"audit log {report.entries} entries, head {report.head_hash}")
    if report.ok:
        typer.echo("chain holds")
        raise typer.Exit(0)
    typer.echo(f"BROKEN at entry {report.broken_id}: {report.problem}")
    raise typer.Exit(1)
