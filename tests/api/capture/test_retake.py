"""The capture page's retake and what the phone says about a sent photo, without a
browser (issue 25): a retake voids the photo it replaces with the nurse's reason, in
one step with the upload, never leaving two counted photos; the phone's advice is the
stored photo's flags in the dashboard's words; a photo measured as several areas without
a tapped point carries a stored flag that the dashboard shows too."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from tests.api.conftest import encode, marker_photo_rgb
from tests.api.dashboard.test_pages import app_trial, sign_in  # noqa: F401  (fixture)
from tests.core.healing.seed import Trial

API = "/dashboard/capture/api"


def _new_wound(client: TestClient, trial: Trial, code: str) -> tuple[str, dict[str, str]]:
    me = client.get(f"{API}/session").json()
    csrf = {"X-CSRF-Token": me["csrf"]}
    subject = client.post(
        f"{API}/studies/{trial.study}/subjects", json={"code": code}, headers=csrf
    ).json()
    wound = client.post(
        f"{API}/subjects/{subject['id']}/wounds", json={"label": "W1"}, headers=csrf
    )
    assert wound.status_code == 201, wound.text
    return str(wound.json()["id"]), csrf


def _send(client: TestClient, wound: str, csrf: dict[str, str], **fields: str) -> Any:
    key = fields.pop("key", None)
    return client.post(
        f"{API}/wounds/{wound}/assessments",
        files={
            "photo": ("camera.jpg", encode(marker_photo_rgb(), "JPEG", quality=92), "image/jpeg")
        },
        data={"captured_at": "2026-03-02", **fields},
        headers={**csrf, **({"Idempotency-Key": key} if key else {})},
    )


def test_a_retake_voids_the_photo_it_replaces_with_the_reason(
    app_trial: tuple[TestClient, Trial],  # noqa: F811
) -> None:
    client, trial = app_trial
    sign_in(client, trial.keys["uploader"])
    wound, csrf = _new_wound(client, trial, "S60")
    admin = {"Authorization": f"Bearer {trial.keys['admin']}"}

    first = _send(client, wound, csrf)
    assert first.status_code == 201, first.text
    earlier = first.json()["id"]
    # The phone's words are the stored flags' words: no codes, no setting names.
    stored = first.json()["measurement"]["quality"]
    advice = first.json()["advice"]
    assert [a["code"] for a in advice] == [q["code"] for q in stored]
    assert all("_" not in a["text"] for a in advice)

    def live() -> list[str]:
        items = client.get(f"/v1/wounds/{wound}/assessments", headers=admin).json()["items"]
        return [a["id"] for a in items]

    # Refused retakes store nothing: no reason, another day, an unknown photo.
    no_reason = _send(client, wound, csrf, replaces=earlier, replace_reason="  ")
    assert no_reason.status_code == 422 and no_reason.json()["code"] == "reason_required"
    other_day = _send(
        client, wound, csrf, captured_at="2026-03-09", replaces=earlier, replace_reason="blurred"
    )
    assert other_day.status_code == 422 and "same day" in other_day.json()["detail"]
    unknown = _send(client, wound, csrf, replaces="asm_nope", replace_reason="blurred")
    assert unknown.status_code == 404
    assert live() == [earlier]

    retake = _send(
        client, wound, csrf, replaces=earlier, replace_reason="marker half covered", key="k-60"
    )
    assert retake.status_code == 201, retake.text
    assert retake.json()["replaced"] == earlier
    assert live() == [retake.json()["id"]]
    voided = client.get(f"/v1/assessments/{earlier}", headers=admin).json()
    assert voided["voided"] is True and voided["void_reason"] == "retaken: marker half covered"
    audit = client.get(
        "/v1/audit", headers=admin, params={"action": "assessment.void", "limit": 5}
    ).json()["items"]
    entry = next(e for e in audit if e["resource"] == f"assessment/{earlier}")
    assert entry["actor"] == "Test uploader"
    assert entry["after"]["replaced_by"] == retake.json()["id"]
    # The phone resends after a lost answer: the same key replays, nothing more happens.
    again = _send(
        client, wound, csrf, replaces=earlier, replace_reason="marker half covered", key="k-60"
    )
    assert again.status_code == 201 and again.json()["id"] == retake.json()["id"]
    assert live() == [retake.json()["id"]]


def _two_blob_mask(width: int, height: int) -> bytes:
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[height // 4 : height // 4 + 60, width // 4 : width // 4 + 60] = 255
    mask[height // 2 : height // 2 + 50, width // 2 : width // 2 + 80] = 255
    out = io.BytesIO()
    Image.fromarray(mask).save(out, format="PNG")
    return out.getvalue()


def test_several_areas_without_a_tapped_point_are_a_stored_flag_the_dashboard_shows(
    app_trial: tuple[TestClient, Trial],  # noqa: F811
) -> None:
    client, trial = app_trial
    target = trial.assessments["S01-W1"][2]
    admin = {"Authorization": f"Bearer {trial.keys['admin']}"}
    photo = client.get(f"/v1/assessments/{target}", headers=admin).json()
    r = client.put(
        f"/v1/assessments/{target}/mask",
        files={"mask": ("m.png", _two_blob_mask(photo["width"], photo["height"]), "image/png")},
        data={"reason": "two islands of slough"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    stored = client.get(f"/v1/assessments/{target}", headers=admin).json()["measurement"]
    assert stored["components"] == 2
    assert "several_wounds" in [q["code"] for q in stored["quality"]]
    sign_in(client, trial.keys["clinician"])
    page = client.get(f"/dashboard/wounds/{trial.wounds['S01-W1']}").text
    assert 'data-code="several_wounds"' in page
    assert "several wound areas outlined together" in page
