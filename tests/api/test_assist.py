"""``POST /v1/assessments/{id}/outline``: a box or points -> a suggested outline that
saves nothing; who may ask; bounded input; saving it through ``PUT …/mask``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from service.core.pipeline import polygon_mask
from tests.api.conftest import SAMPLES, Trial

# The wound of sample 0078 lies at x 160-214, y 186-278 (its truth mask); the marker
# photo keeps the sample at its top-left.
TRUTH = np.asarray(Image.open(SAMPLES / "labels" / "0078.png")) > 0
BOX = [155.0, 176.0, 220.0, 288.0]
CENTRE = (187.0, 232.0)


@pytest.fixture
def photo(trial: Trial, marker_jpeg: bytes) -> tuple[str, str]:
    """(wound, assessment) of a marker photo uploaded at site A."""
    wound = trial.wound("A")
    r = trial.upload(wound, marker_jpeg)
    assert r.status_code == 201, r.text
    return wound, r.json()["id"]


def outline(trial: Trial, assessment: str, body: object, key: str = "clinician"):
    return trial.client.post(
        f"/v1/assessments/{assessment}/outline", json=body, headers=trial.keys[key]
    )


def _state(trial: Trial, assessment: str) -> tuple[list[int], int]:
    """(measurement ids, audit entries) of the photo: what a suggestion must not change."""
    a = trial.client.get(f"/v1/assessments/{assessment}", headers=trial.keys["admin"]).json()
    audit = trial.client.get("/v1/audit", params={"limit": 500}, headers=trial.keys["admin"]).json()
    return [m["id"] for m in a["measurements"]], audit["total"]


def _dice(polygons: list, shape: tuple[int, int]) -> float:
    mask = polygon_mask(json.dumps(polygons), shape[1], shape[0]) > 0
    truth = np.zeros(shape, bool)
    truth[: TRUTH.shape[0], : TRUTH.shape[1]] = TRUTH
    return 2 * np.count_nonzero(mask & truth) / (np.count_nonzero(mask) + np.count_nonzero(truth))


def test_a_box_outlines_the_wound_and_saves_nothing(trial: Trial, photo: tuple[str, str]) -> None:
    _, assessment = photo
    before = _state(trial, assessment)
    r = outline(trial, assessment, {"box": BOX})
    assert r.status_code == 200, r.text
    s = r.json()
    assert set(s) >= {"polygon", "area_cm2", "area_cm2_low", "area_cm2_high", "engine", "ms"}
    assert len(s["polygon"]) >= 3 and s["polygons"][0] == s["polygon"]
    assert "box-crop" in s["engine"] and "ulcerseg-" in s["engine"]
    assert s["area_cm2_low"] <= s["area_cm2"] <= s["area_cm2_high"]
    # the outline is the wound (sample 0078's truth), not the box
    assert _dice(s["polygons"], (832, 512)) > 0.75
    xs = [p[0] for p in s["polygon"]]
    ys = [p[1] for p in s["polygon"]]
    assert BOX[0] - 10 <= min(xs) and max(xs) <= BOX[2] + 10
    assert BOX[1] - 10 <= min(ys) and max(ys) <= BOX[3] + 10
    assert _state(trial, assessment) == before  # no measurement, no audit entry

    # saving it is the existing correction: the same area, audited there
    r = trial.client.put(
        f"/v1/assessments/{assessment}/mask",
        data={"polygon": json.dumps(s["polygons"]), "reason": "assisted outline"},
        headers=trial.keys["clinician"],
    )
    assert r.status_code == 201, r.text
    assert r.json()["manual"] is True
    assert r.json()["area_cm2"] == pytest.approx(s["area_cm2"], rel=1e-6)


def test_points_add_and_remove_regions(trial: Trial, photo: tuple[str, str]) -> None:
    _, assessment = photo
    boxed = outline(trial, assessment, {"box": BOX}).json()
    # a 0-point on the wound removes it
    removed = outline(trial, assessment, {"box": BOX, "points": [[*CENTRE, 0]]})
    assert removed.status_code == 200, removed.text
    assert removed.json()["polygons"] == [] or removed.json()["area_px"] < boxed["area_px"] / 2
    # points alone: a 1-point on the wound is outlined around it
    alone = outline(trial, assessment, {"points": [[*CENTRE, 1]]})
    assert alone.status_code == 200, alone.text
    mask = polygon_mask(json.dumps(alone.json()["polygons"]), 512, 832)
    assert mask[int(CENTRE[1]), int(CENTRE[0])] == 255
    # a 1-point on plain skin far from the wound adds a region there
    skin = (400.0, 60.0)
    added = outline(trial, assessment, {"box": BOX, "points": [[*skin, 1]]}).json()
    mask = polygon_mask(json.dumps(added["polygons"]), 512, 832)
    assert mask[int(skin[1]), int(skin[0])] == 255
    assert added["area_px"] > boxed["area_px"]


@pytest.mark.parametrize(
    ("key", "status"),
    [("clinician", 200), ("admin", 200), ("uploader", 403), ("monitor", 403), ("clinician_B", 404)],
)
def test_who_may_ask(trial: Trial, photo: tuple[str, str], key: str, status: int) -> None:
    _, assessment = photo
    r = outline(trial, assessment, {"box": BOX}, key=key)
    assert r.status_code == status, r.text
    if status != 200:
        assert r.json()["code"] == {403: "forbidden", 404: "not_found"}[status]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "invalid_prompt"),
        ({"box": [0, 0, 600, 100]}, "invalid_prompt"),  # wider than the photo (512)
        ({"box": [-5, 0, 100, 100]}, "invalid_prompt"),
        ({"box": [10, 10, 12, 100]}, "invalid_prompt"),  # a click, not a box
        ({"box": [10, 10, 100]}, "invalid_prompt"),
        ({"points": [[10, 10, 2]]}, "invalid_prompt"),
        ({"points": [[10, 900, 1]]}, "invalid_prompt"),  # below the photo (832)
        ({"points": [[10, 10, 1]] * 21}, "too_many_points"),
        ({"box": BOX, "extra": 1}, "invalid_request"),
    ],
)
def test_bounded_input(trial: Trial, photo: tuple[str, str], body: dict, code: str) -> None:
    _, assessment = photo
    r = outline(trial, assessment, body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code


def test_twenty_points_are_enough(trial: Trial, photo: tuple[str, str]) -> None:
    _, assessment = photo
    points = [[CENTRE[0] + i, CENTRE[1], 1] for i in range(20)]
    assert outline(trial, assessment, {"points": points}).status_code == 200


def test_a_voided_photo_gets_no_suggestion(trial: Trial, photo: tuple[str, str]) -> None:
    _, assessment = photo
    r = trial.client.patch(
        f"/v1/assessments/{assessment}",
        json={"voided": True, "reason": "misfiled"},
        headers=trial.keys["clinician"],
    )
    assert r.status_code == 200, r.text
    r = outline(trial, assessment, {"box": BOX})
    assert r.status_code == 409 and r.json()["code"] == "already_voided"
