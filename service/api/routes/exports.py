"""Study exports (monitor and admin keys): CSV, FHIR R4 Bundle, CDISC-style DM/TU/TR.

Every export is written to the audit log. The arm appears only in admin exports.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from service.api.deps import CallerDep, SessionDep, SettingsDep, VisibleStudy
from service.api.routes.healing import (
    captured_on,
    current_measurement,
    load_visible_subjects,
    subject_input,
    uncounted_reason,
)
from service.core import adtte, exports
from service.domain import audit, trial
from service.domain.auth import Caller
from service.persistence.orm import Study, Subject

router = APIRouter(tags=["exports"])

EXPORT_ROLES = ("monitor", "admin")


def assessment_paths(assessment_id: str) -> dict[str, str]:
    base = f"/v1/assessments/{assessment_id}"
    return {
        "photo_url": f"{base}/photo.jpg",
        "mask_url": f"{base}/mask.png",
        "overlay_url": f"{base}/overlay.jpg",
    }


def reference_start(subject: Subject) -> date | None:
    """The subject's time origin (SDTM RFSTDTC): ``trial.day_zero``."""
    return trial.day_zero(subject)


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
            reference_start=reference_start(s),
            arm=s.arm if include_arm else None,
        )
        for s in subjects
    ]


def measurement_rows(
    subjects: Sequence[Subject], study: Study, *, include_arm: bool
) -> list[exports.MeasurementRow]:
    """One row per stored measurement (history included), oldest photo first."""
    rows = []
    for subject in subjects:
        rfstdtc = reference_start(subject)
        for wound in subject.wounds:
            for assessment in sorted(
                wound.assessments, key=lambda a: (a.captured_at, a.created_at)
            ):
                current = current_measurement(assessment, study)
                not_counted = uncounted_reason(assessment, current)
                counted = not_counted is None
                day = (captured_on(assessment) - rfstdtc).days if rfstdtc else None
                for m in sorted(assessment.measurements, key=lambda m: m.id):
                    data: dict[str, Any] = m.data or {}
                    rows.append(
                        exports.MeasurementRow(
                            study=study.id,
                            site=subject.site.code,
                            subject_id=subject.id,
                            subject_code=subject.code,
                            arm=subject.arm if include_arm else None,
                            wound_id=wound.id,
                            wound_label=wound.label,
                            wound_location=wound.location,
                            index_leg=wound.index_leg,
                            assessment_id=assessment.id,
                            visit=assessment.visit,
                            captured_at=assessment.captured_at,
                            day=day,
                            uploaded_at=assessment.created_at,
                            epithelialized=assessment.epithelialized,
                            drainage=assessment.drainage,
                            accepted=assessment.accepted,
                            voided=assessment.voided,
                            void_reason=assessment.void_reason,
                            measurement_id=str(m.id),
                            current=current is not None and m.id == current.id,
                            counted=counted and current is not None and m.id == current.id,
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
                            photo_url=assessment_paths(assessment.id)["photo_url"],
                            uncounted_reason=not_counted,
                            reference_start=rfstdtc,
                        )
                    )
    return rows


def run_export(
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
    caller.require(*EXPORT_ROLES)
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


def csv_response(text: str, filename: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# The CSV exports answer text/csv, and the OpenAPI schema says so.
CSV_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV"}
}


@router.get(
    "/v1/studies/{study}/export.csv",
    summary="One CSV row per measurement",
    response_class=Response,
    responses=CSV_RESPONSES,
)
def export_csv(
    study: VisibleStudy, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """Every measurement (history included) with its provenance: model version, calibration
    kind, quality flags, manual or not, whether it counts. ``arm`` only for admin keys.
    ``captured_at`` is a date, or a time with its offset (``WOUNDSCOPE_CLINIC_TIMEZONE``);
    ``uploaded_at`` and ``measured_at`` are UTC with offset."""
    text = run_export(
        session,
        caller,
        study,
        "csv",
        lambda rows: exports.measurements_csv(
            rows, include_arm=caller.sees_arm, clinic_tz=settings.clinic_tz
        ),
    )
    return csv_response(text, f"{study.id}-measurements.csv")


@router.get(
    "/v1/studies/{study}/export.fhir.json",
    summary="FHIR R4 Bundle of wound sizes",
    response_class=JSONResponse,
    responses={
        200: {
            "content": {"application/fhir+json": {"schema": {"type": "object"}}},
            "description": "FHIR R4 Bundle",
        }
    },
)
def export_fhir(
    study: VisibleStudy, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """A ``collection`` Bundle: Patient, ResearchSubject, Device (the model), Media (the
    photo), one wound-size Observation (LOINC 72287-6; 89260-4, 39126-8, 39125-0) per
    photo, its id stable across corrections (``amended``, with a Provenance).
    ``fullUrl``: ``WOUNDSCOPE_FHIR_BASE_URL``/Type/id, or ``urn:uuid`` when not set."""
    bundle = run_export(
        session,
        caller,
        study,
        "fhir",
        # Serialised inside the export, so a bundle that cannot be written is not audited.
        lambda rows: json.dumps(
            exports.fhir_bundle(
                rows,
                base_url=settings.fhir_base_url or None,
                include_arm=caller.sees_arm,
                clinic_tz=settings.clinic_tz,
            ),
            allow_nan=False,
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode(),
    )
    return Response(
        bundle,
        media_type="application/fhir+json",
        headers={"Content-Disposition": f'attachment; filename="{study.id}-fhir.json"'},
    )


@router.get(
    "/v1/studies/{study}/export.tu.csv",
    summary="CDISC-style TU (lesions)",
    response_class=Response,
    responses=CSV_RESPONSES,
)
def export_tu(
    study: VisibleStudy, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """One row per wound; TUDY from the subject's RFSTDTC (see the DM export)."""
    text = run_export(
        session,
        caller,
        study,
        "tu",
        lambda rows: exports.cdisc_tu_csv(rows, clinic_tz=settings.clinic_tz),
    )
    return csv_response(text, f"{study.id}-TU.csv")


@router.get(
    "/v1/studies/{study}/export.tr.csv",
    summary="CDISC-style TR (lesion results)",
    response_class=Response,
    responses=CSV_RESPONSES,
)
def export_tr(
    study: VisibleStudy, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """Per photo AREA, LENGTH, WIDTH, PERIM (NOT DONE with a reason when the photo does
    not count) and WNDCLOSE; TRDY from the subject's RFSTDTC, VISITNUM in visit order."""
    text = run_export(
        session,
        caller,
        study,
        "tr",
        lambda rows: exports.cdisc_tr_csv(rows, clinic_tz=settings.clinic_tz),
    )
    return csv_response(text, f"{study.id}-TR.csv")


@router.get(
    "/v1/studies/{study}/export.dm.csv",
    summary="CDISC-style DM (subjects, RFSTDTC)",
    response_class=Response,
    responses=CSV_RESPONSES,
)
def export_dm(study: VisibleStudy, session: SessionDep, caller: CallerDep) -> Response:
    """One row per subject: USUBJID, SUBJID, RFSTDTC (the time origin every --DY counts
    from), SITEID; ARMCD/ARM only for admin keys."""
    text = run_export(
        session,
        caller,
        study,
        "dm",
        lambda rows: exports.cdisc_dm_csv(rows, include_arm=caller.sees_arm),
        per_subject=True,
    )
    return csv_response(text, f"{study.id}-DM.csv")


@router.get(
    "/v1/studies/{study}/export.adtte.csv",
    summary="CDISC ADaM ADTTE: one row per subject and time-to-event parameter",
    response_class=Response,
    responses=CSV_RESPONSES,
)
def export_adtte(study: VisibleStudy, session: SessionDep, caller: CallerDep) -> Response:
    """TTHEAL (all index-leg ulcers healed), TTWHEAL (each ulcer), TTMAJAMP, TTDEATH, AFS
    and CRHEAL (competing-risk cause in CRCAUSE), with AVAL in days from STARTDT (the
    time origin), CNSR, EVNTDESC, CNSDTDSC; TRTP only for admin keys."""
    text = run_adtte_export(
        session,
        caller,
        study,
        "adtte",
        lambda rows: adtte.adtte_csv(rows, include_arm=caller.sees_arm),
    )
    return csv_response(text, f"{study.id}-ADTTE.csv")


def run_adtte_export(
    session: Session,
    caller: Caller,
    study: Study,
    kind: str,
    write: Callable[[list[dict[str, Any]]], Any],
) -> Any:
    """ADTTE's rows for what the caller may see, written by ``write`` (CSV or SAS
    transport), then audited as ``export.<kind>`` (only once written, as every export)."""
    caller.require(*EXPORT_ROLES)
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


# --- SAS transport (.xpt v5) beside the CSVs -------------------------------------------

XPT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/x-sas-xport": {"schema": {"type": "string", "format": "binary"}}},
        "description": "SAS transport file, version 5",
    }
}


def xpt_response(data: bytes, filename: str) -> Response:
    return Response(
        data,
        media_type="application/x-sas-xport",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/v1/studies/{study}/export.dm.xpt",
    summary="CDISC-style DM as SAS transport (v5)",
    response_class=Response,
    responses=XPT_RESPONSES,
)
def export_dm_xpt(study: VisibleStudy, session: SessionDep, caller: CallerDep) -> Response:
    """The DM export (``export.dm.csv``) as a SAS transport file, version 5: dataset DM,
    the variables' labels and types as in the README's define table."""
    columns = exports.dm_columns(include_arm=caller.sees_arm)
    data = run_export(
        session,
        caller,
        study,
        "dm.xpt",
        lambda rows: exports.sas_transport(
            "DM", columns, exports.cdisc_dm_records(rows, include_arm=caller.sees_arm)
        ),
        per_subject=True,
    )
    return xpt_response(data, f"{study.id}-dm.xpt")


@router.get(
    "/v1/studies/{study}/export.tu.xpt",
    summary="CDISC-style TU as SAS transport (v5)",
    response_class=Response,
    responses=XPT_RESPONSES,
)
def export_tu_xpt(
    study: VisibleStudy, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """The TU export (``export.tu.csv``) as a SAS transport file, version 5."""
    data = run_export(
        session,
        caller,
        study,
        "tu.xpt",
        lambda rows: exports.sas_transport(
            "TU", exports.TU_COLUMNS, exports.cdisc_tu_records(rows, clinic_tz=settings.clinic_tz)
        ),
    )
    return xpt_response(data, f"{study.id}-tu.xpt")


@router.get(
    "/v1/studies/{study}/export.tr.xpt",
    summary="CDISC-style TR as SAS transport (v5)",
    response_class=Response,
    responses=XPT_RESPONSES,
)
def export_tr_xpt(
    study: VisibleStudy, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """The TR export (``export.tr.csv``) as a SAS transport file, version 5."""
    data = run_export(
        session,
        caller,
        study,
        "tr.xpt",
        lambda rows: exports.sas_transport(
            "TR", exports.TR_COLUMNS, exports.cdisc_tr_records(rows, clinic_tz=settings.clinic_tz)
        ),
    )
    return xpt_response(data, f"{study.id}-tr.xpt")


@router.get(
    "/v1/studies/{study}/export.adtte.xpt",
    summary="CDISC ADaM ADTTE as SAS transport (v5)",
    response_class=Response,
    responses=XPT_RESPONSES,
)
def export_adtte_xpt(study: VisibleStudy, session: SessionDep, caller: CallerDep) -> Response:
    """The ADTTE export (``export.adtte.csv``) as a SAS transport file, version 5: dataset
    ADTTE, the variables' labels and types as in the README's define table (STARTDT and
    ADT as ISO 8601 text); TRTP only for admin keys."""
    data = run_adtte_export(
        session,
        caller,
        study,
        "adtte.xpt",
        lambda rows: exports.sas_transport(
            "ADTTE", adtte.columns(include_arm=caller.sees_arm), rows
        ),
    )
    return xpt_response(data, f"{study.id}-adtte.xpt")
