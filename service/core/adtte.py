"""CDISC ADaM time-to-event datasets from the endpoint engine: ADTTE (one row per
subject and parameter) and ADTTEL (one row per ulcer), so a statistician can rebuild
the study answer with any survival package.

Pure: takes the engine's inputs (``healing.Subject``) and answers rows and CSV text.
The healing times come from the engine (``study_endpoints``), so ADTTE and the API
agree by construction; the statistician notebook checks it. The event times come from
the subject's events and its last contact (``exports.subjects``), the rules ADSL and DS
follow too.

ADTTE's parameters (PARAMCD):

- ``TTHEAL``: time to the first confirmed healing of all index-leg ulcers (the study
  event; censored at the last assessment of an index-leg ulcer, or at day 0 for a
  subject randomised and never photographed).
- ``CRHEAL``: competing-risk time to healing (``CRCAUSE`` 1 healed, 2 death or
  index-leg major amputation first, 0 censored): the input of the Aalen–Johansen curve.
- ``TTMAJAMP``: time to major amputation of the index leg.
- ``TTDEATH``: time to death (an amputation does not censor it).
- ``AFS``: amputation-free survival (major amputation of the index leg or death).

Without their event, TTMAJAMP, TTDEATH and AFS are censored at the subject's last
contact: its latest photo of any wound on either leg, event or randomisation, never
after a withdrawal or a loss to follow-up (``healing.last_contact_on``).

ADTTEL's parameter: ``TTWHEAL``, time to the first confirmed closure of each ulcer
(``TULNKID`` the wound, ``INDEXFL`` whether it is on the index leg), so that ADTTE has
one record per subject and parameter.

AVAL is in days from STARTDT (the time origin, DM.RFSTDTC); CNSR 0 is an event, 1 a
censoring. STARTDT and ADT are ISO dates in the records and the CSV, numeric SAS dates
(DATE9.) in the transport file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from service.core import healing as engine
from service.core.exports import subjects as facts
from service.core.exports.metadata import ADTTE, ADTTE_PARAMS, ADTTEL, ADTTEL_PARAMS
from service.core.exports.rows import SdtmRecord
from service.core.exports.sdtm import _usubjid as usubjid
from service.core.exports.text import _csv

PARAMS = {**ADTTE_PARAMS, **ADTTEL_PARAMS}
LAST_CONTACT = "LAST CONTACT"


@dataclass(frozen=True)
class _SubjectRows:
    """What every ADTTE row of one subject shares: the study, the subject, its time
    origin (STARTDT, from which AVAL counts), its population flags (ADSL) and, for
    admins, its arm (TRTP)."""

    study: str
    subject: engine.Subject
    origin: date
    arm: str | None

    def row(
        self,
        paramcd: str,
        aval: int,
        event: bool,
        *,
        evntdesc: str,
        cnsdtdsc: str,
        crcause: int | None = None,
        wound: engine.Wound | None = None,
    ) -> SdtmRecord:
        """One parameter's row; ADT is STARTDT + AVAL days; CNSR 0 an event, 1 censored."""
        subject = self.subject
        code = subject.code or subject.subject_id
        itt, mitt = facts.population_flags(
            subject.randomized_on is not None, _index_leg_photographed(subject)
        )
        row: SdtmRecord = {
            "STUDYID": self.study,
            "USUBJID": usubjid(self.study, code),
            "SUBJID": code,
            "SITEID": subject.site or "",
            "ITTFL": itt,
            "MITTFL": mitt,
            "PARAMCD": paramcd,
            "PARAM": PARAMS[paramcd],
            "AVAL": aval,
            "AVALU": "DAYS",
            "STARTDT": self.origin.isoformat(),
            "ADT": (self.origin + timedelta(days=aval)).isoformat(),
            "CNSR": 0 if event else 1,
            "EVNTDESC": evntdesc if event else None,
            "CNSDTDSC": None if event else cnsdtdsc,
        }
        if wound is None:
            row["CRCAUSE"] = crcause
        else:
            row["TULNKID"] = wound.label or wound.wound_id
            row["INDEXFL"] = None if wound.index_leg is None else "Y" if wound.index_leg else "N"
        if self.arm is not None:
            row["TRTP"] = self.arm
        return row


def _index_leg_photographed(subject: engine.Subject) -> bool:
    """At least one photo (not voided) of a wound not marked as on the other leg."""
    return any(w.visits for w in subject.wounds if w.index_leg is not False)


def last_contact_day(subject: engine.Subject, origin: date) -> int:
    """Days from ``origin`` to the subject's last contact (``healing.last_contact_on``):
    its photos of every wound, its events and its randomisation."""
    photos = [v.captured_at for w in subject.wounds for v in w.visits]
    last = engine.last_contact_on(
        list(subject.events), photos, starts=(subject.randomized_on, origin)
    )
    return (last - origin).days if last is not None else 0


@dataclass(frozen=True)
class TimeToEvent:
    """ADTTE's and ADTTEL's rows of a study."""

    adtte: list[SdtmRecord]
    adttel: list[SdtmRecord]


def time_to_event(
    study: str,
    subjects: Sequence[engine.Subject],
    *,
    include_arm: bool = False,
    **options: Any,
) -> TimeToEvent:
    """ADTTE and ADTTEL of ``subjects``; subjects without a time origin (no photo, no
    ``randomized_on``) get no row; a subject without an index-leg wound gets no TTHEAL
    or CRHEAL row (the study answer leaves it out of the curve) but its TTMAJAMP,
    TTDEATH and AFS. ``TRTP`` only with ``include_arm`` (admins). ``options``: the
    engine's wound options (``healing.wound_endpoints``: closure confirmation, drainage
    rule, week-4 window), the same for the study and each wound."""
    answer = engine.study_endpoints(subjects, by_arm=include_arm, **options)
    by_id = {r["subject"]: r for r in answer["subject_rows"]}
    adtte: list[SdtmRecord] = []
    adttel: list[SdtmRecord] = []
    for subject in subjects:
        r = by_id[subject.subject_id]
        if not r["time_origin"]:
            continue
        arm = (subject.arm or "") if include_arm else None
        rows_of = _SubjectRows(study, subject, date.fromisoformat(r["time_origin"]), arm)
        wound_answer = engine.subject_endpoints(
            subject.wounds, randomized_on=subject.randomized_on, **options
        )
        adtte += _healing_rows(rows_of, r)
        adtte += _event_rows(rows_of)
        adttel += _wound_rows(rows_of, wound_answer)
    return TimeToEvent(adtte, adttel)


def adtte_rows(
    study: str,
    subjects: Sequence[engine.Subject],
    *,
    include_arm: bool = False,
    **options: Any,
) -> list[SdtmRecord]:
    """ADTTE's rows (``time_to_event``)."""
    return time_to_event(study, subjects, include_arm=include_arm, **options).adtte


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
    """ADTTEL's TTWHEAL: one row per wound with a time to closure."""
    wounds = {w.wound_id: w for w in rows_of.subject.wounds}
    return [
        rows_of.row(
            "TTWHEAL",
            w["time_to_closure_days"],
            w["closure_confirmed"],
            evntdesc="CLOSURE CONFIRMED",
            cnsdtdsc="LAST ASSESSMENT",
            wound=wounds[w["wound"]],
        )
        for w in wound_answer["wounds"]
        if w["time_to_closure_days"] is not None
    ]


def _event_rows(rows_of: _SubjectRows) -> list[SdtmRecord]:
    """TTMAJAMP, TTDEATH and AFS: the first such event inside follow-up
    (``subjects.observed_events``), else censored at the last contact. An amputation
    does not end follow-up for death."""
    origin = rows_of.origin
    events = facts.observed_events(rows_of.subject.events)
    amputation = next(
        (e.on for e in events if e.kind == "major_amputation" and e.leg == "index"), None
    )
    death = next((e.on for e in events if e.kind == "death"), None)
    either = min((d for d in (amputation, death) if d is not None), default=None)
    censored_at = last_contact_day(rows_of.subject, origin)
    return [
        rows_of.row(
            paramcd,
            (on - origin).days if on is not None else censored_at,
            on is not None,
            evntdesc=text,
            cnsdtdsc=LAST_CONTACT,
        )
        for paramcd, on, text in (
            ("TTMAJAMP", amputation, "MAJOR AMPUTATION OF THE INDEX LEG"),
            ("TTDEATH", death, "DEATH"),
            ("AFS", either, "DEATH OR MAJOR AMPUTATION OF THE INDEX LEG"),
        )
    ]


def columns(*, include_arm: bool = False) -> list[str]:
    """ADTTE's columns: TRTP (the arm) only where the caller may see it."""
    return ADTTE.columns(include_arm=include_arm)


def lesion_columns(*, include_arm: bool = False) -> list[str]:
    """ADTTEL's columns: TRTP (the arm) only where the caller may see it."""
    return ADTTEL.columns(include_arm=include_arm)


def adtte_csv(rows: Sequence[SdtmRecord], *, include_arm: bool = False) -> str:
    """ADTTE as CSV: the columns ``columns`` names, missing values blank."""
    return _csv(columns(include_arm=include_arm), rows, guard=False)


def adttel_csv(rows: Sequence[SdtmRecord], *, include_arm: bool = False) -> str:
    """ADTTEL as CSV."""
    return _csv(lesion_columns(include_arm=include_arm), rows, guard=False)
