"""POST /v1/precheck: the upload's marker/blur/exposure/tilt codes for a preview frame,
refusals with registered codes, a per-key rate limit, and nothing stored."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from service.core.errors import ERROR_CODES
from service.core.precheck import PRECHECK_MAX_PIXELS, RateLimiter
from service.persistence.orm import Assessment, AuditEntry
from tests.api.conftest import Trial, encode, sample_photo


def _precheck(trial: Trial, frame: bytes, role: str = "uploader", **data: str) -> object:
    return trial.client.post(
        "/v1/precheck",
        files={"frame": ("frame.jpg", frame, "image/jpeg")},
        data=data,
        headers=trial.keys[role],
    )


def _stored(trial: Trial) -> tuple[int, int, int]:
    store_dir = trial.service.settings.data_dir / "photos"
    files = sum(1 for p in store_dir.rglob("*") if p.is_file()) if store_dir.exists() else 0
    with trial.service.db.session() as session:
        return (
            session.scalar(select(func.count()).select_from(Assessment)) or 0,
            session.scalar(select(func.count()).select_from(AuditEntry)) or 0,
            files,
        )


def test_marker_photo_is_ok_and_nothing_is_stored(trial: Trial, marker_jpeg: bytes) -> None:
    before = _stored(trial)
    r = _precheck(trial, marker_jpeg, study=trial.study)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["marker_found"] is True
    assert body["ok"] is True and body["usable"] is True
    assert body["quality"] == []
    assert body["px_per_mm"] == pytest.approx(10.0, rel=0.02)
    assert _stored(trial) == before


def test_no_marker_answers_the_upload_code(trial: Trial) -> None:
    r = _precheck(trial, sample_photo())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["marker_found"] is False and body["usable"] is False
    codes = [q["code"] for q in body["quality"]]
    assert "marker_not_found" in codes
    assert "no_wound_found" not in codes  # needs the model: not judged on a preview


def test_frame_too_big_and_not_an_image_are_refused(trial: Trial) -> None:
    side = int(PRECHECK_MAX_PIXELS**0.5) + 200
    big = encode(np.full((side, side, 3), 128, dtype=np.uint8), "JPEG", quality=50)
    r = _precheck(trial, big)
    assert r.status_code == 413
    assert r.json()["code"] == "too_many_pixels"
    r = _precheck(trial, b"not an image at all")
    assert r.status_code in (415, 422)
    assert r.json()["code"] in ERROR_CODES


def test_needs_a_key(trial: Trial) -> None:
    r = trial.client.post("/v1/precheck", files={"frame": ("f.jpg", sample_photo(), "image/jpeg")})
    assert r.status_code == 401
    assert r.json()["code"] == "missing_key"


def test_rate_limited_per_key(trial: Trial) -> None:
    app = trial.service.app
    previous = getattr(app.state, "precheck_limiter", None)
    now = [0.0]
    app.state.precheck_limiter = RateLimiter(rate_per_s=2.0, burst=2, clock=lambda: now[0])
    try:
        frame = sample_photo()
        assert _precheck(trial, frame).status_code == 200
        assert _precheck(trial, frame).status_code == 200
        r = _precheck(trial, frame)
        assert r.status_code == 429
        assert r.json()["code"] == "rate_limited" and ERROR_CODES["rate_limited"][0] == 429
        assert int(r.headers["Retry-After"]) >= 1
        # Another key has its own bucket; time refills this one.
        assert _precheck(trial, frame, role="clinician").status_code == 200
        now[0] += 0.5
        assert _precheck(trial, frame).status_code == 200
    finally:
        app.state.precheck_limiter = previous
