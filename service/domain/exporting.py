"""Study exports from the database: each file's rows, its writer, and its audit entry.

``export_file`` is the one way to make an export (the API's ``/v1/studies/{id}/export.*``
and the dashboard's download links): it checks the role (``roles.EXPORTERS``), gathers
the rows the caller sees (site keys: their site; the arm for admin keys only, blinding),
writes them with ``service.core.exports`` or ``service.core.adtte``, and audits it as
``export.<kind>``, only once written (a file that could not be written is not audited).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy.orm import Session

from service.config import Settings
from service.core import adtte, exports
from service.domain import audit, counting
from service.domain.auth import Caller
from service.domain.outcomes import load_visible_subjects, subject_input
from service.domain.roles import EXPORTERS
from service.domain.subjects import day_zero
from service.persistence.orm import Assessment, Measurement, Study, Subject, Wound

CSV = "text/csv; charset=utf-8"
XPT = "application/x-sas-xport"

Writer = Callable[[list[Any], Caller, Settings], str | bytes]
"""Writes an export's rows: (rows, the caller, the settings) -> the file's content."""


@dataclass(frozen=True)
class ExportKind:
    """One export file: which rows it is written from, how, and its audit and file names."""

    rows: Literal["measurements", "subjects", "adtte"]
    """``MeasurementRow``s (history included), ``SubjectRow``s (DM), or ADTTE's rows."""
    write: Writer
    audit: str
    """The audit action is ``export.<audit>``."""
    filename: str
    """The file is ``<study id>-<filename>``."""
    media_type: str


@dataclass(frozen=True)
class ExportFile:
    """A written export: its content, media type and file name."""

    body: str | bytes
    media_type: str
    filename: str


def _fhir_json(rows: list[Any], caller: Caller, settings: Settings) -> bytes:
    """The FHIR Bundle serialised here, inside the export, so a bundle that cannot be
    written (a NaN, say) is not audited."""
    bundle = exports.fhir_bundle(
        rows,
        base_url=settings.fhir_base_url or None,
        include_arm=caller.sees_arm,
        clinic_tz=settings.clinic_tz,
    )
    return json.dumps(bundle, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode()


EXPORTS: dict[str, ExportKind] = {
    "csv": ExportKind(
        "measurements",
        lambda rows, caller, s: exports.measurements_csv(
            rows, include_arm=caller.sees_arm, clinic_tz=s.clinic_tz
        ),
        "csv",
        "measurements.csv",
        CSV,
    ),
    "fhir.json": ExportKind(
        "measurements", _fhir_json, "fhir", "fhir.json", "application/fhir+json"
    ),
    "tu.csv": ExportKind(
        "measurements",
        lambda rows, _, s: exports.cdisc_tu_csv(rows, clinic_tz=s.clinic_tz),
        "tu",
        "TU.csv",
        CSV,
    ),
    "tr.csv": ExportKind(
        "measurements",
        lambda rows, _, s: exports.cdisc_tr_csv(rows, clinic_tz=s.clinic_tz),
        "tr",
        "TR.csv",
        CSV,
    ),
    "dm.csv": ExportKind(
        "subjects",
        lambda rows, caller, _: exports.cdisc_dm_csv(rows, include_arm=caller.sees_arm),
        "dm",
        "DM.csv",
        CSV,
    ),
    "adtte.csv": ExportKind(
        "adtte",
        lambda rows, caller, _: adtte.adtte_csv(rows, include_arm=caller.sees_arm),
        "adtte",
        "ADTTE.csv",
        CSV,
    ),
    "dm.xpt": ExportKind(
        "subjects",
        lambda rows, caller, _: exports.sas_transport(
            "DM",
            exports.dm_columns(include_arm=caller.sees_arm),
            exports.cdisc_dm_records(rows, include_arm=caller.sees_arm),
        ),
        "dm.xpt",
        "dm.xpt",
        XPT,
    ),
    "tu.xpt": ExportKind(
        "measurements",
        lambda rows, _, s: exports.sas_transport(
            "TU", exports.TU_COLUMNS, exports.cdisc_tu_records(rows, clinic_tz=s.clinic_tz)
        ),
        "tu.xpt",
        "tu.xpt",
        XPT,
    ),
    "tr.xpt": ExportKind(
        "measurements",
        lambda rows, _, s: exports.sas_transport(
            "TR", exports.TR_COLUMNS, exports.cdisc_tr_records(rows, clinic_tz=s.clinic_tz)
        ),
        "tr.xpt",
        "tr.xpt",
        XPT,
    ),
    "adtte.xpt": ExportKind(
        "adtte",
        lambda rows, caller, _: exports.sas_transport(
            "ADTTE", adtte.columns(include_arm=caller.sees_arm), rows
        ),
        "adtte.xpt",
        "adtte.xpt",
        XPT,
    ),
}
"""Every export, by its name in the URL (``/v1/studies/{id}/export.<name>``)."""


def export_file(
    session: Session, caller: Caller, study: Study, name: str, settings: Settings
) -> ExportFile:
    """The export ``name`` (a key of ``EXPORTS``) of what this caller sees, audited."""
    kind = EXPORTS[name]

    def write(rows: list[Any]) -> str | bytes:
        return kind.write(rows, caller, settings)

    if kind.rows == "adtte":
        body = _run_adtte_export(session, caller, study, kind.audit, write)
    else:
        body = _run_export(
            session, caller, study, kind.audit, write, per_subject=kind.rows == "subjects"
        )
    return ExportFile(body, kind.media_type, f"{study.id}-{kind.filename}")


def _run_export(
    session: Session,
    caller: Caller,
    study: Study,
    kind: str,
    build: Callable[[list[Any]], Any],
    *,
    per_subject: bool = False,
) -> Any:
    """Build one export of the rows this caller sees (``MeasurementRow``s, or with
    ``per_subject`` ``SubjectRow``s), and audit it (monitor, admin)."""
    caller.require(*EXPORTERS)
    include_arm = caller.sees_arm
    subjects = load_visible_subjects(session, caller, study)
    rows: list[Any] = (
        subject_rows(subjects, study, include_arm=include_arm)
        if per_subject
        else measurement_rows(subjects, study, include_arm=include_arm)
    )
    body = build(rows)
    audit.record(
        session,
        caller,
        f"export.{kind}",
        f"study/{study.id}",
        study_id=study.id,
        after={"subjects" if per_subject else "measurements": len(rows), "arm": include_arm},
    )
    session.commit()
    return body


def _run_adtte_export(
    session: Session,
    caller: Caller,
    study: Study,
    kind: str,
    write: Callable[[list[dict[str, Any]]], Any],
) -> Any:
    """ADTTE's rows for what the caller may see, written by ``write`` (CSV or SAS
    transport), then audited as ``export.<kind>`` (only once written, as every export)."""
    caller.require(*EXPORTERS)
    subjects = [subject_input(s, study) for s in load_visible_subjects(session, caller, study)]
    rows = adtte.adtte_rows(
        study.id,
        subjects,
        include_arm=caller.sees_arm,
        closure_requires_drainage_recorded=study.closure_requires_drainage_recorded,
    )
    out = write(rows)
    audit.record(
        session,
        caller,
        f"export.{kind}",
        f"study/{study.id}",
        study_id=study.id,
        after={"rows": len(rows), "subjects": len(subjects), "arm": caller.sees_arm},
    )
    session.commit()
    return out


# --- rows -----------------------------------------------------------------------------


def photo_url(assessment_id: str) -> str:
    """The API path of a stored photo (the FHIR Media's content URL)."""
    return f"/v1/assessments/{assessment_id}/photo.jpg"


def subject_rows(
    subjects: Sequence[Subject], study: Study, *, include_arm: bool
) -> list[exports.SubjectRow]:
    """One row per subject the caller sees (DM), photographed or not."""
    return [
        exports.SubjectRow(
            study=study.id,
            subject_id=s.id,
            subject_code=s.code,
            site=s.site.code,
            reference_start=day_zero(s),
            arm=s.arm if include_arm else None,
        )
        for s in subjects
    ]


@dataclass(frozen=True)
class _Photo:
    """One photo and what every row of its measurement history shares."""

    subject: Subject
    wound: Wound
    assessment: Assessment
    study: Study
    include_arm: bool
    reference_start: date | None
    """The subject's time origin (SDTM RFSTDTC): ``subjects.day_zero``."""
    current: Measurement | None
    """The measurement that counts (``counting.current_measurement``)."""
    uncounted_reason: str | None


def measurement_rows(
    subjects: Sequence[Subject], study: Study, *, include_arm: bool
) -> list[exports.MeasurementRow]:
    """One row per stored measurement (history included), oldest photo first."""
    rows = []
    for subject in subjects:
        rfstdtc = day_zero(subject)
        for wound in subject.wounds:
            series = counting.series_flags_of(wound, study)  # once per wound, not per photo
            for assessment in sorted(
                wound.assessments, key=lambda a: (a.captured_at, a.created_at)
            ):
                current = counting.current_measurement(assessment, study)
                photo = _Photo(
                    subject,
                    wound,
                    assessment,
                    study,
                    include_arm,
                    rfstdtc,
                    current,
                    counting.uncounted_reason(assessment, current, series.get(assessment.id, [])),
                )
                rows += [
                    _measurement_row(photo, m)
                    for m in sorted(assessment.measurements, key=lambda m: m.id)
                ]
    return rows


def _measurement_row(photo: _Photo, m: Measurement) -> exports.MeasurementRow:
    """One measurement of ``photo`` as an export row: whether it is the one that counts
    now, and whether it counts in the endpoints."""
    subject, wound, assessment = photo.subject, photo.wound, photo.assessment
    rfstdtc = photo.reference_start
    data: dict[str, Any] = m.data or {}
    is_current = photo.current is not None and m.id == photo.current.id
    return exports.MeasurementRow(
        study=photo.study.id,
        site=subject.site.code,
        subject_id=subject.id,
        subject_code=subject.code,
        arm=subject.arm if photo.include_arm else None,
        wound_id=wound.id,
        wound_label=wound.label,
        wound_location=wound.location,
        index_leg=wound.index_leg,
        assessment_id=assessment.id,
        visit=assessment.visit,
        captured_at=assessment.captured_at,
        day=(assessment.captured_at.date() - rfstdtc).days if rfstdtc else None,
        uploaded_at=assessment.created_at,
        epithelialized=assessment.epithelialized,
        drainage=assessment.drainage,
        accepted=assessment.accepted,
        voided=assessment.voided,
        void_reason=assessment.void_reason,
        measurement_id=str(m.id),
        current=is_current,
        counted=photo.uncounted_reason is None and is_current,
        manual=m.manual,
        reason=m.reason,
        measured_by=m.created_by,
        measured_at=m.created_at,
        model=m.model_id,
        model_sha256=m.model_sha256,
        calibration=str(data.get("calibration") or "none"),
        calibrated=m.calibrated,
        px_per_mm=data.get("px_per_mm"),
        area_cm2=m.area_cm2,
        area_cm2_low=data.get("area_cm2_low"),
        area_cm2_high=data.get("area_cm2_high"),
        area_px=data.get("area_px"),
        perimeter_cm=data.get("perimeter_cm"),
        length_cm=data.get("length_cm"),
        width_cm=data.get("width_cm"),
        length_x_width_cm2=data.get("length_x_width_cm2"),
        tilt_deg=data.get("tilt_deg"),
        components=data.get("components"),
        quality=tuple(data.get("quality") or ()),
        photo_sha256=assessment.photo_sha256,
        photo_url=photo_url(assessment.id),
        uncounted_reason=photo.uncounted_reason,
        reference_start=rfstdtc,
    )
