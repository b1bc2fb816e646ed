"""The capture page's calls without a browser: the dashboard session, CSRF on writes,
roles as the API's, the upload's Idempotency-Key, and a page with local assets only."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from service.core.measure import QualityLimits
from tests.api.conftest import encode, marker_photo_rgb
from tests.api.dashboard.test_pages import app_trial, sign_in  # noqa: F401  (fixture)
from tests.core.healing.seed import Trial

API = "/dashboard/capture/api"


def _me(client: TestClient) -> dict[str, Any]:
    r = client.get(f"{API}/session")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_page_is_local_and_calls_need_a_session(app_trial: tuple[TestClient, Trial]) -> None:  # noqa: F811
    client, _ = app_trial
    client.cookies.clear()
    page = client.get("/capture/")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert 'capture="environment"' in page.text and 'accept="image/*"' in page.text
    for src in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        assert src.startswith("/"), f"non-local asset {src}"
    # Every script the page loads is served, the vendored detector included.
    scripts = re.findall(r'<script src="([^"]+)"', page.text)
    assert "/capture/static/vendor/aruco.js" in scripts
    for src in scripts:
        assert client.get(src).status_code == 200, src
    assert client.get("/capture/static/nope.js").status_code == 404
    assert client.get("/capture/static/vendor/nope.js").status_code == 404
    r = client.get(f"{API}/session")
    assert r.status_code == 401 and r.json()["code"] == "invalid_key"
    assert client.get(f"{API}/studies").status_code == 401


def test_uploader_creates_and_uploads_once_per_idempotency_key(
    app_trial: tuple[TestClient, Trial],  # noqa: F811
) -> None:
    client, trial = app_trial
    sign_in(client, trial.keys["uploader"])
    me = _me(client)
    assert me["role"] == "uploader" and me["may_create"] and me["site"] == "A"
    # The upload's limit, for the phone's marker check.
    assert me["marker_min_side_px"] == QualityLimits().marker_min_side_px
    assert [s["id"] for s in client.get(f"{API}/studies").json()] == [trial.study]
    # A write without the session's CSRF token is refused.
    r = client.post(f"{API}/studies/{trial.study}/subjects", json={"code": "S50"})
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    csrf = {"X-CSRF-Token": me["csrf"]}
    r = client.post(f"{API}/studies/{trial.study}/subjects", json={"code": "S50"}, headers=csrf)
    assert r.status_code == 201, r.text
    subject = r.json()
    assert subject["site"] == "A"
    assert subject["id"] in [
        s["id"] for s in client.get(f"{API}/studies/{trial.study}/subjects").json()
    ]
    r = client.post(f"{API}/subjects/{subject['id']}/wounds", json={"label": "W1"}, headers=csrf)
    assert r.status_code == 201, r.text
    wound = r.json()["id"]
    assert [w["id"] for w in client.get(f"{API}/subjects/{subject['id']}/wounds").json()] == [wound]

    photo = encode(marker_photo_rgb(), "JPEG", quality=92)

    def send() -> Any:
        return client.post(
            f"{API}/wounds/{wound}/assessments",
            files={"photo": ("camera.jpg", photo, "image/jpeg")},
            data={"captured_at": "2026-03-02", "visit": "V2", "drainage": "false"},
            headers={**csrf, "Idempotency-Key": "phone-7d1e"},
        )

    first, again = send(), send()
    assert first.status_code == 201, first.text
    assert again.status_code == 201 and again.headers.get("idempotent-replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    assert first.json()["measurement"]["area_cm2"] > 0
    assert first.json()["drainage"] is False and first.json()["visit"] == "V2"
    listed = client.get(
        f"/v1/wounds/{wound}/assessments",
        headers={"Authorization": f"Bearer {trial.keys['admin']}"},
    ).json()
    assert listed["total"] == 1
    # The overlay the page shows comes through the same session.
    assert client.get(f"/dashboard/assessments/{first.json()['id']}/overlay.jpg").status_code == 200
    # The pre-check's session twin.
    frame = encode(marker_photo_rgb(), "JPEG", quality=70)
    r = client.post(f"{API}/precheck", files={"frame": ("f.jpg", frame, "image/jpeg")})
    assert r.status_code == 200 and r.json()["marker_found"] is True


def test_clinician_may_not_create_or_upload(app_trial: tuple[TestClient, Trial]) -> None:  # noqa: F811
    client, trial = app_trial
    sign_in(client, trial.keys["clinician"])
    me = _me(client)
    assert me["may_create"] is False and me["may_upload"] is False
    csrf = {"X-CSRF-Token": me["csrf"]}
    r = client.post(f"{API}/studies/{trial.study}/subjects", json={"code": "S51"}, headers=csrf)
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    wound = trial.wounds["S01-W1"]
    r = client.post(
        f"{API}/wounds/{wound}/assessments",
        files={"photo": ("camera.jpg", b"\xff\xd8 not read", "image/jpeg")},
        data={"captured_at": "2026-03-02"},
        headers=csrf,
    )
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    # Another site's wound is not visible.
    r = client.get(f"{API}/subjects/{trial.subjects['S02']}/wounds")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
