"""CDISC SDTM-style DM, TU and TR records and their CSV text."""

from __future__ import annotations

import csv
import io
import re
import statistics
from collections.abc import Iterable
from datetime import datetime, tzinfo

from service.core.exports.metadata import _TR_TESTS, DM_COLUMNS, TR_COLUMNS, TU_COLUMNS
from service.core.exports.rows import (
    MeasurementRow,
    SdtmRecord,
    SubjectRow,
    capture_time,
    not_done_reason,
)
from service.core.exports.text import _csv, spreadsheet_unsafe
from service.core.healing import is_closed

# --- CDISC SDTM-style TU, TR and DM ---------------------------------------------------
#
# SDTM values are written as they are (a dataset, not a spreadsheet): no formula
# guard inside them. Free text that reaches them (visit labels, wound locations) is
# refused at the API when it would start a spreadsheet formula, and subject codes and
# wound labels start with a letter or digit, so a spreadsheet that opens these CSVs
# has nothing to run; ``sdtm_unsafe_values`` finds any older value that does.


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
