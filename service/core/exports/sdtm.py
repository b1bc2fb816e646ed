"""CDISC SDTM-style TU (with SUPPTU) and TR records and their CSV text, and what the
SDTM domains share (USUBJID, study days, --SEQ, VISITNUM)."""

from __future__ import annotations

import csv
import io
import re
import statistics
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, tzinfo

from service.core.exports.metadata import _TR_TESTS, TR_COLUMNS, TU_COLUMNS
from service.core.exports.rows import (
    MeasurementRow,
    SdtmRecord,
    capture_time,
    not_done_reason,
)
from service.core.exports.subjects import laterality
from service.core.exports.text import _csv, spreadsheet_unsafe
from service.core.healing import AFTER_SUBJECT_EVENT, is_closed

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


def _capture_date(row: MeasurementRow) -> date:
    return row.captured_at.date() if isinstance(row.captured_at, datetime) else row.captured_at


def _current_rows(rows: Iterable[MeasurementRow]) -> list[MeasurementRow]:
    """The measurement that counts for each photo not voided, by subject, wound and day;
    photos of one wound on one day in upload order (the last uploaded is the one the
    endpoints read: the highest --SEQ of the day)."""
    current = [r for r in rows if r.current and not r.voided]
    return sorted(
        current,
        key=lambda r: (
            r.subject_code,
            r.wound_label,
            _capture_date(r),
            _utc_naive(r.uploaded_at),
            str(r.captured_at),
        ),
    )


def _utc_naive(value: datetime | None) -> datetime:
    if value is None:
        return datetime.min
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


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


def cdisc_tu_csv(
    rows: Iterable[MeasurementRow],
    *,
    clinic_tz: tzinfo | None = None,
    index_sides: Mapping[str, str | None] | None = None,
) -> str:
    """CDISC-style TU as CSV (``cdisc_tu_records``)."""
    records = cdisc_tu_records(rows, clinic_tz=clinic_tz, index_sides=index_sides)
    return _csv(TU_COLUMNS, records, guard=False)


def cdisc_tu_records(
    rows: Iterable[MeasurementRow],
    *,
    clinic_tz: tzinfo | None = None,
    index_sides: Mapping[str, str | None] | None = None,
) -> list[SdtmRecord]:
    """CDISC-style TU (lesion identification): one row per wound, at its first
    assessment. TULAT from the wound's leg and the subject's index-leg side
    (``index_sides``: subject id -> LEFT/RIGHT); whether the wound is on the index leg
    is SUPPTU's INDEXLEG (``cdisc_supptu_records``)."""
    return [record for record, _ in _tu_records(rows, clinic_tz, index_sides or {})]


def cdisc_supptu_records(
    rows: Iterable[MeasurementRow], *, clinic_tz: tzinfo | None = None
) -> list[SdtmRecord]:
    """SUPPTU: INDEXLEG (Y on the index leg, N on the other) of every TU record whose
    wound's leg is recorded."""
    return [
        supp_record("TU", record, "TUSEQ", on_index)
        for record, on_index in _tu_records(rows, clinic_tz, {})
        if on_index is not None
    ]


def supp_record(parent: str, record: SdtmRecord, idvar: str, on_index_leg: bool) -> SdtmRecord:
    """One SUPP-- record: the parent record's INDEXLEG qualifier."""
    return {
        "STUDYID": record["STUDYID"],
        "RDOMAIN": parent,
        "USUBJID": record["USUBJID"],
        "IDVAR": idvar,
        "IDVARVAL": str(record[idvar]),
        "QNAM": "INDEXLEG",
        "QLABEL": "Index Leg",
        "QVAL": "Y" if on_index_leg else "N",
        "QORIG": "CRF",
        "QEVAL": "",
    }


def _tu_records(
    rows: Iterable[MeasurementRow],
    clinic_tz: tzinfo | None,
    index_sides: Mapping[str, str | None],
) -> list[tuple[SdtmRecord, bool | None]]:
    """TU's records, each with whether its wound is on the index leg (None: not recorded)."""
    current = _current_rows(rows)
    visits = visit_numbers(current)
    first_by_wound: dict[str, MeasurementRow] = {}
    for row in current:
        first_by_wound.setdefault(row.wound_id, row)
    records: list[tuple[SdtmRecord, bool | None]] = []
    seq = _SubjectSequence()
    for row in first_by_wound.values():
        usubjid = _usubjid(row.study, row.subject_code)
        record: SdtmRecord = {
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
            "TULAT": laterality(row.index_leg, index_sides.get(row.subject_id)),
            "TUMETHOD": "PHOTOGRAPHY",
            "TUEVAL": "INVESTIGATOR",
            "VISITNUM": visits.get(row.visit or ""),
            "VISIT": row.visit,
            "TUDTC": capture_time(row.captured_at, clinic_tz, utc=False),
            "TUDY": _study_day(_days_from_reference(row)),
        }
        records.append((record, row.index_leg))
    return records


def cdisc_tr_csv(
    rows: Iterable[MeasurementRow],
    *,
    clinic_tz: tzinfo | None = None,
    closure_requires_drainage_recorded: bool = False,
) -> str:
    """CDISC-style TR as CSV (``cdisc_tr_records``)."""
    records = cdisc_tr_records(
        rows,
        clinic_tz=clinic_tz,
        closure_requires_drainage_recorded=closure_requires_drainage_recorded,
    )
    return _csv(TR_COLUMNS, records, guard=False)


def cdisc_tr_records(
    rows: Iterable[MeasurementRow],
    *,
    clinic_tz: tzinfo | None = None,
    closure_requires_drainage_recorded: bool = False,
) -> list[SdtmRecord]:
    """CDISC-style TR (lesion results): per assessment the counting measurement's area,
    length, width and perimeter, and the clinician's closure observation (WNDCLOSE).

    A photo not counted in the endpoints has TRSTAT ``NOT DONE`` with the reason
    (``not_done_reason``, the same the FHIR export gives). WNDCLOSE follows the one
    closure rule with the study's ``closure_requires_drainage_recorded`` (the exports
    pass the study's setting; off, drainage not recorded does not make it N), so the
    endpoints can be re-derived from TR."""
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
            closed = is_closed(
                row.epithelialized,
                row.drainage,
                requires_drainage_recorded=closure_requires_drainage_recorded,
            )
            # After the end of follow-up the observation is no part of closure either.
            not_done = (
                not_done_reason(row, None) if row.uncounted_reason == AFTER_SUBJECT_EVENT else None
            )
            records.append(_tr_closure(common, seq(usubjid), closed, not_done))
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


def _tr_closure(
    common: SdtmRecord, seq: int, closed: bool, not_done: str | None = None
) -> SdtmRecord:
    """The clinician's closure observation (WNDCLOSE) read by the one closure rule
    (``healing.is_closed``); ``NOT DONE`` with the reason ``not_done`` on a photo dated
    after the end of follow-up (``after_subject_event``: no part of closure), so a
    closure re-derived from TR cannot count it."""
    record: SdtmRecord = {
        **common,
        "TRSEQ": seq,
        "TRTESTCD": "WNDCLOSE",
        "TRTEST": "Wound Closure",
        "TRMETHOD": "CLINICAL EXAMINATION",
        "TREVAL": "INVESTIGATOR",
    }
    if not_done is not None:
        record.update({"TRSTAT": "NOT DONE", "TRREASND": not_done})
    else:
        record.update({"TRORRES": "Y" if closed else "N", "TRSTRESC": "Y" if closed else "N"})
    return record
