"""Whether a subject is still followed, and when it is overdue a visit (issues 16, 26).

A trial rule, not a picture: the dashboard's study table filters on it and the
per-site data-quality page counts and lists the subjects it finds overdue, which is
what a monitor chases a site about. The study's visit schedule (``Study.visit_schedule``,
``schemas.VisitSchedule``: expected days from day 0, an interval after them, a window)
says when the next visit is due; without one, a visit every 14 days ± 7.
"""

from __future__ import annotations

from datetime import date, timedelta

from service.domain import outcomes
from service.domain.schemas import VisitSchedule
from service.persistence.orm import Study, Subject

DEFAULT_SCHEDULE = VisitSchedule()
"""A visit every 14 days after the last one, on time within ± 7 days."""
FOLLOW_UP_VISIT_DAYS = DEFAULT_SCHEDULE.interval_days
OVERDUE_AFTER_DAYS = DEFAULT_SCHEDULE.interval_days + DEFAULT_SCHEDULE.window_days
"""With the default schedule, a subject still in follow-up (not healed; no death, major
amputation of the index leg, withdrawal or loss to follow-up recorded) is overdue when
its last photo is more than this many days old."""


def visit_schedule(study: Study) -> VisitSchedule:
    """The study's visit schedule, or ``DEFAULT_SCHEDULE`` when it sets none."""
    if not study.visit_schedule:
        return DEFAULT_SCHEDULE
    return VisitSchedule.model_validate(study.visit_schedule)


def has_visit_schedule(study: Study) -> bool:
    """Whether the study sets its own visit schedule. The pages show "overdue" only then:
    without one, ``visit_schedule``'s default cadence is a guess, not the protocol, and
    it marked most subjects of a study without one overdue."""
    return bool(study.visit_schedule)


def next_visit_day(schedule: VisitSchedule, last_visit_day: int) -> int:
    """The expected day (from day 0) of the visit after one on ``last_visit_day``: the
    first listed day after it; past the listed days, the last listed day plus whole
    intervals; without listed days, ``interval_days`` after the last visit."""
    later = [d for d in schedule.days if d > last_visit_day]
    if later:
        return later[0]
    if not schedule.days:
        return last_visit_day + schedule.interval_days
    last_listed = schedule.days[-1]
    intervals = (last_visit_day - last_listed) // schedule.interval_days + 1
    return last_listed + intervals * schedule.interval_days


def visit_due_by(
    last_visit: date, *, schedule: VisitSchedule = DEFAULT_SCHEDULE, origin: date | None = None
) -> date:
    """The last day the next visit is on time: its expected day (``next_visit_day``,
    days from ``origin``, the subject's day 0; the last visit itself without one) plus
    the schedule's window."""
    day0 = origin if origin is not None else last_visit
    due = next_visit_day(schedule, (last_visit - day0).days) + schedule.window_days
    return day0 + timedelta(days=due)


def follow_up_ended(subject: Subject) -> bool:
    """Whether a live (not voided) event ends the subject's follow-up: death, a major
    amputation of the index leg, withdrawal or loss to follow-up (the engine's
    ``SubjectEvent.ends_follow_up``)."""
    return any(event.ends_follow_up for event in outcomes.live_events(subject))


def is_overdue(
    last_visit: date | None,
    today: date,
    *,
    status: str,
    in_follow_up: bool,
    schedule: VisitSchedule = DEFAULT_SCHEDULE,
    origin: date | None = None,
) -> bool:
    """Overdue: still followed, not healed, and ``today`` is past ``visit_due_by`` (a
    subject without a photo is not overdue: it has no visit to be late from). Pass the
    study's ``visit_schedule(study)`` and the subject's day 0 (``subjects.day_zero``)."""
    if last_visit is None or status == "healed" or not in_follow_up:
        return False
    return today > visit_due_by(last_visit, schedule=schedule, origin=origin)
