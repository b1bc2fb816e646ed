"""Whether a subject is still followed, and when it is overdue a visit (issue 16).

A trial rule, not a picture: the dashboard's study table filters on it and the
per-site data-quality page counts and lists the subjects it finds overdue, which is
what a monitor chases a site about. The data model has no per-study visit schedule
(the study holds none), so the rule is stated from the fortnightly visit the demo and
the tests follow, plus the visit window of ``core.healing``.
"""

from __future__ import annotations

from datetime import date

from service.core.healing import PAR_WEEK4_WINDOW_DAYS
from service.domain import outcomes
from service.persistence.orm import Study, Subject

FOLLOW_UP_VISIT_DAYS = 14
"""The fortnightly visit the demo and the tests follow; the data model has no per-study
visit schedule (the study holds none), so "overdue" is defined from this cadence."""
OVERDUE_AFTER_DAYS = FOLLOW_UP_VISIT_DAYS + PAR_WEEK4_WINDOW_DAYS
"""A subject still in follow-up (not healed; no death, major amputation of the index leg,
withdrawal or loss to follow-up recorded) is overdue when its last photo is more than
this many days old: the next fortnightly visit plus the ±7-day visit window."""


def follow_up_ended(subject: Subject) -> bool:
    """Whether a live (not voided) event ends the subject's follow-up: death, a major
    amputation of the index leg, withdrawal or loss to follow-up (the engine's
    ``SubjectEvent.ends_follow_up``)."""
    return any(event.ends_follow_up for event in outcomes.live_events(subject))


def has_visit_schedule(study: Study) -> bool:
    """Whether the study sets a visit schedule that "overdue" can be late against. No
    study holds one yet (the schedule is to become a study setting), so none does: the
    pages leave "overdue" out rather than judge every study by the fortnightly cadence."""
    return bool(getattr(study, "visit_schedule", None))


def is_overdue(last_visit: date | None, today: date, *, status: str, in_follow_up: bool) -> bool:
    """Overdue per ``OVERDUE_AFTER_DAYS`` (a subject without a photo is not overdue: it
    has no visit to be late from)."""
    if last_visit is None or status == "healed" or not in_follow_up:
        return False
    return (today - last_visit).days > OVERDUE_AFTER_DAYS
