from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.resources import samples_dir

DEFAULT_SOURCE = samples_dir() / "fuseg"


def simulate(
    out: Annotated[Path, typer.Option("--out", help="output folder (photos/, masks/, truth.json)")],
    subjects: Annotated[int, typer.Option("--subjects", min=1, help="number of subjects")] = 4,
    weeks: Annotated[int, typer.Option("--weeks", min=1, help="weeks of weekly follow-up")] = 12,
    seed: Annotated[int, typer.Option("--seed", help="same seed, same trial")] = 7,
    source: Annotated[
        Path,
        typer.Option(
            "--source", help="FUSeg-style folder with images/ and labels/ (default: the samples)"
        ),
    ] = DEFAULT_SOURCE,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="processes rendering at once (same output)")
    ] = 1,
) -> None:
    """Write a virtual trial with known truth: photos of healing ulcers beside a marker,
    their true masks, and truth.json (true areas, observations and endpoints)."""
    from service.commands._util import fail
    from service.simulator.simulate import simulate_trial

    if not (source / "images").is_dir() or not (source / "labels").is_dir():
        fail(f"{source} has no images/ and labels/ folders")
    truth = simulate_trial(
        out, n_subjects=subjects, weeks=weeks, seed=seed, source_dir=source, workers=workers
    )
    wounds = len(truth["wounds"])
    typer.echo(
        f"{subjects} subjects, {wounds} wounds, {len(truth['photos'])} photos -> {out / 'truth.json'}"
    )
