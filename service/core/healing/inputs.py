"""The engine's inputs (visits, wounds, subjects, their events), the closure rule and
the study's endpoint settings with their defaults."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, Protocol, TypedDict, TypeVar

WEEK_DAYS = 7.0
PAR_WEEK4_TARGET_DAYS = 28
PAR_WEEK4_WINDOW_DAYS = 7
CLOSURE_CONFIRM_DAYS = 14
PAR_RESPONSE_PCT = 50.0
"""PAR at week 4 of at least this predicts healing (the 50 % response: par50_day, the
study's at_least_50_pct, the dashboard's "stalled" badge below it)."""
PROPORTION_HEALED_DAYS: tuple[int, ...] = (84, 182, 365)
DRAINAGE_NOT_RECORDED = "not closed (drainage not recorded)"
NO_INDEX_LEG_WOUND = "no wound of the index leg: every wound is marked index_leg false"


def is_closed(
    epithelialized: bool | None,
    drainage: bool | None,
    *,
    requires_drainage_recorded: bool = True,
) -> bool:
    """The one closure rule (DESIGN: complete closure): full re-epithelialisation
    observed and no drainage; with ``requires_drainage_recorded`` (the study setting,
    default on, the FDA reading) drainage must be recorded as absent."""
    if epithelialized is not True:
        return False
    return drainage is False if requires_drainage_recorded else drainage is not True


@dataclass(frozen=True)
class Visit:
    """One assessment of a wound, with the measurement that counts for its photo."""

    assessment_id: str
    captured_at: date
    area_cm2: float | None = None
    perimeter_cm: float | None = None
    counted: bool = True
    epithelialized: bool | None = None
    drainage: bool | None = None
    uploaded_at: datetime | None = None
    baseline: bool = False
    area_cm2_low: float | None = None
    area_cm2_high: float | None = None
    uncounted_reason: str | None = None
    model: str | None = None
    manual: bool = False
    in_follow_up: bool = True
    """False for a photo dated after the subject's follow-up ended (``follow_up_end``):
    listed with its ``uncounted_reason`` (``after_subject_event``), never counted, and no
    part of closure, censoring or the last visit."""


AFTER_SUBJECT_EVENT = "after_subject_event"
"""Why a photo dated after the subject's follow-up ended does not count."""

EVENT_KINDS = (
    "death",
    "major_amputation",
    "minor_amputation",
    "revascularisation",
    "withdrawal",
    "lost_to_follow_up",
)
LEGS = ("index", "contralateral")
LEAVES_STUDY = ("withdrawal", "lost_to_follow_up")
ENDS_SUBJECT_FOLLOW_UP = ("death", *LEAVES_STUDY)
"""Events after which nothing of the subject enters the analysis: no photo, no event
(data after a withdrawal of consent must not be analysed)."""
"""Events after which the subject is no longer followed (besides the competing ones)."""

PhotosAfterWithdrawal = Literal["refuse", "record"]
DEFAULT_PHOTOS_AFTER_WITHDRAWAL: PhotosAfterWithdrawal = "refuse"
"""The study setting ``photos_after_withdrawal``: a photo dated after the subject's
withdrawal or loss to follow-up is refused (``refuse``) or stored, never counted
(``record``)."""


def refuses_photo_after(
    kind: str, photos_after_withdrawal: str = DEFAULT_PHOTOS_AFTER_WITHDRAWAL
) -> bool:
    """Whether an upload dated after an event of this ``kind`` that ended the wound's
    follow-up is refused (``after_subject_event``): always after a death or the major
    amputation of the wound's leg; after a withdrawal or loss to follow-up
    (``LEAVES_STUDY``) unless the study records such photos. A recorded one is stored
    and, like any photo dated after the end of follow-up, never counted."""
    return not (photos_after_withdrawal == "record" and kind in LEAVES_STUDY)


@dataclass(frozen=True)
class SubjectEvent:
    """A dated clinical event of a subject (DESIGN: events); voided ones are left out by
    the caller. ``leg``: ``index`` or ``contralateral`` (amputations)."""

    kind: str
    on: date
    leg: str | None = None

    @property
    def competing(self) -> bool:
        """Death or major amputation of the index leg: ends the chance of healing it."""
        return self.kind == "death" or (self.kind == "major_amputation" and self.leg == "index")

    @property
    def ends_follow_up(self) -> bool:
        """Competing, or the subject left the study (withdrawal, lost to follow-up): no
        visit is expected after it."""
        return self.competing or self.kind in LEAVES_STUDY


class DatedEvent(Protocol):
    """What the follow-up rules read of an event (``SubjectEvent``, the exports' rows)."""

    @property
    def kind(self) -> str: ...

    @property
    def on(self) -> date: ...


E = TypeVar("E", bound=DatedEvent)


def follow_up_end(events: Iterable[DatedEvent]) -> date | None:
    """The day the subject's follow-up ended: its first death, withdrawal or loss to
    follow-up (``ENDS_SUBJECT_FOLLOW_UP``); None while it is followed. A major
    amputation of the index leg ends the index leg's follow-up, not the subject's."""
    ends = [e.on for e in events if e.kind in ENDS_SUBJECT_FOLLOW_UP]
    return min(ends) if ends else None


def last_contact_on(
    events: Sequence[DatedEvent],
    photo_dates: Iterable[date],
    *,
    starts: Iterable[date | None] = (),
) -> date | None:
    """The last day the subject is known to be followed -- the one rule read by the
    study answer (``last_contact_day``, amputation-free survival's censoring), ADSL's
    LSTCNTDT, DS's completion and ADTTE's censoring: the latest of its photos (any
    wound, either leg), its events and ``starts`` (randomisation, the time origin), never
    after ``follow_up_end`` (a death, withdrawal or loss to follow-up: nothing later
    extends it). None with no date at all."""
    known = [d for d in (*photo_dates, *(e.on for e in events), *starts) if d is not None]
    if not known:
        return None
    end = follow_up_end(events)
    return min(max(known), end) if end is not None else max(known)


def followed_events(events: Sequence[E]) -> list[E]:
    """The events the analysis reads: those on or before ``follow_up_end``."""
    end = follow_up_end(events)
    return [e for e in events if end is None or e.on <= end]


@dataclass(frozen=True)
class Wound:
    wound_id: str
    visits: Sequence[Visit]
    label: str | None = None
    index_leg: bool | None = None


@dataclass(frozen=True)
class Subject:
    subject_id: str
    wounds: Sequence[Wound]
    code: str | None = None
    arm: str | None = None
    randomized_on: date | None = None
    site: str | None = None
    events: Sequence[SubjectEvent] = ()


def as_date(value: date) -> date:
    return value.date() if isinstance(value, datetime) else value


def clean(value: float | None, digits: int = 9) -> float | None:
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return round(float(value), digits)


class EndpointOptions(TypedDict, total=False):
    """The study's endpoint settings, as ``wound_endpoints`` takes them (its keyword
    arguments but ``origin``); ``subject_endpoints`` and ``study_endpoints`` pass them on."""

    week4_target_days: int
    week4_window_days: int
    closure_confirm_days: int
    closure_requires_drainage_recorded: bool
