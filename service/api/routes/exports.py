"""Study exports (monitor and admin keys): CSV, FHIR R4 Bundle, CDISC-style DM/TU/TR,
ADaM ADTTE, and the CDISC tables as SAS transport files.

Every export is written to the audit log. The arm appears only in admin exports. The
files are ``service.domain.exporting``'s; this module names the routes and documents them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from service.api.deps import CallerDep, SessionDep, SettingsDep, VisibleStudy
from service.api.downloads import download
from service.api.limits import check_export_rate

# Every export within the key's export rate (429 rate_limited with Retry-After past it).
router = APIRouter(tags=["exports"], dependencies=[Depends(check_export_rate)])

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
    return download(session, caller, study, "csv", settings)


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
    return download(session, caller, study, "fhir.json", settings)


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
    return download(session, caller, study, "tu.csv", settings)


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
    return download(session, caller, study, "tr.csv", settings)


@router.get(
    "/v1/studies/{study}/export.dm.csv",
    summary="CDISC-style DM (subjects, RFSTDTC)",
    response_class=Response,
    responses=CSV_RESPONSES,
)
def export_dm(
    study: VisibleStudy, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """One row per subject: USUBJID, SUBJID, RFSTDTC (the time origin every --DY counts
    from), SITEID; ARMCD/ARM only for admin keys."""
    return download(session, caller, study, "dm.csv", settings)


@router.get(
    "/v1/studies/{study}/export.adtte.csv",
    summary="CDISC ADaM ADTTE: one row per subject and time-to-event parameter",
    response_class=Response,
    responses=CSV_RESPONSES,
)
def export_adtte(
    study: VisibleStudy, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """TTHEAL (all index-leg ulcers healed), TTWHEAL (each ulcer), TTMAJAMP, TTDEATH, AFS
    and CRHEAL (competing-risk cause in CRCAUSE), with AVAL in days from STARTDT (the
    time origin), CNSR, EVNTDESC, CNSDTDSC; TRTP only for admin keys."""
    return download(session, caller, study, "adtte.csv", settings)


# --- SAS transport (.xpt v5) beside the CSVs -------------------------------------------

XPT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/x-sas-xport": {"schema": {"type": "string", "format": "binary"}}},
        "description": "SAS transport file, version 5",
    }
}


@router.get(
    "/v1/studies/{study}/export.dm.xpt",
    summary="CDISC-style DM as SAS transport (v5)",
    response_class=Response,
    responses=XPT_RESPONSES,
)
def export_dm_xpt(
    study: VisibleStudy, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """The DM export (``export.dm.csv``) as a SAS transport file, version 5: dataset DM,
    the variables' labels and types as in the README's define table."""
    return download(session, caller, study, "dm.xpt", settings)


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
    return download(session, caller, study, "tu.xpt", settings)


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
    return download(session, caller, study, "tr.xpt", settings)


@router.get(
    "/v1/studies/{study}/export.adtte.xpt",
    summary="CDISC ADaM ADTTE as SAS transport (v5)",
    response_class=Response,
    responses=XPT_RESPONSES,
)
def export_adtte_xpt(
    study: VisibleStudy, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """The ADTTE export (``export.adtte.csv``) as a SAS transport file, version 5: dataset
    ADTTE, the variables' labels and types as in the README's define table (STARTDT and
    ADT as ISO 8601 text); TRTP only for admin keys."""
    return download(session, caller, study, "adtte.xpt", settings)
