from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="API keys: create (shown once), revoke, list.", no_args_is_help=True)


def _database():  # type: ignore[no-untyped-def]
    from service.commands._util import open_database
    from service.config import get_settings

    return open_database(get_settings())


@app.command()
def create(
    role: Annotated[str, typer.Option("--role", help="uploader, clinician, monitor or admin")],
    holder: Annotated[str, typer.Option("--holder", help="the person the key belongs to")],
    study: Annotated[str | None, typer.Option("--study", help="the study (all, for admin)")] = None,
    site: Annotated[
        str | None, typer.Option("--site", help="the site (uploader, clinician)")
    ] = None,
) -> None:
    """Make a key; it is printed once, as the last line."""
    from service.commands._util import fail
    from service.core.errors import DomainError
    from service.domain import keys
    from service.domain.auth import Caller

    db = _database()
    try:
        with db.session() as session:
            row, key = keys.issue_key(
                session, Caller.cli(), role=role, holder=holder, study_id=study, site_code=site
            )
            key_id = row.id
    except DomainError as exc:
        fail(exc.detail)
        return
    finally:
        db.dispose()
    scope = f"study {study or 'all'}" + (f", site {site}" if site else "")
    typer.echo(f"key {key_id} for {holder.strip()}: {role}, {scope}")  # checked by create_key
    typer.echo("shown once: store it now (use as 'Authorization: Bearer <key>')")
    typer.echo(key)


@app.command()
def revoke(key: Annotated[str, typer.Argument(help="the key's id or its printed prefix")]) -> None:
    """Revoke a key (it answers 401 from now on)."""
    from service.commands._util import fail
    from service.core.errors import DomainError
    from service.domain import keys
    from service.domain.auth import Caller, printable

    db = _database()
    try:
        with db.session() as session:
            row = keys.revoke_key(session, Caller.cli(), key)
            typer.echo(f"key {row.id} ({printable(row.holder)}) revoked")
    except DomainError as exc:
        fail(exc.detail)
    finally:
        db.dispose()


@app.command("list")
def list_keys() -> None:
    """List keys (never the keys themselves)."""
    from sqlalchemy import select

    from service.domain.auth import printable
    from service.persistence.orm import ApiKey

    db = _database()
    try:
        with db.session() as session:
            for row in session.scalars(select(ApiKey).order_by(ApiKey.id)):
                site = row.site.code if row.site else "-"
                state = "revoked" if row.revoked_at else "active"
                typer.echo(
                    f"{row.id}\t{row.prefix}…\t{row.role}\t{row.study_id or '*'}\t{site}"
                    f"\t{state}\t{printable(row.holder)}"
                )
    finally:
        db.dispose()
