"""The ``woundscope`` console command. Each subcommand lives in ``service/commands/``.

Subcommand modules import only typer at the top; heavy imports (the app, ONNX
Runtime, torch) happen inside the command, so ``--help`` works from any install.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from service.commands import register
from service.config import environment_data_dir

app = typer.Typer(
    name="woundscope",
    help="Wound area from clinical photographs, and the healing endpoints of a trial.",
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        from service import __version__

        typer.echo(f"woundscope {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_print_version,
            is_eager=True,
            help="print the version and exit",
        ),
    ] = False,
) -> None:
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
    except OSError as exc:
        data_dir = _data_dir_of(exc)
        if data_dir is None:
            raise
        typer.echo(
            f"error: WOUNDSCOPE_DATA_DIR={str(data_dir)!r}: cannot use it as the data folder"
            f" ({exc.strerror}: {exc.filename}): name a folder you can write to",
            err=True,
        )
        raise SystemExit(2) from None


def _data_dir_of(exc: OSError) -> Path | None:
    """The data dir, when ``exc`` is about a path in it (the folder could not be made or
    written: checked by ``Settings``, but a file system may still refuse), else None."""
    if not exc.filename:
        return None
    data_dir = environment_data_dir()
    path = Path(os.fsdecode(exc.filename)).absolute()
    return data_dir if path == data_dir or data_dir in path.parents else None


if __name__ == "__main__":
    main()
