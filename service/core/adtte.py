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
from datetime import date, timedelta
from typing import Any

from service.core import healing as engine
from service.core.exports import ADTTE_PARAMS as PARAMS
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


def _row(
    study: str,
    subject: engine.Subject,
    origin: date | None,
    paramcd: str,
    aval: int | None,
    event: bool,
    *,
    evntdesc: str,
    cnsdtdsc: str,
    parcat1: str = "",
    crcause: int | None = None,
    arm: str | None = None,
) -> dict[str, Any]:
    adt = origin + timedelta(days=aval) if origin is not None and aval is not None else None
    row: dict[str, Any] = {
        "STUDYID": study,
        "USUBJID": usubjid(study, subject.code or subject.subject_id),
        "SUBJID": subject.code or subject.subject_id,
        "SITEID": subject.site or "",
        "PARAMCD": paramcd,
        "PARAM": PARAMS[paramcd],
        "PARCAT1": parcat1,
        "AVAL": aval,
        "AVALU": "DAYS",
        "STARTDT": origin.isoformat() if origin else "",
        "ADT": adt.isoformat() if adt else "",
        "CNSR": 0 if event else 1,
        "CRCAUSE": "" if crcause is None else crcause,
        "EVNTDESC": evntdesc if event else "",
        "CNSDTDSC": "" if event else cnsdtdsc,
    }
    if arm is not None:
        row["TRTP"] = arm
    return row


def adtte_rows(
    study: str, subjects: Sequence[engine.Subject], *, include_arm: bool = False, **options: Any
) -> list[dict[str, Any]]:
    """The ADTTE rows of ``subjects``; subjects without a time origin (no photo, no
    ``randomized_on``) or without an index-leg wound get no TTHEAL row (the study
    answer leaves them out too). ``TRTP`` only with ``include_arm`` (admins)."""
    answer = engine.study_endpoints(subjects, by_arm=include_arm, **options)
    by_id = {r["subject"]: r for r in answer["subject_rows"]}
    rows: list[dict[str, Any]] = []
    for subject in subjects:
        r = by_id[subject.subject_id]
        origin = date.fromisoformat(r["time_origin"]) if r["time_origin"] else None
        if origin is None:
            continue
        arm = (subject.arm or "") if include_arm else None
        censor_text = r["reason"] or "LAST ASSESSMENT"
        if r["time_to_closure_days"] is not None:
            rows.append(
                _row(
                    study,
                    subject,
                    origin,
                    "TTHEAL",
                    r["time_to_closure_days"],
                    r["healing_event"],
                    evntdesc="COMPLETE HEALING CONFIRMED",
                    cnsdtdsc=censor_text,
                    arm=arm,
                )
            )
            rows.append(
                _row(
                    study,
                    subject,
                    origin,
                    "CRHEAL",
                    r["cr_time_days"],
                    r["cr_cause"] != 0,
                    evntdesc="COMPLETE HEALING CONFIRMED"
                    if r["cr_cause"] == 1
                    else "DEATH OR MAJOR AMPUTATION OF THE INDEX LEG",
                    cnsdtdsc=censor_text,
                    crcause=r["cr_cause"],
                    arm=arm,
                )
            )
        wound_answer = engine.subject_endpoints(
            subject.wounds, randomized_on=subject.randomized_on, **options
        )
        for w in wound_answer["wounds"]:
            if w["time_to_closure_days"] is None:
                continue
            rows.append(
                _row(
                    study,
                    subject,
                    origin,
                    "TTWHEAL",
                    w["time_to_closure_days"],
                    w["closure_confirmed"],
                    evntdesc="CLOSURE CONFIRMED",
                    cnsdtdsc="LAST ASSESSMENT",
                    parcat1=w["label"] or w["wound"],
                    arm=arm,
                )
            )
        follow_up = r["afs_time_days"] if not r["afs_event"] else None
        days = sorted(((e.on - origin).days, e) for e in subject.events)
        last_known = max([d for d, _ in days] + [wound_answer["last_visit_day"] or 0])
        if follow_up is None:
            follow_up = last_known
        amputation = next(
            (d for d, e in days if e.kind == "major_amputation" and e.leg == "index"), None
        )
        death = next((d for d, e in days if e.kind == "death"), None)
        for paramcd, day, text in (
            ("TTMAJAMP", amputation, "MAJOR AMPUTATION OF THE INDEX LEG"),
            ("TTDEATH", death, "DEATH"),
        ):
            rows.append(
                _row(
                    study,
                    subject,
                    origin,
                    paramcd,
                    day if day is not None else last_known,
                    day is not None,
                    evntdesc=text,
                    cnsdtdsc="LAST CONTACT",
                    arm=arm,
                )
            )
        rows.append(
            _row(
                study,
                subject,
                origin,
                "AFS",
                r["afs_time_days"],
                r["afs_event"],
                evntdesc="DEATH OR MAJOR AMPUTATION OF THE INDEX LEG",
                cnsdtdsc="LAST CONTACT",
                arm=arm,
            )
        )
    return rows


def columns(*, include_arm: bool = False) -> list[str]:
    """The export's columns: TRTP (the arm) only where the caller may see it."""
    return [*COLUMNS, "TRTP"] if include_arm else list(COLUMNS)


def adtte_csv(rows: Sequence[dict[str, Any]], *, include_arm: bool = False) -> str:
    columns_ = columns(include_arm=include_arm)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns_, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns_})
    return out.getvalue()
