"""The submission package (issue 27): DM deaths, DS and PR from subject events, TU's
index leg, ADSL, ADTTE with numeric dates and last-contact censoring (issue 26, defect
3), Define-XML 2.1 checked by the CDISC schema and against the transport files, the
blinding of a monitor's package, and ADTTE re-derived from SDTM + ADSL alone by code
written from the README's rules (not the engine's)."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import zipfile
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import pytest

from service.core import healing
from service.core.adtte import time_to_event
from service.core.exports import EventRow, SubjectRow
from service.core.exports.metadata import ADTTE, DATASETS, markdown_tables
from service.core.exports.package import StudyData, dataset_csv, package_zip
from service.core.exports.subject_domains import (
    cdisc_dm_records,
    cdisc_ds_records,
    cdisc_pr_records,
    cdisc_supppr_records,
)
from tests.conftest import need
from tests.core.healing.test_exports import LiveTrial, parse, sas_date_text

BASE = date(2026, 1, 5)


def day(n: int) -> date:
    return BASE + timedelta(days=n)


def subject(code: str = "S01", **changes: Any) -> SubjectRow:
    values: dict[str, Any] = {
        "study": "REX-001",
        "subject_id": f"sub_{code}",
        "subject_code": code,
        "site": "A",
        "reference_start": BASE,
        "randomized_on": BASE,
    }
    values.update(changes)
    return SubjectRow(**values)


# --- SDTM from subject events --------------------------------------------------------------


def test_dm_carries_the_death_and_only_the_demographics_recorded() -> None:
    dead = subject(
        events=(EventRow("death", day(40)),), sex="F", country="FRA", birth_date=date(1950, 3, 1)
    )
    alive = subject("S02", arm="active")
    dm = {r["SUBJID"]: r for r in cdisc_dm_records([dead, alive], include_arm=False)}
    assert (dm["S01"]["DTHFL"], dm["S01"]["DTHDTC"]) == ("Y", day(40).isoformat())
    assert (dm["S01"]["SEX"], dm["S01"]["COUNTRY"], dm["S01"]["AGE"]) == ("F", "FRA", 75)
    assert dm["S01"]["AGEU"] == "YEARS" and dm["S01"]["BRTHDTC"] == "1950-03-01"
    assert dm["S02"]["DTHFL"] is None and dm["S02"]["SEX"] is None and dm["S02"]["AGE"] is None
    assert "ARM" not in dm["S02"]
    admin = {r["SUBJID"]: r for r in cdisc_dm_records([alive], include_arm=True)}
    assert (admin["S02"]["ARM"], admin["S02"]["ACTARMCD"]) == ("active", "ACTIVE")


def test_ds_and_pr_come_from_the_subjects_events() -> None:
    events = (
        EventRow("major_amputation", day(20), "index"),
        EventRow("minor_amputation", day(10), "contralateral"),
        EventRow("revascularisation", day(5)),
        EventRow("withdrawal", day(30)),
    )
    s = subject(events=events, index_leg_side="LEFT")
    never = subject("S02", randomized_on=None, events=(EventRow("lost_to_follow_up", day(50)),))
    ds = cdisc_ds_records([s, never], {})
    assert [(r["USUBJID"], r["DSDECOD"], r["DSCAT"], r["DSSTDTC"], r["DSSTDY"]) for r in ds] == [
        ("REX-001-S01", "RANDOMIZED", "PROTOCOL MILESTONE", day(0).isoformat(), 1),
        ("REX-001-S01", "WITHDRAWAL BY SUBJECT", "DISPOSITION EVENT", day(30).isoformat(), 31),
        ("REX-001-S02", "LOST TO FOLLOW-UP", "DISPOSITION EVENT", day(50).isoformat(), 51),
    ]
    assert [r["DSSEQ"] for r in ds] == [1, 2, 1]
    pr = cdisc_pr_records([s])
    assert [(r["PRTRT"], r["PRLOC"], r["PRLAT"], r["PRSTDY"]) for r in pr] == [
        ("REVASCULARISATION", "LEG", None, 6),
        ("MINOR AMPUTATION", "FOOT", "RIGHT", 11),
        ("MAJOR AMPUTATION", "LEG", "LEFT", 21),
    ]
    supp = cdisc_supppr_records([s])
    assert [(r["IDVARVAL"], r["QNAM"], r["QVAL"]) for r in supp] == [
        ("2", "INDEXLEG", "N"),
        ("3", "INDEXLEG", "Y"),
    ]
    # without the index-leg side, laterality is missing, never guessed
    assert {
        r["PRLAT"] for r in cdisc_pr_records([dataclasses.replace(s, index_leg_side=None)])
    } == {None}


def test_a_locked_study_completes_the_subjects_no_event_ended() -> None:
    s = subject(study_locked=True)
    ds = cdisc_ds_records([s], {"sub_S01": [day(0), day(84)]})
    assert [(r["DSDECOD"], r["DSSTDTC"]) for r in ds] == [
        ("RANDOMIZED", day(0).isoformat()),
        ("COMPLETED", day(84).isoformat()),
    ]
    dead = subject(study_locked=True, events=(EventRow("death", day(9)),))
    assert [r["DSDECOD"] for r in cdisc_ds_records([dead], {})] == ["RANDOMIZED", "DEATH"]


# --- ADTTE: last contact (issue 26, defect 3), unique keys -------------------------------


def visit(asm: str, on: int, *, closed: bool = False) -> healing.Visit:
    return healing.Visit(asm, day(on), 2.0, epithelialized=closed, drainage=not closed)


def test_adtte_censors_at_the_last_contact_of_any_leg() -> None:
    other_leg_only = healing.Subject(
        "sub_A",
        [healing.Wound("w1", [visit("a0", 0), visit("a1", 42), visit("a2", 84)], "W1", False)],
        code="A",
        randomized_on=BASE,
        site="A",
    )
    amputated = healing.Subject(
        "sub_B",
        [
            healing.Wound("w2", [visit("b0", 0), visit("b1", 100)], "W1", True),
            healing.Wound("w3", [visit("b2", 0), visit("b3", 168)], "W2", False),
        ],
        code="B",
        randomized_on=BASE,
        site="A",
        events=[healing.SubjectEvent("major_amputation", day(120), "index")],
    )
    withdrawn = healing.Subject(
        "sub_C",
        [healing.Wound("w4", [visit("c0", 0), visit("c1", 28), visit("c2", 56)], "W1", True)],
        code="C",
        randomized_on=BASE,
        site="A",
        events=[
            healing.SubjectEvent("withdrawal", day(30)),
            healing.SubjectEvent("death", day(50)),
        ],
    )
    tte = time_to_event("T", [other_leg_only, amputated, withdrawn])
    rows = {(r["SUBJID"], r["PARAMCD"]): r for r in tte.adtte}
    assert len(rows) == len(tte.adtte), "USUBJID x PARAMCD repeats"
    for paramcd in ("TTDEATH", "TTMAJAMP", "AFS"):
        assert (rows["A", paramcd]["AVAL"], rows["A", paramcd]["CNSR"]) == (84, 1)
    assert ("A", "TTHEAL") not in rows  # no index-leg ulcer: out of the healing curve
    # an amputation does not end follow-up for death: photographed on day 168
    assert (rows["B", "TTDEATH"]["AVAL"], rows["B", "TTDEATH"]["CNSR"]) == (168, 1)
    assert (rows["B", "TTMAJAMP"]["AVAL"], rows["B", "TTMAJAMP"]["CNSR"]) == (120, 0)
    assert (rows["B", "AFS"]["AVAL"], rows["B", "AFS"]["CNSR"]) == (120, 0)
    # follow-up ends at the withdrawal: a later photo or death is not observed
    assert (rows["C", "TTDEATH"]["AVAL"], rows["C", "TTDEATH"]["CNSR"]) == (30, 1)
    assert rows["C", "TTDEATH"]["ADT"] == day(30).isoformat()
    lesion = {(r["SUBJID"], r["TULNKID"]): r for r in tte.adttel}
    assert len(lesion) == len(tte.adttel) == 4
    assert lesion["B", "W2"]["INDEXFL"] == "N" and lesion["B", "W1"]["INDEXFL"] == "Y"


def test_adtte_xpt_dates_are_numeric_sas_dates_with_date9() -> None:
    pyreadstat = pytest.importorskip("pyreadstat")
    s = healing.Subject(
        "sub_A",
        [healing.Wound("w1", [visit("a0", 0), visit("a1", 14, closed=True)], "W1", True)],
        code="A",
        randomized_on=BASE,
        site="A",
    )
    data = StudyData("T", [subject("A")], [], [s])
    from service.core.exports.package import dataset_xpt

    raw = dataset_xpt("ADTTE", data)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "adtte.xpt"
        path.write_bytes(raw)
        frame, meta = pyreadstat.read_xport(str(path), disable_datetime_conversion=True)
    assert meta.original_variable_types["STARTDT"] == "DATE9."
    assert meta.original_variable_types["ADT"] == "DATE9."
    assert meta.readstat_variable_types["STARTDT"] == "double"
    assert set(frame["STARTDT"]) == {float((BASE - date(1960, 1, 1)).days)}


# --- the live package: define, cross-checks, blinding, re-derivation --------------------


@pytest.fixture(scope="module")
def package_trial(tmp_path_factory: pytest.TempPathFactory, samples_dir: Any) -> Any:
    """A demo-style trial (simulated photos with the marker, replayed through the REST API)
    with deaths, an index-leg amputation, a withdrawal and a voided event added."""
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from service.simulator.demo import create_study, replay
    from service.simulator.simulate import SITES, simulate_trial
    from tests.api.conftest import make_settings, need_model, server_admin_key

    need_model()
    trial_dir = tmp_path_factory.mktemp("package-trial")
    truth = simulate_trial(trial_dir, n_subjects=4, weeks=6, seed=27, source_dir=samples_dir)
    data_dir = tmp_path_factory.mktemp("package-data")
    settings = make_settings(data_dir, f"sqlite:///{data_dir / 'woundscope.db'}")
    app = create_app(settings)
    with TestClient(app) as client:
        admin = server_admin_key(app.state.db)
        auth = {"Authorization": f"Bearer {admin}"}
        create_study(client, admin, "PKG", "package trial", truth["marker_mm"], list(SITES))
        replay(client, trial_dir, "PKG", admin)
        made = client.post(
            "/v1/keys", json={"role": "monitor", "holder": "Mo", "study": "PKG"}, headers=auth
        )
        assert made.status_code == 201, made.text
        subjects = client.get("/v1/studies/PKG/subjects", headers=auth).json()["items"]
        ids = [s["id"] for s in sorted(subjects, key=lambda s: s["code"])]
        firsts = _first_photo_dates(client, auth, ids)

        def event(i: int, kind: str, days: int, **extra: Any) -> Any:
            body = {"kind": kind, "date": (firsts[i] + timedelta(days=days)).isoformat(), **extra}
            answer = client.post(f"/v1/subjects/{ids[i]}/events", json=body, headers=auth)
            assert answer.status_code == 201, answer.text
            return answer.json()

        event(0, "major_amputation", 20, leg="index")
        event(1, "death", 60)
        event(2, "withdrawal", 15)
        wrong = event(3, "death", 10)
        voided = client.patch(
            f"/v1/subjects/{ids[3]}/events/{wrong['id']}", json={"reason": "wrong"}, headers=auth
        )
        assert voided.status_code == 200, voided.text
        event(3, "minor_amputation", 12, leg="contralateral")
        keys = {"admin": auth, "monitor": {"Authorization": f"Bearer {made.json()['key']}"}}
        demographics = {"sex": "F", "country": "FRA", "age_years": 71, "index_leg_side": "LEFT"}
        refused = client.patch(f"/v1/subjects/{ids[0]}", json=demographics, headers=keys["monitor"])
        assert refused.status_code == 403, refused.text
        bad = client.patch(f"/v1/subjects/{ids[0]}", json={"country": "France"}, headers=auth)
        assert bad.status_code == 422, bad.text
        patched = client.patch(f"/v1/subjects/{ids[0]}", json=demographics, headers=auth)
        assert patched.status_code == 200, patched.text
        assert {k: patched.json()[k] for k in demographics} == demographics
        yield LiveTrial(client, "PKG", keys)


def _first_photo_dates(client: Any, auth: dict[str, str], ids: list[str]) -> list[date]:
    firsts = []
    for sid in ids:
        wounds = client.get(f"/v1/subjects/{sid}/wounds", headers=auth).json()["items"]
        dates = []
        for w in wounds:
            items = client.get(f"/v1/wounds/{w['id']}/assessments", headers=auth).json()["items"]
            dates += [date.fromisoformat(a["captured_at"][:10]) for a in items]
        firsts.append(min(dates))
    return firsts


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def read_xpt(data: bytes) -> Any:
    import pandas as pd

    return pd.read_sas(io.BytesIO(data), format="xport", encoding="utf-8")


def xpt_variables(data: bytes) -> dict[str, tuple[str, int]]:
    """Name -> (type, length) of every variable of a transport file, read by pyreadstat
    (not by the writer's code)."""
    import tempfile
    from pathlib import Path

    import pyreadstat

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "d.xpt"
        path.write_bytes(data)
        _, meta = pyreadstat.read_xport(str(path), metadataonly=True)
    return {
        name: (
            "Num" if meta.readstat_variable_types[name] == "double" else "Char",
            meta.variable_storage_width[name],
        )
        for name in meta.column_names
    }


def define_errors(define: bytes, files: dict[str, bytes]) -> list[str]:
    """Cross-checks of a define against the package's transport files: well-formed XML;
    every dataset and variable of every .xpt described with the same type and length;
    every ItemRef, CodeListRef, MethodOID, CommentOID and leaf resolves; nothing
    described that is not in the package."""
    from xml.etree import ElementTree as ET

    ns = {"odm": "http://www.cdisc.org/ns/odm/v1.3", "def": "http://www.cdisc.org/ns/def/v2.1"}
    xlink = "{http://www.w3.org/1999/xlink}href"
    errors: list[str] = []
    root = ET.fromstring(define)
    mdv = root.find("odm:Study/odm:MetaDataVersion", ns)
    assert mdv is not None
    items = {i.get("OID"): i for i in mdv.findall("odm:ItemDef", ns)}
    codelists = {c.get("OID") for c in mdv.findall("odm:CodeList", ns)}
    methods = {m.get("OID") for m in mdv.findall("odm:MethodDef", ns)}
    comments = {c.get("OID") for c in mdv.findall("def:CommentDef", ns)}
    groups = {g.get("Name"): g for g in mdv.findall("odm:ItemGroupDef", ns)}
    xpts = {n: d for n, d in files.items() if n.endswith(".xpt")}
    if {f"{g.lower()}.xpt" for g in groups} != set(xpts):
        errors.append(f"datasets {sorted(groups)} but files {sorted(xpts)}")
    for name, group in groups.items():
        leaf = group.find("def:leaf", ns)
        if leaf is None or leaf.get(xlink) not in files:
            errors.append(f"{name}: leaf does not name a file of the package")
        refs = group.findall("odm:ItemRef", ns)
        described = {}
        for ref in refs:
            item = items.get(ref.get("ItemOID"))
            if item is None:
                errors.append(f"{name}: ItemRef {ref.get('ItemOID')} has no ItemDef")
                continue
            described[item.get("Name")] = item
            if ref.get("MethodOID") and ref.get("MethodOID") not in methods:
                errors.append(f"{name}: MethodOID {ref.get('MethodOID')} unresolved")
        actual = xpt_variables(xpts.get(f"{name.lower()}.xpt", b""))
        if list(actual) != list(described):
            errors.append(f"{name}: xpt variables {list(actual)} but define {list(described)}")
        for variable, (kind, width) in actual.items():
            item = described.get(variable)
            if item is None:
                continue
            numeric = item.get("DataType") in ("integer", "float")
            if numeric != (kind == "Num"):
                errors.append(f"{name}.{variable}: xpt {kind} but define {item.get('DataType')}")
            if item.get("Length") is not None and int(item.get("Length")) != width:
                errors.append(f"{name}.{variable}: xpt length {width}, define {item.get('Length')}")
            if kind == "Char" and item.get("DataType") == "text" and item.get("Length") is None:
                errors.append(f"{name}.{variable}: text without a Length")
    for item in items.values():
        ref = item.find("odm:CodeListRef", ns)
        if ref is not None and ref.get("CodeListOID") not in codelists:
            errors.append(f"{item.get('OID')}: codelist {ref.get('CodeListOID')} unresolved")
        if item.get(f"{{{ns['def']}}}CommentOID", comments and "") not in comments | {""}:
            errors.append(f"{item.get('OID')}: comment unresolved")
    return errors


def schema_errors(define: bytes) -> list[str]:
    """Errors of the CDISC Define-XML 2.1 schema (the XSD shipped by defineutils)."""
    need(_has("defineutils"), "defineutils (the Define-XML 2.1 schema) not installed")
    import tempfile
    from pathlib import Path

    from defineutils.validate.validate import DefineSchemaValidator

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "define.xml"
        path.write_bytes(define)
        validator = DefineSchemaValidator(path)
        return [f"{e.path}: {e.reason}" for e in validator.xsd.iter_errors(str(path))]


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@pytest.mark.parametrize("role", ["admin", "monitor"])
def test_package_define_passes_the_schema_and_matches_the_xpt(
    package_trial: LiveTrial, role: str
) -> None:
    answer = package_trial.get(role, "export.package.zip")
    assert answer.headers["content-type"] == "application/zip"
    files = unzip(answer.content)
    assert set(files) == {f"{n.lower()}.xpt" for n in DATASETS} | {"define.xml", "define.html"}
    define = files["define.xml"]
    assert schema_errors(define) == []
    assert define_errors(define, files) == []
    assert package_trial.get(role, "export.define.xml").content.count(b"<ItemGroupDef") == len(
        DATASETS
    )
    # the checks can fail: a wrong length, a dangling reference, a schema violation
    assert define_errors(re.sub(rb'Length="(\d+)"', b'Length="99"', define, count=1), files)
    assert define_errors(define.replace(b'CodeListOID="CL.NY"', b'CodeListOID="CL.XX"'), files)
    assert schema_errors(define.replace(b'DataType="integer"', b'DataType="int"', 1))
    for name in files:
        if name.endswith(".xpt"):
            frame = read_xpt(files[name])
            text = package_trial.get(role, f"export.{name[:-4]}.csv").text
            assert len(frame) == len(parse(text)), name


def test_monitor_package_names_no_arm_anywhere(package_trial: LiveTrial) -> None:
    admin = unzip(package_trial.get("admin", "export.package.zip").content)
    monitor = unzip(package_trial.get("monitor", "export.package.zip").content)
    arms = {r["ARM"] for r in parse(package_trial.get("admin", "export.dm.csv").text)}
    assert arms and all(arms)
    blinded = {v.name for d in DATASETS.values() for v in d.variables if v.blinded}

    def words(data: bytes) -> set[bytes]:
        return set(re.findall(rb"[A-Za-z0-9_]+", data.upper()))

    names = {b.encode() for b in blinded}
    values = {a.upper().encode() for a in arms}
    # the check sees them where they are: variable names as words, arm values anywhere
    # (a transport file packs text values side by side)
    assert names <= set().union(*(words(d) for d in admin.values()))
    assert all(any(v in d.upper() for d in admin.values()) for v in values)
    for name, data in monitor.items():
        assert not words(data) & names, (name, words(data) & names)
        assert not [v for v in values if v in data.upper()], name
    for name in [n for n in DATASETS]:
        header = package_trial.get("monitor", f"export.{name.lower()}.csv").text.splitlines()[0]
        assert not set(header.split(",")) & blinded, name


def test_admin_set_demographics_reach_dm_adsl_and_tu(package_trial: LiveTrial) -> None:
    dm = parse(package_trial.get("monitor", "export.dm.csv").text)
    first, *others = sorted(dm, key=lambda r: r["SUBJID"])
    assert (first["SEX"], first["COUNTRY"], first["AGE"], first["AGEU"]) == (
        "F",
        "FRA",
        "71",
        "YEARS",
    )
    assert all(r["SEX"] == r["COUNTRY"] == r["AGE"] == "" for r in others)  # not guessed
    adsl = {r["USUBJID"]: r for r in parse(package_trial.get("monitor", "export.adsl.csv").text)}
    assert adsl[first["USUBJID"]]["SEX"] == "F"
    tu = parse(package_trial.get("monitor", "export.tu.csv").text)
    supptu = {
        (r["USUBJID"], r["IDVARVAL"]): r["QVAL"]
        for r in parse(package_trial.get("monitor", "export.supptu.csv").text)
    }
    for r in tu:
        on_index = supptu.get((r["USUBJID"], r["TUSEQ"]))
        if r["USUBJID"] == first["USUBJID"] and on_index is not None:
            assert r["TULAT"] == ("LEFT" if on_index == "Y" else "RIGHT")
        else:
            assert r["TULAT"] == ""


def test_voided_events_appear_in_no_dataset(package_trial: LiveTrial) -> None:
    ds = parse(package_trial.get("monitor", "export.ds.csv").text)
    dm = parse(package_trial.get("monitor", "export.dm.csv").text)
    pr = parse(package_trial.get("monitor", "export.pr.csv").text)
    assert sum(r["DSDECOD"] == "DEATH" for r in ds) == 1  # S04's death was voided
    assert sum(r["DTHFL"] == "Y" for r in dm) == 1
    assert sorted(r["PRTRT"] for r in pr) == ["MAJOR AMPUTATION", "MINOR AMPUTATION"]
    supppr = parse(package_trial.get("monitor", "export.supppr.csv").text)
    assert sorted(r["QVAL"] for r in supppr) == ["N", "Y"]
    assert any(r["DSDECOD"] == "WITHDRAWAL BY SUBJECT" for r in ds)


def test_fhir_has_every_subject_with_its_status_and_death(package_trial: LiveTrial) -> None:
    from tests.core.healing.fhir_validation import model_errors
    from tests.core.healing.fhir_validation import schema_errors as fhir_errors

    bundle = package_trial.get("monitor", "export.fhir.json").json()
    assert fhir_errors(bundle) == [] and model_errors(bundle) == []
    resources = [e["resource"] for e in bundle["entry"]]
    patients = [r for r in resources if r["resourceType"] == "Patient"]
    subjects = [r for r in resources if r["resourceType"] == "ResearchSubject"]
    dm = parse(package_trial.get("monitor", "export.dm.csv").text)
    assert len(patients) == len(subjects) == len(dm)
    assert sum("deceasedDateTime" in p for p in patients) == 1
    statuses = sorted(s["status"] for s in subjects)
    assert statuses == ["follow-up", "off-study", "on-study", "withdrawn"]
    assert all("assignedArm" not in s for s in subjects)


# --- ADTTE re-derived from SDTM + ADSL alone ----------------------------------------------


def _records(files: dict[str, bytes], name: str) -> list[dict[str, Any]]:
    frame = read_xpt(files[f"{name}.xpt"])
    return [
        {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def _iso(value: Any) -> str:
    return sas_date_text(value)


def _wound_visits(tr: list[dict[str, Any]]) -> dict[tuple[str, str], list[tuple[date, str]]]:
    """(USUBJID, wound) -> its effective visits (date, WNDCLOSE Y/N/''), in date order:
    of several photos on one day, the last uploaded (highest TRSEQ) counts."""
    by_photo: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in sorted(tr, key=lambda r: r["TRSEQ"]):
        key = (r["USUBJID"], r["TRLNKID"], r["TRGRPID"])
        photo = by_photo.setdefault(key, {"on": date.fromisoformat(r["TRDTC"][:10]), "seq": 0})
        photo["seq"] = max(photo["seq"], r["TRSEQ"])
        if r["TRTESTCD"] == "WNDCLOSE":
            photo["closed"] = r["TRSTRESC"]
    last_of_day: dict[tuple[str, str, date], dict[str, Any]] = {}
    for (usubjid, wound, _), photo in sorted(by_photo.items(), key=lambda kv: kv[1]["seq"]):
        last_of_day[(usubjid, wound, photo["on"])] = photo
    visits: dict[tuple[str, str], list[tuple[date, str]]] = defaultdict(list)
    for (usubjid, wound, on), photo in sorted(last_of_day.items()):
        visits[(usubjid, wound)].append((on, photo.get("closed", "")))
    return visits


def _spells(visits: list[tuple[date, str]]) -> list[tuple[date, date | None]]:
    """Confirmed closures [first closed day, next open day): a run of closed visits
    confirmed by one at least 14 days after its first (README: complete closure)."""
    spells, i = [], 0
    while i < len(visits):
        if visits[i][1] != "Y":
            i += 1
            continue
        j, confirmed = i, False
        while j < len(visits) and visits[j][1] == "Y":
            confirmed = confirmed or (visits[j][0] - visits[i][0]).days >= 14
            j += 1
        if confirmed:
            reopened = next((on for on, c in visits[j:] if c == "N"), None)
            spells.append((visits[i][0], reopened))
        i = j
    return spells


def rederive_adtte(files: dict[str, bytes]) -> tuple[dict[tuple[str, str], tuple[int, int]], dict]:
    """ADTTE's (AVAL, CNSR) per (USUBJID, PARAMCD) and ADTTEL's per (USUBJID, TULNKID),
    from DM, DS, PR, SUPPPR, TU, SUPPTU, TR and ADSL only, by the README's rules."""
    adsl = {r["USUBJID"]: r for r in _records(files, "adsl")}
    supptu = {(r["USUBJID"], r["IDVARVAL"]): r["QVAL"] for r in _records(files, "supptu")}
    index_leg = {
        (r["USUBJID"], r["TULNKID"]): supptu.get((r["USUBJID"], str(int(r["TUSEQ"])))) != "N"
        for r in _records(files, "tu")
    }
    supppr = {(r["USUBJID"], r["IDVARVAL"]): r["QVAL"] for r in _records(files, "supppr")}
    amputations: dict[str, list[date]] = defaultdict(list)
    for r in _records(files, "pr"):
        if (
            r["PRTRT"] == "MAJOR AMPUTATION"
            and supppr.get((r["USUBJID"], str(int(r["PRSEQ"])))) == "Y"
        ):
            amputations[r["USUBJID"]].append(date.fromisoformat(r["PRSTDTC"]))
    ds = _records(files, "ds")
    ends = defaultdict(list)
    follow_up_ends = defaultdict(list)  # death, withdrawal, loss to follow-up
    for r in ds:
        if r["DSDECOD"] in ("WITHDRAWAL BY SUBJECT", "LOST TO FOLLOW-UP"):
            ends[r["USUBJID"]].append(date.fromisoformat(r["DSSTDTC"]))
        if r["DSDECOD"] in ("WITHDRAWAL BY SUBJECT", "LOST TO FOLLOW-UP", "DEATH"):
            follow_up_ends[r["USUBJID"]].append(date.fromisoformat(r["DSSTDTC"]))
    # README: a photo dated after the end of the subject's follow-up, or (an index-leg
    # ulcer) after the major amputation of the index leg, takes no part in closure,
    # censoring or the last visit
    visits = {
        (u, w): [
            (on, c)
            for on, c in v
            if on
            <= min(
                follow_up_ends[u] + (amputations[u] if index_leg[(u, w)] else []),
                default=on,
            )
        ]
        for (u, w), v in _wound_visits(_records(files, "tr")).items()
    }
    visits = {k: v for k, v in visits.items() if v}
    out: dict[tuple[str, str], tuple[int, int]] = {}
    lesions: dict[tuple[str, str], tuple[int, int]] = {}
    for usubjid, s in adsl.items():
        if not _iso(s["RFSTDT"]):
            continue
        origin = date.fromisoformat(_iso(s["RFSTDT"]))
        wounds = {w: v for (u, w), v in visits.items() if u == usubjid}
        for w, v in wounds.items():
            spells = _spells(v)
            on, event = (spells[0][0], 0) if spells else (v[-1][0], 1)
            lesions[(usubjid, w)] = ((on - origin).days, event)
        index = {w: v for w, v in wounds.items() if index_leg[(usubjid, w)]}
        death = date.fromisoformat(_iso(s["DTHDT"])) if _iso(s["DTHDT"]) else None
        amputation = min(amputations[usubjid], default=None)
        competing = min((d for d in (death, amputation) if d is not None), default=None)
        if index or not wounds:
            healed = _first_all_healed([_spells(v) for v in index.values()]) if index else None
            last_index = max((v[-1][0] for v in index.values()), default=origin)
            tt = (healed, 0) if healed else (last_index, 1)
            out[(usubjid, "TTHEAL")] = ((tt[0] - origin).days, tt[1])
            if healed and (competing is None or healed <= competing):
                cr = (healed, 0)
            elif competing is not None:
                cr = (competing, 0)
            else:
                cr = tt
            out[(usubjid, "CRHEAL")] = ((cr[0] - origin).days, cr[1])
        end = min(ends[usubjid], default=None)
        last = date.fromisoformat(_iso(s["LSTCNTDT"]))

        def observed(on: date | None, end: date | None = end) -> date | None:
            return on if on is not None and (end is None or on <= end) else None

        for paramcd, on in (
            ("TTMAJAMP", observed(amputation)),
            ("TTDEATH", observed(death)),
            ("AFS", min((d for d in (observed(amputation), observed(death)) if d), default=None)),
        ):
            out[(usubjid, paramcd)] = (((on or last) - origin).days, 0 if on else 1)
    return out, lesions


def _first_all_healed(spells_by_wound: list[list[tuple[date, date | None]]]) -> date | None:
    if not spells_by_wound or any(not s for s in spells_by_wound):
        return None
    for on in sorted({start for spells in spells_by_wound for start, _ in spells}):
        if all(any(a <= on and (b is None or on < b) for a, b in s) for s in spells_by_wound):
            return on
    return None


def test_adtte_is_rederived_from_sdtm_and_adsl_alone(package_trial: LiveTrial) -> None:
    files = unzip(package_trial.get("monitor", "export.package.zip").content)
    expected, lesions = rederive_adtte(files)
    adtte = _records(files, "adtte")
    got = {(r["USUBJID"], r["PARAMCD"]): (int(r["AVAL"]), int(r["CNSR"])) for r in adtte}
    assert len(got) == len(adtte), "USUBJID x PARAMCD repeats in ADTTE"
    assert got == expected
    adttel = _records(files, "adttel")
    assert {(r["USUBJID"], r["TULNKID"]): (int(r["AVAL"]), int(r["CNSR"])) for r in adttel} == (
        lesions
    )
    # ADT - STARTDT = AVAL, and the dates are real dates
    for r in adtte:
        start, end = date.fromisoformat(_iso(r["STARTDT"])), date.fromisoformat(_iso(r["ADT"]))
        assert (end - start).days == int(r["AVAL"])
    # the package's events are there to be re-derived
    assert {k[1] for k, v in got.items() if v[1] == 0} >= {"TTMAJAMP", "TTDEATH", "AFS"}
    assert set(ADTTE.keys) == {"STUDYID", "USUBJID", "PARAMCD"}


def test_readme_holds_the_metadata_tables() -> None:
    from tests.conftest import ROOT

    assert markdown_tables() in (ROOT / "README.md").read_text()


def test_every_dataset_csv_has_the_metadata_columns() -> None:
    data = StudyData("T", [subject()], [], [])
    for name, dataset in DATASETS.items():
        header = next(csv.reader(io.StringIO(dataset_csv(name, data))))
        assert header == dataset.columns(include_arm=False), name


def test_package_zip_of_a_study_without_photos_still_has_every_file() -> None:
    data = StudyData("T", [subject()], [], [healing.Subject("sub_S01", [], code="S01")])
    files = unzip(package_zip(data))
    assert set(files) == {f"{n.lower()}.xpt" for n in DATASETS} | {"define.xml", "define.html"}
    assert b"ADTTE" in files["define.html"]
