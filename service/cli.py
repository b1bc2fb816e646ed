"""The ``woundscope`` console command. Each subcommand lives in ``service/commands/``.

Subcommand modules import only typer at the top; heavy imports (the app, ONNX
Runtime, torch) happen inside the command, so ``--help`` works from any install.
"""

from __future__ import annotations

import os

import typer

from service.commands import register

app = typer.Typer(
    name="woundscope",
    help="Wound area from clinical photographs, and the healing endpoints of a trial.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Wound area from clinical photographs, and the healing endpoints of a trial."""


register(app)


def main() -> None:
    # What the service writes (database, photos, backups, keys files) is the user's alone.
    os.umask(0o077)
    from service.config import ConfigError, unknown_variables

    for name in unknown_variables():
        typer.echo(f"warning: {name} is not a woundscope setting (misspelled?): ignored", err=True)
    try:
        app()
    except ConfigError as exc:
        typer.echo(f"error: invalid configuration: {exc}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
