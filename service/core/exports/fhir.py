"""FHIR R4: a collection Bundle of wound-size Observations with their Patient,
ResearchSubject, Device (the model), Media (the photo) and Provenance."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from service.core.exports.rows import (
    MeasurementRow,
    SubjectRow,
    awaiting_clinician,
    capture_time,
    not_done_reason,
    utc_instant,
)
from service.core.exports.subjects import death_on

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
WOUND_SIZE_PANEL = ("72287-6", "Wound size panel")
WOUND_AREA = ("89260-4", "Area of wound")
WOUND_LENGTH = ("39126-8", "Length of Wound")
WOUND_WIDTH = ("39125-0", "Width of Wound")

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
    media_base: str | None = None
    """The service's public address: a photo's path (``/v1/...``) made absolute under it."""

    def media_url(self, path: str) -> str:
        return f"{self.media_base}{path}" if self.media_base and path.startswith("/") else path

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
    media_base_url: str | None = None,
    include_arm: bool = False,
    clinic_tz: tzinfo | None = None,
    now: datetime | None = None,
    subjects: Iterable[SubjectRow] = (),
) -> dict[str, Any]:
    """A FHIR R4 ``collection`` Bundle (``id`` and ``timestamp``).

    ``media_base_url``: the service's public address (``public_url``): each Media's
    photo URL is absolute under it; without it, the API path.

    ``subjects``: every subject the caller sees, photographed or not: each gets its
    Patient (``deceasedDateTime`` from its death event) and ResearchSubject (``status``
    from its events, ``subject_status``), whether or not it has a photo.

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
    names = _Names(
        base_url.rstrip("/") if base_url else None,
        media_base_url.rstrip("/") if media_base_url else None,
    )
    rows = list(rows)
    history: dict[str, list[MeasurementRow]] = {}
    for row in rows:
        history.setdefault(row.assessment_id, []).append(row)
    entries: dict[str, dict[str, Any]] = {}
    for subject in sorted(subjects, key=lambda s: s.subject_code):
        for resource in _subject_resources(subject, names, include_arm=include_arm):
            url = names.full_url(resource["resourceType"], resource["id"])
            entries[url] = {"fullUrl": url, "resource": resource}
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


def subject_status(subject: SubjectRow) -> tuple[str, date | None]:
    """ResearchSubject.status (FHIR R4) and since when, from the subject's live events:
    ``withdrawn`` after a withdrawal, ``off-study`` after death or a loss to follow-up
    (or, in a locked study, at the end), ``follow-up`` after a major amputation of the
    index leg (followed for survival, no longer for healing), else ``on-study``."""
    ending = sorted(
        (e for e in subject.events if e.kind in ("death", "withdrawal", "lost_to_follow_up")),
        key=lambda e: e.on,
    )
    if ending:
        first = ending[0]
        return ("withdrawn" if first.kind == "withdrawal" else "off-study"), first.on
    if subject.study_locked:
        return "off-study", None
    amputations = [
        e.on for e in subject.events if e.kind == "major_amputation" and e.leg == "index"
    ]
    if amputations:
        return "follow-up", min(amputations)
    return "on-study", None


def _subject_resources(
    subject: SubjectRow, names: _Names, *, include_arm: bool
) -> list[dict[str, Any]]:
    """A subject's Patient and ResearchSubject, photographed or not."""
    row = _SubjectKey(subject.study, subject.subject_id, subject.subject_code, subject.arm)
    patient = _patient(row)
    died = death_on(subject.events)
    if died is not None:
        patient["deceasedDateTime"] = died.isoformat()
    research_subject = _research_subject(row, names, include_arm=include_arm)
    status, since = subject_status(subject)
    research_subject["status"] = status
    period: dict[str, str] = {}
    start = subject.randomized_on or subject.reference_start
    if start is not None:
        period["start"] = start.isoformat()
    if since is not None and status != "follow-up":
        period["end"] = since.isoformat()
    if period:
        research_subject["period"] = period
    return [patient, research_subject]


@dataclass(frozen=True)
class _SubjectKey:
    """What a Patient and a ResearchSubject are written from (a measurement row or a
    subject row): the study, the subject's API id, code and arm."""

    study: str
    subject_id: str
    subject_code: str
    arm: str | None


def _subject_identifier(row: MeasurementRow | _SubjectKey) -> dict[str, Any]:
    """The subject's API id, the identifier Patient and ResearchSubject share."""
    return {"system": SYSTEM["subject"], "value": row.subject_id}


def _patient(row: MeasurementRow | _SubjectKey) -> dict[str, Any]:
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


def _research_subject(
    row: MeasurementRow | _SubjectKey, names: _Names, *, include_arm: bool
) -> dict[str, Any]:
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
        media["content"]["url"] = names.media_url(row.photo_url)
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
