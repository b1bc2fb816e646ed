from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from service.config import Settings
    from service.jobs.work import PhotoTask
    from service.runtime.inference import Segmenter


def _segmenter(model: str, settings: Settings) -> Segmenter:
    """The model ``--model`` names: an installed id, or a bare version (``2.0.0``) =
    the installed model of that version. Exits with one line when there is none."""
    from service.commands._util import fail
    from service.runtime.artifacts import ModelNotFound, installed_models, models_dirs
    from service.runtime.inference import load_segmenter

    ref = model
    if not model.count("-"):
        installed = installed_models(models_dirs(settings.models_dirs))
        ref = next((s.id for s, _ in installed if s.version == model), model)
    try:
        return load_segmenter(ref, settings)
    except ModelNotFound as exc:
        fail(str(exc))


def reanalyze(
    study: Annotated[str, typer.Option("--study", help="the study's id")],
    model: Annotated[str, typer.Option("--model", help="installed model id or version")],
    wait: Annotated[
        bool,
        typer.Option("--wait/--no-wait", help="with a broker: follow the batch until it is done"),
    ] = False,
) -> None:
    """Measure every photo of a study again with another model version.

    Adds measurements, never overwrites; resumable: a photo that version already
    measured is skipped, so running it again does what is left. With
    WOUNDSCOPE_BROKER_URL the photos are sent to the workers (`woundscope worker`);
    without, they are measured here. The last line is `batch <id>`, for
    `woundscope jobs status <id>`.
    """
    from service.commands._util import fail, open_database
    from service.config import get_settings
    from service.core.errors import DomainError
    from service.domain.auth import Caller
    from service.jobs import batch as jobs

    settings = get_settings()
    segmenter = _segmenter(model, settings)
    db = open_database(settings)
    caller = Caller.cli(f"cli:reanalyze ({Caller.cli().holder})")
    engine = jobs.engine_of(settings)
    try:
        try:
            started, tasks = jobs.start_reanalysis(
                db, caller, study, segmenter.info(), engine=engine
            )
        except DomainError as exc:
            fail(f"{exc.detail}; nothing was started")
        typer.echo(f"{study}: {len(tasks)} photos to measure with {segmenter.id}")
        refused = 0
        if engine == jobs.CELERY:
            _send(settings, tasks, started.id, wait=wait)
        else:
            refused = _run_here(settings, segmenter, tasks, started.id)
    finally:
        db.dispose()
    typer.echo(f"batch {started.id}")
    if refused:
        raise typer.Exit(1)


def _send(settings: Settings, tasks: list[PhotoTask], batch_id: str, *, wait: bool) -> None:
    """Hand the tasks to the workers (and follow the batch with ``--wait``)."""
    from service.commands._util import fail
    from service.jobs import batch as jobs
    from service.jobs.engine import redacted

    broker = redacted(settings.broker_url)
    try:
        sent = jobs.enqueue(settings, tasks)
    except Exception as exc:  # noqa: BLE001 - kombu raises many kinds for an unreachable broker
        fail(
            f"cannot send to the broker {broker}: {exc}; the batch {batch_id} is recorded:"
            " run reanalyze again once the broker is up (it sends what is left)"
        )
    typer.echo(f"sent {sent} tasks to {broker}; follow with: woundscope jobs status {batch_id}")
    if wait and sent:
        from service.commands.jobs import follow_with_bar

        follow_with_bar(settings, batch_id)


def _run_here(
    settings: Settings, segmenter: Segmenter, tasks: list[PhotoTask], batch_id: str
) -> int:
    """Measure the photos in this process, with a progress bar; how many were not."""
    from service.jobs import batch as jobs

    with typer.progressbar(length=len(tasks), label="reanalyze") as bar:
        counts = jobs.run_here(
            settings, tasks, segmenter=segmenter, on_photo=lambda _: bar.update(1)
        )
    typer.echo(
        f"added {counts['measured']} measurements with {segmenter.id};"
        f" {counts['already']} already done"
    )
    refused = counts["study_locked"] + counts["already_voided"] + counts["failed"]
    if refused:
        typer.echo(
            f"{refused} photos not measured ({counts['study_locked']} because the study was"
            f" locked meanwhile); why: woundscope jobs status {batch_id}",
            err=True,
        )
    return refused
