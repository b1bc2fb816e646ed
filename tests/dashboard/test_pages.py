"""Dashboard pages without a browser: sign-in cookie, CSRF, scopes, local assets, figures."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.routes.dashboard import area_figure, figure_json, km_figure, plotly_js_path
from tests.conftest import need
from tests.endpoints.seed import MODEL_DIR, PHOTO, Trial, seed


@pytest.fixture(scope="module")
def app_trial(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Trial]]:
    need((MODEL_DIR / "model.onnx").is_file(), f"the bundled model is not at {MODEL_DIR}")
    need(PHOTO.is_file(), f"the sample photo is not at {PHOTO}")
    from service.app import create_app
    from service.config import Settings

    data_dir: Path = tmp_path_factory.mktemp("pages")
    app = create_app(
        Settings(data_dir=data_dir, model=str(MODEL_DIR), log_json=False, log_level="WARNING")
    )
    with TestClient(app) as client:
        yield client, seed(client, app.state.db)


def sign_in(client: TestClient, key: str) -> None:
    client.cookies.clear()
    form = client.get("/dashboard/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    answer = client.post(
        "/dashboard/login", data={"key": key, "csrf": token.group(1)}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    cookie = answer.headers["set-cookie"]
    assert "ws_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_pages_need_a_session(app_trial: tuple[TestClient, Trial]) -> None:
    client, trial = app_trial
    client.cookies.clear()
    answer = client.get(f"/dashboard/wounds/{trial.wounds['S01-W1']}", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/login"
    # A bearer header is not a dashboard session.
    answer = client.get("/dashboard/", headers=trial.auth("admin"), follow_redirects=False)
    assert answer.status_code == 303


def test_sign_in_refuses_a_bad_key_and_a_missing_csrf(app_trial: tuple[TestClient, Trial]) -> None:
    client, trial = app_trial
    client.cookies.clear()
    form = client.get("/dashboard/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    wrong = client.post("/dashboard/login", data={"key": "ws_nope", "csrf": token.group(1)})
    assert wrong.status_code == 401
    assert "unknown or revoked" in wrong.text
    forged = client.post(
        "/dashboard/login", data={"key": trial.keys["admin"], "csrf": "x"}, follow_redirects=False
    )
    assert forged.status_code == 401
    assert "ws_session" not in forged.headers.get("set-cookie", "")


def test_every_asset_is_local(app_trial: tuple[TestClient, Trial]) -> None:
    client, trial = app_trial
    sign_in(client, trial.keys["admin"])
    for path in (
        "/dashboard/",
        f"/dashboard/studies/{trial.study}",
        f"/dashboard/subjects/{trial.subjects['S01']}",
        f"/dashboard/wounds/{trial.wounds['S01-W1']}",
    ):
        page = client.get(path)
        assert page.status_code == 200, page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sources and all(s.startswith(("/", "#")) for s in sources), sources
    plotly_js = client.get("/dashboard/static/plotly.min.js")
    assert plotly_js.status_code == 200
    assert len(plotly_js.content) == plotly_js_path().stat().st_size
    assert client.get("/dashboard/static/dashboard.js").status_code == 200
    assert client.get("/dashboard/static/nothing.js").status_code == 404


def test_admin_sees_arms_monitor_does_not(app_trial: tuple[TestClient, Trial]) -> None:
    client, trial = app_trial
    sign_in(client, trial.keys["admin"])
    assert "active" in client.get(f"/dashboard/studies/{trial.study}").text
    sign_in(client, trial.keys["monitor"])
    page = client.get(f"/dashboard/studies/{trial.study}").text
    assert "active" not in page and "control" not in page
    export = client.get(f"/dashboard/studies/{trial.study}/export.csv")
    assert export.status_code == 200
    assert "arm" not in export.text.splitlines()[0].split(",")
    sign_in(client, trial.keys["clinician"])
    refused = client.get(f"/dashboard/studies/{trial.study}/export.csv")
    assert refused.status_code == 403


def test_correction_errors_render_a_page(app_trial: tuple[TestClient, Trial]) -> None:
    client, trial = app_trial
    sign_in(client, trial.keys["clinician"])
    page = client.get(f"/dashboard/wounds/{trial.wounds['S01-W1']}").text
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    target = trial.assessments["S01-W1"][0]
    answer = client.post(
        f"/dashboard/assessments/{target}/correct",
        data={"csrf": token.group(1), "polygon": "[[1,1],[2,2]]", "reason": "x"},
    )
    assert answer.status_code == 422
    assert "invalid_mask" in answer.text
    answer = client.post(
        f"/dashboard/assessments/{target}/correct",
        data={"csrf": token.group(1), "polygon": "[[1,1],[20,2],[5,30]]", "reason": " "},
    )
    assert answer.status_code == 422
    assert "reason_required" in answer.text


def test_figures_are_safe_to_embed() -> None:
    answer = {
        "visits": [
            {
                "assessment": "a</script><script>alert(1)</script>",
                "captured_at": "2026-01-05",
                "day": 0,
                "area_cm2": 2.0,
                "area_cm2_low": 1.8,
                "area_cm2_high": 2.2,
                "par_pct": 0.0,
                "closed": False,
                "counted": True,
            },
            {
                "assessment": "b",
                "captured_at": "2026-01-19",
                "day": 14,
                "area_cm2": 0.0,
                "area_cm2_low": 0.0,
                "area_cm2_high": 0.0,
                "par_pct": 100.0,
                "closed": True,
                "counted": False,
            },
        ],
        "closure_day": 14,
        "recurrence_day": None,
    }
    figure = area_figure(answer, title="t")
    names = [t["name"] for t in figure["data"]]
    assert names == ["uncertainty", "area (cm²)", "closed (clinician)"]
    assert figure["data"][1]["marker"]["symbol"] == ["circle", "circle-open"]
    assert figure["layout"]["shapes"][0]["x0"] == "2026-01-19"
    embedded = figure_json(figure)
    assert "</script>" not in embedded
    assert json.loads(embedded) == json.loads(json.dumps(figure))
    empty = km_figure({"km": {"timeline_days": [], "survival": []}}, title="none")
    assert empty["data"] == []


def test_clinician_records_closure_monitor_cannot(app_trial: tuple[TestClient, Trial]) -> None:
    client, trial = app_trial
    target = trial.assessments["S01-W1"][1]  # day 14, open
    sign_in(client, trial.keys["monitor"])
    page = client.get(f"/dashboard/wounds/{trial.wounds['S01-W1']}").text
    assert "/observe" not in page
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    refused = client.post(
        f"/dashboard/assessments/{target}/observe",
        data={"csrf": token.group(1), "epithelialized": "yes", "drainage": "no"},
    )
    assert refused.status_code == 403

    sign_in(client, trial.keys["clinician"])
    page = client.get(f"/dashboard/wounds/{trial.wounds['S01-W1']}").text
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    answer = client.post(
        f"/dashboard/assessments/{target}/observe",
        data={"csrf": token.group(1), "epithelialized": "yes", "drainage": "no"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    endpoints = client.get(
        f"/v1/wounds/{trial.wounds['S01-W1']}/endpoints", headers=trial.auth("clinician")
    ).json()
    assert endpoints["visits"][1]["closed"] is True
    assert endpoints["closure_day"] == 14
