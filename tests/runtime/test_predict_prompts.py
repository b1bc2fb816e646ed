"""`woundscope predict --prompts`: prompted photos are outlined by the assist engine,
the others as without prompts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import SAMPLES
from tests.runtime.test_predict import run

BOX = [155, 176, 220, 288]  # around sample 0078's wound (x 160-214, y 186-278)


def _photos(tmp_path: Path) -> Path:
    d = tmp_path / "photos"
    d.mkdir()
    for name in ("0078", "0082"):
        shutil.copy(SAMPLES / "images" / f"{name}.jpg", d / f"{name}.jpg")
    return d


def test_prompted_photo_is_outlined_in_its_box(tmp_path: Path) -> None:
    photos = _photos(tmp_path)
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"0078": {"boxes": [BOX]}}))
    done = run(
        "predict", str(photos), "--prompts", str(prompts), "--out", str(tmp_path / "out"), "--json"
    )
    assert done.returncode == 0, done.stderr
    lines = {Path(line["photo"]).stem: line for line in map(json.loads, done.stdout.splitlines())}
    assert "box-crop" in lines["0078"]["engine"] and "engine" not in lines["0082"]
    mask = np.asarray(Image.open(tmp_path / "out" / "0078.png")) > 0
    truth = np.asarray(Image.open(SAMPLES / "labels" / "0078.png")) > 0
    ys, xs = np.nonzero(mask)
    assert xs.min() >= BOX[0] - 8 and xs.max() <= BOX[2] + 8
    assert ys.min() >= BOX[1] - 8 and ys.max() <= BOX[3] + 8
    dice = 2 * np.count_nonzero(mask & truth) / (mask.sum() + truth.sum())
    assert dice > 0.75
    # a 0-point on the wound takes it out again
    prompts.write_text(json.dumps({"0078": {"boxes": [BOX], "points": [[187, 232, 0]]}}))
    done = run(
        "predict",
        str(photos / "0078.jpg"),
        "--prompts",
        str(prompts),
        "--out",
        str(tmp_path / "out2"),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["wound_px"] < mask.sum() / 2


def test_a_prompt_outside_the_photo_is_named(tmp_path: Path) -> None:
    photos = _photos(tmp_path)
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"0078": {"boxes": [[0, 0, 900, 100]]}}))
    done = run("predict", str(photos), "--prompts", str(prompts), "--out", str(tmp_path / "o"))
    assert done.returncode == 1
    assert "0078.jpg" in done.stderr and "invalid_prompt" in done.stderr
    assert (tmp_path / "o" / "0082.png").is_file()  # the others are still segmented


def test_a_malformed_prompts_file_is_refused(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"0078": {"box": [1, 2, 3, 4]}}))
    done = run("predict", str(_photos(tmp_path)), "--prompts", str(prompts), "--out", str(tmp_path))
    assert done.returncode != 0
    assert "boxes" in done.stderr
