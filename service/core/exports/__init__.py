"""Trial exports: pure builders from measurement rows to CSV, FHIR R4 and CDISC-style tables.

The routes load ``MeasurementRow`` objects (one per stored measurement, with the
provenance of the number) and call one builder. Blinding: the arm is written only
when the caller passes ``include_arm=True`` (admin keys). The SDTM tables are built
once as records and written as CSV or as SAS transport (``sas_transport``); their
define-style metadata (``SDTM_VARIABLES``, ``CODELISTS``, ``TEST_CODES``) is the one
home the README's table and the tests read.

One module per format or domain: ``rows`` (the rows and the time convention),
``text`` (CSV), ``fhir`` (FHIR R4), ``metadata`` (the one home of datasets, variables
and codelists), ``subjects`` (death, follow-up, last contact, laterality, age),
``sdtm`` (TU, SUPPTU, TR), ``subject_domains`` (DM, DS, PR, SUPPPR), ``adsl`` (ADaM
ADSL), ``xpt`` (SAS transport), ``define`` (Define-XML 2.1), ``package`` (every
dataset of a study, the define and the zip). ADTTE/ADTTEL are ``service.core.adtte``.
"""

from service.core.exports.fhir import api_id, fhir_bundle, fhir_id
from service.core.exports.metadata import (
    ADTTE_PARAMS,
    CODELISTS,
    DM_COLUMNS,
    SDTM_LABELS,
    SDTM_VARIABLES,
    TEST_CODES,
    TR_COLUMNS,
    TU_COLUMNS,
    Variable,
)
from service.core.exports.rows import (
    EventRow,
    MeasurementRow,
    SdtmRecord,
    SdtmValue,
    SubjectRow,
    awaiting_clinician,
    capture_time,
    not_done_reason,
    utc_instant,
)
from service.core.exports.sdtm import (
    _usubjid,
    cdisc_supptu_records,
    cdisc_tr_csv,
    cdisc_tr_records,
    cdisc_tu_csv,
    cdisc_tu_records,
    sdtm_unsafe_values,
    visit_numbers,
)
from service.core.exports.subject_domains import (
    cdisc_dm_csv,
    cdisc_dm_records,
    cdisc_ds_records,
    cdisc_pr_records,
    cdisc_supppr_records,
    dm_columns,
)
from service.core.exports.text import CSV_COLUMNS, measurements_csv, spreadsheet_unsafe
from service.core.exports.xpt import sas_transport

__all__ = [
    "ADTTE_PARAMS",
    "CODELISTS",
    "CSV_COLUMNS",
    "DM_COLUMNS",
    "SDTM_LABELS",
    "SDTM_VARIABLES",
    "TEST_CODES",
    "TR_COLUMNS",
    "TU_COLUMNS",
    "MeasurementRow",
    "EventRow",
    "SdtmRecord",
    "SdtmValue",
    "SubjectRow",
    "Variable",
    "_usubjid",
    "api_id",
    "awaiting_clinician",
    "capture_time",
    "cdisc_dm_csv",
    "cdisc_ds_records",
    "cdisc_pr_records",
    "cdisc_supppr_records",
    "cdisc_supptu_records",
    "cdisc_dm_records",
    "cdisc_tr_csv",
    "cdisc_tr_records",
    "cdisc_tu_csv",
    "cdisc_tu_records",
    "dm_columns",
    "fhir_bundle",
    "fhir_id",
    "measurements_csv",
    "not_done_reason",
    "sas_transport",
    "sdtm_unsafe_values",
    "spreadsheet_unsafe",
    "utc_instant",
    "visit_numbers",
]
