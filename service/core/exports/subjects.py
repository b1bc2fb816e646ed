"""What the exports say about a subject beyond its photos: death, the end of follow-up,
the last contact, laterality and age. One home for each, read by DM, DS, PR, TU, ADSL
and ADTTE, so the SDTM tables and the analysis datasets cannot disagree.

Pure: plain dates and the subject's live events in, dates and codes out.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Protocol

from service.core.exports.rows import SubjectRow
from service.core.healing.inputs import followed_events


class Event(Protocol):
    """A subject event as the exports read it (``rows.EventRow`` or the engine's
    ``healing.SubjectEvent``): its kind, date and leg."""

    @property
    def kind(self) -> str: ...

    @property
    def on(self) -> date: ...

    @property
    def leg(self) -> str | None: ...


_SIDES = ("LEFT", "RIGHT")


def first_event_on(events: Iterable[Event], kind: str, leg: str | None = None) -> date | None:
    """The date of the first event of ``kind`` (and ``leg`` when given), or None."""
    dates = [e.on for e in events if e.kind == kind and (leg is None or e.leg == leg)]
    return min(dates) if dates else None


def death_on(events: Iterable[Event]) -> date | None:
    """The subject's death date (DM.DTHDTC), or None."""
    return first_event_on(events, "death")


def laterality(on_index_leg: bool | None, index_leg_side: str | None) -> str | None:
    """LEFT or RIGHT for a wound or procedure on the index leg (True) or the other leg
    (False), given the side of the index leg; None when either is not recorded."""
    side = (index_leg_side or "").upper()
    if on_index_leg is None or side not in _SIDES:
        return None
    if on_index_leg:
        return side
    return _SIDES[1 - _SIDES.index(side)]


def leg_is_index(leg: str | None) -> bool | None:
    """An event's ``leg`` (``index``/``contralateral``) as on-the-index-leg, or None."""
    return None if leg is None else leg == "index"


def age_years(subject: SubjectRow) -> int | None:
    """DM.AGE: the age an admin recorded, else whole years from the birth date to the
    reference start; None when neither is known (never guessed)."""
    if subject.age_years is not None:
        return subject.age_years
    born, start = subject.birth_date, subject.reference_start
    if born is None or start is None:
        return None
    return start.year - born.year - ((start.month, start.day) < (born.month, born.day))


def observed_events(events: Iterable[Event]) -> list[Event]:
    """The events inside follow-up (``healing.followed_events``: none after a death,
    withdrawal or loss to follow-up), in date order."""
    return sorted(followed_events(list(events)), key=lambda e: e.on)


def population_flags(randomized: bool, index_leg_photographed: bool) -> tuple[str, str]:
    """(ITTFL, MITTFL): randomised; randomised with at least one index-leg ulcer
    photographed (a wound not marked as on the other leg counts as index-leg)."""
    itt = "Y" if randomized else "N"
    return itt, "Y" if randomized and index_leg_photographed else "N"
