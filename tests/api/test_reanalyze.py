"""Model provenance: two versions side by side, a study pins one, `woundscope reanalyze`
adds measurements (never overwrites) and resumes where it stopped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from service.cli import app as cli
from service.config import ModelSettings, get_settings
from service.domain.auth import Caller
from service.domain.reanalysis import Outcome, ensure_measurement, pending_reanalysis
from service.persistence.orm import Measurement
from service.runtime.artifacts import BUNDLED_MODELS_DIR, installed_models, models_dirs
from service.runtime.inference import Segmenter
from tests.api.conftest import Service, Trial, need_model, sample_photo

NEW = "99.0.0"
"""A version above any real release: the re-analysis model."""


@pytest.fixture
def second_model(
    service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The bundled model installed again as a higher version (same weights, new version),
    in a WOUNDSCOPE_MODELS_DIR folder: the CLI reads it from the environment, and the
    running service looks there as if it had been started with it (settings are read
    once, at start)."""
    need_model()
    spec, folder = installed_models([BUNDLED_MODELS_DIR])[0]
    target = tmp_path / "models" / f"{spec.name}-{NEW}"
    target.mkdir(parents=True)
    meta = json.loads((folder / "model.json").read_text())
    meta["version"] = NEW
    (target / "model.json").write_text(json.dumps(meta))
    (target / "model.onnx").symlink_to(folder / "model.onnx")
    monkeypatch.setenv("WOUNDSCOPE_MODELS_DIR", str(tmp_path / "models"))
    registry = service.app.state.runtime.models
    monkeypatch.setattr(registry, "dirs", models_dirs([tmp_path / "models"]))
    yield f"{spec.name}-{NEW}"


def _env(trial: Trial) -> dict[str, str]:
    s = trial.service.settings
    return {
        "WOUNDSCOPE_DATA_DIR": str(s.data_dir),
        "WOUNDSCOPE_DATABASE_URL": s.database_url,
        "WOUNDSCOPE_STORAGE_URL": s.storage_url,
    }


def _measurements(trial: Trial, assessment_id: str) -> list[tuple[str, dict]]:
    with trial.service.db.sessions() as session:
        rows = session.scalars(
            select(Measurement)
            .where(Measurement.assessment_id == assessment_id)
            .order_by(Measurement.id)
        )
        return [(m.model_version, m.data) for m in rows]


def test_reanalyze_adds_measurements_and_resumes(trial: Trial, second_model: str) -> None:
    c, admin = trial.client, trial.keys["admin"]
    wound = trial.wound()
    ids = [
        trial.upload(
            wound, sample_photo(n), captured_at=f"2026-01-0{i + 1}", px_per_mm="10"
        ).json()["id"]
        for i, n in enumerate(("0078", "0082", "0128"))
    ]
    before = {i: _measurements(trial, i) for i in ids}
    old = before[ids[0]][0][0]
    voided = c.patch(
        f"/v1/assessments/{ids[2]}", json={"voided": True, "reason": "misfiled"}, headers=admin
    )
    assert voided.status_code == 200
    # an interrupted run: the first photo was done before it stopped
    segmenter = Segmenter(installed_models(models_dirs(ModelSettings().models_dirs))[0][1])
    assert segmenter.id == second_model  # the highest version is the default
    with trial.service.db.sessions() as session:
        assert pending_reanalysis(session, trial.study, segmenter.info()) == ids[:2]
        outcome = ensure_measurement(
            session, trial.service.app.state.runtime.store, segmenter, Caller.cli("t"), ids[0]
        )
        assert outcome is Outcome.MEASURED
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        out = runner.invoke(
            cli, ["reanalyze", "--study", trial.study, "--model", NEW], env=_env(trial)
        )
        assert out.exit_code == 0, out.output
        assert "1 photos to measure" in out.output and "added 1 measurements" in out.output
        again = runner.invoke(
            cli, ["reanalyze", "--study", trial.study, "--model", second_model], env=_env(trial)
        )
        assert again.exit_code == 0 and "0 photos to measure" in again.output
    finally:
        get_settings.cache_clear()
    for i in ids[:2]:
        after = _measurements(trial, i)
        assert [v for v, _ in after] == [old, NEW]
        assert after[0] == before[i][0]  # never overwritten
        assert after[1][1] == after[0][1]  # same weights, same stored photo: same number
    assert [v for v, _ in _measurements(trial, ids[2])] == [old]  # voided: left alone
    # the pinned version decides which measurement is current, and measures new uploads
    r = c.patch(
        f"/v1/studies/{trial.study}", json={"model": second_model}, headers=trial.service.admin
    )
    assert r.status_code == 200 and r.json()["model"] == second_model
    current = c.get(f"/v1/assessments/{ids[0]}", headers=admin).json()["measurement"]
    assert current["model"]["version"] == NEW
    new = trial.upload(wound, sample_photo("0887"), captured_at="2026-01-09", px_per_mm="10").json()
    assert [m["model"]["version"] for m in new["measurements"]] == [NEW]
    audit = c.get("/v1/audit", params={"study": trial.study}, headers=admin).json()["items"]
    assert sum(e["action"] == "measurement.reanalyze" for e in audit) == 2


def test_reanalyze_names_a_missing_model(trial: Trial) -> None:
    out = CliRunner().invoke(
        cli, ["reanalyze", "--study", trial.study, "--model", "9.9.9"], env=_env(trial)
    )
    assert out.exit_code == 1 and "installed" in out.output
