from __future__ import annotations

import typer

app = typer.Typer(help="Database schema: migrate an external database.", no_args_is_help=True)


@app.command()
def upgrade() -> None:
    """Apply every pending migration to WOUNDSCOPE_DATABASE_URL (back it up first)."""
    from service.commands._util import fail
    from service.config import get_settings
    from service.persistence.db import Database, current_revision, head_revision
    from service.persistence.db import upgrade as run_upgrade

    settings = get_settings()
    try:
        run_upgrade(settings.database_url)
        db = Database(settings.database_url)
        current = current_revision(db.engine)
        db.dispose()
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback
        fail(f"upgrade failed: {type(exc).__name__}: {exc}")
        return
    typer.echo(f"database at schema {current} (head {head_revision(settings.database_url)})")


@app.command()
def current() -> None:
    """Print the database's schema revision and the code's."""
    from service.config import get_settings
    from service.persistence.db import Database, current_revision, head_revision

    settings = get_settings()
    db = Database(settings.database_url)
    try:
        typer.echo(f"database {current_revision(db.engine) or 'empty'}")
        typer.echo(f"code     {head_revision(settings.database_url)}")
    finally:
        db.dispose()
