"""The attacks that got through (issue: hardening), each against the real app.

Every one answers a 4xx with a registered code (never a 5xx) and costs little:
the mask decompression bomb is refused from its PNG header (the process grew by
over 1 GB before), non-physical scales are refused before anything is stored and
the study's exports keep working, a 50,000-deep polygon is a 422, the model pin
takes only installed ids, a locked study takes no re-analysis, holder names carry
no control or bidi characters, and dashboard sessions are server-side.
"""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select
from typer.testing import CliRunner

from service.cli import app as cli
from service.config import get_settings
from service.core.errors import ERROR_CODES
from service.persistence.orm import Assessment, Measurement
from service.runtime.artifacts import installed_models
from tests.api.conftest import Service, Trial, make_trial, need_model, sample_photo
from tests.hostile.test_hostile import PeakRss

BOMB_RSS_LIMIT_MB = 60


@pytest.fixture(scope="module")
def world(service: Service) -> tuple[Trial, str, str]:  # noqa: F811
    """A study, a wound and one uploaded photo (10 px/mm)."""
    trial = make_trial(service)
    wound = trial.wound("A")
    r = trial.upload(wound, sample_photo("0078"), px_per_mm="10")
    assert r.status_code == 201, r.text
    return trial, wound, r.json()["id"]


def refused(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, f"{r.status_code} {r.text[:300]}"
    body = r.json()
    assert body["code"] == code and body["detail"], body
    assert code in ERROR_CODES


def _counts(service: Service) -> tuple[int, int]:  # noqa: F811
    with service.db.sessions() as s:
        return (
            s.scalar(select(func.count()).select_from(Assessment)) or 0,
            s.scalar(select(func.count()).select_from(Measurement)) or 0,
        )


def _bomb_png(side: int = 10_000) -> bytes:
    buf = io.BytesIO()
    Image.new("1", (side, side), 0).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


# --- masks -------------------------------------------------------------------------


def test_mask_bomb_is_refused_from_its_header(world: tuple[Trial, str, str]) -> None:
    trial, _, assessment = world
    bomb = _bomb_png()
    assert len(bomb) < 64 * 1024  # 12 KB on the wire, 100 megapixels declared
    with PeakRss() as rss:
        r = trial.client.put(
            f"/v1/assessments/{assessment}/mask",
            files={"mask": ("mask.png", bomb, "image/png")},
            data={"reason": "bomb"},
            headers=trial.keys["clinician"],
        )
    refused(r, 422, "mask_size_mismatch")
    assert rss.growth_mb < BOMB_RSS_LIMIT_MB, f"grew {rss.growth_mb:.0f} MB"


def _sign_in(client: TestClient, headers: dict[str, str]) -> str:
    """Sign in to the dashboard with a key; returns the session cookie's value."""
    key = headers["Authorization"].split(" ", 1)[1]
    client.cookies.clear()
    form = client.get("/dashboard/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    r = client.post(
        "/dashboard/login", data={"key": key, "csrf": token.group(1)}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    session_id = client.cookies.get("ws_session")
    assert session_id and session_id != key
    return str(session_id)


def _csrf(client: TestClient, path: str) -> str:
    page = client.get(path)
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None, page.text[:300]
    return token.group(1)


def test_dashboard_correction_form_refuses_the_bomb(world: tuple[Trial, str, str]) -> None:
    trial, wound, assessment = world
    client = trial.client
    _sign_in(client, trial.keys["clinician"])
    try:
        csrf = _csrf(client, f"/dashboard/wounds/{wound}")
        bomb = _bomb_png()
        with PeakRss() as rss:
            r = client.post(
                f"/dashboard/assessments/{assessment}/correct",
                data={"reason": "bomb", "csrf": csrf},
                files={"mask": ("mask.png", bomb, "image/png")},
            )
        assert r.status_code == 422 and "mask_size_mismatch" in r.text, r.text[:300]
        assert rss.growth_mb < BOMB_RSS_LIMIT_MB, f"grew {rss.growth_mb:.0f} MB"
    finally:
        client.cookies.clear()


def test_deeply_nested_polygon_is_a_422(world: tuple[Trial, str, str]) -> None:
    trial, _, assessment = world
    deep = "[" * 50_000 + "]" * 50_000
    r = trial.client.put(
        f"/v1/assessments/{assessment}/mask",
        data={"reason": "deep", "polygon": deep},
        headers=trial.keys["clinician"],
    )
    refused(r, 422, "invalid_mask")


def test_deeply_nested_json_body_is_a_4xx(world: tuple[Trial, str, str]) -> None:
    trial, _, _ = world
    deep = '{"id": ' + "[" * 50_000 + "]" * 50_000 + "}"
    r = trial.client.post(
        "/v1/studies",
        content=deep,
        headers={**trial.service.admin, "Content-Type": "application/json"},
    )
    assert 400 <= r.status_code < 500, r.text[:300]
    assert r.json()["code"] in ERROR_CODES


# --- numbers -----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1e308", "1e-300", "inf", "-inf", "nan", "0", "-1", "5000"])
def test_px_per_mm_outside_a_physical_range_is_refused(
    world: tuple[Trial, str, str], service: Service, value: str
) -> None:  # noqa: F811
    trial, wound, _ = world
    before = _counts(service)
    r = trial.upload(wound, sample_photo("0078"), px_per_mm=value)
    refused(r, 422, "invalid_scale")
    assert _counts(service) == before


@pytest.mark.parametrize(
    "ruler",
    [
        "10,10,200,10,1e308",
        "10,10,200,10,nan",
        "10,10,200,10,inf",
        "10,10,200,10,0.001",
        "10,10,1e308,10,20",
        "10,10,11,10,1500",
    ],
)
def test_ruler_outside_a_physical_range_is_refused(
    world: tuple[Trial, str, str], service: Service, ruler: str
) -> None:  # noqa: F811
    trial, wound, _ = world
    before = _counts(service)
    r = trial.upload(wound, sample_photo("0078"), ruler=ruler)
    refused(r, 422, "invalid_ruler")
    assert _counts(service) == before


@pytest.mark.parametrize("point", ["1e308,10", "nan,nan", "inf,5", "-1,5", "5"])
def test_target_point_outside_the_photo_is_refused(
    world: tuple[Trial, str, str], point: str
) -> None:
    trial, wound, _ = world
    r = trial.upload(wound, sample_photo("0078"), px_per_mm="10", target_point=point)
    refused(r, 422, "invalid_target_point")


@pytest.mark.parametrize("marker_mm", [1e308, 0.5, 600, -20])
def test_study_marker_mm_is_bounded(service: Service, marker_mm: float) -> None:  # noqa: F811
    r = service.client.post(
        "/v1/studies",
        json={"id": "BOUNDED", "name": "b", "marker_mm": marker_mm},
        headers=service.admin,
    )
    refused(r, 422, "invalid_request")


def test_no_non_finite_number_is_stored_and_exports_work(
    world: tuple[Trial, str, str], service: Service
) -> None:  # noqa: F811
    trial, wound, _ = world
    for scale in ("0.1", "1000"):  # the ends of the range measure finite numbers
        r = trial.upload(wound, sample_photo("0082"), px_per_mm=scale)
        assert r.status_code == 201, r.text
    with service.db.sessions() as s:
        for m in s.scalars(select(Measurement)):
            text = json.dumps(m.data)
            assert "Infinity" not in text and "NaN" not in text
            assert m.area_cm2 is None or math.isfinite(m.area_cm2)
    r = trial.client.get(
        f"/v1/studies/{trial.study}/export.fhir.json", headers=trial.keys["monitor"]
    )
    assert r.status_code == 200, r.text[:300]
    json.loads(r.content)


@pytest.mark.parametrize("marker_mm", ["20.25", "1000", "4", "nan", "inf"])
def test_marker_sheet_size_is_bounded_and_quantised(service: Service, marker_mm: str) -> None:  # noqa: F811
    r = service.client.get("/v1/marker.png", params={"marker_mm": marker_mm})
    refused(r, 422, "invalid_request")


def test_marker_sheet_in_steps_of_half_a_millimetre(service: Service) -> None:  # noqa: F811
    r = service.client.get("/v1/marker.pdf", params={"marker_mm": "20.5"})
    assert r.status_code == 200 and r.content.startswith(b"%PDF")


# --- the model pin -----------------------------------------------------------------


def test_model_pin_takes_only_installed_ids(
    service: Service, world: tuple[Trial, str, str], tmp_path: Path
) -> None:  # noqa: F811
    need_model()
    trial, _, _ = world
    _, folder = installed_models()[0]
    planted = tmp_path / "x"
    planted.symlink_to(folder)  # a real model folder, outside the installed ones
    for ref in (str(planted), f"models/../../../..{planted}", f"models/{folder.name}"):
        r = service.client.post(
            "/v1/studies",
            json={"id": "PINNED", "name": "p", "model": ref},
            headers=service.admin,
        )
        refused(r, 422, "model_not_installed")
        r = service.client.patch(
            f"/v1/studies/{trial.study}", json={"model": ref}, headers=service.admin
        )
        refused(r, 422, "model_not_installed")
    installed = installed_models()[0][0].id
    r = service.client.patch(
        f"/v1/studies/{trial.study}", json={"model": installed}, headers=service.admin
    )
    assert r.status_code == 200 and r.json()["model"] == installed


# --- the lock ------------------------------------------------------------------------


def test_reanalyze_honours_the_lock(service: Service) -> None:  # noqa: F811
    need_model()
    trial = make_trial(service)
    wound = trial.wound("A")
    assert trial.upload(wound, sample_photo("0078"), px_per_mm="10").status_code == 201
    r = service.client.patch(
        f"/v1/studies/{trial.study}", json={"locked": True}, headers=service.admin
    )
    assert r.status_code == 200 and r.json()["locked"] is True
    before = _counts(service)
    s = service.settings
    env = {
        "WOUNDSCOPE_DATA_DIR": str(s.data_dir),
        "WOUNDSCOPE_DATABASE_URL": s.database_url,
        "WOUNDSCOPE_STORAGE_URL": s.storage_url,
    }
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(
            cli,
            ["reanalyze", "--study", trial.study, "--model", installed_models()[-1][0].id],
            env=env,
        )
    finally:
        get_settings.cache_clear()
    assert out.exit_code != 0 and "locked" in out.output, out.output
    assert _counts(service) == before


# --- names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "holder",
    [
        "Eve\x1b[2J",
        "Eve\nkey 1 for Ada: admin",
        "Eve\u202eevil",
        "Eve\u2066x",
        "Eve\u200b",
        "\r",
        "\u3164",
        "\u115f",
        "\u2800",
        "A\u034fda",
    ],
)
def test_holder_names_refuse_control_and_bidi(service: Service, holder: str) -> None:  # noqa: F811
    r = service.client.post(
        "/v1/keys", json={"role": "admin", "holder": holder}, headers=service.admin
    )
    refused(r, 422, "unsafe_text")


def test_holder_names_keep_ordinary_unicode(service: Service) -> None:  # noqa: F811
    r = service.client.post(
        "/v1/keys", json={"role": "admin", "holder": "Zoë Ørsted-Nguyễn 李"}, headers=service.admin
    )
    assert r.status_code == 201 and r.json()["holder"] == "Zoë Ørsted-Nguyễn 李"


# --- dashboard sessions -------------------------------------------------------------


def test_dashboard_session_is_server_side(world: tuple[Trial, str, str]) -> None:
    trial, wound, _ = world
    client = trial.client
    session_id = _sign_in(client, trial.keys["clinician"])
    page = f"/dashboard/wounds/{wound}"
    assert client.get(page, follow_redirects=False).status_code == 200
    # the cookie is not a key: it does not work as a bearer key
    r = client.get(f"/v1/wounds/{wound}", headers={"Authorization": f"Bearer {session_id}"})
    refused(r, 401, "invalid_key")
    # a CSRF token from another session does not work with this one
    csrf = _csrf(client, page)
    other = TestClient(client.app)
    _sign_in(other, trial.keys["clinician"])
    r = other.post("/dashboard/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 403
    # sign-out ends the session on the server: the replayed cookie is dead
    r = client.post("/dashboard/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    client.cookies.set("ws_session", session_id, path="/dashboard")
    r = client.get(page, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/login"
    client.cookies.clear()


def test_revoking_the_key_ends_its_sessions(service: Service) -> None:  # noqa: F811
    trial = make_trial(service)
    client = TestClient(service.app)
    r = service.client.post(
        "/v1/keys",
        json={"role": "monitor", "holder": "Mo", "study": trial.study},
        headers=service.admin,
    )
    key_id, key = r.json()["id"], r.json()["key"]
    _sign_in(client, {"Authorization": f"Bearer {key}"})
    assert client.get("/dashboard/", follow_redirects=False).status_code == 200
    assert service.client.delete(f"/v1/keys/{key_id}", headers=service.admin).status_code == 200
    r = client.get("/dashboard/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/login"


def test_links_are_never_built_from_the_host_header(world: tuple[Trial, str, str]) -> None:
    trial, _, assessment = world
    evil = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    for path, key in (
        (f"/v1/studies/{trial.study}/export.fhir.json", "monitor"),
        (f"/v1/assessments/{assessment}", "admin"),
        (f"/v1/studies/{trial.study}/export.csv", "monitor"),
    ):
        r = trial.client.get(path, headers={**trial.keys[key], **evil})
        assert r.status_code == 200, r.text[:200]
        assert b"evil.example" not in r.content, path


# --- idempotency ---------------------------------------------------------------------


def test_an_idempotent_replay_with_other_fields_is_refused(
    world: tuple[Trial, str, str],
) -> None:
    """Issue 28: a retry whose fields differ from the first request answered the first
    result silently (the new visit label and observation were dropped)."""
    trial, wound, _ = world
    photo, key = sample_photo("0078"), {"Idempotency-Key": "replay-fields"}
    first = trial.upload(wound, photo, px_per_mm="10", visit="V2", headers=key)
    assert first.status_code == 201, first.text
    same = trial.upload(wound, photo, px_per_mm="10", visit="V2", headers=key)
    assert same.status_code == 201 and same.headers["Idempotent-Replayed"] == "true"
    assert same.json()["id"] == first.json()["id"]
    before = _counts(trial.service)
    for fields in (
        {"px_per_mm": "10", "visit": "V3"},
        {"px_per_mm": "11", "visit": "V2"},
        {"px_per_mm": "10", "visit": "V2", "epithelialized": "true"},
        {"px_per_mm": "10", "visit": "V2", "captured_at": "2026-01-06"},
    ):
        r = trial.upload(wound, photo, headers=key, **fields)
        refused(r, 409, "idempotency_key_reused")
    assert _counts(trial.service) == before
