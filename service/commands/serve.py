from __future__ import annotations

from typing import Annotated

import typer


def serve(
    host: Annotated[str, typer.Option("--host", help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 8000,
) -> None:
    """Run the API (configuration from WOUNDSCOPE_* environment variables).

    The embedded SQLite default migrates itself; an external database must be
    migrated first with `woundscope db upgrade`.
    """
    from service.commands._util import fail
    from service.config import ConfigError, settings_from_env
    from service.core.errors import DatabaseBehind
    from service.persistence.db import Database

    try:
        settings = settings_from_env()
    except ConfigError as exc:
        fail(f"invalid configuration: {exc}", 2)
        return
    db = Database(settings.database_url)
    try:
        db.ensure_schema()
    except DatabaseBehind as exc:
        fail(exc.detail)
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback
        fail(f"cannot open the database: {type(exc).__name__}: {exc}")
    finally:
        db.dispose()

    port_problem = port_in_use(host, port)
    if port_problem:
        fail(port_problem)

    import uvicorn

    from service.api.app import create_app

    typer.echo(f"woundscope: serving on http://{host}:{port} (API docs at /docs)", err=True)
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None, access_log=False)


def port_in_use(host: str, port: int) -> str | None:
    """Why the service cannot listen on host:port, checked before the model loads and
    "service ready" is logged (uvicorn would only fail after both)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return (
                f"cannot listen on {host}:{port} ({exc.strerror}): another process uses it;"
                " stop it or choose another --port"
            )
    return None
