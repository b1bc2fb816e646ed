"""Study exports (monitor and admin keys): CSV, FHIR R4 Bundle, every CDISC SDTM and
ADaM dataset of the metadata home as CSV and SAS transport, Define-XML 2.1 and the
submission package.

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
from service.core.exports.metadata import DATASETS, Dataset

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


# --- SAS transport (.xpt v5) beside the CSVs -------------------------------------------

XPT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/x-sas-xport": {"schema": {"type": "string", "format": "binary"}}},
        "description": "SAS transport file, version 5",
    }
}


def _dataset_routes(dataset: Dataset) -> None:
    """``export.<name>.csv`` and ``export.<name>.xpt`` of one dataset of the metadata
    home, documented from it."""
    low = dataset.name.lower()
    blinded = [v.name for v in dataset.variables if v.blinded]
    arm = f" {', '.join(blinded)} only for admin keys (blinding)." if blinded else ""
    about = f"{dataset.label}: {dataset.structure.lower()}.{arm} Variables: the define."

    def as_csv(
        study: VisibleStudy, session: SessionDep, caller: CallerDep, settings: SettingsDep
    ) -> Response:
        return download(session, caller, study, f"{low}.csv", settings)

    def as_xpt(
        study: VisibleStudy, session: SessionDep, caller: CallerDep, settings: SettingsDep
    ) -> Response:
        return download(session, caller, study, f"{low}.xpt", settings)

    kind = "SDTM" if dataset.standard == "SDTMIG" else "ADaM"
    for handler, suffix, responses, what in (
        (as_csv, "csv", CSV_RESPONSES, "CSV"),
        (as_xpt, "xpt", XPT_RESPONSES, "SAS transport (v5)"),
    ):
        router.add_api_route(
            f"/v1/studies/{{study}}/export.{low}.{suffix}",
            handler,
            methods=["GET"],
            summary=f"CDISC {kind} {dataset.name} ({dataset.label}) as {what}",
            description=about,
            response_class=Response,
            responses=responses,
            name=f"export_{low}_{suffix}",
        )


for _dataset in DATASETS.values():
    _dataset_routes(_dataset)


@router.get(
    "/v1/studies/{study}/export.define.xml",
    summary="Define-XML 2.1 of the SDTM and ADaM datasets",
    response_class=Response,
    responses={
        200: {
            "content": {"application/xml": {"schema": {"type": "string"}}},
            "description": "Define-XML 2.1",
        }
    },
)
def export_define(
    study: VisibleStudy, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """Every dataset of the package (``export.package.zip``) described from the one
    metadata home: variables, labels, types, lengths as in the transport files,
    codelists, origins and derivations. The arm's variables only for admin keys."""
    return download(session, caller, study, "define.xml", settings)


@router.get(
    "/v1/studies/{study}/export.package.zip",
    summary="Submission package: every SDTM and ADaM dataset as .xpt, define.xml, define.html",
    response_class=Response,
    responses={
        200: {
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            "description": "zip of the transport files and the define",
        }
    },
)
def export_package(
    study: VisibleStudy, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """DM, DS, PR, TU, SUPPTU, TR, SUPPPR, ADSL, ADTTE and ADTTEL as SAS transport files,
    ``define.xml`` (Define-XML 2.1) and ``define.html`` (the same, as a plain page). A
    monitor's package names no arm anywhere."""
    return download(session, caller, study, "package.zip", settings)
