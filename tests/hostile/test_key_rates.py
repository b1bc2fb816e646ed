"""One key cannot exhaust the server (issue 28, medium).

JSON bodies have a limit of their own (1 MB; a 37 MB JSON body cost 760 MB before its
422); uploads (in megapixels), exports and overlays have per-key token buckets that
answer 429 ``rate_limited`` with ``Retry-After`` and leave other keys alone; an
overlay is made once and then served from a cache (keys are content hashes).
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from service.api import limits
from service.core.precheck import RateLimiter
from tests.api.conftest import Service, Trial, make_trial, sample_photo


def _rate_limited(r: Any) -> None:
    assert r.status_code == 429, f"{r.status_code} {r.text[:200]}"
    assert r.json()["code"] == "rate_limited"
    assert int(r.headers["retry-after"]) >= 1


@pytest.fixture(scope="module")
def world(service: Service) -> tuple[Trial, str, str]:  # noqa: F811
    trial = make_trial(service)
    wound = trial.wound("A")
    r = trial.upload(wound, sample_photo("0078"), px_per_mm="10")
    assert r.status_code == 201, r.text
    return trial, wound, r.json()["id"]


def test_a_json_body_has_its_own_small_limit(world: tuple[Trial, str, str]) -> None:
    trial, _, _ = world
    body = b'{"name": "' + b"x" * (limits.JSON_BODY_BYTES + 10) + b'"}'
    r = trial.client.post(
        "/v1/studies",
        content=body,
        headers={**trial.service.admin, "Content-Type": "application/json"},
    )
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large", r.text
    assert "JSON" in r.json()["detail"]


def test_a_json_body_without_a_key_is_401(service: Service) -> None:  # noqa: F811
    body = b"{" + b" " * (limits.JSON_BODY_BYTES + 10) + b"}"
    r = service.client.post(
        "/v1/studies", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 401 and r.json()["code"] == "missing_key"


def test_the_bucket_charges_cost_and_names_what() -> None:
    now = [0.0]
    bucket = RateLimiter(rate_per_s=8.0, burst=240, clock=lambda: now[0], what="photo megapixels")
    for _ in range(4):
        bucket.take("k", 49.0)  # four 49 MP photos: 196 of 240
    with pytest.raises(Exception) as err:
        bucket.take("k", 49.0)
    assert getattr(err.value, "code", "") == "rate_limited"
    assert "photo megapixels" in str(err.value)
    wait = int(err.value.headers["Retry-After"])  # type: ignore[attr-defined]
    assert wait == 1 + int((49.0 - 44.0) / 8.0)  # 44 left, 5 more at 8 a second
    bucket.take("other key", 49.0)  # another key has its own bucket
    now[0] += wait
    bucket.take("k", 49.0)


def test_uploads_past_the_key_rate_are_429(
    world: tuple[Trial, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    trial, wound, _ = world
    rates = limits.key_rates_of(trial.service.app)
    monkeypatch.setattr(rates, "uploads", RateLimiter(rate_per_s=0.01, burst=2, what="mp"))
    small = io.BytesIO()
    Image.open(io.BytesIO(sample_photo("0078"))).save(small, format="JPEG")
    ok = trial.upload(wound, small.getvalue(), key="uploader", px_per_mm="10")
    assert ok.status_code == 201, ok.text
    ok = trial.upload(wound, small.getvalue(), key="uploader", px_per_mm="10")
    assert ok.status_code in (201,), ok.text
    _rate_limited(trial.upload(wound, small.getvalue(), key="uploader", px_per_mm="10"))
    # the other site's key is not slowed by this one
    wound_b = trial.wound("B")
    r = trial.upload(wound_b, small.getvalue(), key="uploader_B", px_per_mm="10")
    assert r.status_code == 201, r.text


def test_exports_and_overlays_past_the_key_rate_are_429(
    world: tuple[Trial, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    trial, _, assessment = world
    rates = limits.key_rates_of(trial.service.app)
    monkeypatch.setattr(rates, "exports", RateLimiter(rate_per_s=0.01, burst=1, what="exports"))
    monkeypatch.setattr(rates, "overlays", RateLimiter(rate_per_s=0.01, burst=1, what="overlays"))
    monitor = trial.keys["monitor"]
    assert (
        trial.client.get(f"/v1/studies/{trial.study}/export.csv", headers=monitor).status_code
        == 200
    )
    _rate_limited(trial.client.get(f"/v1/studies/{trial.study}/export.csv", headers=monitor))
    path = f"/v1/assessments/{assessment}/overlay.jpg"
    assert trial.client.get(path, headers=monitor).status_code == 200
    _rate_limited(trial.client.get(path, headers=monitor))
    assert trial.client.get(path, headers=trial.keys["admin"]).status_code == 200


def test_an_overlay_is_made_once(world: tuple[Trial, str, str]) -> None:
    trial, _, assessment = world
    runtime = trial.service.app.state.runtime
    calls = []
    made = runtime.overlay

    def counting(photo: bytes, mask: bytes) -> bytes:
        calls.append(1)
        return made(photo, mask)  # type: ignore[no-any-return]

    runtime.overlay = counting
    try:
        path = f"/v1/assessments/{assessment}/overlay.jpg"
        first = trial.client.get(path, headers=trial.keys["clinician"])
        second = trial.client.get(path, headers=trial.keys["clinician"])
    finally:
        del runtime.overlay
    assert first.status_code == second.status_code == 200
    assert first.content == second.content and first.content[:2] == b"\xff\xd8"
    assert len(calls) <= 1  # made at most once (once unless an earlier test cached it)


def test_photos_beyond_a_phones_size_are_measured_one_at_a_time(
    world: tuple[Trial, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upload above ``LARGE_PHOTO_MEGAPIXELS`` goes through the one-at-a-time lane
    (``Runtime.large_photos``, held while it is measured); a phone-sized one does not."""
    import threading

    trial, wound, _ = world
    runtime = trial.service.app.state.runtime
    lane = threading.BoundedSemaphore(1)
    entered: list[int] = []

    class Recording:
        def __enter__(self) -> None:
            assert lane.acquire(blocking=False), "two large photos at once"
            entered.append(1)

        def __exit__(self, *exc: object) -> None:
            lane.release()

    monkeypatch.setattr(runtime, "large_photos", Recording())
    side = int((limits.LARGE_PHOTO_MEGAPIXELS * 1e6) ** 0.5) + 16
    big = io.BytesIO()
    Image.new("RGB", (side, side), (200, 150, 130)).save(big, format="PNG")
    r = trial.upload(wound, big.getvalue(), filename="big.png", px_per_mm="10")
    assert r.status_code == 201, r.text
    assert entered == [1]
    r = trial.upload(wound, sample_photo("0078"), px_per_mm="10")
    assert r.status_code == 201, r.text
    assert entered == [1]  # the 512 px photo did not take the lane
