"""The one metadata home of the CDISC exports: every dataset (SDTM and ADaM), its
variables (name, label, type, codelist, origin, derivation, whether it is blinded) and
the codelists. The CSV and SAS transport writers take their columns, labels and types
from here, Define-XML 2.1 is generated from here, and the README's variable tables are
``markdown_tables()`` (a test checks the README holds them as written).

Blinding lives here too: a variable marked ``blinded`` (the arm and the treatment
variables) is a column only of the admin exports (``Dataset.columns``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from service.core.exports.rows import _NOT_DONE

DataType = Literal["text", "integer", "float", "date", "datetime"]
"""Define-XML data types: ``date``/``datetime`` are ISO 8601 text (SDTM --DTC); an
ADaM numeric date is ``integer`` with ``sas_date`` (days since 1960-01-01, DATE9.)."""

Origin = Literal["Collected", "Derived", "Assigned", "Protocol", "Predecessor"]


@dataclass(frozen=True)
class Variable:
    """One variable of a dataset as Define-XML describes it."""

    name: str
    label: str
    data_type: DataType = "text"
    required: bool = False
    """Present and never null in every record the service writes (Define ``Mandatory``)."""
    codelist: str | None = None
    """Name of the codelist its values come from (``CODELISTS``)."""
    origin: Origin = "Assigned"
    method: str | None = None
    """How a derived value is computed (Define-XML MethodDef)."""
    comment: str | None = None
    """What a reader should know besides (Define-XML CommentDef)."""
    blinded: bool = False
    """The arm or a treatment: a column only of admin exports."""
    sas_date: bool = False
    """A numeric SAS date (days since 1960-01-01), written with the DATE9. format."""

    @property
    def numeric(self) -> bool:
        """Stored as a SAS number (8 bytes) in the transport file."""
        return self.data_type in ("integer", "float")


@dataclass(frozen=True)
class Dataset:
    """One dataset of the submission: its Define-XML description and its variables in
    column order."""

    name: str
    label: str
    standard: Literal["SDTMIG", "ADaMIG"]
    klass: str
    """Define-XML ``def:Class`` (SDTM observation class or ADaM class)."""
    structure: str
    keys: tuple[str, ...]
    variables: tuple[Variable, ...]
    subclass: str | None = None
    comment: str | None = None
    domain: bool = True
    """An SDTM domain (has DOMAIN); ADaM datasets and SUPP-- are not."""

    def columns(self, *, include_arm: bool) -> list[str]:
        """The columns an export writes: blinded ones only with ``include_arm`` (admins)."""
        return [v.name for v in self.variables if include_arm or not v.blinded]

    def variable(self, name: str) -> Variable:
        return next(v for v in self.variables if v.name == name)

    @property
    def purpose(self) -> str:
        return "Tabulation" if self.standard == "SDTMIG" else "Analysis"


@dataclass(frozen=True)
class Codelist:
    """Values a coded variable takes. ``nci``: the CDISC/NCI codelist code when the
    values are CDISC controlled terminology (else sponsor-defined); ``external``: a
    dictionary outside CDISC (ISO 3166)."""

    name: str
    label: str
    values: tuple[str, ...] = ()
    nci: str | None = None
    external: tuple[str, str] | None = None
    """(dictionary, version) of an external code list."""
    decodes: dict[str, str] = field(default_factory=dict)


def _v(name: str, label: str, **kw: Any) -> Variable:
    return Variable(name, label, **kw)


# --- shared variables -------------------------------------------------------------------

_ID = _v("STUDYID", "Study Identifier", required=True, comment="The service's study id")
_USUBJID = _v(
    "USUBJID",
    "Unique Subject Identifier",
    required=True,
    origin="Derived",
    method="STUDYID, a hyphen and SUBJID",
)


def _domain(code: str) -> Variable:
    return _v("DOMAIN", "Domain Abbreviation", required=True, comment=f"Always {code}")


def _seq(domain: str) -> Variable:
    return _v(
        f"{domain}SEQ",
        "Sequence Number",
        data_type="integer",
        required=True,
        origin="Derived",
        method="1, 2, ... within each subject, in the order the records are written",
    )


def _dy(name: str, label: str, dtc: str) -> Variable:
    return _v(
        name,
        label,
        data_type="integer",
        origin="Derived",
        method=f"Calendar days from DM.RFSTDTC to {dtc}, plus 1 when on or after RFSTDTC "
        "(RFSTDTC is day 1; there is no day 0)",
    )


_VISIT = (
    _v(
        "VISITNUM",
        "Visit Number",
        data_type="integer",
        origin="Derived",
        method="The study's visit labels numbered 1..n in visit order: the median study day "
        "of the photos with the label, then natural order (V2 before V10)",
    ),
    _v("VISIT", "Visit Name", origin="Collected", comment="The visit label sent with the photo"),
)
_ARM_COMMENT = "Admin exports only (blinding); the service records one arm per subject"
_ARM = (
    _v("ARMCD", "Planned Arm Code", origin="Derived", blinded=True,
       method="ARM upper case, letters and digits only, at most 20 characters"),
    _v("ARM", "Description of Planned Arm", origin="Assigned", blinded=True,
       comment=_ARM_COMMENT),
    _v("ACTARMCD", "Actual Arm Code", origin="Derived", blinded=True,
       method="Equal to ARMCD: the service records the arm a subject was randomised to"),
    _v("ACTARM", "Description of Actual Arm", origin="Derived", blinded=True,
       method="Equal to ARM: the service records the arm a subject was randomised to"),
)  # fmt: skip
_INDEX_LEG_COMMENT = (
    "LEFT or RIGHT from the wound's leg (index or other) and the subject's index-leg side "
    "(an admin sets it); null when either is not recorded, never guessed"
)


# --- SDTM ----------------------------------------------------------------------------------

DM = Dataset(
    "DM",
    "Demographics",
    "SDTMIG",
    "SPECIAL PURPOSE",
    "One record per subject",
    ("STUDYID", "USUBJID"),
    (
        _ID,
        _domain("DM"),
        _USUBJID,
        _v("SUBJID", "Subject Identifier for the Study", required=True, origin="Collected"),
        _v(
            "RFSTDTC",
            "Subject Reference Start Date/Time",
            data_type="date",
            origin="Derived",
            method="The subject's time origin: the randomisation date when given, else the "
            "date of the first photo of any wound",
        ),
        _v(
            "DTHDTC",
            "Date/Time of Death",
            data_type="date",
            origin="Collected",
            comment="The date of the subject's recorded death event (voided events left out)",
        ),
        _v(
            "DTHFL",
            "Subject Death Flag",
            codelist="NY",
            origin="Derived",
            method="Y when a death event is recorded, else null",
        ),
        _v("SITEID", "Study Site Identifier", required=True, origin="Assigned"),
        _v(
            "BRTHDTC",
            "Date/Time of Birth",
            data_type="date",
            origin="Collected",
            comment="Optional, admin-set; null when the study does not collect it",
        ),
        _v(
            "AGE",
            "Age",
            data_type="integer",
            origin="Derived",
            method="The age in years an admin recorded, else whole years from BRTHDTC to "
            "RFSTDTC; null when neither is known",
        ),
        _v(
            "AGEU",
            "Age Units",
            codelist="AGEU",
            origin="Assigned",
            comment="YEARS when AGE is given",
        ),
        _v(
            "SEX",
            "Sex",
            codelist="SEX",
            origin="Collected",
            comment="SDTMIG core Req; optional, admin-set here: null when not recorded",
        ),
        *_ARM,
        _v(
            "COUNTRY",
            "Country",
            codelist="COUNTRY",
            origin="Collected",
            comment="SDTMIG core Req; optional, admin-set here (ISO 3166-1 alpha-3): null "
            "when not recorded",
        ),
    ),  # fmt: skip
)

DS = Dataset(
    "DS",
    "Disposition",
    "SDTMIG",
    "EVENTS",
    "One record per disposition status or protocol milestone per subject",
    ("STUDYID", "USUBJID", "DSDECOD", "DSSTDTC"),
    (
        _ID,
        _domain("DS"),
        _USUBJID,
        _seq("DS"),
        _v(
            "DSTERM",
            "Reported Term for the Disposition Event",
            required=True,
            origin="Assigned",
            comment="The service's event kind in CDISC words (as DSDECOD)",
        ),
        _v(
            "DSDECOD",
            "Standardized Disposition Term",
            required=True,
            codelist="DSDECOD",
            origin="Assigned",
            method="RANDOMIZED from the randomisation date; DEATH, WITHDRAWAL BY SUBJECT, "
            "LOST TO FOLLOW-UP from the subject's live events (voided events left out); "
            "COMPLETED for a subject without one of them once the study is locked, at the "
            "last contact",
        ),
        _v(
            "DSCAT",
            "Category for Disposition Event",
            required=True,
            codelist="DSCAT",
            origin="Assigned",
        ),
        _v("DSSTDTC", "Start Date/Time of Disposition Event", data_type="date", origin="Collected"),
        _dy("DSSTDY", "Study Day of Start of Disposition Event", "DSSTDTC"),
    ),  # fmt: skip
)

PR = Dataset(
    "PR",
    "Procedures",
    "SDTMIG",
    "INTERVENTIONS",
    "One record per recorded procedure per subject",
    ("STUDYID", "USUBJID", "PRTRT", "PRSTDTC"),
    (
        _ID,
        _domain("PR"),
        _USUBJID,
        _seq("PR"),
        _v(
            "PRTRT",
            "Reported Name of Procedure",
            required=True,
            codelist="PRTRT",
            origin="Collected",
            comment="Major and minor amputations and revascularisations recorded as subject "
            "events (voided events left out). PR, not CE: each is a procedure done to the "
            "subject on a date",
        ),
        _v(
            "PRLOC",
            "Location of Procedure",
            codelist="PRLOC",
            origin="Assigned",
            comment="LEG for a major amputation or a revascularisation, FOOT for a minor "
            "amputation",
        ),
        _v("PRLAT", "Laterality", codelist="LAT", origin="Derived", method=_INDEX_LEG_COMMENT),
        _v("PRSTDTC", "Start Date/Time of Procedure", data_type="date", origin="Collected"),
        _dy("PRSTDY", "Study Day of Start of Procedure", "PRSTDTC"),
    ),  # fmt: skip
)

TU = Dataset(
    "TU",
    "Tumor/Lesion Identification",
    "SDTMIG",
    "FINDINGS",
    "One record per identified lesion per subject",
    ("STUDYID", "USUBJID", "TULNKID"),
    (
        _ID,
        _domain("TU"),
        _USUBJID,
        _seq("TU"),
        _v("TULNKID", "Link ID", origin="Collected", comment="The wound's label: links to TR"),
        _v("TUTESTCD", "Tumor/Lesion ID Short Name", required=True, codelist="TUTESTCD"),
        _v("TUTEST", "Tumor/Lesion ID Test Name", required=True),
        _v("TUORRES", "Tumor/Lesion ID Result", codelist="TUORRES"),
        _v("TUSTRESC", "Tumor/Lesion ID Result Std. Format", codelist="TUORRES"),
        _v(
            "TULOC",
            "Location of the Tumor/Lesion",
            origin="Collected",
            comment="The wound's anatomical location as entered (free text); whether it is on "
            "the index leg is SUPPTU.QVAL for QNAM INDEXLEG",
        ),
        _v("TULAT", "Laterality", codelist="LAT", origin="Derived", method=_INDEX_LEG_COMMENT),
        _v("TUMETHOD", "Method of Identification", codelist="METHOD"),
        _v("TUEVAL", "Evaluator", codelist="EVAL"),
        *_VISIT,
        _v(
            "TUDTC",
            "Date/Time of Tumor/Lesion Identification",
            data_type="datetime",
            origin="Collected",
            comment="The wound's first photo",
        ),
        _dy("TUDY", "Study Day of Tumor/Lesion Identification", "TUDTC"),
    ),  # fmt: skip
)

TR = Dataset(
    "TR",
    "Tumor/Lesion Results",
    "SDTMIG",
    "FINDINGS",
    "One record per lesion measurement per visit per subject",
    ("STUDYID", "USUBJID", "TRLNKID", "TRTESTCD", "TRDTC", "TRGRPID"),
    (
        _ID,
        _domain("TR"),
        _USUBJID,
        _seq("TR"),
        _v("TRLNKID", "Link ID", origin="Collected", comment="The wound's label (TU.TULNKID)"),
        _v("TRTESTCD", "Tumor/Lesion Assessment Short Name", required=True, codelist="TRTESTCD"),
        _v("TRTEST", "Tumor/Lesion Assessment Test Name", required=True),
        _v(
            "TRORRES",
            "Result or Finding in Original Units",
            origin="Derived",
            method="AREA, LENGTH, WIDTH, PERIM: measured in the photo's millimetre plane by "
            "the model named in the measurement export (or a clinician's outline); WNDCLOSE: "
            "Y when epithelialised and no drainage (the study's closure rule: drainage must "
            "be recorded absent when the study requires it)",
        ),
        _v("TRORRESU", "Original Units", codelist="UNIT"),
        _v(
            "TRSTRESC", "Character Result/Finding in Std Format", origin="Derived", method="TRORRES"
        ),
        _v(
            "TRSTRESN",
            "Numeric Result/Finding in Standard Units",
            data_type="float",
            origin="Derived",
            method="TRORRES as a number",
        ),
        _v("TRSTRESU", "Standard Units", codelist="UNIT"),
        _v(
            "TRSTAT",
            "Completion Status",
            codelist="ND",
            comment="NOT DONE when the photo does not count in the endpoints",
        ),
        _v("TRREASND", "Reason Not Done", codelist="REASND"),
        _v("TRMETHOD", "Method Used to Identify the Tumor/Lesion", codelist="METHOD"),
        _v("TREVAL", "Evaluator", codelist="EVAL"),
        _v("TRGRPID", "Group ID", comment="The photo's assessment id: a photo's records share it"),
        *_VISIT,
        _v(
            "TRDTC",
            "Date/Time of Tumor/Lesion Measurement",
            data_type="datetime",
            origin="Collected",
            comment="The photo's capture time; several photos of a wound "
            "on one day: the last uploaded counts (the highest TRSEQ of that day)",
        ),
        _dy("TRDY", "Study Day of Tumor/Lesion Measurement", "TRDTC"),
    ),  # fmt: skip
)


def _supp(parent: str, label: str) -> Dataset:
    return Dataset(
        f"SUPP{parent}",
        f"Supplemental Qualifiers for {parent}",
        "SDTMIG",
        "RELATIONSHIP",
        "One record per supplemental qualifier per related parent domain record",
        ("STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM"),
        (
            _ID,
            _v("RDOMAIN", "Related Domain Abbreviation", required=True, codelist="RDOMAIN"),
            _USUBJID,
            _v("IDVAR", "Identifying Variable", required=True, codelist="IDVAR"),
            _v(
                "IDVARVAL",
                "Identifying Variable Value",
                required=True,
                origin="Derived",
                method=f"The {parent}SEQ of the parent record",
            ),
            _v("QNAM", "Qualifier Variable Name", required=True, codelist="QNAM"),
            _v("QLABEL", "Qualifier Variable Label", required=True),
            _v(
                "QVAL",
                "Data Value",
                required=True,
                codelist="NY",
                origin="Collected",
                comment=label,
            ),
            _v("QORIG", "Origin", required=True),
            _v("QEVAL", "Evaluator"),
        ),  # fmt: skip
        domain=False,
    )


SUPPTU = _supp("TU", "INDEXLEG: Y when the wound is on the index leg, N on the other leg")
SUPPPR = _supp("PR", "INDEXLEG: Y when the procedure was on the index leg, N on the other leg")


# --- ADaM ----------------------------------------------------------------------------------

_ADSL_ID = (
    _v("STUDYID", "Study Identifier", required=True, origin="Predecessor",
       comment="DM.STUDYID"),
    _v("USUBJID", "Unique Subject Identifier", required=True, origin="Predecessor",
       comment="DM.USUBJID"),
    _v("SUBJID", "Subject Identifier for the Study", required=True, origin="Predecessor",
       comment="DM.SUBJID"),
    _v("SITEID", "Study Site Identifier", required=True, origin="Predecessor",
       comment="DM.SITEID"),
)  # fmt: skip
_FLAGS = (
    _v("ITTFL", "Intent-To-Treat Population Flag", required=True, codelist="NY",
       origin="Derived", method="Y when DS has a RANDOMIZED record (a randomisation date), "
       "else N"),
    _v("MITTFL", "Modified ITT Population Flag", required=True, codelist="NY",
       origin="Derived", method="Y when ITTFL is Y and at least one index-leg ulcer "
       "(SUPPTU INDEXLEG not N) was photographed (a TR record), else N"),
)  # fmt: skip


def _sas_day(name: str, label: str, **kw: Any) -> Variable:
    return _v(name, label, data_type="integer", sas_date=True, **kw)


ADSL = Dataset(
    "ADSL",
    "Subject-Level Analysis Dataset",
    "ADaMIG",
    "SUBJECT LEVEL ANALYSIS DATASET",
    "One record per subject",
    ("STUDYID", "USUBJID"),
    (
        *_ADSL_ID,
        _v("AGE", "Age", data_type="integer", origin="Predecessor", comment="DM.AGE"),
        _v("AGEU", "Age Units", codelist="AGEU", origin="Predecessor", comment="DM.AGEU"),
        _v("SEX", "Sex", codelist="SEX", origin="Predecessor", comment="DM.SEX"),
        _v("COUNTRY", "Country", codelist="COUNTRY", origin="Predecessor", comment="DM.COUNTRY"),
        _v(
            "ARM",
            "Description of Planned Arm",
            origin="Predecessor",
            blinded=True,
            comment="DM.ARM; admin exports only",
        ),
        _v(
            "ACTARM",
            "Description of Actual Arm",
            origin="Predecessor",
            blinded=True,
            comment="DM.ACTARM; admin exports only",
        ),
        _v(
            "TRT01P",
            "Planned Treatment for Period 01",
            origin="Derived",
            blinded=True,
            method="DM.ARM",
        ),
        _v(
            "TRT01A",
            "Actual Treatment for Period 01",
            origin="Derived",
            blinded=True,
            method="DM.ACTARM",
        ),
        _sas_day(
            "RANDDT",
            "Date of Randomization",
            origin="Derived",
            method="DS.DSSTDTC of the RANDOMIZED record, as a SAS date",
        ),
        _sas_day(
            "RFSTDT",
            "Time Origin (Day 0) Date",
            origin="Derived",
            method="DM.RFSTDTC as a SAS date: every time to event counts from it",
        ),
        *_FLAGS,
        _v("DTHFL", "Subject Death Flag", codelist="NY", origin="Predecessor", comment="DM.DTHFL"),
        _sas_day("DTHDT", "Date of Death", origin="Derived", method="DM.DTHDTC as a SAS date"),
        _sas_day(
            "LSTCNTDT",
            "Date of Last Contact",
            origin="Derived",
            method="The latest of DM.RFSTDTC, every TR date (any wound, any leg), "
            "DS.DSSTDTC and PR.PRSTDTC; follow-up ends at a WITHDRAWAL BY SUBJECT or "
            "LOST TO FOLLOW-UP record, so nothing after it counts",
        ),
        _v(
            "EOSSTT",
            "End of Study Status",
            required=True,
            codelist="EOSSTT",
            origin="Derived",
            method="DISCONTINUED when DS has DEATH, WITHDRAWAL BY SUBJECT "
            "or LOST TO FOLLOW-UP; COMPLETED when DS has COMPLETED; else ONGOING",
        ),
        _v(
            "DCSREAS",
            "Reason for Discontinuation from Study",
            codelist="DSDECOD",
            origin="Derived",
            method="DS.DSDECOD of the first discontinuing record",
        ),
        _sas_day(
            "EOSDT",
            "End of Study Date",
            origin="Derived",
            method="DS.DSSTDTC of the first discontinuing or COMPLETED record",
        ),
        _v(
            "NIXULC",
            "Number of Index-Leg Ulcers",
            data_type="integer",
            required=True,
            origin="Derived",
            method="TU records whose SUPPTU INDEXLEG is not N (a wound not "
            "marked as on the other leg is on the index leg)",
        ),
        _v(
            "BLIXAREA",
            "Baseline Index-Leg Ulcer Area (cm2)",
            data_type="float",
            origin="Derived",
            method="Sum over the index-leg ulcers of the area (TR AREA) "
            "at each ulcer's first photo; null when one of them has no counted area there",
        ),
    ),  # fmt: skip
)

_BDS_ADSL = (
    _v("TRTP", "Planned Treatment", origin="Predecessor", blinded=True,
       comment="ADSL.TRT01P; admin exports only"),
    _v("ITTFL", "Intent-To-Treat Population Flag", codelist="NY", origin="Predecessor",
       comment="ADSL.ITTFL"),
    _v("MITTFL", "Modified ITT Population Flag", codelist="NY", origin="Predecessor",
       comment="ADSL.MITTFL"),
)  # fmt: skip


def _tte(*, lesion: bool) -> tuple[Variable, ...]:
    codelist = "PARAMCDL" if lesion else "PARAMCD"
    params = "TTWHEAL" if lesion else "TTHEAL, CRHEAL, TTMAJAMP, TTDEATH, AFS"
    per_lesion = (
        (
            _v("TULNKID", "Link ID", required=True, origin="Predecessor",
               comment="TU.TULNKID: the wound"),
            _v("INDEXFL", "Index-Leg Ulcer Flag", codelist="NY", origin="Predecessor",
               comment="SUPPTU.QVAL (QNAM INDEXLEG); null when the wound's leg is not "
               "recorded (the endpoints then count it on the index leg)"),
        )
        if lesion
        else ()
    )  # fmt: skip
    return (
        *_ADSL_ID,
        *_BDS_ADSL,
        _v("PARAMCD", "Parameter Code", required=True, codelist=codelist, origin="Assigned"),
        _v("PARAM", "Parameter", required=True, origin="Assigned", comment=f"{params}"),
        *per_lesion,
        _v("AVAL", "Analysis Value", data_type="integer", required=True, origin="Derived",
           method="ADT minus STARTDT, in days"),
        _v("AVALU", "Analysis Value Unit", required=True, origin="Assigned",
           comment="DAYS"),
        _sas_day("STARTDT", "Time-to-Event Origin Date for Subject", required=True,
                 origin="Derived", method="ADSL.RFSTDT"),
        _sas_day("ADT", "Analysis Date", required=True, origin="Derived",
                 method=_ADT_METHOD_LESION if lesion else _ADT_METHOD),
        _v("CNSR", "Censor", data_type="integer", required=True, origin="Derived",
           method="0 for an event, 1 for a censoring"),
        *(
            ()
            if lesion
            else (
                _v("CRCAUSE", "Competing-Risk Cause (CRHEAL)", data_type="integer",
                   origin="Derived", method="CRHEAL only: 1 healed first, 2 death or "
                   "index-leg major amputation first, 0 censored"),
            )
        ),
        _v("EVNTDESC", "Event or Censoring Description", origin="Assigned"),
        _v("CNSDTDSC", "Censor Date Description", origin="Assigned"),
    )  # fmt: skip


_CLOSURE_RULE = (
    "a run of closed visits (TR WNDCLOSE Y) confirmed by a closed visit at least 14 days "
    "after its first, every visit in between closed; the event day is the run's first. "
    "A photo dated after the end of the subject's follow-up (DS DEATH, WITHDRAWAL BY "
    "SUBJECT, LOST TO FOLLOW-UP) or, for an index-leg ulcer, after the major amputation "
    "of the index leg (TR NOT DONE, AFTER SUBJECT EVENT) takes no part"
)
_ADT_METHOD = (
    "TTHEAL: the first day on which every index-leg ulcer is inside a confirmed closure "
    f"({_CLOSURE_RULE}), else censored at the last photo of an index-leg ulcer (STARTDT for "
    "a subject randomised and never photographed); CRHEAL: as TTHEAL, or the first death "
    "or index-leg major amputation (DS DEATH, PR MAJOR AMPUTATION with SUPPPR INDEXLEG Y) "
    "when earlier (CRCAUSE 2); TTMAJAMP: the first index-leg major amputation; TTDEATH: "
    "ADSL.DTHDT; AFS: the first of the two. Without the event: censored at ADSL.LSTCNTDT "
    "(an amputation does not end follow-up for death)"
)
_ADT_METHOD_LESION = (
    f"TTWHEAL: the first day of the ulcer's first confirmed closure ({_CLOSURE_RULE}), "
    "else censored at the ulcer's last photo"
)

ADTTE = Dataset(
    "ADTTE",
    "Time-to-Event Analysis Dataset",
    "ADaMIG",
    "BASIC DATA STRUCTURE",
    "One record per subject per parameter",
    ("STUDYID", "USUBJID", "PARAMCD"),
    _tte(lesion=False),
    subclass="TIME-TO-EVENT",
)
ADTTEL = Dataset(
    "ADTTEL",
    "Time-to-Event Analysis Dataset per Ulcer",
    "ADaMIG",
    "BASIC DATA STRUCTURE",
    "One record per subject per ulcer per parameter",
    ("STUDYID", "USUBJID", "PARAMCD", "TULNKID"),
    _tte(lesion=True),
    subclass="TIME-TO-EVENT",
)

DATASETS: dict[str, Dataset] = {
    d.name: d for d in (DM, DS, PR, TU, SUPPTU, TR, SUPPPR, ADSL, ADTTE, ADTTEL)
}
"""Every dataset of the submission package, in the package's order."""

SDTM_VARIABLES: dict[str, tuple[Variable, ...]] = {n: d.variables for n, d in DATASETS.items()}
SDTM_LABELS = {n: d.label for n, d in DATASETS.items()}
DM_COLUMNS = DM.columns(include_arm=True)
TU_COLUMNS = TU.columns(include_arm=True)
TR_COLUMNS = TR.columns(include_arm=True)

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
    "TTMAJAMP": "Time to major amputation of the index leg (days)",
    "TTDEATH": "Time to death (days)",
    "AFS": "Amputation-free survival: major amputation of the index leg or death (days)",
    "CRHEAL": "Time to healing, death and index-leg major amputation competing (days)",
}
"""ADTTE's parameters (PARAMCD: PARAM); ``service.core.adtte`` writes them."""
ADTTEL_PARAMS = {"TTWHEAL": "Time to first confirmed closure of the ulcer (days)"}
"""ADTTEL's parameter: one record per ulcer."""

DS_TERMS = {
    "randomized": ("RANDOMIZED", "PROTOCOL MILESTONE"),
    "death": ("DEATH", "DISPOSITION EVENT"),
    "withdrawal": ("WITHDRAWAL BY SUBJECT", "DISPOSITION EVENT"),
    "lost_to_follow_up": ("LOST TO FOLLOW-UP", "DISPOSITION EVENT"),
    "completed": ("COMPLETED", "DISPOSITION EVENT"),
}
"""DSDECOD and DSCAT of each disposition (the service's event kinds and two more)."""
PR_TERMS = {
    "major_amputation": ("MAJOR AMPUTATION", "LEG"),
    "minor_amputation": ("MINOR AMPUTATION", "FOOT"),
    "revascularisation": ("REVASCULARISATION", "LEG"),
}
"""PRTRT and PRLOC of each procedure event."""

_CODELISTS = (
    Codelist("TUTESTCD", "Tumor Identification Test Code", ("TUMIDENT",)),
    Codelist("TUORRES", "Tumor Identification Result", ("ULCER",)),
    Codelist(
        "TRTESTCD",
        "Tumor/Lesion Assessment Test Code (sponsor)",
        tuple(code for domain, code, *_ in TEST_CODES if domain == "TR"),
    ),
    Codelist("METHOD", "Method (sponsor)", ("PHOTOGRAPHY", "CLINICAL EXAMINATION")),
    Codelist("EVAL", "Evaluator (sponsor)", ("ALGORITHM", "INVESTIGATOR")),
    Codelist("UNIT", "Unit (sponsor)", ("cm", "cm2")),
    Codelist("ND", "Not Done", ("NOT DONE",), nci="C66789"),
    Codelist("REASND", "Reason Not Done (sponsor)", tuple(sorted(set(_NOT_DONE.values())))),
    Codelist("NY", "No Yes Response", ("N", "Y"), nci="C66742"),
    Codelist("SEX", "Sex", ("F", "M", "U", "UNDIFFERENTIATED"), nci="C66731"),
    Codelist("AGEU", "Age Unit", ("YEARS",), nci="C66781"),
    Codelist("COUNTRY", "Country", external=("ISO 3166-1 alpha-3", "2020")),
    Codelist("LAT", "Laterality", ("LEFT", "RIGHT"), nci="C99073"),
    Codelist(
        "DSDECOD",
        "Disposition terms (NCOMPLT C66727 and PROTMLST C114118)",
        tuple(sorted({decod for decod, _ in DS_TERMS.values()})),
    ),
    Codelist(
        "DSCAT",
        "Category for Disposition Event",
        ("DISPOSITION EVENT", "PROTOCOL MILESTONE"),
        nci="C74558",
    ),  # fmt: skip
    Codelist("PRTRT", "Procedures (sponsor)", tuple(t for t, _ in PR_TERMS.values())),
    Codelist("PRLOC", "Procedure locations (sponsor)", ("FOOT", "LEG")),
    Codelist("RDOMAIN", "Related domains", ("PR", "TU")),
    Codelist("IDVAR", "Identifying variables", ("PRSEQ", "TUSEQ")),
    Codelist(
        "QNAM",
        "Supplemental qualifiers (sponsor)",
        ("INDEXLEG",),
        decodes={"INDEXLEG": "Index Leg"},
    ),  # fmt: skip
    Codelist("EOSSTT", "End of study status", ("COMPLETED", "DISCONTINUED", "ONGOING")),
    Codelist("PARAMCD", "ADTTE parameters", tuple(ADTTE_PARAMS), decodes=ADTTE_PARAMS),
    Codelist("PARAMCDL", "ADTTEL parameters", tuple(ADTTEL_PARAMS), decodes=ADTTEL_PARAMS),
)
CODELIST_DEFS: dict[str, Codelist] = {c.name: c for c in _CODELISTS}
CODELISTS: dict[str, tuple[str, ...]] = {c.name: c.values for c in _CODELISTS if c.values}
"""Values each coded variable takes (REASND: the API's ``uncounted_reason`` codes in
the words of ``_NOT_DONE``; a reason added later is written upper case, spaces for
underscores, until it is added there)."""


# --- the README's tables -----------------------------------------------------------------


def _type_name(v: Variable) -> str:
    if v.sas_date:
        return "Num (date)"
    return "Num" if v.numeric else "Char"


def markdown_tables(datasets: Sequence[Dataset] = tuple(DATASETS.values())) -> str:
    """The README's dataset, variable and codelist tables, written from this home."""
    lines = ["| dataset | label | class | structure |", "|---|---|---|---|"]
    lines += [f"| {d.name} | {d.label} | {d.klass} | {d.structure} |" for d in datasets]
    lines += [
        "",
        "| dataset | variable | label | type | req | codelist | origin | admin only |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for d in datasets:
        for v in d.variables:
            lines.append(
                f"| {d.name} | `{v.name}` | {v.label} | {_type_name(v)} | "
                f"{'Req' if v.required else ''} | {f'`{v.codelist}`' if v.codelist else ''} | "
                f"{v.origin} | {'yes' if v.blinded else ''} |"
            )
    lines += ["", "| codelist | values | source |", "|---|---|---|"]
    for c in _CODELISTS:
        values = ", ".join(f"`{x}`" for x in c.values) if c.values else c.external[0]  # type: ignore[index]
        source = f"CDISC CT {c.nci}" if c.nci else ("external" if c.external else "sponsor")
        lines.append(f"| `{c.name}` | {values} | {source} |")
    return "\n".join(lines) + "\n"
