"""``woundscope measure`` and ``woundscope marker`` end to end (in process)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from service.cli import app
from service.core.imaging import read_photo
from tests.conftest import need

runner = CliRunner()
EXIF_ORIENTATION = 0x0112


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def save_png(path: Path, array: np.ndarray, orientation: int | None = None) -> Path:
    img = Image.fromarray(array)
    if orientation is None:
        img.save(path)
    else:
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = orientation
        img.save(path, exif=exif.tobytes())
    return path


def measure_json(photo: Path, mask: Path, *extra: str) -> dict:
    result = invoke("measure", photo, "--mask", mask, "--json", *extra)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def test_measure_json_on_a_rendered_photo(tmp_path, upright_shot):
    photo = save_png(tmp_path / "photo.png", upright_shot.rgb)
    mask = save_png(tmp_path / "mask.png", upright_shot.mask)
    data = measure_json(photo, mask)
    assert data["calibrated"] is True and data["calibration"] == "marker"
    assert data["area_cm2"] == pytest.approx(2.0, rel=0.01)
    assert data["area_cm2_low"] <= 2.0 <= data["area_cm2_high"]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_exif_rotated_photo_measures_like_its_upright_twin(tmp_path, upright_shot, fmt):
    """The twin stores the pixels turned a quarter-turn counter-clockwise and says so
    in EXIF (orientation 6: turn 90° clockwise to display)."""
    suffix = ".png" if fmt == "PNG" else ".jpg"
    kwargs = {} if fmt == "PNG" else {"quality": 95}
    upright = tmp_path / f"upright{suffix}"
    twin = tmp_path / f"twin{suffix}"
    Image.fromarray(upright_shot.rgb).save(upright, format=fmt, **kwargs)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    Image.fromarray(np.ascontiguousarray(np.rot90(upright_shot.rgb, k=1))).save(
        twin, format=fmt, exif=exif.tobytes(), **kwargs
    )
    stored = np.asarray(Image.open(twin))
    assert stored.shape[:2] == upright_shot.rgb.shape[1::-1]  # really stored sideways
    displayed = read_photo(twin).rgb
    assert displayed.shape == upright_shot.rgb.shape
    if fmt == "PNG":
        assert np.array_equal(displayed, upright_shot.rgb)
    mask = save_png(tmp_path / "mask.png", upright_shot.mask)  # masks align with the display
    a, b = measure_json(upright, mask), measure_json(twin, mask)
    if fmt == "PNG":
        assert a == b
    else:  # JPEG blocks fall differently on turned pixels
        assert b["area_cm2"] == pytest.approx(a["area_cm2"], rel=0.003)
        assert b["tilt_deg"] == pytest.approx(a["tilt_deg"], abs=1.0)


def test_corrupt_photo_is_a_clear_error(tmp_path, upright_shot):
    good = tmp_path / "good.jpg"
    Image.fromarray(upright_shot.rgb).save(good, quality=90)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(good.read_bytes()[:2000])
    mask = save_png(tmp_path / "mask.png", upright_shot.mask)
    result = invoke("measure", broken, "--mask", mask, "--json")
    assert result.exit_code != 0
    assert str(broken) in result.stderr and "corrupt_image" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    result = invoke("measure", text, "--mask", mask)
    assert (
        result.exit_code != 0
        and str(text) in result.stderr
        and "unsupported_format" in result.stderr
    )


def test_mask_of_the_wrong_size_is_a_clear_error(tmp_path, upright_shot):
    photo = save_png(tmp_path / "photo.png", upright_shot.rgb)
    mask = save_png(tmp_path / "mask.png", upright_shot.mask[:100, :100])
    result = invoke("measure", photo, "--mask", mask)
    assert (
        result.exit_code != 0
        and "mask_size_mismatch" in result.stderr
        and str(mask) in result.stderr
    )


def test_no_marker_is_uncalibrated_and_a_scale_calibrates(tmp_path, make_shot):
    shot = make_shot(marker_centre_mm=None)
    photo = save_png(tmp_path / "photo.png", shot.rgb)
    mask = save_png(tmp_path / "mask.png", shot.mask)
    bare = measure_json(photo, mask)
    assert bare["calibrated"] is False and bare["area_cm2"] is None
    assert bare["area_px"] == int(np.count_nonzero(shot.mask))
    assert any(f["code"] == "marker_not_found" and f["severe"] for f in bare["quality"])
    scaled = measure_json(photo, mask, "--px-per-mm", "8")
    assert scaled["calibration"] == "px_per_mm" and scaled["area_cm2"] == pytest.approx(
        bare["area_px"] / 6400, rel=1e-3
    )
    ruled = measure_json(photo, mask, "--ruler", "0,0,300,400,62.5")
    assert ruled["calibration"] == "ruler" and ruled["px_per_mm"] == pytest.approx(8.0)


def test_bad_options_are_refused(tmp_path, upright_shot):
    photo = save_png(tmp_path / "photo.png", upright_shot.rgb)
    mask = save_png(tmp_path / "mask.png", upright_shot.mask)
    for args, words in [
        (("--ruler", "1,2,3"), "x1,y1,x2,y2,mm"),
        (("--target", "12"), "x,y"),
        (("--px-per-mm", "-3"), "positive"),
    ]:
        result = invoke("measure", photo, "--mask", mask, *args)
        assert result.exit_code == 2 and words in result.stderr


def test_human_output_names_area_and_flags(tmp_path, make_shot):
    shot = make_shot(tilt_deg=55)
    photo = save_png(tmp_path / "photo.png", shot.rgb)
    mask = save_png(tmp_path / "mask.png", shot.mask)
    result = invoke("measure", photo, "--mask", mask)
    assert result.exit_code == 0, result.stderr
    assert "cm²" in result.stdout and "tilt_too_large" in result.stdout


def test_measure_without_mask_runs_the_bundled_model(samples_dir):
    from service.runtime.artifacts import installed_models

    need(bool(installed_models()), "no model is installed under models/")
    result = invoke("measure", samples_dir / "images" / "0887.jpg", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["area_px"] > 0 and data["calibrated"] is False


@pytest.mark.parametrize("suffix", [".pdf", ".png"])
def test_marker_command_writes_the_sheet(tmp_path, suffix):
    out = tmp_path / f"sheet{suffix}"
    result = invoke("marker", "--out", out, "--dpi", "150")
    assert result.exit_code == 0, result.stderr
    head = out.read_bytes()[:8]
    assert head.startswith(b"%PDF") if suffix == ".pdf" else head.startswith(b"\x89PNG")
    assert "50 mm" in result.stdout


def test_marker_command_refuses_other_formats(tmp_path):
    result = invoke("marker", "--out", tmp_path / "sheet.svg")
    assert result.exit_code == 2 and ".pdf or .png" in result.stderr
