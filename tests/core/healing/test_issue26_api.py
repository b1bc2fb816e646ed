"""Issue 26 over HTTP: photos after a withdrawal are refused or never counted and
follow-up ends there (defect 4); a false marker beside a given scale is a
``scale_conflict`` that only a correction giving the scale lifts (defect 1)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import cv2
import pytest
from fastapi.testclient import TestClient

from tests.core.healing.seed import PHOTO, PX_PER_MM, Trial, running_app, seed, square
from tests.core.measurement.conftest import shoot


@pytest.fixture(scope="module")
def trial_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Trial]]:
    with running_app(tmp_path_factory) as (client, app):
        yield client, seed(client, app.state.db)


def new_wound(client: TestClient, trial: Trial, code: str) -> tuple[str, str]:
    made = client.post(
        f"/v1/studies/{trial.study}/subjects",
        json={"code": code, "site": "A", "randomized_on": "2026-03-01"},
        headers=trial.auth("admin"),
    )
    assert made.status_code == 201, made.text
    subject = made.json()["id"]
    wound = client.post(
        f"/v1/subjects/{subject}/wounds",
        json={"label": "W1", "index_leg": True},
        headers=trial.auth("admin"),
    )
    assert wound.status_code == 201, wound.text
    return subject, wound.json()["id"]


def upload(
    client: TestClient,
    trial: Trial,
    wound: str,
    on: str,
    *,
    photo: bytes | None = None,
    px_per_mm: float = PX_PER_MM,
    closed: bool = False,
) -> Any:
    return client.post(
        f"/v1/wounds/{wound}/assessments",
        data={
            "captured_at": on,
            "px_per_mm": str(px_per_mm),
            "epithelialized": str(closed).lower(),
            "drainage": "false" if closed else "true",
        },
        files={"photo": ("photo.jpg", photo or PHOTO.read_bytes(), "image/jpeg")},
        headers=trial.auth("admin"),
    )


def record(client: TestClient, trial: Trial, subject: str, kind: str, on: str) -> None:
    made = client.post(
        f"/v1/subjects/{subject}/events",
        json={"kind": kind, "date": on},
        headers=trial.auth("admin"),
    )
    assert made.status_code == 201, made.text


def outline(client: TestClient, trial: Trial, assessment: str, **extra: str) -> Any:
    return client.put(
        f"/v1/assessments/{assessment}/mask",
        data={"polygon": square(100), "reason": "outline", **extra},
        headers=trial.auth("admin"),
    )


def visits_of(client: TestClient, trial: Trial, wound: str) -> dict[str, dict[str, Any]]:
    answer = client.get(f"/v1/wounds/{wound}/endpoints", headers=trial.auth("admin"))
    assert answer.status_code == 200, answer.text
    return {v["captured_at"]: v for v in answer.json()["visits"]}


@pytest.mark.parametrize("kind", ["withdrawal", "lost_to_follow_up"])
def test_a_photo_after_the_subject_left_is_refused(trial_app, kind: str) -> None:
    client, trial = trial_app
    subject, wound = new_wound(client, trial, f"L-{kind}")
    assert upload(client, trial, wound, "2026-03-01").status_code == 201
    record(client, trial, subject, kind, "2026-03-20")
    assert upload(client, trial, wound, "2026-03-20").status_code == 201  # the same day
    refused = upload(client, trial, wound, "2026-03-29", closed=True)
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "after_subject_event"


def test_photos_stored_before_the_withdrawal_was_recorded_never_count(trial_app) -> None:
    """Healing on day 28 after a day-20 withdrawal (issue 26, defect 4): stored, listed,
    never counted, and follow-up ends at the withdrawal."""
    client, trial = trial_app
    subject, wound = new_wound(client, trial, "W-late")
    first = upload(client, trial, wound, "2026-03-01")
    assert first.status_code == 201
    assert outline(client, trial, first.json()["id"]).status_code == 201
    for on in ("2026-03-29", "2026-04-12", "2026-04-26"):
        assert upload(client, trial, wound, on, closed=True).status_code == 201
    record(client, trial, subject, "withdrawal", "2026-03-21")
    visits = visits_of(client, trial, wound)
    for on in ("2026-03-29", "2026-04-12", "2026-04-26"):
        assert visits[on]["counted"] is False
        assert visits[on]["uncounted_reason"] == "after_subject_event"
        assert visits[on]["closed"] is False
    answer = client.get(f"/v1/subjects/{subject}/endpoints", headers=trial.auth("admin")).json()
    assert answer["healing_event"] is False and answer["last_visit_day"] == 0
    study = client.get(f"/v1/studies/{trial.study}/endpoints", headers=trial.auth("admin"))
    row = next(r for r in study.json()["subject_rows"] if r["subject"] == subject)
    assert row["follow_up_end_day"] == 20 and row["last_contact_day"] == 20
    assert row["time_to_closure_days"] == 0 and row["healing_event"] is False
    export = client.get(f"/v1/studies/{trial.study}/export.csv", headers=trial.auth("admin"))
    assert export.status_code == 200


def false_marker_photo() -> tuple[bytes, float]:
    """A generated photo with a marker-like pattern printed 7 mm wide (read as the 20 mm
    marker), and the photo's true scale from the same scene with the real marker."""
    from service.core.measure import measure

    real = shoot()
    true_px_per_mm = float(measure(real.rgb, real.mask).px_per_mm)
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(shoot(marker_print_mm=7.0).rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return jpeg.tobytes(), true_px_per_mm


def test_a_false_marker_beside_a_given_scale_counts_only_once_a_clinician_gives_it(
    trial_app,
) -> None:
    client, trial = trial_app
    _, wound = new_wound(client, trial, "F-marker")
    photo, true_px_per_mm = false_marker_photo()
    made = upload(client, trial, wound, "2026-03-01", photo=photo, px_per_mm=true_px_per_mm)
    assert made.status_code == 201, made.text
    assessment = made.json()["id"]
    measured = made.json()["measurement"]
    assert measured["calibration"] == "px_per_mm" and measured["calibrated"] is True
    assert measured["px_per_mm"] == pytest.approx(true_px_per_mm, rel=1e-3)
    codes = {f["code"]: f for f in measured["quality"]}
    assert codes["scale_conflict"]["severe"] is True

    def counted() -> tuple[bool, str | None]:
        v = visits_of(client, trial, wound)["2026-03-01"]
        return v["counted"], v["uncounted_reason"]

    assert counted() == (False, "scale_conflict")
    # Accepting does not lift it: only a scale does.
    accepted = client.patch(
        f"/v1/assessments/{assessment}", json={"accepted": True}, headers=trial.auth("admin")
    )
    assert accepted.status_code == 200, accepted.text
    assert counted() == (False, "scale_conflict")
    # A correction of the outline inherits the photo's calibration: still out.
    corrected = outline(client, trial, assessment)
    assert corrected.status_code == 201, corrected.text
    assert "scale_conflict" in {f["code"] for f in corrected.json()["quality"]}
    assert counted() == (False, "scale_conflict")
    # The clinician gives the scale with the correction: counted, at that scale.
    scaled = outline(client, trial, assessment, px_per_mm=f"{true_px_per_mm}")
    assert scaled.status_code == 201, scaled.text
    body = scaled.json()
    assert "marker_overruled" in {f["code"] for f in body["quality"]}
    assert body["area_cm2"] == pytest.approx(100 * 100 / true_px_per_mm**2 / 100, rel=0.05)
    assert counted() == (True, None)


def test_the_studys_analysis_settings(trial_app) -> None:
    """par_week4_window_days, control_arm and visit_schedule: set by an admin, shown on
    the study, and the week-4 window is the endpoints' default."""
    client, trial = trial_app
    study = client.get(f"/v1/studies/{trial.study}", headers=trial.auth("admin")).json()
    assert study["par_week4_window_days"] == 7 and study["control_arm"] is None
    assert study["visit_schedule"] is None
    bad = client.patch(
        f"/v1/studies/{trial.study}",
        json={"visit_schedule": {"days": [28, 14]}},
        headers=trial.auth("admin"),
    )
    assert bad.status_code == 422
    changed = client.patch(
        f"/v1/studies/{trial.study}",
        json={
            "par_week4_window_days": 0,
            "control_arm": "control",
            "visit_schedule": {"days": [0, 14, 28, 56], "interval_days": 28, "window_days": 3},
        },
        headers=trial.auth("admin"),
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["par_week4_window_days"] == 0 and body["control_arm"] == "control"
    assert body["visit_schedule"] == {
        "days": [0, 14, 28, 56],
        "interval_days": 28,
        "window_days": 3,
    }
    # S01-W1 has visits on days 0, 14, 28 and 42 after its baseline: exactly day 28.
    wound = trial.wounds["S01-W1"]
    default = client.get(f"/v1/wounds/{wound}/endpoints", headers=trial.auth("admin")).json()
    assert default["par_week4_days_from_baseline"] == 28
    _, late = new_wound(client, trial, "Window")
    for on in ("2026-03-01", "2026-03-26"):  # day 25: outside ± 0, inside ± 3
        made = upload(client, trial, late, on)
        assert made.status_code == 201
        assert outline(client, trial, made.json()["id"]).status_code == 201
    path = f"/v1/wounds/{late}/endpoints"
    assert client.get(path, headers=trial.auth("admin")).json()["par_week4_pct"] is None
    wide = client.get(path, params={"window_days": 3}, headers=trial.auth("admin")).json()
    assert wide["par_week4_days_from_baseline"] == 25
    refused = client.patch(
        f"/v1/studies/{trial.study}",
        json={"par_week4_window_days": 3},
        headers=trial.auth("monitor"),
    )
    assert refused.status_code == 403


def test_the_dashboards_correction_form_takes_the_clinicians_scale(trial_app) -> None:
    """The wound page asks for the scale where the marker cannot be used (a severe
    ``scale_conflict``), and a correction sent with it counts at that scale; a bad
    value is refused with ``invalid_scale`` on the page, the typed value kept."""
    import re

    from tests.api.dashboard.test_pages import sign_in

    client, trial = trial_app
    _, wound = new_wound(client, trial, "F-dash")
    photo, true_px_per_mm = false_marker_photo()
    made = upload(client, trial, wound, "2026-03-01", photo=photo, px_per_mm=true_px_per_mm)
    assert made.status_code == 201, made.text
    assessment = made.json()["id"]
    sign_in(client, trial.keys["admin"])
    page = client.get(f"/dashboard/wounds/{wound}").text
    assert 'name="px_per_mm"' in page
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    form = {"csrf": token.group(1), "polygon": square(100), "reason": "outline"}
    refused = client.post(
        f"/dashboard/assessments/{assessment}/correct", data={**form, "px_per_mm": "-3"}
    )
    assert refused.status_code == 422 and "invalid_scale" in refused.text
    assert 'value="-3"' in refused.text
    saved = client.post(
        f"/dashboard/assessments/{assessment}/correct",
        data={**form, "px_per_mm": f"{true_px_per_mm}"},
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    visit = visits_of(client, trial, wound)["2026-03-01"]
    assert (visit["counted"], visit["uncounted_reason"]) == (True, None)
    assert visit["area_cm2"] == pytest.approx(100 * 100 / true_px_per_mm**2 / 100, rel=0.05)
