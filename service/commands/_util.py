"""Small helpers shared by the subcommands."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from service.config import Settings
    from service.persistence.db import Database


def require_torch(command: str) -> None:
    """Exit with one line naming the extra when torch (training) is not installed."""
    missing = [m for m in ("torch", "albumentations") if importlib.util.find_spec(m) is None]
    if missing:
        typer.echo(
            f"woundscope {command} needs the training extra ({', '.join(missing)} missing): "
            "pip install 'woundscope[train]'",
            err=True,
        )
        raise typer.Exit(2)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a one-line error to stderr and exit."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def open_database(settings: Settings) -> Database:
    """The database, at the schema this code expects (the embedded SQLite file is
    migrated; an external database behind the code is refused with one line)."""
    from service.core.errors import DatabaseBehind
    from service.persistence.db import Database

    db = Database(settings.database_url)
    try:
        db.ensure_schema()
    except DatabaseBehind as exc:
        db.dispose()
        fail(exc.detail)
    return db
