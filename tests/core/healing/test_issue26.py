"""Issue 26's statistics defects, engine side, each against a reference written from the
README's rules ("Healing endpoints: the rules the answers follow"), not from the engine.

2. subject recurrence only after the subject's healing event;
3. amputation-free survival over every subject with a time origin, censored at the last
   contact (latest photo of either leg or event), never at 0;
4. nothing after a death, withdrawal or loss to follow-up enters the analysis;
5. week-4 PAR from the wound's own baseline photo, in the study's window."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, timedelta

import pytest

from service.core.healing import (
    Subject,
    SubjectEvent,
    Visit,
    Wound,
    study_endpoints,
    subject_endpoints,
    wound_endpoints,
)

BASE = date(2026, 1, 5)


def visit(day: int, area: float | None = 4.0, *, closed: bool | None = None, **kw) -> Visit:
    return Visit(
        assessment_id=f"a{day}-{random.random():.6f}",
        captured_at=BASE + timedelta(days=day),
        area_cm2=0.0 if closed else area,
        epithelialized=None if closed is None else closed,
        drainage=None if closed is None else not closed,
        **kw,
    )


def series(days_closed: dict[int, bool]) -> list[Visit]:
    return [visit(d, closed=c) for d, c in sorted(days_closed.items())]


def event(kind: str, day: int, leg: str | None = None) -> SubjectEvent:
    return SubjectEvent(kind, BASE + timedelta(days=day), leg)


# --- 2. recurrence of the subject ---------------------------------------------------

# Wound A heals (confirmed day 28), re-opens on day 70, heals again from day 112; wound B
# heals from day 126: the subject's healing event is day 126, and nothing re-opens after.
WOUND_A = {0: False, 28: True, 42: True, 70: False, 98: False, 112: True, 126: True, 140: True}
WOUND_B = {0: False, 42: False, 98: False, 126: True, 140: True, 168: True}


def reference_recurrence(wounds: list[dict[int, bool]], healed_day: int | None) -> bool:
    """README: a subject recurs when one of its considered wounds is recorded open on a
    visit after the subject's healing event."""
    if healed_day is None:
        return False
    return any(not closed and d > healed_day for w in wounds for d, closed in w.items())


def test_a_wound_that_reopened_before_the_subjects_event_is_no_recurrence() -> None:
    answer = subject_endpoints(
        [Wound("A", series(WOUND_A)), Wound("B", series(WOUND_B))], randomized_on=BASE
    )
    assert answer["first_healed_day"] == 126
    assert answer["wounds"][0]["recurrence"] is True  # the wound did recur, before
    assert answer["recurrence"] is False and answer["recurrence_day"] is None
    assert answer["all_wounds_healed"] is True


def test_a_reopening_after_the_subjects_event_is_a_recurrence() -> None:
    b = {**WOUND_B, 154: False}
    answer = subject_endpoints([Wound("A", series(WOUND_A)), Wound("B", series(b))])
    assert answer["first_healed_day"] == 126
    assert answer["recurrence"] is True and answer["recurrence_day"] == 154


@pytest.mark.parametrize("seed", range(5))
def test_study_recurred_equals_the_reference_over_random_subjects(seed: int) -> None:
    rng = random.Random(seed)
    subjects, observations = [], {}
    for s in range(30):
        wounds_obs = []
        for _ in range(rng.randint(1, 2)):
            obs = {0: False}
            closed = False
            for d in range(14, 250, 14):
                closed = rng.random() < (0.75 if closed else 0.3)
                obs[d] = closed
            wounds_obs.append(obs)
        observations[f"s{s}"] = wounds_obs
        subjects.append(
            Subject(
                f"s{s}",
                [Wound(f"s{s}w{i}", series(o)) for i, o in enumerate(wounds_obs)],
                randomized_on=BASE,
            )
        )
    answer = study_endpoints(subjects)
    expected = 0
    for row in answer["subject_rows"]:
        healed_day = row["first_healed_day"] if row["healing_event"] else None
        recurs = reference_recurrence(observations[row["subject"]], healed_day)
        assert row["recurrence"] is recurs, row["subject"]
        expected += recurs
    assert answer["recurred"] == expected


# --- 3. amputation-free survival: population and last contact -----------------------


def test_a_subject_with_only_an_other_leg_ulcer_is_in_afs_censored_at_its_last_photo() -> None:
    other_leg = Wound("w", [visit(d) for d in (0, 28, 56, 84)], index_leg=False)
    index = Subject("s1", [Wound("x", [visit(0), visit(42)])], randomized_on=BASE)
    only_other = Subject("s2", [other_leg], randomized_on=BASE)
    answer = study_endpoints([index, only_other])
    rows = {r["subject"]: r for r in answer["subject_rows"]}
    assert rows["s2"]["time_to_closure_days"] is None  # not in the healing analysis
    assert rows["s2"]["afs_time_days"] == 84 and rows["s2"]["afs_event"] is False
    assert rows["s2"]["last_contact_day"] == 84
    afs = answer["amputation_free_survival"]
    assert afs["subjects"] == 2  # every subject with a time origin (ADTTE's AFS rows)
    assert answer["subjects_in_analysis"] == 1


def test_last_contact_goes_past_an_index_leg_amputation() -> None:
    """An amputation of the index leg ends that leg's follow-up, not the subject's: the
    other leg photographed on day 168 is a contact (TTDEATH censors there)."""
    subject = Subject(
        "s",
        [
            Wound("i", [visit(0), visit(56), visit(112)]),
            Wound("c", [visit(0), visit(84), visit(168)], index_leg=False),
        ],
        randomized_on=BASE,
        events=(event("major_amputation", 120, "index"),),
    )
    row = study_endpoints([subject])["subject_rows"][0]
    assert row["afs_event"] is True and row["afs_time_days"] == 120
    assert row["last_contact_day"] == 168
    assert row["cr_cause"] == 2 and row["cr_time_days"] == 120


# --- 4. nothing after the end of follow-up ------------------------------------------


def test_events_after_a_withdrawal_are_not_analysed() -> None:
    subject = Subject(
        "s",
        [Wound("w", [visit(0), visit(14)])],
        randomized_on=BASE,
        events=(event("withdrawal", 20), event("death", 50)),
    )
    row = study_endpoints([subject])["subject_rows"][0]
    assert row["afs_event"] is False and row["afs_time_days"] == 20  # censored at withdrawal
    assert row["follow_up_end_day"] == 20 and row["last_contact_day"] == 20
    assert row["cr_cause"] == 0


def test_a_photo_after_follow_up_ends_is_listed_never_counted() -> None:
    """A healed photo on day 28 after a withdrawal on day 20 (stored before the event was
    recorded): listed with after_subject_event, no part of closure or censoring."""
    visits = [visit(0), visit(10)] + [
        replace(visit(d, closed=True), in_follow_up=False) for d in (28, 42, 56)
    ]
    answer = subject_endpoints([Wound("w", visits)], randomized_on=BASE)
    wound = answer["wounds"][0]
    after = [v for v in wound["visits"] if v["day"] >= 28]
    assert all(not v["counted"] and v["uncounted_reason"] == "after_subject_event" for v in after)
    assert not any(v["closed"] for v in after)
    assert wound["closure_confirmed"] is False and wound["last_visit_day"] == 10
    assert answer["healing_event"] is False and answer["last_visit_day"] == 10


# --- 5. week-4 PAR from the wound's baseline --------------------------------------


def par_series(wound_days: list[int], first_photo_day: int) -> list[Visit]:
    """Areas 10, then 10 − wound day / 10 (so PAR = wound day %)."""
    return [visit(first_photo_day + d, 10.0 - d / 10.0) for d in [0, *wound_days]]


@pytest.mark.parametrize(
    ("wound_days", "window", "expected"),
    [
        ([28], 7, 28),
        ([21, 35], 7, 21),  # both at the edge: the earlier
        ([20, 36], 7, None),  # both just outside
        ([20, 36], 8, 20),
        ([14, 27, 30], 7, 27),
        ([42], 14, 42),
        ([43], 14, None),
    ],
)
def test_week4_par_window_edges_from_the_wounds_baseline(wound_days, window, expected) -> None:
    """The visit nearest day 28 after the wound's baseline, within ± window (ties: the
    earlier), whatever day 0 of the subject is: a wound first photographed on day 30."""
    answer = wound_endpoints(par_series(wound_days, 30), origin=BASE, week4_window_days=window)
    if expected is None:
        assert answer["par_week4_pct"] is None and answer["par_week4_day"] is None
        return
    assert answer["par_week4_days_from_baseline"] == expected
    assert answer["par_week4_day"] == 30 + expected  # from the subject's day 0
    assert answer["par_week4_pct"] == pytest.approx(expected / 10.0 / 10.0 * 100)
