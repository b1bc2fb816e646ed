"""The one metadata home of the CDISC exports: every dataset, its variables (label,
type, codelist) and the codelists; the writers, the README and Define-XML read it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.core.exports.rows import _NOT_DONE


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
