"""The statistician's notebook runs headless on a small generated CSV export."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from pathlib import Path

import pytest

from service.core.exports import MeasurementRow, measurements_csv
from tests.conftest import ROOT, has_module, need

NOTEBOOK = ROOT / "notebooks" / "statistician.ipynb"


def small_export() -> str:
    """Four subjects, five wounds: two heal (confirmed), one re-opens, two never close."""
    base = date(2026, 1, 5)
    plans = {
        # subject: [(wound, [(day, area_cm2, closed)])]
        "S01": [("W1", [(0, 4.0, False), (28, 1.0, False), (42, 0.0, True), (56, 0.0, True)])],
        "S02": [
            ("W1", [(0, 3.0, False), (27, 1.0, False), (35, 0.0, True), (49, 0.0, True)]),
            ("W2", [(0, 2.0, False), (30, 1.5, False), (70, 1.0, False)]),
        ],
        "S03": [("W1", [(0, 5.0, False), (21, 2.0, False), (35, 0.0, True), (56, 0.0, True)])],
        "S04": [("W1", [(0, 6.0, False), (60, 5.0, False)])],
    }
    rows = []
    number = 0
    for subject, wounds in plans.items():
        for wound, series in wounds:
            for day, area_cm2, closed in series:
                number += 1
                rows.append(
                    MeasurementRow(
                        study="NB-1",
                        site="A",
                        subject_id=f"sub_{subject}",
                        subject_code=subject,
                        wound_id=f"wnd_{subject}_{wound}",
                        wound_label=wound,
                        assessment_id=f"asm_{number}",
                        captured_at=base + timedelta(days=day),
                        day=day,
                        measurement_id=str(number),
                        model="ulcerseg-1.0.0",
                        manual=False,
                        current=True,
                        counted=True,
                        calibration="marker",
                        calibrated=True,
                        area_cm2=area_cm2,
                        perimeter_cm=area_cm2 * 3,
                        epithelialized=closed,
                        drainage=not closed,
                        arm="active" if subject in ("S01", "S02") else "control",
                    )
                )
    return measurements_csv(rows, include_arm=True)


@pytest.mark.slow
def test_statistician_notebook_executes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need(has_module("nbclient") and has_module("ipykernel"), "nbclient/ipykernel not installed")
    import nbformat
    from nbclient import NotebookClient

    export = tmp_path / "export.csv"
    export.write_text(small_export())
    monkeypatch.setenv("WOUNDSCOPE_EXPORT_CSV", str(export))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()

    assert (tmp_path / "km_time_to_closure.png").stat().st_size > 1000
    table = list(csv.DictReader(io.StringIO((tmp_path / "par_week4.csv").read_text())))
    par = {(r["subject"], r["wound"]): r["par_week4_pct"] for r in table}
    assert par.pop(("S04", "W1")) == ""  # no visit within 28 ± 7 days
    assert {k: float(v) for k, v in par.items()} == pytest.approx(
        {("S01", "W1"): 75.0, ("S02", "W1"): 200 / 3, ("S02", "W2"): 25.0, ("S03", "W1"): 60.0}
    )
    printed = "".join(
        output.get("text", "")
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream"
    )
    # S01 healed day 42, S03 day 35; S02 (one wound open) and S04 censored.
    assert "'active': 42.0" in printed
    assert "'control': 35.0" in printed


@pytest.mark.slow
def test_statistician_notebook_rebuilds_the_study_answer_from_adtte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need(has_module("nbclient") and has_module("ipykernel"), "nbclient/ipykernel not installed")
    import json

    import nbformat
    from nbclient import NotebookClient

    from service.core.adtte import adtte_csv, adtte_rows
    from service.core.healing import study_endpoints
    from tests.core.healing.test_issue14 import competing_trial

    subjects, _, _ = competing_trial(7, n=30)
    (tmp_path / "export.csv").write_text(small_export())
    (tmp_path / "adtte.csv").write_text(adtte_csv(adtte_rows("NB-2", subjects)))
    (tmp_path / "study.json").write_text(json.dumps(study_endpoints(subjects)))
    monkeypatch.setenv("WOUNDSCOPE_EXPORT_CSV", str(tmp_path / "export.csv"))
    monkeypatch.setenv("WOUNDSCOPE_ADTTE_CSV", str(tmp_path / "adtte.csv"))
    monkeypatch.setenv("WOUNDSCOPE_STUDY_JSON", str(tmp_path / "study.json"))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    printed = "".join(
        output.get("text", "")
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream"
    )
    assert "ADTTE reproduces the study answer" in printed
