from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from service.config import Settings
    from service.domain.auth import Caller
    from service.persistence.db import Database
    from service.persistence.storage import PhotoStore
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
        raise


def reanalyze(
    study: Annotated[str, typer.Option("--study", help="the study's id")],
    model: Annotated[str, typer.Option("--model", help="installed model id or version")],
) -> None:
    """Measure every photo of a study again with another model version.

    Adds measurements, never overwrites; resumable: a photo that version already
    measured is skipped, so an interrupted run just continues.
    """
    from service.config import get_settings
    from service.domain.auth import Caller
    from service.persistence.storage import open_store

    settings = get_settings()
    segmenter = _segmenter(model, settings)
    db = _database(settings)
    store = open_store(settings.storage_url, settings.s3_endpoint_url)
    caller = Caller.cli(f"cli:reanalyze ({Caller.cli().holder})")
    try:
        todo = _pending(db, study, segmenter)
        typer.echo(f"{study}: {len(todo)} photos to measure with {segmenter.id}")
        added, skipped = _measure_all(db, store, segmenter, caller, todo, settings)
    finally:
        db.dispose()
    typer.echo(f"added {added} measurements with {segmenter.id}; {skipped} already done")


def _database(settings: Settings) -> Database:
    """The database, at the schema this code expects (a database behind is refused)."""
    from service.commands._util import fail
    from service.core.errors import DatabaseBehind
    from service.persistence.db import Database

    db = Database(settings.database_url)
    try:
        db.ensure_schema()
    except DatabaseBehind as exc:
        db.dispose()
        fail(exc.detail)
    return db


def _pending(db: Database, study: str, segmenter: Segmenter) -> list[str]:
    """The study's photos this model version has not measured yet; an unknown or
    locked study is refused before any work."""
    from service.commands._util import fail
    from service.domain.reanalysis import pending_reanalysis
    from service.persistence.orm import Study

    with db.sessions() as session:
        row = session.get(Study, study)
        if row is None:
            fail(f"study {study} not found")
        elif row.locked:
            fail(f"study {study} is locked: an admin must unlock it before re-analysis")
        return pending_reanalysis(session, study, segmenter.info())


def _measure_all(
    db: Database,
    store: PhotoStore,
    segmenter: Segmenter,
    caller: Caller,
    todo: list[str],
    settings: Settings,
) -> tuple[int, int]:
    """Measure each photo in its own transaction, so an interrupted run keeps what it
    added: (added, skipped). A study locked meanwhile stops the run."""
    from service.commands._util import fail
    from service.core.errors import StudyLocked
    from service.domain.reanalysis import reanalyze_assessment

    added = skipped = 0
    with typer.progressbar(todo, label="reanalyze") as bar:
        for assessment_id in bar:
            with db.sessions() as session:
                try:
                    measured = reanalyze_assessment(
                        session, store, segmenter, caller, assessment_id, settings.quality
                    )
                except StudyLocked as exc:  # locked while this run was going
                    fail(f"{exc.detail}; {added} measurements were added before the lock")
                    raise  # fail exits
            if measured is None:
                skipped += 1
            else:
                added += 1
    return added, skipped
