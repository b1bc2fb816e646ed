"""One subject's endpoints: day 0, and the first day all its index-leg ulcers are
healed at once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any, Unpack

from service.core.healing.inputs import NO_INDEX_LEG_WOUND, EndpointOptions, Wound, as_date
from service.core.healing.wound import wound_endpoints

BASE_DATE = date(2000, 1, 1)
"""Any date: spells are compared as dates only relative to each other."""


def first_all_healed(spells_by_wound: Sequence[Sequence[tuple[date, date | None]]]) -> date | None:
    """The first date on which every wound is inside a confirmed healed spell
    ``[closure date, re-opening date)`` (``None``: never re-opened), or None.

    The study's event: the first confirmed healing of all the wounds; a later
    recurrence does not erase it."""
    if not spells_by_wound or any(not spells for spells in spells_by_wound):
        return None
    candidates = sorted({start for spells in spells_by_wound for start, _ in spells})
    for on in candidates:
        if all(
            any(start <= on and (end is None or on < end) for start, end in spells)
            for spells in spells_by_wound
        ):
            return on
    return None


def subject_endpoints(
    wounds: Sequence[Wound],
    *,
    randomized_on: date | None = None,
    **options: Unpack[EndpointOptions],
) -> dict[str, Any]:
    """All ulcers healed, over every wound not marked ``index_leg: false``.

    Days count from the subject's time origin: ``randomized_on`` when given, else the
    subject's first baseline photo (``time_origin``). ``healing_event`` and
    ``first_healed_day``: the first day every such wound was confirmed closed (the
    study's event). ``all_wounds_healed`` / ``all_healed_day``: healed at the last
    visit (durable), the day being the latest of their closure days. ``recurrence``:
    a considered wound re-opened after the subject's healing event (a wound that
    re-opened before it is not a recurrence of the subject); ``recurrence_day`` the
    first such day. ``last_photo_day``: the latest photo in follow-up of any wound,
    either leg (the subject's last contact by photo). A subject whose every wound is
    marked ``index_leg: false`` answers null with a reason."""
    first_pass = [wound_endpoints(w.visits, **options)["baseline_date"] for w in wounds]
    start = time_origin(randomized_on, first_pass)
    answers = []
    for wound in wounds:
        answer = wound_endpoints(wound.visits, origin=start, **options)
        answers.append(
            {"wound": wound.wound_id, "label": wound.label, "index_leg": wound.index_leg, **answer}
        )
    index_leg = [a for a in answers if a["index_leg"] is not False]
    considered = [a for a in index_leg if a["baseline_date"] is not None]

    reason = NO_INDEX_LEG_WOUND if answers and not index_leg else None
    healed_days = [a["healed_day"] for a in considered if a["healed_day"] is not None]
    last_days = [a["last_visit_day"] for a in considered if a["last_visit_day"] is not None]
    origin_on = start or BASE_DATE
    first_healed = _first_all_healed_on(considered, origin_on) if considered else None
    first_healed_day = (first_healed - origin_on).days if first_healed else None
    recurrence_day = _recurrence_after(considered, first_healed_day)
    photo_days = [a["last_visit_day"] for a in answers if a["last_visit_day"] is not None]
    all_healed: bool | None
    if reason is not None:
        all_healed = None
    else:
        all_healed = bool(considered) and all(a["healed_at_last_visit"] for a in considered)
    return {
        "wounds": answers,
        "wounds_considered": [a["wound"] for a in considered],
        "time_origin": start.isoformat() if start else None,
        "time_origin_source": "randomized_on"
        if randomized_on is not None
        else ("first_photo" if start is not None else None),
        "baseline_date": start.isoformat() if start else None,
        "healing_event": None if reason else first_healed is not None,
        "first_healed_day": first_healed_day,
        "recurrence": None if reason else recurrence_day is not None,
        "recurrence_day": None if reason else recurrence_day,
        "all_wounds_healed": all_healed,
        "all_healed_day": max(healed_days) if all_healed and healed_days else None,
        "last_visit_day": max(last_days) if last_days else None,
        "last_photo_day": max(photo_days) if photo_days else None,
        "reason": reason,
    }


def _recurrence_after(
    considered: Sequence[dict[str, Any]], first_healed_day: int | None
) -> int | None:
    """The first day a considered wound re-opened after the subject's healing event:
    the end of the healed spell each wound was in on that day (every wound is in one
    then), or None."""
    if first_healed_day is None:
        return None
    reopened = [
        end
        for a in considered
        for start, end in a["healed_spells"]
        if start is not None
        and start <= first_healed_day
        and end is not None
        and end > first_healed_day
    ]
    return min(reopened) if reopened else None


def _first_all_healed_on(considered: Sequence[dict[str, Any]], origin_on: date) -> date | None:
    """``first_all_healed`` of the wound answers' ``healed_spells`` (days from
    ``origin_on``), as dates."""
    spells = [
        [
            (
                origin_on + timedelta(days=first),
                None if end is None else origin_on + timedelta(days=end),
            )
            for first, end in a["healed_spells"]
        ]
        for a in considered
    ]
    return first_all_healed(spells)


def time_origin(randomized_on: date | None, baseline_dates: Sequence[str | None]) -> date | None:
    """The one "day 0" rule (DESIGN): ``randomized_on`` when given, else the subject's
    first baseline photo (ISO dates, any wound); None when neither exists."""
    if randomized_on is not None:
        return as_date(randomized_on)
    known = [date.fromisoformat(d) for d in baseline_dates if d is not None]
    return min(known) if known else None
