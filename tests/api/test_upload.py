"""The upload flow end to end with the real model, real storage and real databases."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from service.persistence.orm import Assessment, AuditEntry, Measurement
from tests.api.conftest import Trial, encode, sample_photo


def _count_rows(trial: Trial) -> tuple[int, int]:
    with trial.service.db.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(Assessment)) or 0,
            session.scalar(select(func.count()).select_from(Measurement)) or 0,
        )


def _stored_keys(trial: Trial) -> set[str]:
    return set(trial.service.app.state.runtime.store.keys())


def test_upload_end_to_end(trial: Trial, marker_jpeg: bytes) -> None:
    c, wound = trial.client, trial.wound()
    r = trial.upload(wound, marker_jpeg, key="uploader", visit="V1", drainage="true")
    assert r.status_code == 201, r.text
    a = r.json()
    assert r.headers["Location"] == f"/v1/assessments/{a['id']}"
    assert (a["wound"], a["day"], a["visit"], a["drainage"]) == (wound, 0, "V1", True)
    m = a["measurement"]
    assert m["calibrated"] and m["calibration"] == "marker"
    assert m["px_per_mm"] == pytest.approx(10.0, rel=0.02)  # the marker was pasted at 10 px/mm
    assert m["area_cm2_low"] <= m["area_cm2"] <= m["area_cm2_high"]
    assert m["model"]["name"] == "ulcerseg" and len(m["model"]["sha256"]) == 64
    assert m["manual"] is False and a["measurements"] == [m]
    # The outline's share of the interval, from the model's calibrated constants.
    seg_pct = m["uncertainty"]["segmentation_pct"]
    assert seg_pct is not None and m["uncertainty"]["calibration_pct"] < seg_pct
    assert m["area_cm2_high"] >= m["area_cm2"] * (1 + seg_pct / 100)
    # It counts unless a review flag holds it for a clinician (the default policy).
    held = any(q["code"] == "outline_uncertain" for q in m["quality"])
    assert a["counted"] is not held
    for key in (
        "area_px",
        "components",
        "perimeter_cm",
        "length_cm",
        "width_cm",
        "length_x_width_cm2",
        "tilt_deg",
        "quality",
    ):
        assert key in m
    h = trial.keys["clinician"]
    assert c.get(f"/v1/assessments/{a['id']}", headers=h).json() == a
    photo = Image.open(io.BytesIO(c.get(a["photo_url"], headers=h).content))
    mask = np.asarray(Image.open(io.BytesIO(c.get(a["mask_url"], headers=h).content)))
    overlay = Image.open(io.BytesIO(c.get(a["overlay_url"], headers=h).content))
    assert photo.format == "JPEG" and overlay.format == "JPEG"
    assert photo.size == overlay.size == (a["width"], a["height"]) == (mask.shape[1], mask.shape[0])
    assert set(np.unique(mask)) <= {0, 255} and int((mask > 0).sum()) == m["area_px"]
    # a later visit counts its days from the baseline
    r2 = trial.upload(
        wound,
        sample_photo("0082"),
        key="uploader",
        captured_at="2026-01-19T09:30:00",
        px_per_mm="10",
    )
    assert r2.status_code == 201 and r2.json()["day"] == 14
    assert r2.json()["measurement"]["calibration"] == "px_per_mm"
    listed = c.get(f"/v1/wounds/{wound}/assessments", headers=h).json()
    assert [x["id"] for x in listed["items"]] == [a["id"], r2.json()["id"]] and listed["total"] == 2
    audit = c.get("/v1/audit", params={"study": trial.study}, headers=trial.keys["admin"]).json()[
        "items"
    ]
    created = [e for e in audit if e["action"] == "assessment.create"]
    assert len(created) == 2 and {e["actor"] for e in created} == {"uploader holder"}


def test_idempotent_retry_returns_the_first_result(trial: Trial) -> None:
    wound, photo = trial.wound(), sample_photo("0128")
    first = trial.upload(wound, photo, key="uploader", headers={"Idempotency-Key": "retry-1"})
    assert first.status_code == 201
    rows = _count_rows(trial)
    again = trial.upload(wound, photo, key="uploader", headers={"Idempotency-Key": "retry-1"})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert _count_rows(trial) == rows
    other = trial.upload(
        wound, sample_photo("0133"), key="uploader", headers={"Idempotency-Key": "retry-1"}
    )
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_conflict")
    assert _count_rows(trial) == rows


def _jpeg_with_gps_and_rotation() -> bytes:
    rgb = np.asarray(Image.open(io.BytesIO(sample_photo("0887"))).convert("RGB"))[
        :, :400
    ]  # 400 x 512
    img = Image.fromarray(rgb)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Model X"  # Model
    exif[0xA431] = "SERIAL-12345"  # BodySerialNumber
    exif[0x013B] = "Jane Patient"  # Artist
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (48.0, 51.0, 24.0), "E", (2.0, 21.0, 3.0)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif, quality=92)
    data = buf.getvalue()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825)  # the GPS is really there
    return data


def test_gps_and_identifying_exif_never_stored_or_served(trial: Trial) -> None:
    wound, data = trial.wound(), _jpeg_with_gps_and_rotation()
    r = trial.upload(wound, data, key="uploader")
    assert r.status_code == 201, r.text
    a = r.json()
    assert (a["width"], a["height"]) == (512, 400)  # EXIF orientation applied
    served = trial.client.get(a["photo_url"], headers=trial.keys["monitor"]).content
    with trial.service.db.sessions() as session:
        stored = trial.service.app.state.runtime.store.get(
            session.get(Assessment, a["id"]).photo_key
        )
    for blob in (served, stored):
        img = Image.open(io.BytesIO(blob))
        assert len(img.getexif()) == 0 and "exif" not in img.info
        assert (
            b"SERIAL-12345" not in blob
            and b"Jane Patient" not in blob
            and b"PhoneMaker" not in blob
        )
        assert img.size == (512, 400)


def test_heic_upload(trial: Trial) -> None:
    import pillow_heif

    # 256 x 256 around the ulcer: HEVC encoding is slow, and the size does not matter here
    rgb = np.ascontiguousarray(
        np.asarray(Image.open(io.BytesIO(sample_photo("0901"))).convert("RGB"))[120:376, 80:336]
    )
    heif = pillow_heif.from_bytes(mode="RGB", size=(rgb.shape[1], rgb.shape[0]), data=rgb.tobytes())
    buf = io.BytesIO()
    heif.save(buf, quality=90)
    r = trial.upload(
        trial.wound(), buf.getvalue(), key="uploader", filename="IMG_0001.HEIC", px_per_mm="8"
    )
    assert r.status_code == 201, r.text
    assert (r.json()["width"], r.json()["height"]) == (256, 256)
    assert r.json()["measurement"]["calibration"] == "px_per_mm"
    photo = trial.client.get(r.json()["photo_url"], headers=trial.keys["uploader"]).content
    assert Image.open(io.BytesIO(photo)).format == "JPEG"


@pytest.mark.parametrize(
    ("photo", "fields", "status", "code"),
    [
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", {}, 415, "unsupported_format"),
        (b"plain text, not a photo", {}, 415, "unsupported_format"),
        (sample_photo("0078")[:3000], {}, 422, "corrupt_image"),
        (b"", {}, 422, "empty_file"),
        (sample_photo("0078"), {"captured_at": "05/01/2026"}, 422, "invalid_date"),
        (sample_photo("0078"), {"captured_at": "2999-01-01"}, 422, "invalid_date"),
        (sample_photo("0078"), {"target_point": "600,10"}, 422, "invalid_target_point"),
        (sample_photo("0078"), {"target_point": "abc"}, 422, "invalid_target_point"),
        (sample_photo("0078"), {"px_per_mm": "-3"}, 422, "invalid_scale"),
        (sample_photo("0078"), {"ruler": "1,2,3"}, 422, "invalid_ruler"),
    ],
)
def test_refused_upload_leaves_nothing_behind(
    trial: Trial, photo: bytes, fields: dict[str, str], status: int, code: str
) -> None:
    wound = trial.wound()
    before_rows, before_keys = _count_rows(trial), _stored_keys(trial)
    r = trial.upload(wound, photo, key="uploader", **fields)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert r.json()["detail"]
    assert _count_rows(trial) == before_rows
    assert _stored_keys(trial) == before_keys


def test_too_large_and_too_many_pixels(trial: Trial, monkeypatch: pytest.MonkeyPatch) -> None:
    wound, settings = trial.wound(), trial.service.settings
    monkeypatch.setattr(settings, "max_upload_bytes", 5_000)
    r = trial.upload(wound, sample_photo("0078"), key="uploader")
    assert (r.status_code, r.json()["code"]) == (413, "photo_too_large")
    monkeypatch.undo()
    monkeypatch.setattr(settings, "max_pixels", 100 * 100)
    r = trial.upload(wound, sample_photo("0078"), key="uploader")
    assert (r.status_code, r.json()["code"]) == (413, "too_many_pixels")
    r = trial.upload(wound, b"x", key="uploader", captured_at="")
    assert r.status_code == 422


def test_busy_pool_answers_503_with_retry_after(trial: Trial) -> None:
    pool = trial.service.app.state.runtime.pool
    wound = trial.wound()
    for _ in range(pool.limit):  # every worker and queue slot taken
        pool._admit()
    try:
        r = trial.upload(wound, sample_photo("0078"), key="uploader")
        assert (r.status_code, r.json()["code"]) == (503, "busy")
        assert int(r.headers["Retry-After"]) >= 1
        metrics = trial.client.get("/metrics").text
        assert f"woundscope_queue_depth {float(pool.limit)}" in metrics
    finally:
        for _ in range(pool.limit):
            pool._release()
    assert trial.upload(wound, sample_photo("0078"), key="uploader").status_code == 201


def test_manual_correction_keeps_the_automatic_measurement(
    trial: Trial, marker_jpeg: bytes
) -> None:
    c = trial.client
    a = trial.upload(trial.wound(), marker_jpeg, key="uploader").json()
    url = f"/v1/assessments/{a['id']}/mask"
    h = trial.keys["clinician"]
    r = c.put(url, data={"polygon": "[[100,100],[300,100],[300,200],[100,200]]"}, headers=h)
    assert (r.status_code, r.json()["code"]) == (422, "reason_required")
    r = c.put(
        url,
        data={
            "polygon": "[[100,100],[300,100],[300,200],[100,200]]",
            "reason": "outline missed the slough",
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    manual = r.json()
    assert manual["manual"] and manual["reason"] == "outline missed the slough"
    assert manual["area_cm2"] == pytest.approx(2.0, rel=0.03)  # 200 x 100 px at 10 px/mm
    assert manual["model"] == a["measurement"]["model"]  # which model's outline was corrected
    now = c.get(f"/v1/assessments/{a['id']}", headers=h).json()
    assert now["measurement"]["id"] == manual["id"]
    assert [m["id"] for m in now["measurements"]] == [manual["id"], a["measurement"]["id"]]
    assert now["measurements"][1] == a["measurement"]  # the automatic one is unchanged
    # a PNG mask of the wrong size, then of the right size
    small = encode(np.zeros((10, 10), dtype=np.uint8), "PNG")
    r = c.put(url, files={"mask": ("m.png", small, "image/png")}, data={"reason": "x"}, headers=h)
    assert (r.status_code, r.json()["code"]) == (422, "mask_size_mismatch")
    full = np.zeros((a["height"], a["width"]), dtype=np.uint8)
    full[50:150, 50:250] = 255
    r = c.put(
        url,
        files={"mask": ("m.png", encode(full, "PNG"), "image/png")},
        data={"reason": "redrawn"},
        headers=h,
    )
    assert r.status_code == 201 and r.json()["area_px"] == 200 * 100
    served = np.asarray(
        Image.open(io.BytesIO(c.get(f"/v1/assessments/{a['id']}/mask.png", headers=h).content))
    )
    assert np.array_equal(served, full)
    assert c.get(f"/v1/assessments/{a['id']}/overlay.jpg", headers=h).status_code == 200


def test_closure_accept_and_void(trial: Trial) -> None:
    c, h = trial.client, trial.keys["clinician"]
    wound = trial.wound()
    a = trial.upload(wound, sample_photo("0133"), key="uploader").json()  # no marker, no scale
    assert a["measurement"]["calibrated"] is False and a["counted"] is False
    assert any(q["severe"] for q in a["measurement"]["quality"])
    url = f"/v1/assessments/{a['id']}"
    r = c.patch(url, json={"epithelialized": True, "drainage": False, "accepted": True}, headers=h)
    assert r.status_code == 200
    assert (r.json()["epithelialized"], r.json()["drainage"], r.json()["accepted"]) == (
        True,
        False,
        True,
    )
    r = c.patch(url, json={"voided": True}, headers=h)
    assert (r.status_code, r.json()["code"]) == (422, "reason_required")
    r = c.patch(url, json={"voided": True, "reason": "photo of the wrong patient"}, headers=h)
    assert (
        r.status_code == 200
        and r.json()["voided"]
        and r.json()["void_reason"] == "photo of the wrong patient"
    )
    r = c.patch(url, json={"epithelialized": False}, headers=h)
    assert (r.status_code, r.json()["code"]) == (409, "already_voided")
    assert c.get(f"/v1/wounds/{wound}/assessments", headers=h).json()["total"] == 0
    assert (
        c.get(f"/v1/wounds/{wound}/assessments?include_voided=true", headers=h).json()["total"] == 1
    )
    audit = c.get("/v1/audit", params={"study": trial.study}, headers=trial.keys["admin"]).json()[
        "items"
    ]
    void = next(e for e in audit if e["action"] == "assessment.void")
    assert void["before"]["voided"] is False and void["after"]["voided"] is True
    assert (
        void["actor"] == "clinician holder"
        and void["after"]["reason"] == "photo of the wrong patient"
    )
    # The reason travels with the exports: the CSV's void_reason, the FHIR Media's note.
    exported = c.get(f"/v1/studies/{trial.study}/export.csv", headers=trial.keys["monitor"]).text
    rows = [r for r in csv.DictReader(io.StringIO(exported)) if r["assessment_id"] == a["id"]]
    assert rows and all(r["void_reason"] == "photo of the wrong patient" for r in rows)
    bundle = c.get(f"/v1/studies/{trial.study}/export.fhir.json", headers=trial.keys["monitor"])
    media = [
        e["resource"]
        for e in bundle.json()["entry"]
        if e["resource"]["resourceType"] == "Media"
        and e["resource"]["identifier"][0]["value"] == a["id"]
    ]
    assert media[0]["status"] == "entered-in-error"
    assert media[0]["note"] == [{"text": "Voided: photo of the wrong patient"}]


def test_locked_study_refuses_writes(trial: Trial) -> None:
    c, admin = trial.client, trial.keys["admin"]
    wound = trial.wound()
    a = trial.upload(wound, sample_photo("0078"), key="uploader").json()
    assert c.patch(f"/v1/studies/{trial.study}", json={"locked": True}, headers=admin).json()[
        "locked"
    ]
    writes = [
        c.post(
            f"/v1/studies/{trial.study}/subjects", json={"code": "L1", "site": "A"}, headers=admin
        ),
        trial.upload(wound, sample_photo("0078"), key="uploader"),
        c.patch(
            f"/v1/assessments/{a['id']}",
            json={"epithelialized": True},
            headers=trial.keys["clinician"],
        ),
        c.post(f"/v1/studies/{trial.study}/sites", json={"id": "C"}, headers=admin),
        c.patch(f"/v1/studies/{trial.study}", json={"name": "renamed"}, headers=admin),
    ]
    for r in writes:
        assert (r.status_code, r.json()["code"]) == (423, "study_locked"), r.text
    assert c.get(f"/v1/assessments/{a['id']}", headers=trial.keys["monitor"]).status_code == 200
    assert not c.patch(f"/v1/studies/{trial.study}", json={"locked": False}, headers=admin).json()[
        "locked"
    ]
    assert trial.upload(wound, sample_photo("0078"), key="uploader").status_code == 201


def test_blinding_arm_is_admin_only(trial: Trial) -> None:
    c = trial.client
    r = c.post(
        f"/v1/studies/{trial.study}/subjects",
        json={"code": "B1", "site": "A", "arm": "active"},
        headers=trial.keys["admin"],
    )
    assert r.status_code == 201 and r.json()["arm"] == "active"
    subject = r.json()["id"]
    r = c.post(
        f"/v1/studies/{trial.study}/subjects",
        json={"code": "B2", "arm": "placebo"},
        headers=trial.keys["uploader"],
    )
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")
    for role in ("uploader", "clinician", "monitor"):
        assert c.get(f"/v1/subjects/{subject}", headers=trial.keys[role]).json()["arm"] is None
    listed = c.get(f"/v1/studies/{trial.study}/subjects", headers=trial.keys["monitor"]).json()
    assert all(s["arm"] is None for s in listed["items"])


def test_duplicates_answer_409(trial: Trial) -> None:
    c, admin = trial.client, trial.keys["admin"]
    assert (
        c.post(
            f"/v1/studies/{trial.study}/subjects", json={"code": "D1", "site": "A"}, headers=admin
        ).status_code
        == 201
    )
    r = c.post(
        f"/v1/studies/{trial.study}/subjects", json={"code": "D1", "site": "B"}, headers=admin
    )
    assert (r.status_code, r.json()["code"]) == (409, "already_exists")
    r = c.post(f"/v1/studies/{trial.study}/sites", json={"id": "A"}, headers=trial.service.admin)
    assert (r.status_code, r.json()["code"]) == (409, "already_exists")
    r = c.post(
        "/v1/studies", json={"id": trial.study, "name": "again"}, headers=trial.service.admin
    )
    assert (r.status_code, r.json()["code"]) == (409, "already_exists")
    wound = trial.wound(label="W9")
    subject = c.get(f"/v1/wounds/{wound}", headers=admin).json()["subject"]
    r = c.post(f"/v1/subjects/{subject}/wounds", json={"label": "W9"}, headers=admin)
    assert (r.status_code, r.json()["code"]) == (409, "already_exists")
    wounds = c.get(f"/v1/subjects/{subject}/wounds", headers=admin).json()
    assert wounds["total"] == 1 and [w["label"] for w in wounds["items"]] == ["W9"]
    r = c.post(
        "/v1/studies",
        json={"id": "X1", "name": "x", "model": "ulcerseg-9.9.9"},
        headers=trial.service.admin,
    )
    assert (r.status_code, r.json()["code"]) == (422, "model_not_installed")


def test_audit_log_records_writes_for_admins_only(trial: Trial) -> None:
    c = trial.client
    for role in ("uploader", "clinician", "monitor"):
        assert c.get("/v1/audit", headers=trial.keys[role]).status_code == 403
    entries = c.get("/v1/audit", headers=trial.keys["admin"]).json()["items"]
    assert {e["study"] for e in entries} == {trial.study}  # a study admin sees its study
    assert {"study.create", "site.create", "key.create"} <= {e["action"] for e in entries}
    with trial.service.db.sessions() as session:
        assert session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.study_id == trial.study)
        )


def test_target_point_picks_one_wound_of_several(trial: Trial) -> None:
    from tests.api.conftest import SAMPLES

    left = np.asarray(Image.open(SAMPLES / "images" / "0078.jpg").convert("RGB"))
    right = np.asarray(Image.open(SAMPLES / "images" / "0901.jpg").convert("RGB"))
    photo = encode(
        np.concatenate([left, right], axis=1), "JPEG", quality=95
    )  # two ulcers, 1024 x 512
    wound = trial.wound()
    both = trial.upload(wound, photo, key="uploader", px_per_mm="10").json()["measurement"]
    assert both["components"] >= 2  # the model sees both ulcers
    r = trial.upload(wound, photo, key="uploader", px_per_mm="10", target_point="720,246")
    assert r.status_code == 201, r.text
    one = r.json()
    assert one["target_point"] == [720.0, 246.0]
    assert one["measurement"]["components"] == 1
    assert 0 < one["measurement"]["area_px"] < both["area_px"]
    mask = np.asarray(
        Image.open(
            io.BytesIO(trial.client.get(one["mask_url"], headers=trial.keys["uploader"]).content)
        )
    )
    assert (
        int((mask > 0).sum()) == one["measurement"]["area_px"]
    )  # the stored mask is the measured one
    assert mask[:, :512].max() == 0 and mask[246, 720] == 255


def test_review_queue_lists_flagged_photos_by_site_until_accepted(trial: Trial) -> None:
    c = trial.client
    a = trial.upload(trial.wound("A"), sample_photo("0133"), key="uploader").json()  # no marker
    b = trial.upload(trial.wound("B", "W1"), sample_photo("0133"), key="uploader_B").json()
    queue = f"/v1/studies/{trial.study}/review"
    r = c.get(queue, headers=trial.keys["monitor"])
    assert r.status_code == 200
    waiting = {item["assessment"]["id"]: item for item in r.json()["items"]}
    assert {a["id"], b["id"]} <= set(waiting)
    item = waiting[a["id"]]
    assert item["site"] == "A" and item["wound_label"] == "W1"
    assert "marker_not_found" in [reason["code"] for reason in item["reasons"]]
    # A site key sees its own site's photos only.
    mine = c.get(queue, headers=trial.keys["clinician"]).json()["items"]
    assert [i["assessment"]["id"] for i in mine if i["assessment"]["id"] in (a["id"], b["id"])] == [
        a["id"]
    ]
    # Accepted: it leaves the queue (and counts).
    r = c.patch(
        f"/v1/assessments/{a['id']}", json={"accepted": True}, headers=trial.keys["clinician"]
    )
    assert r.status_code == 200
    left = {
        i["assessment"]["id"] for i in c.get(queue, headers=trial.keys["monitor"]).json()["items"]
    }
    assert a["id"] not in left and b["id"] in left
