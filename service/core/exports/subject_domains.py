"""CDISC SDTM domains about subjects rather than photos: DM (demographics, deaths),
DS (disposition: randomisation, death, withdrawal, loss to follow-up, completion) and
PR (amputations and revascularisations, with SUPPPR's index leg), all from the subject
rows and their live events (voided events never reach here)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date

from service.core.exports.metadata import DM, DS_TERMS, PR_TERMS
from service.core.exports.rows import EventRow, SdtmRecord, SubjectRow
from service.core.exports.sdtm import _study_day, _SubjectSequence, _usubjid, supp_record
from service.core.exports.subjects import (
    age_years,
    death_on,
    laterality,
    leg_is_index,
)
from service.core.exports.text import _csv
from service.core.healing.inputs import LEAVES_STUDY, last_contact_on


def dm_columns(*, include_arm: bool) -> list[str]:
    """DM's columns; ARMCD/ARM/ACTARMCD/ACTARM only in the admin export (blinding)."""
    return DM.columns(include_arm=include_arm)


def cdisc_dm_csv(subjects: Iterable[SubjectRow], *, include_arm: bool = False) -> str:
    """CDISC-style DM as CSV (``cdisc_dm_records``)."""
    records = cdisc_dm_records(subjects, include_arm=include_arm)
    return _csv(dm_columns(include_arm=include_arm), records, guard=False)


def arm_code(arm: str) -> str:
    """ARMCD of an arm: upper case letters and digits, at most 20 characters."""
    return re.sub(r"[^A-Z0-9]", "", arm.upper())[:20]


def cdisc_dm_records(
    subjects: Iterable[SubjectRow], *, include_arm: bool = False
) -> list[SdtmRecord]:
    """CDISC-style DM (demographics): one row per subject, photographed or not, with
    RFSTDTC (the subject's time origin, from which every --DY counts), SITEID, the death
    (DTHFL/DTHDTC) from its death event, and the optional demographics an admin set
    (absent ones missing, never guessed). The arm only in the admin export (blinding)."""
    records = []
    for s in sorted(subjects, key=lambda s: s.subject_code):
        died = death_on(s.events)
        age = age_years(s)
        record: SdtmRecord = {
            "STUDYID": s.study,
            "DOMAIN": "DM",
            "USUBJID": _usubjid(s.study, s.subject_code),
            "SUBJID": s.subject_code,
            "RFSTDTC": s.reference_start.isoformat() if s.reference_start else None,
            "DTHDTC": died.isoformat() if died else None,
            "DTHFL": "Y" if died else None,
            "SITEID": s.site,
            "BRTHDTC": s.birth_date.isoformat() if s.birth_date else None,
            "AGE": age,
            "AGEU": "YEARS" if age is not None else None,
            "SEX": s.sex,
            "COUNTRY": s.country,
        }
        if include_arm and s.arm is not None:
            code = arm_code(s.arm)
            record.update({"ARM": s.arm, "ARMCD": code, "ACTARM": s.arm, "ACTARMCD": code})
        records.append(record)
    return records


def _study_day_of(subject: SubjectRow, on: date) -> int | None:
    if subject.reference_start is None:
        return None
    return _study_day((on - subject.reference_start).days)


def disposition(subject: SubjectRow, photo_dates: Sequence[date]) -> list[tuple[str, date]]:
    """The subject's disposition records as (service kind, date), in date order:
    ``randomized`` (its randomisation date), each death, withdrawal and loss to
    follow-up, and ``completed`` at the last contact once the study is locked for a
    subject that none of those ended."""
    records: list[tuple[str, date]] = []
    if subject.randomized_on is not None:
        records.append(("randomized", subject.randomized_on))
    ending = [e for e in subject.events if e.kind == "death" or e.kind in LEAVES_STUDY]
    records += [(e.kind, e.on) for e in ending]
    if subject.study_locked and not ending:
        last = last_contact_on(
            subject.events, photo_dates, starts=(subject.randomized_on, subject.reference_start)
        )
        if last is not None:
            records.append(("completed", last))
    return sorted(records, key=lambda r: (r[1], r[0] != "randomized"))


def cdisc_ds_records(
    subjects: Iterable[SubjectRow], photo_dates: Mapping[str, Sequence[date]]
) -> list[SdtmRecord]:
    """CDISC DS (disposition): per subject its ``disposition`` records, DSDECOD and
    DSCAT from the CDISC codelists (``metadata.DS_TERMS``). ``photo_dates``: subject id
    -> the dates of its photos (not voided, any wound), for the last contact."""
    records: list[SdtmRecord] = []
    seq = _SubjectSequence()
    for s in sorted(subjects, key=lambda s: s.subject_code):
        usubjid = _usubjid(s.study, s.subject_code)
        for kind, on in disposition(s, photo_dates.get(s.subject_id, ())):
            decod, category = DS_TERMS[kind]
            records.append(
                {
                    "STUDYID": s.study,
                    "DOMAIN": "DS",
                    "USUBJID": usubjid,
                    "DSSEQ": seq(usubjid),
                    "DSTERM": decod,
                    "DSDECOD": decod,
                    "DSCAT": category,
                    "DSSTDTC": on.isoformat(),
                    "DSSTDY": _study_day_of(s, on),
                }
            )
    return records


def _procedures(subjects: Iterable[SubjectRow]) -> list[tuple[SubjectRow, EventRow, SdtmRecord]]:
    """PR's records, each with its subject and event."""
    out = []
    seq = _SubjectSequence()
    for s in sorted(subjects, key=lambda s: s.subject_code):
        usubjid = _usubjid(s.study, s.subject_code)
        for event in sorted(s.events, key=lambda e: e.on):
            if event.kind not in PR_TERMS:
                continue
            treatment, location = PR_TERMS[event.kind]
            record: SdtmRecord = {
                "STUDYID": s.study,
                "DOMAIN": "PR",
                "USUBJID": usubjid,
                "PRSEQ": seq(usubjid),
                "PRTRT": treatment,
                "PRLOC": location,
                "PRLAT": laterality(leg_is_index(event.leg), s.index_leg_side),
                "PRSTDTC": event.on.isoformat(),
                "PRSTDY": _study_day_of(s, event.on),
            }
            out.append((s, event, record))
    return out


def cdisc_pr_records(subjects: Iterable[SubjectRow]) -> list[SdtmRecord]:
    """CDISC PR (procedures): each major or minor amputation and revascularisation,
    PRLAT from the event's leg and the subject's index-leg side (null when unknown);
    whether it was the index leg is SUPPPR's INDEXLEG (``cdisc_supppr_records``)."""
    return [record for _, _, record in _procedures(subjects)]


def cdisc_supppr_records(subjects: Iterable[SubjectRow]) -> list[SdtmRecord]:
    """SUPPPR: INDEXLEG of every procedure whose leg is recorded."""
    return [
        supp_record("PR", record, "PRSEQ", event.leg == "index")
        for _, event, record in _procedures(subjects)
        if event.leg is not None
    ]
