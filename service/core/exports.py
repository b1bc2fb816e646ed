"""Trial exports: pure builders from measurement rows to CSV, FHIR R4 and CDISC-style tables.

The routes load ``MeasurementRow`` objects (one per stored measurement, with the
provenance of the number) and call one builder. Blinding: the arm is written only
when the caller passes ``include_arm=True`` (admin keys). The SDTM tables are built
once as records and written as CSV or as SAS transport (``sas_transport``); their
define-style metadata (``SDTM_VARIABLES``, ``CODELISTS``, ``TEST_CODES``) is the one
home the README's table and the tests read.
"""

from __future__ import annotations

import csv
import io
import re
import statistics
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

from service.core.healing import is_closed

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
WOUND_SIZE_PANEL = ("72287-6", "Wound size panel")
WOUND_AREA = ("89260-4", "Area of wound")
WOUND_LENGTH = ("39126-8", "Length of Wound")
WOUND_WIDTH = ("39125-0", "Width of Wound")

SdtmValue = str | int | float | None
"""One value of an SDTM (or ADaM) record: text, a number, or missing (None)."""
SdtmRecord = dict[str, SdtmValue]
"""One record of an SDTM domain or of ADTTE: variable name -> value."""


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
    void_reason: str | None = None
    """Why a clinician voided the photo (shown and exported; the photo is never deleted)."""
    uploaded_at: datetime | None = None
    photo_sha256: str | None = None
    photo_url: str | None = None
    arm: str | None = None
    uncounted_reason: str | None = None
    """Why the photo's current measurement stays out of the endpoints (the API's
    ``uncounted_reason``: ``uncalibrated``, ``severe_quality_flag``, …); None when counted."""
    reference_start: date | None = None
    """The subject's time origin (SDTM RFSTDTC): study days count from it."""


@dataclass(frozen=True)
class SubjectRow:
    """One subject of the study, photographed or not (the DM domain lists them all)."""

    study: str
    subject_id: str
    subject_code: str
    site: str
    reference_start: date | None = None
    arm: str | None = None


def capture_time(
    value: datetime | date, clinic_tz: tzinfo | None = None, *, utc: bool = True
) -> str:
    """A capture date/time as the exports write it (ISO 8601): the one convention of
    every export is a date when only the day is known, else a time with its offset.

    The service stores the clinic's wall-clock time without a zone. A date alone when
    only the day is known (a date upload is stored as midnight) or when the clinic's
    zone is not configured: a time without an offset is not a valid FHIR dateTime, and
    a guessed zone could move the photo to another day. With the zone known, the
    instant in UTC (``+00:00``, as ``uploaded_at`` and ``measured_at``); with
    ``utc=False`` (SDTM --DTC) the same instant at the clinic's offset, so that the
    date part stays the clinic's calendar day, from which SDTM study days count."""
    if not isinstance(value, datetime):
        return value.isoformat()
    if value.tzinfo is None:
        if value.time() == time(0) or clinic_tz is None:
            return value.date().isoformat()
        value = value.replace(tzinfo=clinic_tz)
    if utc:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="seconds")


def utc_instant(value: datetime) -> str:
    """A server-made time (stored as UTC) in UTC with its offset: ``...+00:00``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


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
    "captured_local",
    "day",
    "uploaded_at",
    "epithelialized",
    "drainage",
    "accepted",
    "voided",
    "void_reason",
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


def spreadsheet_unsafe(text: str) -> bool:
    """Text a spreadsheet would run as a formula when it opens a CSV."""
    return text.startswith(_FORMULA_START)


def _cell(value: object, *, guard: bool = True) -> str:
    """A CSV cell; with ``guard``, text that a spreadsheet would run as a formula is
    quoted with '. Aware datetimes keep their offset."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    if guard and isinstance(value, str) and spreadsheet_unsafe(value):
        return "'" + value
    return str(value)


def _csv(
    columns: Sequence[str], records: Iterable[Mapping[str, object]], *, guard: bool = True
) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        writer.writerow([_cell(record.get(c), guard=guard) for c in columns])
    return out.getvalue()


def _quality_codes(row: MeasurementRow) -> str:
    return ";".join(str(q.get("code", "")) for q in row.quality)


def measurements_csv(
    rows: Iterable[MeasurementRow], *, include_arm: bool = False, clinic_tz: tzinfo | None = None
) -> str:
    """One CSV row per measurement with its provenance; ``arm`` only for admins.

    ``captured_at`` as every export writes it (``capture_time``: a date, or the UTC
    time with its offset), like ``uploaded_at`` and ``measured_at`` (UTC, with offset);
    ``captured_local`` is the clinic's wall-clock time as uploaded, without a zone."""
    columns = [c for c in CSV_COLUMNS if include_arm or c != "arm"]
    records = []
    for row in rows:
        record = {c: getattr(row, c, None) for c in columns}
        record["captured_at"] = capture_time(row.captured_at, clinic_tz)
        for stamp in ("uploaded_at", "measured_at"):
            value = getattr(row, stamp)
            record[stamp] = utc_instant(value) if value is not None else None
        record["captured_local"] = (
            row.captured_at.isoformat(timespec="seconds")
            if isinstance(row.captured_at, datetime)
            else row.captured_at.isoformat()
        )
        record["quality_flags"] = _quality_codes(row)
        record["quality_severe"] = any(bool(q.get("severe")) for q in row.quality)
        records.append(record)
    return _csv(columns, records)


# --- what counts, in the words of each standard -------------------------------------

_NOT_DONE = {
    "uncalibrated": "NOT CALIBRATED",
    "severe_quality_flag": "SEVERE QUALITY FLAG",
    "no_measurement": "NOT MEASURED",
    "awaiting_review": "AWAITING REVIEW",
}


def not_done_reason(row: MeasurementRow, value: float | None) -> str | None:
    """Why a value of this photo is not reported (SDTM TRREASND; FHIR dataAbsentReason
    text), or None when it is: a photo kept out of the endpoints reports no value at
    all, never its area (a severe ``no_wound_found`` photo measures 0.0, which would
    read as healed).

    The reason is the caller's (``uncounted_reason``, the one "counted" rule,
    ``counting.uncounted_reason``): an export does not guess it, so a row not counted
    without one is refused."""
    if not row.counted:
        code = row.uncounted_reason
        if code is None:
            raise ValueError(
                f"measurement {row.measurement_id} of {row.assessment_id} is not counted"
                " but carries no uncounted_reason"
            )
        return _NOT_DONE.get(code, code.replace("_", " ").upper())
    return "NOT MEASURED" if value is None else None


def awaiting_clinician(row: MeasurementRow) -> bool:
    """Not counted for a reason a clinician can lift (accept or correct the outline)."""
    return not row.counted and not row.voided and row.calibrated


# --- FHIR R4 ------------------------------------------------------------------------

DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
# fullUrls without a configured FHIR base: urn:uuid, the same for a resource in every
# export (uuid5 of its type and id), so a loader can match entries across exports.
FHIR_NAMESPACE = uuid.UUID("5b0f6c39-7d5e-4c1a-9d63-3f1b2a0e8c71")
SYSTEM = {
    "subject": "urn:woundscope:subject",
    "photo": "urn:woundscope:photo",
    "wound_size": "urn:woundscope:wound-size",
    "measurement": "urn:woundscope:measurement",
    "model": "urn:woundscope:model",
    "model_sha256": "urn:woundscope:model-sha256",
    "photo_sha256": "urn:woundscope:photo-sha256",
}


def fhir_id(api_id: str) -> str:
    """A FHIR id for an API id: FHIR allows [A-Za-z0-9-.]; the API's server-made ids
    (``asm_1a2b…``) have one ``_`` and no ``-``, so ``_`` -> ``-`` is undone by
    ``-`` -> ``_``. Each resource also carries the API id itself as an identifier."""
    return re.sub(r"[^A-Za-z0-9.\-]", "-", api_id)[:64]


def api_id(fhir_resource_id: str) -> str:
    """The API id of a Patient, ResearchSubject, Media or Observation id (``fhir_id``)."""
    return fhir_resource_id.replace("-", "_")


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _concept(code: tuple[str, str]) -> dict[str, Any]:
    return {"coding": [{"system": LOINC, "code": code[0], "display": code[1]}], "text": code[1]}


def _component(
    code: tuple[str, str], value: float | None, unit: str, absent: str | None
) -> dict[str, Any]:
    component: dict[str, Any] = {"code": _concept(code)}
    if absent is not None:
        component["dataAbsentReason"] = {
            "coding": [{"system": DATA_ABSENT_REASON, "code": "not-performed"}],
            "text": absent,
        }
    else:
        component["valueQuantity"] = _quantity(float(value or 0.0), unit)
    return component


def _split_model(model: str) -> tuple[str, str]:
    """``ulcerseg-1.2.0`` -> (``ulcerseg``, ``1.2.0``): model names have no hyphen."""
    name, _, version = model.partition("-")
    return name, version or "unknown"


@dataclass(frozen=True)
class _Names:
    """How one bundle names its resources. With a configured FHIR base: ``fullUrl``
    ``{base}/{type}/{id}`` and relative references (``Type/id``); without one:
    ``urn:uuid`` fullUrls (the same for a resource in every export) and references to
    those urns, since a relative reference needs a base to resolve against."""

    base: str | None

    def full_url(self, resource_type: str, ident: str) -> str:
        if self.base:
            return f"{self.base}/{resource_type}/{ident}"
        return f"urn:uuid:{uuid.uuid5(FHIR_NAMESPACE, f'{resource_type}/{ident}')}"

    def ref(self, resource_type: str, ident: str) -> str:
        return f"{resource_type}/{ident}" if self.base else self.full_url(resource_type, ident)


def fhir_bundle(
    rows: Iterable[MeasurementRow],
    *,
    base_url: str | None = None,
    include_arm: bool = False,
    clinic_tz: tzinfo | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A FHIR R4 ``collection`` Bundle (``id`` and ``timestamp``).

    Per subject a Patient (pseudonymous) and a ResearchSubject (``assignedArm`` only for
    admins); per model a Device (name, version, sha256); per assessment a Media (the
    photo) and one wound-size Observation (LOINC 72287-6 panel: area 89260-4, length
    39126-8, width 39125-0) from the measurement that counts for the photo,
    ``derivedFrom`` that Media.

    The Observation's id and ``identifier`` belong to the assessment, not to the
    measurement: a clinician's correction (or a re-analysis) is a new version of the
    same resource, ``status: amended``, with a Provenance naming who, when, why and the
    superseded measurement, so an incremental loader updates the one value in place.
    A voided photo is ``entered-in-error``. A photo kept out of the endpoints carries
    no value: each component has ``dataAbsentReason`` with the reason the TR domain
    gives (NOT DONE); ``preliminary`` while a clinician can still accept or correct
    it. An automatic value references its Device; a corrected one names the
    clinician as ``performer``.

    ``fullUrl``: ``{base_url}/{type}/{id}`` with a configured FHIR base (references
    relative, ``Type/id``), else ``urn:uuid`` (references to those urns)."""
    names = _Names(base_url.rstrip("/") if base_url else None)
    rows = list(rows)
    history: dict[str, list[MeasurementRow]] = {}
    for row in rows:
        history.setdefault(row.assessment_id, []).append(row)
    entries: dict[str, dict[str, Any]] = {}
    for row in rows:
        if not row.current:
            continue
        resources = _photo_resources(
            row, history[row.assessment_id], names, include_arm, clinic_tz, now
        )
        for resource in resources:
            url = names.full_url(resource["resourceType"], resource["id"])
            entries.setdefault(url, {"fullUrl": url, "resource": resource})  # first one wins
    stamp = now or datetime.now(UTC)
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": utc_instant(stamp)},
        "type": "collection",
        "timestamp": utc_instant(stamp),
        "entry": list(entries.values()),
    }


def _photo_resources(
    row: MeasurementRow,
    history: Sequence[MeasurementRow],
    names: _Names,
    include_arm: bool,
    clinic_tz: tzinfo | None,
    now: datetime | None,
) -> list[dict[str, Any]]:
    """The resources of one photo's current measurement, in bundle order. Patient,
    ResearchSubject and Device repeat for every photo of the subject or model; the
    bundle keeps the first of each."""
    superseded = _superseded(row, history)
    resources = [
        _patient(row),
        _research_subject(row, names, include_arm=include_arm),
        _device(row),
        _media(row, names, clinic_tz),
        _observation(row, names, clinic_tz, _observation_status(row, superseded)),
    ]
    if superseded and not row.voided:
        resources.append(_provenance(row, superseded, names, now))
    return resources


def _subject_identifier(row: MeasurementRow) -> dict[str, Any]:
    """The subject's API id, the identifier Patient and ResearchSubject share."""
    return {"system": SYSTEM["subject"], "value": row.subject_id}


def _patient(row: MeasurementRow) -> dict[str, Any]:
    """The pseudonymous Patient: API id and the study's subject code, nothing more."""
    return {
        "resourceType": "Patient",
        "id": fhir_id(row.subject_id),
        "identifier": [
            _subject_identifier(row),
            {
                "system": f"urn:woundscope:study:{row.study}:subject",
                "value": row.subject_code,
            },
        ],
    }


def _research_subject(row: MeasurementRow, names: _Names, *, include_arm: bool) -> dict[str, Any]:
    """The subject's enrolment in the study; ``assignedArm`` only for admins (blinding)."""
    patient_id = fhir_id(row.subject_id)
    research_subject: dict[str, Any] = {
        "resourceType": "ResearchSubject",
        "id": patient_id,
        "identifier": [_subject_identifier(row)],
        "status": "on-study",
        "study": {
            "identifier": {"system": "urn:woundscope:study", "value": row.study},
            "display": row.study,
        },
        "individual": {"reference": names.ref("Patient", patient_id)},
    }
    if include_arm and row.arm is not None:
        research_subject["assignedArm"] = row.arm
    return research_subject


def _device(row: MeasurementRow) -> dict[str, Any]:
    """The segmentation model that made (or proposed) the outline: name, version, and
    the sha256 of its weights when known."""
    model_name, model_version = _split_model(row.model)
    device: dict[str, Any] = {
        "resourceType": "Device",
        "id": fhir_id(row.model),
        "identifier": [{"system": SYSTEM["model"], "value": row.model}],
        "status": "active",
        "deviceName": [{"name": model_name, "type": "model-name"}],
        "type": {"text": "wound segmentation model (woundscope software)"},
        "version": [{"value": model_version}],
    }
    if row.model_sha256:
        device["identifier"].append({"system": SYSTEM["model_sha256"], "value": row.model_sha256})
    return device


def _media(row: MeasurementRow, names: _Names, clinic_tz: tzinfo | None) -> dict[str, Any]:
    """The photo; a voided one is ``entered-in-error`` with the clinician's reason."""
    media: dict[str, Any] = {
        "resourceType": "Media",
        "id": fhir_id(row.assessment_id),
        "identifier": [{"system": SYSTEM["photo"], "value": row.assessment_id}],
        "status": "entered-in-error" if row.voided else "completed",
        "type": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/media-type", "code": "image"}
            ]
        },
        "subject": {"reference": names.ref("Patient", fhir_id(row.subject_id))},
        "createdDateTime": capture_time(row.captured_at, clinic_tz),
        "content": {
            "contentType": "image/jpeg",
            "title": f"{row.wound_label} {row.visit or ''}".strip(),
        },
    }
    if row.voided and row.void_reason:
        media["note"] = [{"text": f"Voided: {row.void_reason}"}]
    if row.photo_url:
        media["content"]["url"] = row.photo_url
    if row.photo_sha256:
        media["identifier"].append({"system": SYSTEM["photo_sha256"], "value": row.photo_sha256})
    if row.wound_location:
        media["bodySite"] = {"text": row.wound_location}
    return media


def _superseded(row: MeasurementRow, history: Sequence[MeasurementRow]) -> list[MeasurementRow]:
    """The photo's measurements stored before ``row`` (what a Provenance names)."""
    return [
        r
        for r in history
        if r is not row
        and r.measurement_id != row.measurement_id
        and _measurement_order(r) < _measurement_order(row)
    ]


def _observation_status(row: MeasurementRow, superseded: Sequence[MeasurementRow]) -> str:
    """``entered-in-error`` for a voided photo, ``preliminary`` while a clinician can
    still lift what keeps it out of the endpoints, ``amended`` once the value replaced
    an earlier one, else ``final``."""
    if row.voided:
        return "entered-in-error"
    if awaiting_clinician(row):
        return "preliminary"
    return "amended" if superseded else "final"


def _author(row: MeasurementRow, names: _Names) -> dict[str, Any]:
    """Who made the value: the clinician of a manual outline, else the model's Device."""
    if row.manual:
        return {"display": row.measured_by or "clinician"}
    return {"reference": names.ref("Device", fhir_id(row.model)), "display": row.model}


def _observation_method(row: MeasurementRow) -> str:
    if row.manual:
        method = f"manual outline by a clinician ({row.reason or 'no reason given'})"
    else:
        method = f"automatic segmentation, model {row.model}"
    return f"{method}; calibration {row.calibration}"


def _observation_notes(row: MeasurementRow, area_absent: str | None) -> list[str]:
    """The quality flags, the area's 95 % interval when the area is reported, and why
    a value is not counted."""
    notes = [f"{q.get('code')}: {q.get('message', '')}".strip() for q in row.quality]
    if area_absent is None and row.area_cm2_low is not None and row.area_cm2_high is not None:
        notes.append(
            f"95 % interval of the true area: {row.area_cm2_low:g}-{row.area_cm2_high:g} cm2"
        )
    if not row.counted:
        notes.append(f"not counted in the healing endpoints: {area_absent}")
    return notes


def _observation(
    row: MeasurementRow, names: _Names, clinic_tz: tzinfo | None, status: str
) -> dict[str, Any]:
    """The wound-size panel of the photo's current measurement; a value kept out of the
    endpoints is a ``dataAbsentReason`` (``not_done_reason``), never a number."""
    asm_id = fhir_id(row.assessment_id)
    absent = [not_done_reason(row, value) for value in (row.area_cm2, row.length_cm, row.width_cm)]
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": asm_id,
        "identifier": [{"system": SYSTEM["wound_size"], "value": row.assessment_id}],
        "status": status,
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
        "code": {**_concept(WOUND_SIZE_PANEL), "text": f"Wound size: {row.wound_label}"},
        "subject": {"reference": names.ref("Patient", fhir_id(row.subject_id))},
        "effectiveDateTime": capture_time(row.captured_at, clinic_tz),
        "method": {"text": _observation_method(row)},
        "derivedFrom": [{"reference": names.ref("Media", asm_id)}],
        "component": [
            _component(WOUND_AREA, row.area_cm2, "cm2", absent[0]),
            _component(WOUND_LENGTH, row.length_cm, "cm", absent[1]),
            _component(WOUND_WIDTH, row.width_cm, "cm", absent[2]),
        ],
    }
    if row.measured_at is not None:
        observation["issued"] = utc_instant(row.measured_at)
        observation["meta"] = {"lastUpdated": utc_instant(row.measured_at)}
    if row.manual:
        observation["performer"] = [_author(row, names)]
    else:
        observation["device"] = _author(row, names)
    if row.wound_location:
        observation["bodySite"] = {"text": row.wound_location}
    if notes := _observation_notes(row, absent[0]):
        observation["note"] = [{"text": n} for n in notes]
    return observation


def _provenance(
    row: MeasurementRow,
    superseded: Sequence[MeasurementRow],
    names: _Names,
    now: datetime | None,
) -> dict[str, Any]:
    """The update of an amended Observation: who, when, why, and each measurement it
    superseded, so a loader that kept the earlier value can tell what changed."""
    asm_id = fhir_id(row.assessment_id)
    provenance: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": asm_id,
        "target": [{"reference": names.ref("Observation", asm_id)}],
        "recorded": utc_instant(row.measured_at or now or datetime.now(UTC)),
        "activity": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                    "code": "UPDATE",
                }
            ]
        },
        "agent": [{"who": _author(row, names)}],
        "entity": [
            {
                "role": "revision",
                "what": {
                    "identifier": {"system": SYSTEM["measurement"], "value": r.measurement_id},
                    "display": _superseded_display(r),
                },
            }
            for r in superseded
        ],
    }
    if row.manual and row.reason:
        provenance["reason"] = [{"text": row.reason}]
    return provenance


def _measurement_order(row: MeasurementRow) -> tuple[int, str]:
    """Stored order of a photo's measurements (ids are increasing integers)."""
    return (
        (int(row.measurement_id), "") if row.measurement_id.isdigit() else (0, row.measurement_id)
    )


def _superseded_display(row: MeasurementRow) -> str:
    kind = "manual" if row.manual else f"automatic ({row.model})"
    area = "no area" if row.area_cm2 is None else f"{row.area_cm2:g} cm2"
    when = f", {utc_instant(row.measured_at)}" if row.measured_at is not None else ""
    return f"superseded {kind} measurement {row.measurement_id}: {area}{when}"


# --- CDISC SDTM-style TU, TR and DM ---------------------------------------------------
#
# SDTM values are written as they are (a dataset, not a spreadsheet): no formula
# guard inside them. Free text that reaches them (visit labels, wound locations) is
# refused at the API when it would start a spreadsheet formula, and subject codes and
# wound labels start with a letter or digit, so a spreadsheet that opens these CSVs
# has nothing to run; ``sdtm_unsafe_values`` finds any older value that does.


@dataclass(frozen=True)
class Variable:
    """One SDTM variable as a define.xml would describe it."""

    name: str
    label: str
    numeric: bool = False
    required: bool = False
    """SDTM core 'Req': present and never null in every record."""
    codelist: str | None = None
    """Name of the codelist its values come from (``CODELISTS``)."""


def _v(name: str, label: str, **kw: Any) -> Variable:
    return Variable(name, label, **kw)


_STUDY = (
    _v("STUDYID", "Study Identifier", required=True),
    _v("DOMAIN", "Domain Abbreviation", required=True),
    _v("USUBJID", "Unique Subject Identifier", required=True),
)
_VISIT = (
    _v("VISITNUM", "Visit Number", numeric=True),
    _v("VISIT", "Visit Name"),
)

# The define-style table (README "Trial exports" prints it): every variable of each
# domain in column order, its label (also the SAS transport label), type and codelist.
SDTM_VARIABLES: dict[str, tuple[Variable, ...]] = {
    "DM": (
        *_STUDY,
        _v("SUBJID", "Subject Identifier for the Study", required=True),
        _v("RFSTDTC", "Subject Reference Start Date/Time"),
        _v("SITEID", "Study Site Identifier", required=True),
        _v("ARMCD", "Planned Arm Code"),
        _v("ARM", "Description of Planned Arm"),
    ),
    "TU": (
        *_STUDY,
        _v("TUSEQ", "Sequence Number", numeric=True, required=True),
        _v("TULNKID", "Link ID"),
        _v("TUTESTCD", "Tumor/Lesion ID Short Name", required=True, codelist="TUTESTCD"),
        _v("TUTEST", "Tumor/Lesion ID Test Name", required=True),
        _v("TUORRES", "Tumor/Lesion ID Result", codelist="TUORRES"),
        _v("TUSTRESC", "Tumor/Lesion ID Result Std. Format", codelist="TUORRES"),
        _v("TULOC", "Location of the Tumor/Lesion"),
        _v("TUMETHOD", "Method of Identification", codelist="METHOD"),
        _v("TUEVAL", "Evaluator", codelist="EVAL"),
        *_VISIT,
        _v("TUDTC", "Date/Time of Tumor/Lesion Identification"),
        _v("TUDY", "Study Day of Tumor/Lesion Identification", numeric=True),
    ),
    "TR": (
        *_STUDY,
        _v("TRSEQ", "Sequence Number", numeric=True, required=True),
        _v("TRLNKID", "Link ID"),
        _v("TRTESTCD", "Tumor/Lesion Assessment Short Name", required=True, codelist="TRTESTCD"),
        _v("TRTEST", "Tumor/Lesion Assessment Test Name", required=True),
        _v("TRORRES", "Result or Finding in Original Units"),
        _v("TRORRESU", "Original Units", codelist="UNIT"),
        _v("TRSTRESC", "Character Result/Finding in Std Format"),
        _v("TRSTRESN", "Numeric Result/Finding in Standard Units", numeric=True),
        _v("TRSTRESU", "Standard Units", codelist="UNIT"),
        _v("TRSTAT", "Completion Status", codelist="ND"),
        _v("TRREASND", "Reason Not Done", codelist="REASND"),
        _v("TRMETHOD", "Method Used to Identify the Tumor/Lesion", codelist="METHOD"),
        _v("TREVAL", "Evaluator", codelist="EVAL"),
        _v("TRGRPID", "Group ID"),
        *_VISIT,
        _v("TRDTC", "Date/Time of Tumor/Lesion Measurement"),
        _v("TRDY", "Study Day of Tumor/Lesion Measurement", numeric=True),
    ),
    # ADaM, not SDTM, but shipped the same way (CSV and SAS transport), so defined here too.
    "ADTTE": (
        _v("STUDYID", "Study Identifier", required=True),
        _v("USUBJID", "Unique Subject Identifier", required=True),
        _v("SUBJID", "Subject Identifier for the Study", required=True),
        _v("SITEID", "Study Site Identifier", required=True),
        _v("PARAMCD", "Parameter Code", required=True, codelist="PARAMCD"),
        _v("PARAM", "Parameter", required=True),
        _v("PARCAT1", "Parameter Category 1"),
        _v("AVAL", "Analysis Value", numeric=True),
        _v("AVALU", "Analysis Value Unit"),
        _v("STARTDT", "Time-to-Event Origin Date (ISO 8601)"),
        _v("ADT", "Analysis Date (ISO 8601)"),
        _v("CNSR", "Censor", numeric=True, required=True),
        _v("CRCAUSE", "Competing-Risk Cause (CRHEAL)", numeric=True),
        _v("EVNTDESC", "Event or Censoring Description"),
        _v("CNSDTDSC", "Censor Date Description"),
        _v("TRTP", "Planned Treatment"),
    ),
}
SDTM_LABELS = {
    "DM": "Demographics",
    "TU": "Tumor/Lesion Identification",
    "TR": "Tumor/Lesion Results",
    "ADTTE": "Time-to-Event Analysis Dataset",
}
DM_COLUMNS = [v.name for v in SDTM_VARIABLES["DM"]]
TU_COLUMNS = [v.name for v in SDTM_VARIABLES["TU"]]
TR_COLUMNS = [v.name for v in SDTM_VARIABLES["TR"]]

_TR_TESTS = (
    ("AREA", "Area", "area_cm2", "cm2"),
    ("LENGTH", "Longest Length", "length_cm", "cm"),
    ("WIDTH", "Greatest Width", "width_cm", "cm"),
    ("PERIM", "Perimeter", "perimeter_cm", "cm"),
)

# The define-style table of the test codes (README "Trial exports" lists it). Only
# TUMIDENT is taken from the CDISC TU test codelist; the others are sponsor-defined
# (not claimed to be CDISC controlled terminology).
TEST_CODES: tuple[tuple[str, str, str, str, str], ...] = (
    ("TU", "TUMIDENT", "Tumor Identification", "CDISC (TUTESTCD)", "ULCER: one row per wound"),
    ("TR", "AREA", "Area", "sponsor-defined", "wound area in the mm plane, cm2"),
    ("TR", "LENGTH", "Longest Length", "sponsor-defined", "longest length, cm"),
    ("TR", "WIDTH", "Greatest Width", "sponsor-defined", "greatest width perpendicular, cm"),
    ("TR", "PERIM", "Perimeter", "sponsor-defined", "outline perimeter, cm"),
    ("TR", "WNDCLOSE", "Wound Closure", "sponsor-defined", "Y/N: epithelialised, no drainage"),
)


ADTTE_PARAMS = {
    "TTHEAL": "Time to complete healing of all index-leg ulcers (days)",
    "TTWHEAL": "Time to first confirmed closure of the ulcer (days)",
    "TTMAJAMP": "Time to major amputation of the index leg (days)",
    "TTDEATH": "Time to death (days)",
    "AFS": "Amputation-free survival: major amputation of the index leg or death (days)",
    "CRHEAL": "Time to healing, death and index-leg major amputation competing (days)",
}
"""ADTTE's parameters (PARAMCD: PARAM); ``service.core.adtte`` writes them."""

CODELISTS: dict[str, tuple[str, ...]] = {
    "TUTESTCD": ("TUMIDENT",),
    "TUORRES": ("ULCER",),
    "TRTESTCD": tuple(code for domain, code, *_ in TEST_CODES if domain == "TR"),
    "METHOD": ("PHOTOGRAPHY", "CLINICAL EXAMINATION"),
    "EVAL": ("ALGORITHM", "INVESTIGATOR"),
    "UNIT": ("cm", "cm2"),
    "ND": ("NOT DONE",),
    "REASND": tuple(sorted(set(_NOT_DONE.values()))),
    "NY": ("N", "Y"),
    "PARAMCD": tuple(ADTTE_PARAMS),
}
"""Values each coded variable takes (REASND: the API's ``uncounted_reason`` codes in
the words of ``_NOT_DONE``; a reason added later is written upper case, spaces for
underscores, until it is added there)."""


def _usubjid(study: str, subject_code: str) -> str:
    return f"{study}-{subject_code}"


def _days_from_reference(row: MeasurementRow) -> int | None:
    """Calendar days from the subject's reference start (RFSTDTC) to the photo."""
    if row.reference_start is None:
        return row.day
    captured = row.captured_at.date() if isinstance(row.captured_at, datetime) else row.captured_at
    return (captured - row.reference_start).days


def _study_day(days: int | None) -> int | None:
    """SDTM --DY from calendar days since RFSTDTC: RFSTDTC is day 1 (there is no day 0)."""
    return None if days is None else days + 1 if days >= 0 else days


def _current_rows(rows: Iterable[MeasurementRow]) -> list[MeasurementRow]:
    current = [r for r in rows if r.current and not r.voided]
    return sorted(current, key=lambda r: (r.subject_code, r.wound_label, str(r.captured_at)))


def _natural(label: str) -> list[int | str]:
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", label)]


def visit_numbers(rows: Iterable[MeasurementRow]) -> dict[str, int]:
    """VISITNUM for each visit label: the labels in study order (the median study day of
    the photos that carry the label, then natural order: V2 before V10), numbered 1…n."""
    days: dict[str, list[int]] = {}
    for row in rows:
        if row.visit:
            day = _days_from_reference(row)
            days.setdefault(row.visit, []).append(day if day is not None else 0)
    order = sorted(days, key=lambda v: (statistics.median(days[v]), _natural(v)))
    return {label: number for number, label in enumerate(order, start=1)}


def sdtm_unsafe_values(*tables: str) -> list[str]:
    """Values in SDTM CSVs that a spreadsheet would run as a formula (text starting with
    = + - @ tab or CR; a negative study day such as -3 is a number, not text)."""
    unsafe = []
    for table in tables:
        for record in csv.DictReader(io.StringIO(table)):
            for value in record.values():
                if value and spreadsheet_unsafe(value) and not re.fullmatch(r"-\d+(\.\d+)?", value):
                    unsafe.append(value)
    return unsafe


def dm_columns(*, include_arm: bool) -> list[str]:
    """DM's columns; ARMCD/ARM only in the admin export (blinding)."""
    return [c for c in DM_COLUMNS if include_arm or c not in ("ARMCD", "ARM")]


def cdisc_dm_csv(subjects: Iterable[SubjectRow], *, include_arm: bool = False) -> str:
    """CDISC-style DM as CSV (``cdisc_dm_records``)."""
    records = cdisc_dm_records(subjects, include_arm=include_arm)
    return _csv(dm_columns(include_arm=include_arm), records, guard=False)


def cdisc_dm_records(
    subjects: Iterable[SubjectRow], *, include_arm: bool = False
) -> list[SdtmRecord]:
    """CDISC-style DM (demographics): one row per subject, photographed or not, with
    RFSTDTC (the subject's time origin, from which every --DY counts) and SITEID.
    ARMCD/ARM only in the admin export (blinding)."""
    records = []
    for s in sorted(subjects, key=lambda s: s.subject_code):
        record: SdtmRecord = {
            "STUDYID": s.study,
            "DOMAIN": "DM",
            "USUBJID": _usubjid(s.study, s.subject_code),
            "SUBJID": s.subject_code,
            "RFSTDTC": s.reference_start.isoformat() if s.reference_start else None,
            "SITEID": s.site,
        }
        if include_arm and s.arm is not None:
            record["ARM"] = s.arm
            record["ARMCD"] = re.sub(r"[^A-Z0-9]", "", s.arm.upper())[:20]
        records.append(record)
    return records


def cdisc_tu_csv(rows: Iterable[MeasurementRow], *, clinic_tz: tzinfo | None = None) -> str:
    """CDISC-style TU as CSV (``cdisc_tu_records``)."""
    return _csv(TU_COLUMNS, cdisc_tu_records(rows, clinic_tz=clinic_tz), guard=False)


def cdisc_tu_records(
    rows: Iterable[MeasurementRow], *, clinic_tz: tzinfo | None = None
) -> list[SdtmRecord]:
    """CDISC-style TU (lesion identification): one row per wound, at its first assessment."""
    current = _current_rows(rows)
    visits = visit_numbers(current)
    first_by_wound: dict[str, MeasurementRow] = {}
    for row in current:
        first_by_wound.setdefault(row.wound_id, row)
    records: list[SdtmRecord] = []
    seq = _SubjectSequence()
    for row in first_by_wound.values():
        usubjid = _usubjid(row.study, row.subject_code)
        records.append(
            {
                "STUDYID": row.study,
                "DOMAIN": "TU",
                "USUBJID": usubjid,
                "TUSEQ": seq(usubjid),
                "TULNKID": row.wound_label,
                "TUTESTCD": "TUMIDENT",
                "TUTEST": "Tumor Identification",
                "TUORRES": "ULCER",
                "TUSTRESC": "ULCER",
                "TULOC": row.wound_location,
                "TUMETHOD": "PHOTOGRAPHY",
                "TUEVAL": "INVESTIGATOR",
                "VISITNUM": visits.get(row.visit or ""),
                "VISIT": row.visit,
                "TUDTC": capture_time(row.captured_at, clinic_tz, utc=False),
                "TUDY": _study_day(_days_from_reference(row)),
            }
        )
    return records


def cdisc_tr_csv(rows: Iterable[MeasurementRow], *, clinic_tz: tzinfo | None = None) -> str:
    """CDISC-style TR as CSV (``cdisc_tr_records``)."""
    return _csv(TR_COLUMNS, cdisc_tr_records(rows, clinic_tz=clinic_tz), guard=False)


def cdisc_tr_records(
    rows: Iterable[MeasurementRow], *, clinic_tz: tzinfo | None = None
) -> list[SdtmRecord]:
    """CDISC-style TR (lesion results): per assessment the counting measurement's area,
    length, width and perimeter, and the clinician's closure observation (WNDCLOSE).

    A photo not counted in the endpoints has TRSTAT ``NOT DONE`` with the reason
    (``not_done_reason``, the same the FHIR export gives)."""
    current = _current_rows(rows)
    visits = visit_numbers(current)
    records: list[SdtmRecord] = []
    seq = _SubjectSequence()
    for row in current:
        usubjid = _usubjid(row.study, row.subject_code)
        common = _tr_common(row, visits, clinic_tz)
        for test in _TR_TESTS:
            records.append(_tr_measurement(row, common, seq(usubjid), test))
        if row.epithelialized is not None or row.drainage is not None:
            records.append(_tr_closure(row, common, seq(usubjid)))
    return records


class _SubjectSequence:
    """--SEQ: 1, 2, … within each subject, in the order the records are written."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def __call__(self, usubjid: str) -> int:
        self._last[usubjid] = self._last.get(usubjid, 0) + 1
        return self._last[usubjid]


def _tr_common(row: MeasurementRow, visits: dict[str, int], clinic_tz: tzinfo | None) -> SdtmRecord:
    """What every TR record of one assessment shares: who, which wound, when."""
    return {
        "STUDYID": row.study,
        "DOMAIN": "TR",
        "USUBJID": _usubjid(row.study, row.subject_code),
        "TRLNKID": row.wound_label,
        "TRMETHOD": "PHOTOGRAPHY",
        "TRGRPID": row.assessment_id,
        "VISITNUM": visits.get(row.visit or ""),
        "VISIT": row.visit,
        "TRDTC": capture_time(row.captured_at, clinic_tz, utc=False),
        "TRDY": _study_day(_days_from_reference(row)),
    }


def _tr_measurement(
    row: MeasurementRow,
    common: SdtmRecord,
    seq: int,
    test: tuple[str, str, str, str],
) -> SdtmRecord:
    """One measured test (``_TR_TESTS``): its value, or NOT DONE with the reason."""
    code, name, attribute, unit = test
    value = getattr(row, attribute)
    record: SdtmRecord = {
        **common,
        "TRSEQ": seq,
        "TRTESTCD": code,
        "TRTEST": name,
        "TREVAL": "INVESTIGATOR" if row.manual else "ALGORITHM",
    }
    reason = not_done_reason(row, value)
    if reason is not None:
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
    return record


def _tr_closure(row: MeasurementRow, common: SdtmRecord, seq: int) -> SdtmRecord:
    """The clinician's closure observation (WNDCLOSE), by the one closure rule
    (``healing.is_closed``) read as the clinician recorded it: epithelialised and no
    drainage observed (drainage not recorded does not make it N here; the endpoints
    apply the study's ``closure_requires_drainage_recorded``)."""
    closed = is_closed(row.epithelialized, row.drainage, requires_drainage_recorded=False)
    return {
        **common,
        "TRSEQ": seq,
        "TRTESTCD": "WNDCLOSE",
        "TRTEST": "Wound Closure",
        "TRORRES": "Y" if closed else "N",
        "TRSTRESC": "Y" if closed else "N",
        "TRMETHOD": "CLINICAL EXAMINATION",
        "TREVAL": "INVESTIGATOR",
    }


# --- SAS transport (XPORT v5), the format a submission takes ---------------------------


def sas_transport(
    domain: str, columns: Sequence[str], records: Iterable[Mapping[str, SdtmValue]]
) -> bytes:
    """One SDTM domain as a SAS transport file, version 5 (the FDA's format), written by
    pyreadstat: the dataset named after the domain, the variables' labels and types of
    ``SDTM_VARIABLES`` (numeric ones as numbers, missing as SAS missing; character ones
    as text, missing as blank), values as in the CSV (no formula guard)."""
    import os
    import tempfile

    import pandas as pd
    import pyreadstat

    variables = {v.name: v for v in SDTM_VARIABLES[domain]}
    rows = list(records)
    frame = pd.DataFrame(
        {
            name: (
                pd.Series([_sas_number(r.get(name)) for r in rows], dtype="float64")
                if variables[name].numeric
                else pd.Series([_sas_text(r.get(name)) for r in rows], dtype="object")
            )
            for name in columns
        },
        columns=list(columns),
    )
    _widen_short_records(frame, [n for n in columns if not variables[n].numeric])
    handle, path = tempfile.mkstemp(suffix=".xpt")
    os.close(handle)
    try:
        pyreadstat.write_xport(
            frame,
            path,
            file_label=SDTM_LABELS[domain],
            column_labels=[variables[name].label for name in columns],
            table_name=domain,
            file_format_version=5,
        )
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)


def _widen_short_records(frame: Any, text_columns: Sequence[str]) -> None:
    """Make an observation longer than one 80-byte card (in place).

    Version 5 stores no row count: a reader infers it from the file's length and the
    blank padding of its last card. pandas.read_sas (2.x) counts every blank 8-byte word
    of that card as padding when an observation fits in one card, and so drops the
    last subject of a short DM. Trailing blanks are no data in SAS (text is blank
    padded), so widening one text variable by blanks changes no value."""
    numeric_bytes = 8 * (len(frame.columns) - len(text_columns))
    widths = {c: max([len(str(v).encode()) for v in frame[c]] + [1]) for c in text_columns}
    short_by = 81 - (numeric_bytes + sum(widths.values()))
    if short_by > 0 and len(frame) and text_columns:
        last = text_columns[-1]
        frame.at[0, last] = str(frame.at[0, last]).ljust(widths[last] + short_by)


def _sas_number(value: SdtmValue) -> float:
    return float("nan") if value is None or value == "" else float(value)


def _sas_text(value: SdtmValue) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else _cell(value, guard=False)
