"""CDISC ADaM ADTTE (time-to-event) from the endpoint engine: one row per subject and
parameter, so a statistician can rebuild the study answer with any survival package.

Pure: takes the engine's inputs (``endpoints.Subject``) and answers rows and CSV text.
Every time comes from the engine (``study_endpoints``), so ADTTE and the API agree by
construction; the statistician notebook checks it.

Parameters (PARAMCD):

- ``TTHEAL``: time to the first confirmed healing of all index-leg ulcers (the study
  event; censored at the last assessment, or at day 0 for a subject randomised and
  never photographed).
- ``TTWHEAL``: time to the first confirmed closure of each wound (``PARCAT1``: wound).
- ``TTMAJAMP``: time to major amputation of the index leg.
- ``TTDEATH``: time to death.
- ``AFS``: amputation-free survival (major amputation of the index leg or death).
- ``CRHEAL``: competing-risk time to healing (``CRCAUSE`` 1 healed, 2 death or
  index-leg major amputation first, 0 censored): the input of the Aalen–Johansen curve.

AVAL is in days from STARTDT (the time origin); CNSR 0 is an event, 1 a censoring.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from service.core import healing as engine
from service.core.exports import ADTTE_PARAMS as PARAMS
from service.core.exports import SdtmRecord
from service.core.exports import _usubjid as usubjid

COLUMNS = (
    "STUDYID",
    "USUBJID",
    "SUBJID",
    "SITEID",
    "PARAMCD",
    "PARAM",
    "PARCAT1",
    "AVAL",
    "AVALU",
    "STARTDT",
    "ADT",
    "CNSR",
    "CRCAUSE",
    "EVNTDESC",
    "CNSDTDSC",
)


@dataclass(frozen=True)
class _SubjectRows:
    """What every ADTTE row of one subject shares: the study, the subject, its time
    origin (STARTDT, from which AVAL counts) and, for admins, its arm (TRTP)."""

    study: str
    subject: engine.Subject
    origin: date
    arm: str | None

    def row(
        self,
        paramcd: str,
        aval: int | None,
        event: bool,
        *,
        evntdesc: str,
        cnsdtdsc: str,
        parcat1: str = "",
        crcause: int | None = None,
    ) -> SdtmRecord:
        """One parameter's row; ADT is STARTDT + AVAL days; CNSR 0 an event, 1 censored."""
        subject, origin = self.subject, self.origin
        adt = origin + timedelta(days=aval) if aval is not None else None
        row: SdtmRecord = {
            "STUDYID": self.study,
            "USUBJID": usubjid(self.study, subject.code or subject.subject_id),
            "SUBJID": subject.code or subject.subject_id,
            "SITEID": subject.site or "",
            "PARAMCD": paramcd,
            "PARAM": PARAMS[paramcd],
            "PARCAT1": parcat1,
            "AVAL": aval,
            "AVALU": "DAYS",
            "STARTDT": origin.isoformat(),
            "ADT": adt.isoformat() if adt else "",
            "CNSR": 0 if event else 1,
            "CRCAUSE": "" if crcause is None else crcause,
            "EVNTDESC": evntdesc if event else "",
            "CNSDTDSC": "" if event else cnsdtdsc,
        }
        if self.arm is not None:
            row["TRTP"] = self.arm
        return row


def adtte_rows(
    study: str,
    subjects: Sequence[engine.Subject],
    *,
    include_arm: bool = False,
    **options: Any,
) -> list[SdtmRecord]:
    """The ADTTE rows of ``subjects``; subjects without a time origin (no photo, no
    ``randomized_on``) or without an index-leg wound get no TTHEAL row (the study
    answer leaves them out too). ``TRTP`` only with ``include_arm`` (admins).
    ``options``: the engine's wound options (``healing.wound_endpoints``: closure
    confirmation, drainage rule, week-4 window), the same for the study and each wound."""
    answer = engine.study_endpoints(subjects, by_arm=include_arm, **options)
    by_id = {r["subject"]: r for r in answer["subject_rows"]}
    rows: list[SdtmRecord] = []
    for subject in subjects:
        r = by_id[subject.subject_id]
        if not r["time_origin"]:
            continue
        arm = (subject.arm or "") if include_arm else None
        rows_of = _SubjectRows(study, subject, date.fromisoformat(r["time_origin"]), arm)
        wound_answer = engine.subject_endpoints(
            subject.wounds, randomized_on=subject.randomized_on, **options
        )
        rows += _healing_rows(rows_of, r)
        rows += _wound_rows(rows_of, wound_answer)
        rows += _event_rows(rows_of, r, wound_answer)
    return rows


def _healing_rows(rows_of: _SubjectRows, r: dict[str, Any]) -> list[SdtmRecord]:
    """TTHEAL and CRHEAL from the study answer's subject row; none for a subject the
    study answer leaves out of the curve (no index-leg wound)."""
    if r["time_to_closure_days"] is None:
        return []
    censor_text = r["reason"] or "LAST ASSESSMENT"
    return [
        rows_of.row(
            "TTHEAL",
            r["time_to_closure_days"],
            r["healing_event"],
            evntdesc="COMPLETE HEALING CONFIRMED",
            cnsdtdsc=censor_text,
        ),
        rows_of.row(
            "CRHEAL",
            r["cr_time_days"],
            r["cr_cause"] != 0,
            evntdesc="COMPLETE HEALING CONFIRMED"
            if r["cr_cause"] == 1
            else "DEATH OR MAJOR AMPUTATION OF THE INDEX LEG",
            cnsdtdsc=censor_text,
            crcause=r["cr_cause"],
        ),
    ]


def _wound_rows(rows_of: _SubjectRows, wound_answer: dict[str, Any]) -> list[SdtmRecord]:
    """TTWHEAL: one row per wound with a time to closure (PARCAT1: its label)."""
    return [
        rows_of.row(
            "TTWHEAL",
            w["time_to_closure_days"],
            w["closure_confirmed"],
            evntdesc="CLOSURE CONFIRMED",
            cnsdtdsc="LAST ASSESSMENT",
            parcat1=w["label"] or w["wound"],
        )
        for w in wound_answer["wounds"]
        if w["time_to_closure_days"] is not None
    ]


def _event_rows(
    rows_of: _SubjectRows, r: dict[str, Any], wound_answer: dict[str, Any]
) -> list[SdtmRecord]:
    """TTMAJAMP and TTDEATH (the first such event, else censored at the last contact:
    the latest event or visit) and AFS from the study answer."""
    days = sorted(((e.on - rows_of.origin).days, e) for e in rows_of.subject.events)
    last_known = max([d for d, _ in days] + [wound_answer["last_visit_day"] or 0])
    amputation = next(
        (d for d, e in days if e.kind == "major_amputation" and e.leg == "index"), None
    )
    death = next((d for d, e in days if e.kind == "death"), None)
    rows = [
        rows_of.row(
            paramcd,
            day if day is not None else last_known,
            day is not None,
            evntdesc=text,
            cnsdtdsc="LAST CONTACT",
        )
        for paramcd, day, text in (
            ("TTMAJAMP", amputation, "MAJOR AMPUTATION OF THE INDEX LEG"),
            ("TTDEATH", death, "DEATH"),
        )
    ]
    rows.append(
        rows_of.row(
            "AFS",
            r["afs_time_days"],
            r["afs_event"],
            evntdesc="DEATH OR MAJOR AMPUTATION OF THE INDEX LEG",
            cnsdtdsc="LAST CONTACT",
        )
    )
    return rows


def columns(*, include_arm: bool = False) -> list[str]:
    """The export's columns: TRTP (the arm) only where the caller may see it."""
    return [*COLUMNS, "TRTP"] if include_arm else list(COLUMNS)


def adtte_csv(rows: Sequence[SdtmRecord], *, include_arm: bool = False) -> str:
    """ADTTE as CSV: the columns ``columns`` names, missing values blank."""
    columns_ = columns(include_arm=include_arm)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns_, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns_})
    return out.getvalue()
