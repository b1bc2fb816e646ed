from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from service.config import Settings
    from service.domain.batches import BatchStatus

app = typer.Typer(help="Batch work: the progress of a batch (re-analysis).", no_args_is_help=True)

PENDING_EXIT = 3
"""Exit status of ``jobs status`` while photos are pending (0: nothing pending)."""


def summary(current: BatchStatus) -> str:
    return f"pending {current.pending} done {current.done} failed {current.failed}"


@app.command()
def status(
    batch: Annotated[str, typer.Argument(help="the batch id reanalyze printed")],
    wait: Annotated[
        bool, typer.Option("--wait", help="follow the batch with a progress bar until it is done")
    ] = False,
) -> None:
    """Print `pending N done N failed N` and each failed photo with its reason; exit 0
    when nothing is pending, 3 while photos are."""
    from service.commands._util import fail, open_database
    from service.config import get_settings
    from service.core.errors import NotFound
    from service.jobs import batch as jobs

    settings = get_settings()
    if wait:
        current = follow_with_bar(settings, batch)
    else:
        db = open_database(settings)
        try:
            current = jobs.status(db, batch)
        except NotFound as exc:
            fail(exc.detail)
        finally:
            db.dispose()
    typer.echo(
        f"{current.id}: {current.study}, {current.model}, {current.total} photos ({current.engine})"
    )
    for failure in current.failures:
        typer.echo(f"  failed {failure.assessment} {failure.code}: {failure.reason}")
    typer.echo(summary(current))
    if not current.finished:
        raise typer.Exit(PENDING_EXIT)


def follow_with_bar(settings: Settings, batch_id: str) -> BatchStatus:
    """Follow a batch with a progress bar (done + failed of total) until nothing is pending."""
    from service.commands._util import fail, open_database
    from service.core.errors import NotFound
    from service.jobs import batch as jobs

    db = open_database(settings)
    try:
        first = jobs.status(db, batch_id)
        with typer.progressbar(length=first.total, label=batch_id) as bar:
            shown = 0

            def show(current: BatchStatus) -> None:
                nonlocal shown
                bar.update(current.done + current.failed - shown)
                shown = current.done + current.failed

            return jobs.follow(db, batch_id, on_status=show)
    except NotFound as exc:
        fail(exc.detail)
    finally:
        db.dispose()
