"""CDISC ADaM ADSL: one record per subject, photographed or not, with its population
flags, treatment (admin exports only), death, last contact, end of study and the
index-leg baseline. Every value follows from the SDTM domains the same rows give
(DM, DS, PR, TU, TR): the define says how for each variable."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date

from service.core.exports.metadata import DS_TERMS
from service.core.exports.rows import MeasurementRow, SdtmRecord, SubjectRow
from service.core.exports.sdtm import _capture_date, _current_rows, _usubjid
from service.core.exports.subject_domains import disposition
from service.core.exports.subjects import (
    age_years,
    death_on,
    population_flags,
)
from service.core.healing.inputs import last_contact_on

DISCONTINUED = ("death", "withdrawal", "lost_to_follow_up")


def photo_dates(rows: Iterable[MeasurementRow]) -> dict[str, list[date]]:
    """Subject id -> the dates of its photos (not voided, any wound, any leg)."""
    dates: dict[str, set[date]] = defaultdict(set)
    for row in rows:
        if not row.voided:
            dates[row.subject_id].add(_capture_date(row))
    return {k: sorted(v) for k, v in dates.items()}


def _baseline_area(rows: Sequence[MeasurementRow]) -> float | None:
    """Sum over the subject's index-leg ulcers of the counted area at each ulcer's
    baseline (the last uploaded photo of its first day); None when one of them has none."""
    first_day: dict[str, MeasurementRow] = {}
    for row in rows:  # in _current_rows order: by wound, day, upload
        held = first_day.get(row.wound_id)
        if held is None or _capture_date(held) == _capture_date(row):
            first_day[row.wound_id] = row
    areas = [r.area_cm2 if r.counted else None for r in first_day.values()]
    if not areas or any(a is None for a in areas):
        return None
    return round(sum(a for a in areas if a is not None), 6)


def adsl_records(
    subjects: Iterable[SubjectRow],
    rows: Iterable[MeasurementRow],
    *,
    include_arm: bool = False,
) -> list[SdtmRecord]:
    """ADSL: one record per subject (``metadata.ADSL``). ``rows``: the study's measurement
    rows (history included; the current measurement of each photo not voided counts).
    The arm and treatments only with ``include_arm`` (admins, blinding)."""
    rows = list(rows)
    dates = photo_dates(rows)
    index_rows: dict[str, list[MeasurementRow]] = defaultdict(list)
    for row in _current_rows(rows):
        if row.index_leg is not False:
            index_rows[row.subject_id].append(row)
    return [
        _adsl_record(s, dates.get(s.subject_id, []), index_rows.get(s.subject_id, []), include_arm)
        for s in sorted(subjects, key=lambda s: s.subject_code)
    ]


def _end_of_study(
    subject: SubjectRow, photos: Sequence[date]
) -> tuple[str, str | None, date | None]:
    """(EOSSTT, DCSREAS, EOSDT) from the subject's disposition records (DS)."""
    for kind, on in disposition(subject, photos):
        if kind in DISCONTINUED:
            return "DISCONTINUED", DS_TERMS[kind][0], on
        if kind == "completed":
            return "COMPLETED", None, on
    return "ONGOING", None, None


def _adsl_record(
    s: SubjectRow,
    photos: Sequence[date],
    index_rows: Sequence[MeasurementRow],
    include_arm: bool,
) -> SdtmRecord:
    """One subject's ADSL record."""
    died = death_on(s.events)
    itt, mitt = population_flags(s.randomized_on is not None, bool(index_rows))
    status, reason, ended = _end_of_study(s, photos)
    last = last_contact_on(s.events, photos, starts=(s.randomized_on, s.reference_start))
    age = age_years(s)
    record: SdtmRecord = {
        "STUDYID": s.study,
        "USUBJID": _usubjid(s.study, s.subject_code),
        "SUBJID": s.subject_code,
        "SITEID": s.site,
        "AGE": age,
        "AGEU": "YEARS" if age is not None else None,
        "SEX": s.sex,
        "COUNTRY": s.country,
        "RANDDT": _iso(s.randomized_on),
        "RFSTDT": _iso(s.reference_start),
        "ITTFL": itt,
        "MITTFL": mitt,
        "DTHFL": "Y" if died else None,
        "DTHDT": _iso(died),
        "LSTCNTDT": _iso(last),
        "EOSSTT": status,
        "DCSREAS": reason,
        "EOSDT": _iso(ended),
        "NIXULC": len({r.wound_id for r in index_rows}),
        "BLIXAREA": _baseline_area(index_rows),
    }
    if include_arm and s.arm is not None:
        record.update({"ARM": s.arm, "ACTARM": s.arm, "TRT01P": s.arm, "TRT01A": s.arm})
    return record


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def index_sides(subjects: Iterable[SubjectRow]) -> Mapping[str, str | None]:
    """Subject id -> the side of its index leg (TU's laterality)."""
    return {s.subject_id: s.index_leg_side for s in subjects}
