from __future__ import annotations

from typing import Annotated

import typer


def demo(
    serve: Annotated[
        bool, typer.Option("--serve", help="start the service here and keep serving")
    ] = False,
    host: Annotated[str, typer.Option(help="with --serve: address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="with --serve: port to listen on")] = 8000,
    url: Annotated[
        str | None,
        typer.Option(help="a running service to load (default http://HOST:PORT)"),
    ] = None,
    admin_key: Annotated[
        str | None,
        typer.Option(
            "--admin-key",
            envvar="WOUNDSCOPE_ADMIN_KEY",
            help="an admin key of that service (default: make one in the local database)",
        ),
    ] = None,
) -> None:
    """Load a small virtual trial (two sites, a few months) through the REST API and
    print its keys; with --serve, start the service first and keep it running.
    Loads once per data dir (WOUNDSCOPE_DATA_DIR): a second run only prints the keys."""
    from service.commands._util import fail
    from service.commands.serve import port_in_use
    from service.config import settings_from_env
    from service.simulator.demo import DemoError, run_demo, serve_and_demo

    settings = settings_from_env()
    data_dir = settings.data_dir
    if serve:
        _stop_on_terminate()
    try:
        if serve:
            if url is not None:
                fail("--serve starts its own service: leave out --url")
            port_problem = port_in_use(host, port)
            if port_problem:  # else the demo would load whatever answers on that port
                fail(port_problem)
            raise typer.Exit(serve_and_demo(host, port, data_dir, settings=settings))
        run_demo(url or f"http://{host}:{port}", data_dir, admin_key, settings=settings)
    except DemoError as exc:
        fail(str(exc))


def _stop_on_terminate() -> None:
    """SIGTERM/SIGHUP (``kill PID``, a closed terminal) stop the demo like Ctrl-C does,
    so the service it started is stopped with it instead of left running."""
    import signal

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
