"""Export builders: CSV with provenance, FHIR R4 wound-size Observations, CDISC TU/TR."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime

import pytest

from service.exports import (
    MeasurementRow,
    cdisc_tr_csv,
    cdisc_tu_csv,
    fhir_bundle,
    measurements_csv,
)


def row(**changes: object) -> MeasurementRow:
    values: dict[str, object] = {
        "study": "REX-001",
        "site": "A",
        "subject_id": "sub_1",
        "subject_code": "S01",
        "wound_id": "wnd_1",
        "wound_label": "W1",
        "wound_location": "left hallux",
        "assessment_id": "asm_1",
        "captured_at": date(2026, 1, 5),
        "day": 0,
        "visit": "V1",
        "measurement_id": "1",
        "model": "ulcerseg-1.2.0",
        "model_sha256": "ab" * 32,
        "manual": False,
        "current": True,
        "counted": True,
        "calibration": "marker",
        "calibrated": True,
        "area_cm2": 3.25,
        "area_cm2_low": 3.1,
        "area_cm2_high": 3.4,
        "perimeter_cm": 7.5,
        "length_cm": 2.5,
        "width_cm": 1.5,
        "quality": (),
        "measured_at": datetime(2026, 1, 5, 10, 0, tzinfo=UTC),
        "arm": "active",
        "photo_sha256": "cd" * 32,
        "photo_url": "/v1/assessments/asm_1/photo.jpg",
    }
    values.update(changes)
    return MeasurementRow(**values)  # type: ignore[arg-type]


ROWS = [
    row(),
    row(
        assessment_id="asm_2",
        measurement_id="2",
        captured_at=date(2026, 2, 2),
        day=28,
        visit="V3",
        area_cm2=1.5,
        current=False,
    ),
    row(
        assessment_id="asm_2",
        measurement_id="3",
        captured_at=date(2026, 2, 2),
        day=28,
        visit="V3",
        area_cm2=1.25,
        manual=True,
        reason="outline included the marker",
        measured_by="Dr Who",
        epithelialized=False,
        drainage=False,
    ),
    row(
        assessment_id="asm_3",
        measurement_id="4",
        captured_at=date(2026, 2, 16),
        day=42,
        calibration="none",
        calibrated=False,
        counted=False,
        area_cm2=None,
        length_cm=None,
        width_cm=None,
        perimeter_cm=None,
        quality=({"code": "marker_missing", "message": "no marker found", "severe": True},),
    ),
    row(
        subject_id="sub_2",
        subject_code="=HYPERLINK(1)",
        wound_id="wnd_2",
        assessment_id="asm_4",
        measurement_id="5",
        arm="control",
    ),
]


def parse(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_one_row_per_measurement_with_provenance() -> None:
    records = parse(measurements_csv(ROWS))
    assert len(records) == len(ROWS)
    assert "arm" not in records[0]  # blinded by default
    first = records[0]
    assert first["model"] == "ulcerseg-1.2.0"
    assert first["calibration"] == "marker"
    assert first["manual"] == "false"
    assert first["area_cm2"] == "3.25"
    assert first["captured_at"] == "2026-01-05"
    manual = records[2]
    assert manual["manual"] == "true"
    assert manual["reason"] == "outline included the marker"
    assert manual["current"] == "true"
    assert records[1]["current"] == "false"
    flagged = records[3]
    assert flagged["quality_flags"] == "marker_missing"
    assert flagged["quality_severe"] == "true"
    assert flagged["counted"] == "false"
    assert flagged["area_cm2"] == ""
    # A subject code that a spreadsheet would execute is neutralised.
    assert records[4]["subject_code"] == "'=HYPERLINK(1)"


def test_csv_arm_only_for_admins() -> None:
    records = parse(measurements_csv(ROWS, include_arm=True))
    assert [r["arm"] for r in records] == ["active"] * 4 + ["control"]


def test_fhir_bundle_wound_size_observations() -> None:
    bundle = fhir_bundle(ROWS, base_url="https://ws.example/fhir/")
    json.dumps(bundle)  # serialisable
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "collection"
    resources = [e["resource"] for e in bundle["entry"]]
    by_type: dict[str, list[dict]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    assert len(by_type["Patient"]) == 2
    assert len(by_type["Media"]) == 4  # one per assessment
    observations = by_type["Observation"]
    assert len(observations) == 4  # the counting measurement of each assessment
    ids = {e["fullUrl"] for e in bundle["entry"]}
    # The Observation belongs to the assessment (a correction amends it, same id).
    assert "https://ws.example/fhir/Observation/asm-1" in ids

    first = observations[0]
    assert first["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "72287-6",
        "display": "Wound size panel",
    }
    components = {c["code"]["coding"][0]["code"]: c for c in first["component"]}
    assert components["89260-4"]["valueQuantity"] == {
        "value": 3.25,
        "unit": "cm2",
        "system": "http://unitsofmeasure.org",
        "code": "cm2",
    }
    assert components["39126-8"]["valueQuantity"]["value"] == 2.5
    assert components["39125-0"]["valueQuantity"]["value"] == 1.5
    media_ids = {m["id"] for m in by_type["Media"]}
    for observation in observations:
        (derived,) = observation["derivedFrom"]
        assert derived["reference"].removeprefix("Media/") in media_ids
        assert observation["subject"]["reference"].startswith("Patient/")
    manual = next(o for o in observations if o["id"] == "asm-2")
    assert manual["status"] == "amended"
    assert "manual outline" in manual["method"]["text"]
    uncalibrated = next(o for o in observations if o["id"] == "asm-3")
    area = next(c for c in uncalibrated["component"] if c["code"]["coding"][0]["code"] == "89260-4")
    assert "valueQuantity" not in area
    assert area["dataAbsentReason"]["coding"][0]["code"] == "not-performed"
    assert any("marker_missing" in n["text"] for n in uncalibrated["note"])
    # Blinded: no arm anywhere (the Device's status "active" is not an arm).
    assert all("assignedArm" not in r for r in resources)
    assert "control" not in json.dumps(bundle)


def test_fhir_bundle_arm_for_admins_and_voided_photos() -> None:
    bundle = fhir_bundle([row(voided=True)], base_url="https://ws.example/fhir", include_arm=True)
    resources = {e["resource"]["resourceType"]: e["resource"] for e in bundle["entry"]}
    assert resources["ResearchSubject"]["assignedArm"] == "active"
    assert resources["Observation"]["status"] == "entered-in-error"


def test_cdisc_tu_one_row_per_wound() -> None:
    records = parse(cdisc_tu_csv(ROWS))
    assert sorted((r["USUBJID"], r["TULNKID"]) for r in records) == [
        ("REX-001-=HYPERLINK(1)", "W1"),
        ("REX-001-S01", "W1"),
    ]
    s01 = next(r for r in records if r["USUBJID"] == "REX-001-S01")
    assert s01["DOMAIN"] == "TU"
    assert s01["TUSEQ"] == "1"
    assert s01["TUDTC"] == "2026-01-05"
    assert s01["TUDY"] == "1"
    assert s01["TULOC"] == "left hallux"


def test_cdisc_tr_counting_measurements_and_closure() -> None:
    records = [r for r in parse(cdisc_tr_csv(ROWS)) if r["USUBJID"] == "REX-001-S01"]
    assert [r["TRSEQ"] for r in records] == [str(i) for i in range(1, len(records) + 1)]
    areas = [(r["TRGRPID"], r["TRSTRESN"], r["TREVAL"]) for r in records if r["TRTESTCD"] == "AREA"]
    # The superseded automatic measurement of asm_2 (1.5) is not exported; the manual one is.
    assert areas == [
        ("asm_1", "3.25", "ALGORITHM"),
        ("asm_2", "1.25", "INVESTIGATOR"),
        ("asm_3", "", "ALGORITHM"),
    ]
    not_done = next(r for r in records if r["TRGRPID"] == "asm_3" and r["TRTESTCD"] == "AREA")
    assert not_done["TRSTAT"] == "NOT DONE"
    assert not_done["TRREASND"] == "NOT CALIBRATED"
    closure = [r for r in records if r["TRTESTCD"] == "WNDCLOSE"]
    assert [(c["TRGRPID"], c["TRORRES"]) for c in closure] == [("asm_2", "N")]
    day28 = next(r for r in records if r["TRGRPID"] == "asm_2" and r["TRTESTCD"] == "AREA")
    assert day28["TRDY"] == "29"
    assert day28["TRORRESU"] == "cm2"
    assert "arm" not in records[0] and "ARM" not in records[0]


@pytest.mark.parametrize("base_url", ["https://ws.example/fhir/", None])
def test_fhir_bundle_passes_two_independent_r4_validators(base_url: str | None) -> None:
    """Two independent validators: HL7's FHIR R4 JSON schema (tests/endpoints/fhir/)
    and fhir.resources' R4B models, over the Bundle and every resource in it, with and
    without a FHIR base URL."""
    from tests.endpoints.fhir_validation import model_errors, schema_errors

    rows = [*ROWS, row(voided=True)]
    bundle = fhir_bundle(rows, base_url=base_url, include_arm=True)
    assert schema_errors(bundle) == []
    assert model_errors(bundle) == []
