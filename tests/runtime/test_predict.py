"""`woundscope predict` on real photos of several sizes, orientations and formats."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from service.core.imaging import read_photo
from tests.conftest import ROOT, SAMPLES

EXE = str(Path(sys.executable).parent / "woundscope")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real sample photos re-saved at other sizes, orientations and formats."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    d = tmp_path_factory.mktemp("photos")
    src = Image.open(SAMPLES / "images" / "0887.jpg").convert("RGB")
    src.save(d / "plain.jpg", quality=92)
    src.resize((1400, 1400)).crop((0, 200, 1400, 1100)).save(d / "wide.png")
    src.resize((300, 300)).save(d / "small.webp", quality=90)
    src.save(d / "iphone.heic", quality=80)
    # Stored sideways with EXIF "rotate 90 CW" (orientation 6): displayed upright.
    exif = Image.Exif()
    exif[0x0112] = 6
    src.crop((0, 0, 512, 384)).transpose(Image.Transpose.ROTATE_90).save(
        d / "rotated.jpg", exif=exif, quality=92
    )
    (d / "broken.jpg").write_bytes((SAMPLES / "images" / "0887.jpg").read_bytes()[:600])
    return d


def test_masks_have_the_photo_size_as_displayed(photos: Path, tmp_path: Path) -> None:
    names = ["plain.jpg", "wide.png", "small.webp", "iphone.heic", "rotated.jpg"]
    done = run("predict", *[str(photos / n) for n in names], "--out", str(tmp_path), "--json")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [Path(line["photo"]).name for line in lines] == names
    for line in lines:
        photo = read_photo(Path(line["photo"]))
        mask = np.asarray(Image.open(line["mask"]))
        assert mask.shape == (photo.height, photo.width)
        assert set(np.unique(mask)) <= {0, 255}
        assert line["wound_px"] == int((mask > 0).sum())
        assert line["components"] >= 1 and line["wound_px"] > 0, (
            f"the wound of {line['photo']} was lost"
        )
    rotated = np.asarray(Image.open(tmp_path / "rotated.png"))
    assert rotated.shape == (384, 512), "the EXIF orientation must be applied"


def test_phone_size_photo_is_refined_at_full_resolution() -> None:
    """A 4032x3024 phone-size photo: the whole-photo pass finds the wound, a second pass
    at full resolution outlines it; the mask keeps the photo's size and matches the truth."""
    import cv2

    from service.core.segmetrics import score_photo
    from service.runtime.artifacts import resolve_model
    from service.runtime.inference import Segmenter

    seg = Segmenter(resolve_model())
    small = np.asarray(Image.open(SAMPLES / "images" / "0887.jpg").convert("RGB"))
    truth_small = np.asarray(Image.open(SAMPLES / "labels" / "0887.png"))
    big = np.full((3024, 4032, 3), np.median(small.reshape(-1, 3), axis=0), np.uint8)
    big[:, 504:3528] = cv2.resize(small, (3024, 3024), interpolation=cv2.INTER_CUBIC)
    truth = np.zeros((3024, 4032), np.uint8)
    truth[:, 504:3528] = cv2.resize(truth_small, (3024, 3024), interpolation=cv2.INTER_NEAREST)
    result = seg.segment(big)
    assert result.refined and result.mask.shape == (3024, 4032)
    assert score_photo("phone", truth, result.mask).dice > 0.7


def test_no_wound_photo_gives_an_empty_mask(tmp_path: Path) -> None:
    # A plain, evenly lit skin-coloured photo has no wound.
    Image.new("RGB", (640, 480), (224, 180, 150)).save(tmp_path / "skin.png")
    done = run("predict", str(tmp_path / "skin.png"), "--out", str(tmp_path / "out"), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["wound_px"] == 0


def test_corrupt_file_is_named_in_a_clear_error(photos: Path, tmp_path: Path) -> None:
    done = run("predict", str(photos / "broken.jpg"), "--out", str(tmp_path))
    assert done.returncode == 1
    assert "broken.jpg" in done.stderr and "corrupt_image" in done.stderr


def test_two_inputs_with_one_stem_are_refused(photos: Path, tmp_path: Path) -> None:
    done = run(
        "predict",
        str(photos / "plain.jpg"),
        str(photos / "wide.png"),
        str(SAMPLES / "images" / "0887.jpg"),
        "--out",
        str(tmp_path),
    )
    assert done.returncode == 0
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    Image.new("RGB", (64, 64)).save(tmp_path / "a" / "x.png")
    Image.new("RGB", (64, 64)).save(tmp_path / "b" / "x.jpg")
    done = run("predict", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "o"))
    assert done.returncode == 1 and "same stem" in done.stderr
