"""A photo over the working resolution is decoded, stored and measured smaller (issue
28, medium: a 49 MP upload cost seconds of CPU and a gigabyte of memory per request).

``decode_photo(work_max_pixels=...)`` halves the sides until within the limit (a JPEG
straight from its DCT), and says by how much; an upload stores the photo at that size
with the client's points and scale taken to its pixels, so the area in cm² is the one
the full-size photo gives. A side over 65,500 px is ``too_many_pixels`` (was a 500).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from service.core.errors import DomainError
from service.core.imaging import WORKING_MAX_PIXELS, decode_photo, sent_size
from tests.api.conftest import Service, make_trial, sample_photo


def _jpeg(w: int, h: int, orientation: int = 1) -> bytes:
    small = Image.open(io.BytesIO(sample_photo("0078"))).convert("RGB")
    img = small.resize((w, h))
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(buf, format="JPEG", quality=90, exif=exif.tobytes())
    return buf.getvalue()


@pytest.mark.parametrize("orientation", [1, 6])
def test_a_large_photo_is_decoded_at_half_size(orientation: int) -> None:
    data = _jpeg(7000, 4000, orientation)
    photo = decode_photo(data, work_max_pixels=WORKING_MAX_PIXELS)
    shown = (7000, 4000) if orientation == 1 else (4000, 7000)
    assert sent_size(data) == shown
    assert (photo.width, photo.height) == (shown[0] // 2, shown[1] // 2)
    assert photo.scale_x == pytest.approx(0.5) and photo.scale_y == pytest.approx(0.5)
    assert photo.width * photo.height <= WORKING_MAX_PIXELS
    full = decode_photo(data)
    assert (full.width, full.height) == shown and full.scale_x == 1.0
    # the same picture: the reduced photo is the full one, box-averaged
    ref = np.asarray(Image.fromarray(full.rgb).reduce(2), dtype=np.float32)
    assert np.abs(ref - photo.rgb.astype(np.float32)).mean() < 4.0


def test_a_photo_within_the_working_resolution_is_untouched() -> None:
    data = _jpeg(1200, 900)
    photo = decode_photo(data, work_max_pixels=WORKING_MAX_PIXELS)
    assert (photo.width, photo.height, photo.scale_x) == (1200, 900, 1.0)


def test_a_side_beyond_jpeg_is_refused_from_the_header() -> None:
    img = Image.new("L", (70_000, 10), 0)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    with pytest.raises(DomainError) as err:
        decode_photo(buf.getvalue())
    assert err.value.code == "too_many_pixels" and err.value.status == 413


def test_an_upload_over_the_working_resolution_keeps_its_area(service: Service) -> None:  # noqa: F811
    trial = make_trial(service)
    wound = trial.wound("A")
    big, small = _jpeg(6400, 4800), _jpeg(3200, 2400)
    r = trial.upload(wound, big, px_per_mm="40", target_point="3200,2400")
    assert r.status_code == 201, r.text
    stored = r.json()
    assert (stored["width"], stored["height"]) == (3200, 2400)
    assert stored["px_per_mm"] == pytest.approx(20.0)
    assert stored["target_point"] == pytest.approx([1600.0, 1200.0])
    r = trial.upload(
        wound, small, px_per_mm="20", target_point="1600,1200", captured_at="2026-01-06"
    )
    assert r.status_code == 201, r.text
    a_big, a_small = stored["measurement"]["area_cm2"], r.json()["measurement"]["area_cm2"]
    assert a_big is not None and a_big == pytest.approx(a_small, rel=0.05)
    photo = trial.client.get(
        f"/v1/assessments/{stored['id']}/photo.jpg", headers=trial.keys["admin"]
    )
    assert Image.open(io.BytesIO(photo.content)).size == (3200, 2400)
    # a retry with the same fields replays; the calibration is compared as sent
    key = {"Idempotency-Key": "big-1"}
    first = trial.upload(wound, big, px_per_mm="40", captured_at="2026-01-07", headers=key)
    again = trial.upload(wound, big, px_per_mm="40", captured_at="2026-01-07", headers=key)
    assert first.status_code == 201 and again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"


def test_a_large_png_is_reduced_before_its_rgb_copy() -> None:
    img = Image.new("RGB", (5000, 5000), (200, 150, 130))
    img.paste((90, 30, 30), (1000, 1000, 2000, 2000))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    photo = decode_photo(buf.getvalue(), work_max_pixels=WORKING_MAX_PIXELS)
    assert (photo.width, photo.height) == (2500, 2500) and photo.scale_x == 0.5
    assert tuple(photo.rgb[750, 750]) == (90, 30, 30) and tuple(photo.rgb[10, 10]) == (
        200,
        150,
        130,
    )
