"""Trial exports: pure builders from measurement rows to CSV, FHIR R4 and CDISC-style tables.

The routes load ``MeasurementRow`` objects (one per stored measurement, with the
provenance of the number) and call one builder. Blinding: the arm is written only
when the caller passes ``include_arm=True`` (admin keys).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
WOUND_SIZE_PANEL = ("72287-6", "Wound size panel")
WOUND_AREA = ("89260-4", "Area of wound")
WOUND_LENGTH = ("39126-8", "Length of Wound")
WOUND_WIDTH = ("39125-0", "Width of Wound")


@dataclass(frozen=True)
class MeasurementRow:
    """One stored measurement of one assessment, with everything needed to trace it."""

    study: str
    site: str
    subject_id: str
    subject_code: str
    wound_id: str
    wound_label: str
    assessment_id: str
    captured_at: datetime | date
    measurement_id: str
    model: str
    """Model id ``name-version`` that made (or, for a manual one, proposed) the outline."""
    manual: bool
    current: bool
    """This is the measurement that counts for its photo."""
    counted: bool
    """The photo's current measurement enters the cm² endpoints (calibrated, no
    unaccepted severe flag, not voided)."""
    calibration: str
    calibrated: bool
    area_cm2: float | None = None
    area_cm2_low: float | None = None
    area_cm2_high: float | None = None
    area_px: int | None = None
    perimeter_cm: float | None = None
    length_cm: float | None = None
    width_cm: float | None = None
    length_x_width_cm2: float | None = None
    px_per_mm: float | None = None
    tilt_deg: float | None = None
    components: int | None = None
    quality: Sequence[dict[str, Any]] = field(default_factory=tuple)
    model_sha256: str | None = None
    measured_at: datetime | None = None
    measured_by: str | None = None
    reason: str | None = None
    day: int | None = None
    visit: str | None = None
    wound_location: str | None = None
    index_leg: bool | None = None
    epithelialized: bool | None = None
    drainage: bool | None = None
    accepted: bool = False
    voided: bool = False
    uploaded_at: datetime | None = None
    photo_sha256: str | None = None
    photo_url: str | None = None
    arm: str | None = None


CSV_COLUMNS = [
    "study",
    "site",
    "subject_id",
    "subject_code",
    "arm",
    "wound_id",
    "wound_label",
    "wound_location",
    "index_leg",
    "assessment_id",
    "visit",
    "captured_at",
    "day",
    "uploaded_at",
    "epithelialized",
    "drainage",
    "accepted",
    "voided",
    "measurement_id",
    "current",
    "counted",
    "manual",
    "reason",
    "measured_by",
    "measured_at",
    "model",
    "model_sha256",
    "calibration",
    "calibrated",
    "px_per_mm",
    "area_cm2",
    "area_cm2_low",
    "area_cm2_high",
    "area_px",
    "perimeter_cm",
    "length_cm",
    "width_cm",
    "length_x_width_cm2",
    "tilt_deg",
    "components",
    "quality_flags",
    "quality_severe",
    "photo_sha256",
]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """A CSV cell; text that a spreadsheet would run as a formula is quoted with '."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return str(value)


def _csv(columns: Sequence[str], records: Iterable[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        writer.writerow([_cell(record.get(c)) for c in columns])
    return out.getvalue()


def _quality_codes(row: MeasurementRow) -> str:
    return ";".join(str(q.get("code", "")) for q in row.quality)


def measurements_csv(rows: Iterable[MeasurementRow], *, include_arm: bool = False) -> str:
    """One CSV row per measurement with its provenance; ``arm`` only for admins."""
    columns = [c for c in CSV_COLUMNS if include_arm or c != "arm"]
    records = []
    for row in rows:
        record = {c: getattr(row, c, None) for c in columns}
        record["quality_flags"] = _quality_codes(row)
        record["quality_severe"] = any(bool(q.get("severe")) for q in row.quality)
        records.append(record)
    return _csv(columns, records)


def _fhir_id(value: str) -> str:
    """FHIR ids allow [A-Za-z0-9-.] up to 64 characters."""
    return re.sub(r"[^A-Za-z0-9.\-]", "-", value)[:64]


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _component(code: tuple[str, str], value: float | None, unit: str) -> dict[str, Any]:
    component: dict[str, Any] = {
        "code": {
            "coding": [{"system": LOINC, "code": code[0], "display": code[1]}],
            "text": code[1],
        }
    }
    if value is None:
        component["dataAbsentReason"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                    "code": "not-performed",
                }
            ],
            "text": "photo not calibrated (no marker or scale): no length in cm",
        }
    else:
        component["valueQuantity"] = _quantity(value, unit)
    return component


def _date_time(value: datetime | date) -> str:
    return value.isoformat()


def fhir_bundle(
    rows: Iterable[MeasurementRow], *, base_url: str, include_arm: bool = False
) -> dict[str, Any]:
    """A FHIR R4 ``collection`` Bundle: per subject a Patient (pseudonymous code) and a
    ResearchSubject (``assignedArm`` only for admins); per assessment a Media (the
    photo) and one wound-size Observation (LOINC 72287-6 panel: area 89260-4,
    length 39126-8, width 39125-0) from the measurement that counts for the photo,
    ``derivedFrom`` that Media. A voided assessment's Observation is
    ``entered-in-error``."""
    base = base_url.rstrip("/")
    entries: list[dict[str, Any]] = []
    seen_subjects: set[str] = set()

    def add(resource: dict[str, Any]) -> None:
        entries.append(
            {"fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}", "resource": resource}
        )

    for row in rows:
        if not row.current:
            continue
        patient_id = _fhir_id(row.subject_id)
        if row.subject_id not in seen_subjects:
            seen_subjects.add(row.subject_id)
            add(
                {
                    "resourceType": "Patient",
                    "id": patient_id,
                    "identifier": [
                        {
                            "system": f"urn:woundscope:study:{row.study}:subject",
                            "value": row.subject_code,
                        }
                    ],
                }
            )
            research_subject: dict[str, Any] = {
                "resourceType": "ResearchSubject",
                "id": _fhir_id(f"rs-{row.subject_id}"),
                "status": "on-study",
                "study": {"identifier": {"value": row.study}, "display": row.study},
                "individual": {"reference": f"Patient/{patient_id}"},
            }
            if include_arm and row.arm is not None:
                research_subject["assignedArm"] = row.arm
            add(research_subject)
        media_id = _fhir_id(f"photo-{row.assessment_id}")
        media: dict[str, Any] = {
            "resourceType": "Media",
            "id": media_id,
            "status": "completed",
            "type": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/media-type", "code": "image"}
                ]
            },
            "subject": {"reference": f"Patient/{patient_id}"},
            "createdDateTime": _date_time(row.captured_at),
            "content": {
                "contentType": "image/jpeg",
                "title": f"{row.wound_label} {row.visit or ''}".strip(),
            },
        }
        if row.photo_url:
            media["content"]["url"] = row.photo_url
        if row.photo_sha256:
            media["identifier"] = [
                {"system": "urn:woundscope:photo-sha256", "value": row.photo_sha256}
            ]
        if row.wound_location:
            media["bodySite"] = {"text": row.wound_location}
        add(media)

        how = f"manual correction ({row.reason})" if row.manual else "automatic segmentation"
        observation: dict[str, Any] = {
            "resourceType": "Observation",
            "id": _fhir_id(f"wound-size-{row.measurement_id}"),
            "status": "entered-in-error" if row.voided else "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "exam",
                        }
                    ]
                }
            ],
            "code": {
                "coding": [
                    {"system": LOINC, "code": WOUND_SIZE_PANEL[0], "display": WOUND_SIZE_PANEL[1]}
                ],
                "text": f"Wound size: {row.wound_label}",
            },
            "subject": {"reference": f"Patient/{patient_id}"},
            "effectiveDateTime": _date_time(row.captured_at),
            "method": {"text": f"woundscope {row.model}, {how}, calibration {row.calibration}"},
            "derivedFrom": [{"reference": f"Media/{media_id}"}],
            "component": [
                _component(WOUND_AREA, row.area_cm2, "cm2"),
                _component(WOUND_LENGTH, row.length_cm, "cm"),
                _component(WOUND_WIDTH, row.width_cm, "cm"),
            ],
        }
        if row.measured_at is not None:
            observation["issued"] = row.measured_at.isoformat()
        if row.wound_location:
            observation["bodySite"] = {"text": row.wound_location}
        notes = [f"{q.get('code')}: {q.get('message', '')}".strip() for q in row.quality]
        if not row.counted:
            notes.append("not counted in the healing endpoints")
        if notes:
            observation["note"] = [{"text": n} for n in notes]
        add(observation)
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


TU_COLUMNS = [
    "STUDYID",
    "DOMAIN",
    "USUBJID",
    "TUSEQ",
    "TULNKID",
    "TUTESTCD",
    "TUTEST",
    "TUORRES",
    "TUSTRESC",
    "TULOC",
    "TUMETHOD",
    "TUEVAL",
    "VISIT",
    "TUDTC",
    "TUDY",
]

TR_COLUMNS = [
    "STUDYID",
    "DOMAIN",
    "USUBJID",
    "TRSEQ",
    "TRLNKID",
    "TRTESTCD",
    "TRTEST",
    "TRORRES",
    "TRORRESU",
    "TRSTRESC",
    "TRSTRESN",
    "TRSTRESU",
    "TRSTAT",
    "TRREASND",
    "TRMETHOD",
    "TREVAL",
    "TRGRPID",
    "VISIT",
    "TRDTC",
    "TRDY",
]

_TR_TESTS = (
    ("AREA", "Area", "area_cm2", "cm2"),
    ("LENGTH", "Longest Length", "length_cm", "cm"),
    ("WIDTH", "Greatest Width", "width_cm", "cm"),
    ("PERIM", "Perimeter", "perimeter_cm", "cm"),
)


def _usubjid(row: MeasurementRow) -> str:
    return f"{row.study}-{row.subject_code}"


def _study_day(day: int | None) -> int | None:
    """SDTM --DY: the baseline day is 1 (there is no day 0)."""
    return None if day is None else day + 1 if day >= 0 else day


def _current_rows(rows: Iterable[MeasurementRow]) -> list[MeasurementRow]:
    current = [r for r in rows if r.current and not r.voided]
    return sorted(current, key=lambda r: (r.subject_code, r.wound_label, str(r.captured_at)))


def cdisc_tu_csv(rows: Iterable[MeasurementRow]) -> str:
    """CDISC-style TU (lesion identification): one row per wound, at its first assessment."""
    first_by_wound: dict[str, MeasurementRow] = {}
    for row in _current_rows(rows):
        first_by_wound.setdefault(row.wound_id, row)
    records = []
    seq_by_subject: dict[str, int] = {}
    for row in first_by_wound.values():
        usubjid = _usubjid(row)
        seq_by_subject[usubjid] = seq_by_subject.get(usubjid, 0) + 1
        records.append(
            {
                "STUDYID": row.study,
                "DOMAIN": "TU",
                "USUBJID": usubjid,
                "TUSEQ": seq_by_subject[usubjid],
                "TULNKID": row.wound_label,
                "TUTESTCD": "TUMIDENT",
                "TUTEST": "Tumor Identification",
                "TUORRES": "ULCER",
                "TUSTRESC": "ULCER",
                "TULOC": row.wound_location,
                "TUMETHOD": "PHOTOGRAPHY",
                "TUEVAL": "INVESTIGATOR",
                "VISIT": row.visit,
                "TUDTC": _date_time(row.captured_at),
                "TUDY": _study_day(row.day),
            }
        )
    return _csv(TU_COLUMNS, records)


def cdisc_tr_csv(rows: Iterable[MeasurementRow]) -> str:
    """CDISC-style TR (lesion results): per assessment the counting measurement's area,
    length, width and perimeter, and the clinician's closure observation (WNDCLOSE).

    A photo not counted in the endpoints has TRSTAT ``NOT DONE`` with the reason."""
    records = []
    seq_by_subject: dict[str, int] = {}
    for row in _current_rows(rows):
        usubjid = _usubjid(row)
        evaluator = "INVESTIGATOR" if row.manual else "ALGORITHM"
        common = {
            "STUDYID": row.study,
            "DOMAIN": "TR",
            "USUBJID": usubjid,
            "TRLNKID": row.wound_label,
            "TRMETHOD": "PHOTOGRAPHY",
            "TRGRPID": row.assessment_id,
            "VISIT": row.visit,
            "TRDTC": _date_time(row.captured_at),
            "TRDY": _study_day(row.day),
        }
        for code, name, attribute, unit in _TR_TESTS:
            value = getattr(row, attribute)
            seq_by_subject[usubjid] = seq_by_subject.get(usubjid, 0) + 1
            record = {
                **common,
                "TRSEQ": seq_by_subject[usubjid],
                "TRTESTCD": code,
                "TRTEST": name,
                "TREVAL": evaluator,
            }
            if value is None or not row.counted:
                reason = (
                    "NOT CALIBRATED"
                    if not row.calibrated
                    else "SEVERE QUALITY FLAG"
                    if not row.counted
                    else "NOT MEASURED"
                )
                record.update({"TRSTAT": "NOT DONE", "TRREASND": reason})
            else:
                record.update(
                    {
                        "TRORRES": f"{value:g}",
                        "TRORRESU": unit,
                        "TRSTRESC": f"{value:g}",
                        "TRSTRESN": value,
                        "TRSTRESU": unit,
                    }
                )
            records.append(record)
        if row.epithelialized is not None or row.drainage is not None:
            closed = row.epithelialized is True and row.drainage is not True
            seq_by_subject[usubjid] = seq_by_subject.get(usubjid, 0) + 1
            records.append(
                {
                    **common,
                    "TRSEQ": seq_by_subject[usubjid],
                    "TRTESTCD": "WNDCLOSE",
                    "TRTEST": "Wound Closure",
                    "TRORRES": "Y" if closed else "N",
                    "TRSTRESC": "Y" if closed else "N",
                    "TRMETHOD": "CLINICAL EXAMINATION",
                    "TREVAL": "INVESTIGATOR",
                }
            )
    return _csv(TR_COLUMNS, records)
