"""The assisted outline's pure rules: the prompt, the crop, points, polygons."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from service.core import assist
from service.core.errors import DomainError


def test_a_prompt_is_checked_against_the_photo() -> None:
    p = assist.parse_prompt([[50, 60, 10, 20]], [[5, 5, 1]], 100, 80)
    assert p.boxes == [(10.0, 20.0, 50.0, 60.0)]  # corners in any order
    assert p.points == [(5.0, 5.0, 1)]
    for boxes, points, code in [
        (None, None, "invalid_prompt"),
        ([[0, 0, 101, 10]], None, "invalid_prompt"),
        ([[0, 0, 2, 50]], None, "invalid_prompt"),
        ([[0, 0, "a", 50]], None, "invalid_prompt"),
        ([[0, 0, float("nan"), 50]], None, "invalid_prompt"),
        (None, [[1, 1, 0.5]], "invalid_prompt"),
        (None, [[1, 81, 1]], "invalid_prompt"),
        (None, [[1, 1, 1]] * (assist.MAX_POINTS + 1), "too_many_points"),
    ]:
        with pytest.raises(DomainError) as err:
            assist.parse_prompt(boxes, points, 100, 80)
        assert err.value.code == code


def test_the_crop_is_square_around_the_box_and_inside_the_photo() -> None:
    assert assist.crop_square((40, 40, 60, 50), 200, 100, 0.5) == (30.0, 25.0, 70.0, 65.0)
    # near the edge it shifts, never pads
    x0, y0, x1, y1 = assist.crop_square((0, 0, 20, 20), 200, 100, 0.5)
    assert (x0, y0) == (0.0, 0.0) and x1 - x0 == y1 - y0 == 40
    # larger than the photo: the photo
    assert assist.crop_square((0, 0, 100, 90), 100, 90, 0.5) == (0.0, 0.0, 100.0, 90.0)


def test_a_box_keeps_the_wound_inside_it_only() -> None:
    prob = np.zeros((100, 100), np.float32)
    prob[40:60, 40:60] = 0.9  # the wound in the box
    prob[5:15, 5:15] = 0.9  # something else, outside the box
    mask = assist.box_outline(prob, (35, 35, 65, 65), 0.5, 4)
    assert mask[50, 50] and not mask[10, 10]
    assert np.count_nonzero(mask) == 400
    # faint: the component around the peak at half its probability
    faint = np.where(prob > 0, 0.3, 0.0).astype(np.float32)
    assert np.count_nonzero(assist.box_outline(faint, (35, 35, 65, 65), 0.5, 4)) == 400
    # nothing there: nothing
    assert not assist.box_outline(np.zeros((100, 100), np.float32), (35, 35, 65, 65), 0.5, 4).any()


def test_points_remove_and_add_parts() -> None:
    mask = np.zeros((100, 100), bool)
    mask[10:30, 10:30] = True
    mask[60:80, 60:80] = True
    removed = assist.exclude_at(mask, 20, 20)
    assert not removed[20, 20] and removed[70, 70]
    near = assist.exclude_at(mask, 31, 25)  # just outside (2 px): the nearest part
    assert not near[20, 20]
    rgb = np.full((100, 100, 3), 200, np.uint8)
    rgb[40:55, 80:95] = (150, 40, 40)  # a red patch the model does not see
    prob = np.zeros((100, 100), np.float32)
    grown = assist.include_at(mask, prob, rgb, 87, 47, radius=20)
    patch = np.zeros((100, 100), bool)
    patch[40:55, 80:95] = True
    added = grown & ~mask
    assert grown[47, 87] and not (added & ~patch).any()  # the patch, nothing beyond
    assert np.count_nonzero(added) >= 0.6 * 225
    prob[40:50, 40:50] = 0.4  # the model hesitates there: its region is added
    grown = assist.include_at(mask, prob, rgb, 45, 45, radius=20)
    assert np.count_nonzero(grown & ~mask) == 100


def test_polygons_follow_the_mask_with_few_vertices() -> None:
    mask = np.zeros((300, 300), np.uint8)
    cv2.circle(mask, (150, 150), 100, 1, thickness=cv2.FILLED)
    mask[20:40, 20:40] = 1
    polygons = assist.mask_polygons(mask > 0)
    assert len(polygons) == 2 and len(polygons[0]) <= 60
    filled = assist.polygons_mask(polygons, 300, 300)
    inter = np.count_nonzero(filled & (mask > 0))
    assert 2 * inter / (filled.sum() + mask.sum()) > 0.98


def test_the_prompts_file_names_its_keys() -> None:
    assert assist.prompts_file('{"a": {"boxes": [[0, 0, 9, 9]]}}') == {
        "a": {"boxes": [[0, 0, 9, 9]]}
    }
    for bad in ("[1]", "{", '{"a": {"box": []}}', '{"a": 1}'):
        with pytest.raises(DomainError):
            assist.prompts_file(bad)
