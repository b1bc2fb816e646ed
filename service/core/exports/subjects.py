"""What the exports say about a subject beyond its photos: death, the end of follow-up,
the last contact, laterality and age. One home for each, read by DM, DS, PR, TU, ADSL
and ADTTE, so the SDTM tables and the analysis datasets cannot disagree.

Pure: plain dates and the subject's live events in, dates and codes out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Protocol

from service.core.exports.rows import SubjectRow


class Event(Protocol):
    """A subject event as the exports read it (``rows.EventRow`` or the engine's
    ``healing.SubjectEvent``): its kind, date and leg."""

    @property
    def kind(self) -> str: ...

    @property
    def on(self) -> date: ...

    @property
    def leg(self) -> str | None: ...


LEAVES_STUDY = ("withdrawal", "lost_to_follow_up")
"""Events after which the subject is no longer followed: nothing after them counts."""
_SIDES = ("LEFT", "RIGHT")


def first_event_on(events: Iterable[Event], kind: str, leg: str | None = None) -> date | None:
    """The date of the first event of ``kind`` (and ``leg`` when given), or None."""
    dates = [e.on for e in events if e.kind == kind and (leg is None or e.leg == leg)]
    return min(dates) if dates else None


def death_on(events: Iterable[Event]) -> date | None:
    """The subject's death date (DM.DTHDTC), or None."""
    return first_event_on(events, "death")


def follow_up_end(events: Iterable[Event]) -> date | None:
    """The first withdrawal or loss to follow-up: the subject is not followed after it."""
    dates = [e.on for e in events if e.kind in LEAVES_STUDY]
    return min(dates) if dates else None


def last_contact(
    events: Sequence[Event],
    photo_dates: Iterable[date],
    *,
    starts: Iterable[date | None] = (),
) -> date | None:
    """The last day the subject is known to be followed (ADSL.LSTCNTDT): the latest of its
    photos (any wound, any leg), its events and ``starts`` (randomisation, the time
    origin), but never after the end of follow-up (a withdrawal or loss to follow-up
    ends it: a later photo or event does not extend it). None with no date at all."""
    known = [d for d in (*photo_dates, *(e.on for e in events), *starts) if d is not None]
    if not known:
        return None
    latest = max(known)
    end = follow_up_end(events)
    return min(latest, end) if end is not None else latest


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
    """The events inside follow-up, in date order: none after a withdrawal or a loss to
    follow-up (the subject is no longer followed, so a later event is not observed)."""
    events = list(events)
    end = follow_up_end(events)
    return sorted((e for e in events if end is None or e.on <= end), key=lambda e: e.on)


def population_flags(randomized: bool, index_leg_photographed: bool) -> tuple[str, str]:
    """(ITTFL, MITTFL): randomised; randomised with at least one index-leg ulcer
    photographed (a wound not marked as on the other leg counts as index-leg)."""
    itt = "Y" if randomized else "N"
    return itt, "Y" if randomized and index_leg_photographed else "N"
