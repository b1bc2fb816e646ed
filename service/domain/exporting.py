"""Study exports from the database: each file's rows, its writer, and its audit entry.

``export_file`` is the one way to make an export (the API's ``/v1/studies/{id}/export.*``
and the dashboard's download links): it checks the role (``roles.EXPORTERS``), gathers
the rows the caller sees (site keys: their site; the arm for admin keys only, blinding),
writes them with ``service.core.exports`` (every SDTM/ADaM dataset, Define-XML and the
package through ``exports.package``), and audits it as ``export.<kind>``, only once
written (a file that could not be written is not audited).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy.orm import Session

from service import __version__
from service.config import Settings
from service.core import exports
from service.core.exports import package
from service.core.exports.metadata import DATASETS
from service.core.exports.package import StudyData
from service.domain import audit, counting, events
from service.domain.auth import Caller
from service.domain.outcomes import endpoint_options, load_visible_subjects, subject_input
from service.domain.roles import EXPORTERS
from service.domain.subjects import day_zero
from service.persistence.orm import Assessment, Measurement, Study, Subject, Wound

CSV = "text/csv; charset=utf-8"
XPT = "application/x-sas-xport"

Writer = Callable[[Any, Caller, Settings], str | bytes]
"""Writes an export: (its rows, the caller, the settings) -> the file's content. The rows
are a list of ``MeasurementRow``s, or for a ``study`` export one ``StudyData``."""


@dataclass(frozen=True)
class ExportKind:
    """One export file: which rows it is written from, how, and its audit and file names."""

    rows: Literal["measurements", "study"]
    """``MeasurementRow``s (history included), or the ``StudyData`` every CDISC and FHIR
    export is written from (subjects, measurements, the engine's inputs)."""
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


def _fhir_json(data: StudyData, caller: Caller, settings: Settings) -> bytes:
    """The FHIR Bundle serialised here, inside the export, so a bundle that cannot be
    written (a NaN, say) is not audited."""
    bundle = exports.fhir_bundle(
        data.measurements,
        base_url=settings.fhir_base_url or None,
        media_base_url=settings.public_url or None,
        include_arm=caller.sees_arm,
        clinic_tz=settings.clinic_tz,
        subjects=data.subjects,
    )
    return json.dumps(bundle, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode()


def _dataset_exports(name: str) -> dict[str, ExportKind]:
    """``<name>.csv`` and ``<name>.xpt`` of one dataset of the metadata home."""
    low = name.lower()
    return {
        f"{low}.csv": ExportKind(
            "study",
            lambda data, _c, _s: package.dataset_csv(name, data),
            low,
            f"{name}.csv",
            CSV,
        ),
        f"{low}.xpt": ExportKind(
            "study",
            lambda data, _c, _s: package.dataset_xpt(name, data),
            f"{low}.xpt",
            f"{low}.xpt",
            XPT,
        ),
    }


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
    "fhir.json": ExportKind("study", _fhir_json, "fhir", "fhir.json", "application/fhir+json"),
    **{k: v for name in DATASETS for k, v in _dataset_exports(name).items()},
    "define.xml": ExportKind(
        "study",
        lambda data, _c, _s: package.package_define(data, source_version=__version__),
        "define",
        "define.xml",
        "application/xml",
    ),
    "package.zip": ExportKind(
        "study",
        lambda data, _c, _s: package.package_zip(data, source_version=__version__),
        "package",
        "package.zip",
        "application/zip",
    ),
}
"""Every export, by its name in the URL (``/v1/studies/{id}/export.<name>``): the
measurement CSV, FHIR, each SDTM/ADaM dataset of the metadata home as CSV and SAS
transport, Define-XML and the package."""


def export_file(
    session: Session, caller: Caller, study: Study, name: str, settings: Settings
) -> ExportFile:
    """The export ``name`` (a key of ``EXPORTS``) of what this caller sees, audited once
    written (a file that could not be written is not audited)."""
    kind = EXPORTS[name]
    caller.require(*EXPORTERS)
    include_arm = caller.sees_arm
    subjects = load_visible_subjects(session, caller, study)
    measurements = measurement_rows(subjects, study, include_arm=include_arm)
    if kind.rows == "study":
        data = study_data(subjects, study, measurements, settings, include_arm=include_arm)
        body = kind.write(data, caller, settings)
        counts = {"subjects": len(subjects), "measurements": len(measurements)}
    else:
        body = kind.write(measurements, caller, settings)
        counts = {"measurements": len(measurements)}
    audit.record(
        session,
        caller,
        f"export.{kind.audit}",
        f"study/{study.id}",
        study_id=study.id,
        after={**counts, "arm": include_arm},
    )
    session.commit()
    return ExportFile(body, kind.media_type, f"{study.id}-{kind.filename}")


def study_data(
    subjects: Sequence[Subject],
    study: Study,
    measurements: Sequence[exports.MeasurementRow],
    settings: Settings,
    *,
    include_arm: bool,
) -> StudyData:
    """Everything the CDISC and FHIR exports of these subjects are written from."""
    return StudyData(
        study=study.id,
        subjects=subject_rows(subjects, study, include_arm=include_arm),
        measurements=measurements,
        engine_subjects=[subject_input(s, study) for s in subjects],
        include_arm=include_arm,
        clinic_tz=settings.clinic_tz,
        study_name=study.name,
        closure_requires_drainage_recorded=study.closure_requires_drainage_recorded,
        # The study's other endpoint settings (its week-4 window), as the answers use them.
        engine_options={
            k: v
            for k, v in endpoint_options(study).items()
            if k != "closure_requires_drainage_recorded"
        },
    )


# --- rows -----------------------------------------------------------------------------


def photo_url(assessment_id: str) -> str:
    """The API path of a stored photo (the FHIR Media's content URL)."""
    return f"/v1/assessments/{assessment_id}/photo.jpg"


def subject_rows(
    subjects: Sequence[Subject], study: Study, *, include_arm: bool
) -> list[exports.SubjectRow]:
    """One row per subject the caller sees (DM), photographed or not, with its live
    (not voided) events and its optional demographics."""
    return [
        exports.SubjectRow(
            study=study.id,
            subject_id=s.id,
            subject_code=s.code,
            site=s.site.code,
            reference_start=day_zero(s),
            arm=s.arm if include_arm else None,
            randomized_on=s.randomized_on,
            events=tuple(
                exports.EventRow(e.kind, e.occurred_on, e.leg) for e in events.live_events(s)
            ),
            sex=s.sex,
            country=s.country,
            age_years=s.age_years,
            birth_date=s.birth_date,
            index_leg_side=s.index_leg_side,
            study_locked=study.locked,
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
