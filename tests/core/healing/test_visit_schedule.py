"""The study's visit schedule and the overdue rule (``domain.followup``), against days
worked out by hand from the README's rule."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from service.domain.followup import (
    DEFAULT_SCHEDULE,
    OVERDUE_AFTER_DAYS,
    is_overdue,
    next_visit_day,
    visit_due_by,
)
from service.domain.schemas import VisitSchedule

DAY0 = date(2026, 1, 5)
SCHEDULE = VisitSchedule(days=[0, 14, 28, 56, 84], interval_days=28, window_days=5)


@pytest.mark.parametrize(
    ("last_day", "expected"),
    [(0, 14), (10, 14), (14, 28), (30, 56), (84, 112), (100, 112), (112, 140)],
)
def test_next_visit_day_follows_the_listed_days_then_the_interval(last_day, expected) -> None:
    assert next_visit_day(SCHEDULE, last_day) == expected


def test_without_listed_days_the_cadence_runs_from_the_last_visit() -> None:
    assert next_visit_day(DEFAULT_SCHEDULE, 37) == 51
    assert OVERDUE_AFTER_DAYS == 21  # the fortnightly visit plus ± 7 days, as before


def test_overdue_edges_with_a_schedule() -> None:
    last = DAY0 + timedelta(days=30)  # next expected day 56, on time until day 61
    due = visit_due_by(last, schedule=SCHEDULE, origin=DAY0)
    assert due == DAY0 + timedelta(days=61)
    kwargs = {"status": "open", "in_follow_up": True, "schedule": SCHEDULE, "origin": DAY0}
    assert not is_overdue(last, due, **kwargs)
    assert is_overdue(last, due + timedelta(days=1), **kwargs)
    assert not is_overdue(last, due + timedelta(days=30), status="healed", in_follow_up=True)
    assert not is_overdue(
        last, due + timedelta(days=30), status="open", in_follow_up=False, schedule=SCHEDULE
    )
