"""Export builders: CSV with provenance, FHIR R4 wound-size Observations, CDISC TU/TR."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from datetime import UTC, date, datetime
from typing import Any

import pytest

from service.core.exports import (
    CODELISTS,
    SDTM_VARIABLES,
    TEST_CODES,
    TR_COLUMNS,
    TU_COLUMNS,
    MeasurementRow,
    SubjectRow,
    cdisc_dm_csv,
    cdisc_dm_records,
    cdisc_tr_csv,
    cdisc_tr_records,
    cdisc_tu_csv,
    cdisc_tu_records,
    dm_columns,
    fhir_bundle,
    measurements_csv,
    sas_transport,
    visit_numbers,
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
        uncounted_reason="uncalibrated",
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


def test_an_uncounted_row_without_its_reason_is_refused_not_guessed() -> None:
    # The reason is the caller's (counting.uncounted_reason, the one "counted" rule).
    unexplained = row(counted=False, calibrated=False)
    with pytest.raises(ValueError, match="no uncounted_reason"):
        cdisc_tr_records([unexplained])
    with pytest.raises(ValueError, match="no uncounted_reason"):
        fhir_bundle([unexplained])


def test_wndclose_is_the_closure_rule_as_the_clinician_recorded_it() -> None:
    cases = [(True, False, "Y"), (True, None, "Y"), (True, True, "N"), (False, None, "N")]
    for epithelialized, drainage, expected in cases:
        records = cdisc_tr_records([row(epithelialized=epithelialized, drainage=drainage)])
        closure = [r for r in records if r["TRTESTCD"] == "WNDCLOSE"]
        assert [c["TRORRES"] for c in closure] == [expected], (epithelialized, drainage)
    assert not [r for r in cdisc_tr_records([row()]) if r["TRTESTCD"] == "WNDCLOSE"]


@pytest.mark.parametrize("base_url", ["https://ws.example/fhir/", None])
def test_fhir_bundle_passes_two_independent_r4_validators(base_url: str | None) -> None:
    """Two independent validators: HL7's FHIR R4 JSON schema (tests/core/healing/fhir/)
    and fhir.resources' R4B models, over the Bundle and every resource in it, with and
    without a FHIR base URL."""
    from tests.core.healing.fhir_validation import model_errors, schema_errors

    rows = [*ROWS, row(voided=True)]
    bundle = fhir_bundle(rows, base_url=base_url, include_arm=True)
    assert schema_errors(bundle) == []
    assert model_errors(bundle) == []


# --- one time convention ----------------------------------------------------------------


def test_every_timestamp_has_its_offset_and_dates_stay_dates() -> None:
    """CSV and FHIR: UTC with offset (captured_at as uploaded_at and measured_at); a
    date-only capture stays a date; SDTM --DTC: the same instant at the clinic's offset
    (its date is the clinic's day, from which --DY counts)."""
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")
    timed = row(
        captured_at=datetime(2026, 1, 5, 10, 30),
        uploaded_at=datetime(2026, 1, 5, 9, 31),  # naive: stored UTC
        measured_at=datetime(2026, 1, 5, 9, 32, tzinfo=UTC),
    )
    dated = row(assessment_id="asm_9", measurement_id="9", captured_at=date(2026, 1, 19))
    first, second = parse(measurements_csv([timed, dated], clinic_tz=paris))
    assert first["captured_at"] == "2026-01-05T09:30:00+00:00"
    assert first["captured_local"] == "2026-01-05T10:30:00"
    assert first["uploaded_at"] == "2026-01-05T09:31:00+00:00"
    assert first["measured_at"] == "2026-01-05T09:32:00+00:00"
    assert second["captured_at"] == "2026-01-19"
    bundle = fhir_bundle([timed, dated], clinic_tz=paris)
    effective = sorted(
        e["resource"]["effectiveDateTime"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
    )
    assert effective == ["2026-01-05T09:30:00+00:00", "2026-01-19"]
    tr = parse(cdisc_tr_csv([timed], clinic_tz=paris))
    assert {r["TRDTC"] for r in tr} == {"2026-01-05T10:30:00+01:00"}
    # without the clinic's zone a time is not guessed: the date only
    assert parse(measurements_csv([timed]))[0]["captured_at"] == "2026-01-05"


def test_formula_guard_in_the_csv_export_not_inside_sdtm_values() -> None:
    risky = row(visit="-V2", wound_location="=HYPERLINK(1)")
    assert parse(measurements_csv([risky]))[0]["visit"] == "'-V2"
    assert parse(measurements_csv([risky]))[0]["wound_location"] == "'=HYPERLINK(1)"
    assert {r["VISIT"] for r in parse(cdisc_tr_csv([risky]))} == {"-V2"}
    tu = parse(cdisc_tu_csv([risky]))[0]
    assert (tu["VISIT"], tu["TULOC"]) == ("-V2", "=HYPERLINK(1)")
    xpt = read_xpt(
        sas_transport("TU", TU_COLUMNS, cdisc_tu_records([risky])),
    )
    assert (xpt["VISIT"][0], xpt["TULOC"][0]) == ("-V2", "=HYPERLINK(1)")


# --- SDTM as a reviewer checks it first -------------------------------------------------

ISO_DATE = r"\d{4}-\d{2}-\d{2}"
ISO_DTC = re.compile(rf"^{ISO_DATE}(T\d{{2}}:\d{{2}}(:\d{{2}})?([+-]\d{{2}}:\d{{2}}|Z))?$")


def sdtm_review_errors(dm: str, tu: str, tr: str) -> list[str]:
    """What a reviewer runs first on DM/TU/TR (CSV text): required variables present and
    filled, --SEQ unique per subject, ISO 8601 dates, study days from RFSTDTC, names
    and codes of at most 8 characters, one VISITNUM per VISIT in visit order."""
    errors: list[str] = []
    tables = {"DM": parse(dm), "TU": parse(tu), "TR": parse(tr)}
    rfstdtc = {r["USUBJID"]: r["RFSTDTC"] for r in tables["DM"]}
    for domain, records in tables.items():
        variables = SDTM_VARIABLES[domain]
        header = next(csv.reader(io.StringIO({"DM": dm, "TU": tu, "TR": tr}[domain])))
        for v in variables:
            if v.required and v.name not in header:
                errors.append(f"{domain}: required {v.name} missing")
            if len(v.name) > 8 or len(v.label) > 40:
                errors.append(f"{domain}.{v.name}: name > 8 or label > 40 characters")
        seqs: set[tuple[str, str]] = set()
        visits: dict[str, set[str]] = {}
        for i, r in enumerate(records):
            where = f"{domain}[{i}]"
            for v in variables:
                if v.required and not r.get(v.name):
                    errors.append(f"{where}: {v.name} empty")
                if v.codelist and r.get(v.name) and r[v.name] not in CODELISTS[v.codelist]:
                    errors.append(f"{where}: {v.name}={r[v.name]!r} not in {v.codelist}")
            if r["DOMAIN"] != domain:
                errors.append(f"{where}: DOMAIN {r['DOMAIN']}")
            code = r.get(f"{domain}TESTCD")
            if code is not None and (len(code) > 8 or not re.fullmatch(r"[A-Z][A-Z0-9_]*", code)):
                errors.append(f"{where}: {domain}TESTCD {code!r} is not a code of <= 8")
            if domain == "DM":
                if r["RFSTDTC"] and not ISO_DTC.match(r["RFSTDTC"]):
                    errors.append(f"{where}: RFSTDTC {r['RFSTDTC']!r} not ISO 8601")
                continue
            seq = (r["USUBJID"], r[f"{domain}SEQ"])
            if seq in seqs:
                errors.append(f"{where}: {domain}SEQ {seq} repeated")
            seqs.add(seq)
            dtc, dy = r[f"{domain}DTC"], r[f"{domain}DY"]
            if not ISO_DTC.match(dtc):
                errors.append(f"{where}: {domain}DTC {dtc!r} not ISO 8601")
                continue
            start = rfstdtc.get(r["USUBJID"])
            if not start:
                errors.append(f"{where}: {r['USUBJID']} has no RFSTDTC in DM")
                continue
            days = (date.fromisoformat(dtc[:10]) - date.fromisoformat(start[:10])).days
            if int(dy) != (days + 1 if days >= 0 else days):
                errors.append(f"{where}: {domain}DY {dy} but {dtc} is day {days} from {start}")
            if r["VISIT"]:
                visits.setdefault(r["VISIT"], set()).add(r["VISITNUM"])
        for label, numbers in visits.items():
            if len(numbers) != 1 or not all(n.isdigit() for n in numbers):
                errors.append(f"{domain}: VISIT {label} has VISITNUM {sorted(numbers)}")
    return errors


def read_xpt(data: bytes) -> Any:
    """A SAS transport file read back by pandas' own reader (not pyreadstat's)."""
    import pandas as pd

    assert data.startswith(b"HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!"), data[:80]
    assert b"LIBV8" not in data[:80], "a version 8 file, not version 5"
    frame = pd.read_sas(io.BytesIO(data), format="xport", encoding="utf-8")
    return frame


def sas_date_text(value: Any) -> str:
    """A SAS date as read back (a number of days since 1960-01-01, or a timestamp when the
    reader applies DATE9.) as an ISO date; blank when missing."""
    import math
    from datetime import timedelta

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if hasattr(value, "date"):
        return "" if str(value) == "NaT" else value.date().isoformat()
    return (date(1960, 1, 1) + timedelta(days=int(value))).isoformat()


def assert_xpt_matches_csv(data: bytes, text: str, domain: str) -> None:
    import math

    frame = read_xpt(data)
    records = parse(text)
    assert list(frame.columns) == list(records[0]) if records else True
    assert len(frame) == len(records)
    numeric = {v.name for v in SDTM_VARIABLES[domain] if v.numeric}
    dates = {v.name for v in SDTM_VARIABLES[domain] if v.sas_date}
    for i, record in enumerate(records):
        for name, value in record.items():
            got = frame[name][i]
            if name in dates:  # a SAS date: days since 1960-01-01 (DATE9. format)
                assert sas_date_text(got) == value, (domain, i, name, got, value)
            elif name in numeric:
                if value == "":
                    assert math.isnan(got), (domain, i, name, got)
                else:
                    assert got == pytest.approx(float(value)), (domain, i, name)
            else:
                assert got == value, (domain, i, name, got, value)


SUBJECTS = [
    SubjectRow(
        study="REX-001",
        subject_id=f"sub_{code}",
        subject_code=code,
        site="A",
        reference_start=date(2026, 1, 5),
        arm=arm,
    )
    for code, arm in (("S01", "active"), ("=HYPERLINK(1)", "control"))
]
assert {s.subject_code for s in SUBJECTS} == {r.subject_code for r in ROWS}


def _with_reference(rows: list[MeasurementRow]) -> list[MeasurementRow]:
    return [dataclasses.replace(r, reference_start=date(2026, 1, 5)) for r in rows]


def test_sdtm_tables_pass_the_reviewers_first_checks() -> None:
    rows = _with_reference(ROWS)
    dm = cdisc_dm_csv(SUBJECTS, include_arm=True)
    tu, tr = cdisc_tu_csv(rows), cdisc_tr_csv(rows)
    assert sdtm_review_errors(dm, tu, tr) == []
    assert {r["VISITNUM"] for r in parse(tr) if r["VISIT"]} <= {"1", "2", "3", "4"}
    # a broken table is caught (the checks can fail)
    broken = tr.replace(",AREA,", ",AREA_OF_WOUND,", 1)
    assert any("TESTCD" in e for e in sdtm_review_errors(dm, tu, broken))
    shifted = cdisc_dm_csv(
        [dataclasses.replace(s, reference_start=date(2026, 1, 1)) for s in SUBJECTS]
    )
    assert any("DY" in e for e in sdtm_review_errors(shifted, tu, tr))


def test_visitnum_follows_the_visit_labels_in_study_order() -> None:
    rows = [
        row(assessment_id=f"asm_{i}", measurement_id=str(i), visit=v, captured_at=d)
        for i, (v, d) in enumerate(
            [("V10", date(2026, 3, 1)), ("V2", date(2026, 1, 19)), ("SCR", date(2026, 1, 5))]
        )
    ]
    assert visit_numbers(rows) == {"SCR": 1, "V2": 2, "V10": 3}
    tu = parse(cdisc_tu_csv(rows))
    assert [(r["VISIT"], r["VISITNUM"]) for r in tu] == [("SCR", "1")]
    tr = parse(cdisc_tr_csv(rows))
    assert {(r["VISIT"], r["VISITNUM"]) for r in tr} == {("SCR", "1"), ("V2", "2"), ("V10", "3")}


def test_sas_transport_v5_read_back_by_pandas_equals_the_csv() -> None:
    rows = _with_reference(ROWS)
    for domain, columns, records, text in (
        (
            "DM",
            dm_columns(include_arm=True),
            cdisc_dm_records(SUBJECTS, include_arm=True),
            cdisc_dm_csv(SUBJECTS, include_arm=True),
        ),
        ("TU", TU_COLUMNS, cdisc_tu_records(rows), cdisc_tu_csv(rows)),
        ("TR", TR_COLUMNS, cdisc_tr_records(rows), cdisc_tr_csv(rows)),
    ):
        assert_xpt_matches_csv(sas_transport(domain, columns, records), text, domain)


def test_define_table_in_the_readme_is_the_code() -> None:
    from service.core.exports.metadata import markdown_tables
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    assert markdown_tables() in readme, "README's dataset tables are not the metadata home's"
    for domain, variables in SDTM_VARIABLES.items():
        for v in variables:
            assert f"| {domain} | `{v.name}` | {v.label} |" in readme, (domain, v.name)
    for name, values in CODELISTS.items():
        assert f"| `{name}` | " in readme and all(f"`{x}`" in readme for x in values), name
    for domain, code, name, *_ in TEST_CODES:
        assert f"| {domain} | `{code}` | {name} |" in readme, code


# --- the live exports of a demo-style trial (routes, real app, bundled model) ----------


@dataclasses.dataclass
class LiveTrial:
    client: Any
    study: str
    keys: dict[str, dict[str, str]]

    def get(self, role: str, path: str) -> Any:
        answer = self.client.get(f"/v1/studies/{self.study}/{path}", headers=self.keys[role])
        assert answer.status_code == 200, answer.text
        return answer


@pytest.fixture(scope="module")
def demo_trial(tmp_path_factory: pytest.TempPathFactory, samples_dir: Any) -> Any:
    """A virtual trial as `woundscope demo` loads one (simulated photos with the printed
    marker, replayed through the REST API), smaller: two subjects over three weeks."""
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from service.simulator.demo import create_study, replay
    from service.simulator.simulate import SITES, simulate_trial
    from tests.api.conftest import make_settings, need_model, server_admin_key

    need_model()
    trial_dir = tmp_path_factory.mktemp("demo-trial")
    truth = simulate_trial(trial_dir, n_subjects=2, weeks=3, seed=2026, source_dir=samples_dir)
    data_dir = tmp_path_factory.mktemp("demo-data")
    settings = make_settings(data_dir, f"sqlite:///{data_dir / 'woundscope.db'}")
    app = create_app(settings)
    with TestClient(app) as client:
        admin = server_admin_key(app.state.db)
        create_study(client, admin, "DEMO-T", "demo-style trial", truth["marker_mm"], list(SITES))
        replay(client, trial_dir, "DEMO-T", admin)
        made = client.post(
            "/v1/keys",
            json={"role": "monitor", "holder": "Mo Monitor", "study": "DEMO-T"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert made.status_code == 201, made.text
        keys = {
            "admin": {"Authorization": f"Bearer {admin}"},
            "monitor": {"Authorization": f"Bearer {made.json()['key']}"},
        }
        yield LiveTrial(client, "DEMO-T", keys)


@pytest.mark.parametrize("role", ["admin", "monitor"])
def test_live_fhir_export_passes_both_validators(demo_trial: LiveTrial, role: str) -> None:
    from tests.core.healing.fhir_validation import model_errors, schema_errors

    bundle = demo_trial.get(role, "export.fhir.json").json()
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds.count("Observation") >= 4 and "Device" in kinds and "Media" in kinds
    assert schema_errors(bundle) == []
    assert model_errors(bundle) == []
    arms = [e["resource"].get("assignedArm") for e in bundle["entry"]]
    assert any(arms) == (role == "admin")


@pytest.mark.parametrize("role", ["admin", "monitor"])
def test_live_sdtm_exports_pass_review_and_xpt_equals_csv(demo_trial: LiveTrial, role: str) -> None:
    tables = {d: demo_trial.get(role, f"export.{d}.csv").text for d in ("dm", "tu", "tr")}
    assert sdtm_review_errors(tables["dm"], tables["tu"], tables["tr"]) == []
    assert len(parse(tables["dm"])) == 2 and len(parse(tables["tu"])) >= 2
    assert all(r["VISITNUM"] for r in parse(tables["tr"]))  # every demo photo has a visit
    assert ("ARM" in tables["dm"].splitlines()[0]) == (role == "admin")
    for domain, text in tables.items():
        answer = demo_trial.get(role, f"export.{domain}.xpt")
        assert answer.headers["content-type"] == "application/x-sas-xport"
        assert_xpt_matches_csv(answer.content, text, domain.upper())


def adtte_review_errors(adtte: str, dm: str) -> list[str]:
    """What a reviewer runs first on ADTTE: required variables present and filled, names
    of at most 8 characters and labels of at most 40, PARAMCD from its codelist, CNSR 0
    or 1, ISO 8601 dates, AVAL the days from STARTDT to ADT, STARTDT the subject's
    RFSTDTC (the time origin), one record per subject and parameter (and wound)."""
    errors: list[str] = []
    records = parse(adtte)
    header = next(csv.reader(io.StringIO(adtte)))
    rfstdtc = {r["USUBJID"]: r["RFSTDTC"][:10] for r in parse(dm)}
    for v in SDTM_VARIABLES["ADTTE"]:
        if v.required and v.name not in header:
            errors.append(f"required {v.name} missing")
        if len(v.name) > 8 or len(v.label) > 40:
            errors.append(f"{v.name}: name > 8 or label > 40 characters")
    seen: set[tuple[str, str, str]] = set()
    for i, r in enumerate(records):
        where = f"ADTTE[{i}] {r.get('PARAMCD')}"
        for v in SDTM_VARIABLES["ADTTE"]:
            if v.required and r.get(v.name, "") == "":
                errors.append(f"{where}: {v.name} empty")
        if r["PARAMCD"] not in CODELISTS["PARAMCD"] or len(r["PARAMCD"]) > 8:
            errors.append(f"{where}: PARAMCD not in its codelist")
        if r["CNSR"] not in ("0", "1"):
            errors.append(f"{where}: CNSR {r['CNSR']!r}")
        for name in ("STARTDT", "ADT"):
            if r[name] and not re.fullmatch(ISO_DATE, r[name]):
                errors.append(f"{where}: {name} {r[name]!r} is not ISO 8601")
        if r["STARTDT"] and r["ADT"] and r["AVAL"]:
            days = (date.fromisoformat(r["ADT"]) - date.fromisoformat(r["STARTDT"])).days
            if days != int(float(r["AVAL"])):
                errors.append(f"{where}: AVAL {r['AVAL']} but ADT - STARTDT = {days}")
        if r["STARTDT"] and rfstdtc.get(r["USUBJID"]) and r["STARTDT"] != rfstdtc[r["USUBJID"]]:
            errors.append(f"{where}: STARTDT {r['STARTDT']} is not RFSTDTC")
        key = (r["USUBJID"], r["PARAMCD"], r.get("TULNKID", ""))
        if key in seen:
            errors.append(f"{where}: two records for {key}")
        seen.add(key)
    return errors


@pytest.mark.parametrize("role", ["admin", "monitor"])
def test_live_adtte_passes_review_and_xpt_equals_csv(demo_trial: LiveTrial, role: str) -> None:
    adtte = demo_trial.get(role, "export.adtte.csv").text
    dm = demo_trial.get(role, "export.dm.csv").text
    assert adtte_review_errors(adtte, dm) == []
    assert {r["PARAMCD"] for r in parse(adtte)} >= {"TTHEAL", "TTDEATH", "AFS"}
    assert ("TRTP" in adtte.splitlines()[0]) == (role == "admin")
    broken = adtte.replace(",TTHEAL,", ",TTHEALING,", 1)
    assert any("PARAMCD" in e for e in adtte_review_errors(broken, dm))
    answer = demo_trial.get(role, "export.adtte.xpt")
    assert_xpt_matches_csv(answer.content, adtte, "ADTTE")


def test_live_csv_times_in_one_convention(demo_trial: LiveTrial) -> None:
    records = parse(demo_trial.get("monitor", "export.csv").text)
    assert records
    for r in records:
        assert re.fullmatch(ISO_DATE, r["captured_at"]), r["captured_at"]
        for stamp in ("uploaded_at", "measured_at"):
            assert re.fullmatch(rf"{ISO_DATE}T[\d:.]+\+00:00", r[stamp]), r[stamp]


def test_media_photo_urls_are_absolute_under_the_public_url() -> None:
    """``public_url`` (``media_base_url``) makes each Media's photo URL one a FHIR
    server's users can open; without it the URL is the API path, as before."""
    from service.config import ConfigError, Settings

    def media_url(bundle: dict) -> str:  # type: ignore[type-arg]
        (media,) = [
            e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Media"
        ]
        return str(media["content"]["url"])

    assert media_url(fhir_bundle([row()])) == "/v1/assessments/asm_1/photo.jpg"
    absolute = fhir_bundle([row()], media_base_url="https://ws.example/")
    assert media_url(absolute) == "https://ws.example/v1/assessments/asm_1/photo.jpg"
    assert Settings(public_url="https://ws.example/").public_url == "https://ws.example"
    with pytest.raises((ConfigError, ValueError)):
        Settings(public_url="ws.example")
