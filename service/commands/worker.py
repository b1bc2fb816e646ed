from __future__ import annotations

import os
from typing import Annotated

import typer


def worker(
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            min=1,
            max=64,
            help="processes measuring at once (each loads the model once)",
        ),
    ] = 1,
    loglevel: Annotated[str, typer.Option("--loglevel", help="DEBUG, INFO, WARNING")] = "INFO",
) -> None:
    """Measure the photos of batches sent to WOUNDSCOPE_BROKER_URL (Celery worker).

    Run one per machine (or several), all on the same broker, database
    (PostgreSQL) and photo store (S3): each takes one photo at a time, so a killed
    worker loses nothing and a slow one holds nothing back.
    """
    from service.commands._util import fail, open_database
    from service.config import get_settings

    settings = get_settings()
    if not settings.broker_url:
        fail(
            "WOUNDSCOPE_BROKER_URL is not set: a worker takes its photos from a broker"
            " (amqp://user:pass@host:5672// or redis://host:6379/0); without one,"
            " `woundscope reanalyze` measures in its own process"
        )
    open_database(settings).dispose()  # refuses a database behind the code, before any task
    if settings.is_sqlite:
        typer.echo(
            "warning: the embedded SQLite database serves workers on this machine only;"
            " many machines need PostgreSQL (WOUNDSCOPE_DATABASE_URL)",
            err=True,
        )
    from service.jobs.engine import make_celery, worker_argv

    # Each process gets its share of the cores for ONNX Runtime, unless told.
    threads = settings.ort_threads or max(1, (os.cpu_count() or 1) // concurrency)
    make_celery(settings, ort_threads=threads).worker_main(
        worker_argv(settings.broker_queue, concurrency, loglevel)
    )
