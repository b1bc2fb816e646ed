"""The endpoint engine against hand-computed series (DESIGN.md, "Endpoints")."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import pytest

from service.core.healing import (
    Subject,
    Visit,
    Wound,
    first_day_par_at_least,
    log_linear_rate_per_day,
    par_at_target,
    study_endpoints,
    subject_endpoints,
    wound_endpoints,
)

BASE = date(2026, 1, 5)


def visit(
    day: int,
    area_cm2: float | None = None,
    perimeter_cm: float | None = None,
    *,
    closed: bool | None = None,
    counted: bool = True,
    uploaded_minute: int = 0,
    name: str | None = None,
) -> Visit:
    """A visit ``day`` days after BASE; ``closed`` True/False records an observation."""
    return Visit(
        assessment_id=name or f"a{day}",
        captured_at=BASE + timedelta(days=day),
        area_cm2=area_cm2,
        perimeter_cm=perimeter_cm,
        counted=counted,
        epithelialized=None if closed is None else closed,
        drainage=None if closed is None else not closed,
        uploaded_at=datetime(2026, 1, 1) + timedelta(days=day, minutes=uploaded_minute),
    )


def by_day(answer: dict, key: str) -> dict[int, object]:
    return {v["day"]: v[key] for v in answer["visits"]}


def test_irregular_spacing_every_cm2_endpoint() -> None:
    series = [
        visit(0, 10.0, 12.0),
        visit(9, 8.0, 11.0),
        visit(25, 6.0, 10.0),
        visit(36, 4.0, 8.0),
    ]
    answer = wound_endpoints(list(reversed(series)))  # input order does not matter
    assert answer["baseline_area_cm2"] == 10.0
    assert [v["day"] for v in answer["visits"]] == [0, 9, 25, 36]
    assert by_day(answer, "par_pct") == {0: 0.0, 9: 20.0, 25: 40.0, 36: 60.0}
    assert all(v["counted"] for v in answer["visits"])
    # Day 25 is 3 days from 28; day 36 is 8 days away, outside ±7.
    assert answer["par_week4_pct"] == 40.0
    assert answer["par_week4_day"] == 25
    # (10 − 4) cm² over 36 days = 6/36·7 cm²/week.
    assert answer["healing_rate_cm2_per_week"] == pytest.approx(7 / 6)
    # (10 − 4) / ((12 + 8) / 2) / 36 · 7 cm/week.
    assert answer["gilman_cm_per_week"] == pytest.approx(6 / 10 / 36 * 7)
    # PAR 40 % on day 25, 60 % on day 36: 50 % halfway, day 30.5.
    assert answer["par50_day"] == pytest.approx(30.5)
    assert answer["closure_confirmed"] is False
    assert answer["censored"] is True
    assert answer["time_to_closure_days"] == 36


def test_log_linear_rate_and_half_life_on_an_exact_exponential() -> None:
    k = 0.02
    series = [visit(d, 8.0 * math.exp(-k * d)) for d in (0, 5, 19, 33, 61)]
    answer = wound_endpoints(series)
    assert answer["log_linear_rate_per_day"] == pytest.approx(k, abs=1e-6)
    assert answer["half_life_days"] == pytest.approx(math.log(2) / k, rel=1e-4)
    assert log_linear_rate_per_day([(0, 4.0), (10, 2.0)]) == pytest.approx(math.log(2) / 10)
    assert log_linear_rate_per_day([(0, 4.0)]) is None
    assert log_linear_rate_per_day([(0, 4.0), (10, 0.0)]) is None  # zero cannot be logged


def test_growing_wound_has_no_half_life() -> None:
    answer = wound_endpoints([visit(0, 2.0), visit(14, 3.0)])
    assert answer["log_linear_rate_per_day"] < 0
    assert answer["half_life_days"] is None
    assert answer["par_week4_pct"] is None
    assert answer["healing_rate_cm2_per_week"] == pytest.approx(-0.5)
    assert answer["par50_day"] is None


def test_par_week4_window_tie_and_configuration() -> None:
    # Days 21 and 35 are both 7 days from 28: the earlier visit wins.
    assert par_at_target([(0, 0.0), (21, 30.0), (35, 55.0)]) == (21, 30.0)
    assert par_at_target([(0, 0.0), (14, 30.0), (42, 55.0)]) is None
    assert par_at_target([(0, 0.0), (14, 30.0), (42, 55.0)], window_days=14) == (14, 30.0)
    assert par_at_target([(0, 0.0), (27, 30.0), (29, 55.0), (28, 40.0)]) == (28, 40.0)

    no_visit_near_28 = [visit(0, 5.0), visit(14, 4.0), visit(42, 2.0)]
    assert wound_endpoints(no_visit_near_28)["par_week4_pct"] is None
    wide = wound_endpoints(no_visit_near_28, week4_window_days=14)
    assert wide["par_week4_pct"] == pytest.approx(20.0)
    assert wide["par_week4_day"] == 14


def test_first_day_par50_interpolation() -> None:
    assert first_day_par_at_least([(0, 0.0), (10, 25.0), (20, 75.0)]) == pytest.approx(15.0)
    assert first_day_par_at_least([(0, 0.0), (10, 50.0)]) == pytest.approx(10.0)
    assert first_day_par_at_least([(0, 0.0), (10, 49.9)]) is None


def test_missed_visits_closure_confirmed_across_a_gap() -> None:
    # Planned every 14 days; day 28 missed. Closed on day 42, confirmed on day 56.
    series = [
        visit(0, 4.0, 8.0, closed=False),
        visit(14, 3.0, 7.0, closed=False),
        visit(42, 0.0, 0.0, closed=True),
        visit(56, 0.0, 0.0, closed=True),
    ]
    answer = wound_endpoints(series)
    assert answer["par_week4_pct"] is None  # day 28 missed; 14 and 42 are 14 days off
    assert answer["closure_confirmed"] is True
    assert answer["closure_day"] == 42
    assert answer["time_to_closure_days"] == 42
    assert answer["censored"] is False
    assert answer["recurrence"] is False
    assert answer["recurrence_day"] is None
    assert answer["healed_at_last_visit"] is True
    assert answer["closure_supported_by_area"] is True
    assert by_day(answer, "closed") == {0: False, 14: False, 42: True, 56: True}
    assert answer["healing_rate_cm2_per_week"] == pytest.approx(4.0 / 56 * 7)
    assert answer["gilman_cm_per_week"] == pytest.approx(4.0 / 4.0 / 56 * 7)
    assert answer["par50_day"] == pytest.approx(14 + (50 - 25) / (100 - 25) * 28)


def test_never_closes_is_censored_at_the_last_assessment() -> None:
    series = [visit(d, 5.0 - d / 30, closed=False) for d in (0, 14, 28, 49, 70)]
    answer = wound_endpoints(series)
    assert answer["closure_confirmed"] is False
    assert answer["closure_day"] is None
    assert answer["time_to_closure_days"] == 70
    assert answer["censored"] is True
    assert answer["healed_at_last_visit"] is False
    assert answer["recurrence"] is False


def test_closure_seen_once_but_not_confirmed() -> None:
    series = [
        visit(0, 3.0, closed=False),
        visit(42, 0.0, closed=True),
        visit(49, 0.0, closed=True),  # only 7 days later
        visit(56, 0.4, closed=False),  # re-opened before confirmation
        visit(70, 0.0, closed=True),  # the last visit: seen once, unconfirmed
    ]
    answer = wound_endpoints(series)
    assert answer["closure_confirmed"] is False
    assert answer["closure_day"] is None
    assert answer["censored"] is True
    assert answer["time_to_closure_days"] == 70
    assert answer["recurrence"] is False
    assert answer["healed_at_last_visit"] is False


def test_a_visit_without_observation_breaks_the_confirmation() -> None:
    series = [
        visit(0, 3.0, closed=False),
        visit(28, 0.0, closed=True),
        visit(35, 0.0),  # photo only, no clinician observation
        visit(42, 0.0, closed=True),
        visit(56, 0.0, closed=True),
    ]
    answer = wound_endpoints(series)
    assert answer["closure_confirmed"] is True
    assert answer["closure_day"] == 42  # the run from day 28 was broken on day 35


def test_closure_confirmed_then_reopened() -> None:
    series = [
        visit(0, 2.0, closed=False),
        visit(28, 0.0, closed=True),
        visit(42, 0.0, closed=True),
        visit(56, 0.0, closed=True),
        visit(70, 0.5, closed=False),
        visit(84, 0.6, closed=False),
    ]
    answer = wound_endpoints(series)
    assert answer["closure_confirmed"] is True  # the event happened
    assert answer["closure_day"] == 28
    assert answer["time_to_closure_days"] == 28
    assert answer["censored"] is False
    assert answer["recurrence"] is True
    assert answer["recurrence_day"] == 70
    assert answer["healed_at_last_visit"] is False
    assert answer["healed_day"] is None


def test_reopened_then_healed_again() -> None:
    series = [
        visit(0, 2.0, closed=False),
        visit(14, 0.0, closed=True),
        visit(28, 0.0, closed=True),
        visit(42, 0.3, closed=False),
        visit(56, 0.0, closed=True),
        visit(84, 0.0, closed=True),
    ]
    answer = wound_endpoints(series)
    assert answer["closure_day"] == 14
    assert answer["recurrence"] is True
    assert answer["recurrence_day"] == 42
    assert answer["healed_at_last_visit"] is True
    assert answer["healed_day"] == 56


def test_area_zero_is_only_supporting_evidence() -> None:
    series = [visit(0, 2.0), visit(14, 0.0), visit(28, 0.0), visit(42, 0.0)]
    answer = wound_endpoints(series)
    assert answer["closure_confirmed"] is False
    assert answer["censored"] is True
    codes = [f["code"] for f in answer["flags"]]
    assert "area_zero_not_observed_closed" in codes
    assert "14, 28, 42" in answer["flags"][0]["message"]


def test_drainage_keeps_a_wound_open() -> None:
    epithelialized_but_draining = [
        Visit("a0", BASE, 2.0, epithelialized=False, drainage=True),
        Visit("a1", BASE + timedelta(days=14), 0.0, epithelialized=True, drainage=True),
        Visit("a2", BASE + timedelta(days=28), 0.0, epithelialized=True, drainage=True),
    ]
    answer = wound_endpoints(epithelialized_but_draining)
    assert answer["closure_confirmed"] is False
    assert by_day(answer, "closed") == {0: False, 14: False, 28: False}


def test_uncounted_visits_are_listed_but_left_out_of_cm2_endpoints() -> None:
    series = [
        visit(0, 10.0, 10.0),
        visit(14, 7.0, 9.0),
        visit(28, None, counted=False),  # uncalibrated: no cm² at all
        visit(35, 1.0, 3.0, counted=False),  # severe-flagged
    ]
    answer = wound_endpoints(series)
    assert by_day(answer, "counted") == {0: True, 14: True, 28: False, 35: False}
    assert by_day(answer, "par_pct") == {0: 0.0, 14: 30.0, 28: None, 35: None}
    assert by_day(answer, "area_cm2")[35] == 1.0  # shown, not counted
    assert answer["par_week4_pct"] is None  # day 35 is uncounted, day 14 out of window
    assert answer["healing_rate_cm2_per_week"] == pytest.approx(3.0 / 14 * 7)
    assert answer["gilman_cm_per_week"] == pytest.approx(3.0 / 9.5 / 14 * 7)
    assert answer["time_to_closure_days"] == 35  # censoring uses every assessment


def test_uncounted_baseline_gives_no_cm2_endpoints_and_a_reason() -> None:
    series = [visit(0, None, counted=False), visit(14, 7.0), visit(28, 5.0)]
    answer = wound_endpoints(series)
    assert answer["baseline_area_cm2"] is None
    assert answer["par_week4_pct"] is None
    assert answer["healing_rate_cm2_per_week"] is None
    assert all(v["par_pct"] is None for v in answer["visits"])
    assert [f["code"] for f in answer["flags"]] == ["baseline_not_counted"]


def test_several_assessments_on_one_day_the_last_uploaded_counts() -> None:
    series = [
        visit(0, 10.0, closed=False),
        visit(28, 5.0, name="late", uploaded_minute=30, closed=True),
        visit(28, 9.0, name="early", uploaded_minute=5, closed=False),
        visit(42, 4.0, closed=True),
    ]
    answer = wound_endpoints(series)
    rows = {v["assessment"]: v for v in answer["visits"]}
    assert rows["late"]["counted"] is True
    assert rows["late"]["par_pct"] == 50.0
    assert rows["early"]["counted"] is False
    assert rows["early"]["uncounted_reason"] == "superseded_same_day"
    assert answer["par_week4_pct"] == 50.0
    # The superseded open observation does not break the closure run 28 → 42.
    assert answer["closure_confirmed"] is True
    assert answer["closure_day"] == 28


def test_zero_baseline_makes_par_null_with_a_reason() -> None:
    answer = wound_endpoints([visit(0, 0.0), visit(28, 1.0)])
    assert answer["baseline_area_cm2"] == 0.0
    assert answer["par_week4_pct"] is None
    assert by_day(answer, "par_pct") == {0: None, 28: None}
    assert "baseline_area_zero" in [f["code"] for f in answer["flags"]]
    assert answer["par50_day"] is None


def test_marked_baseline_and_empty_series() -> None:
    series = [
        visit(0, 12.0, name="screening"),
        Visit("base", BASE + timedelta(days=7), 10.0, baseline=True),
        visit(35, 5.0),
    ]
    answer = wound_endpoints(series)
    assert answer["baseline_assessment"] == "base"
    assert by_day(answer, "counted") == {-7: False, 0: True, 28: True}
    assert answer["par_week4_pct"] == 50.0

    empty = wound_endpoints([])
    assert empty["baseline_area_cm2"] is None
    assert empty["visits"] == []
    assert empty["time_to_closure_days"] is None
    assert empty["censored"] is True


def healing_wound(
    name: str, close_day: int, *, start: int = 0, index_leg: bool | None = None
) -> Wound:
    return Wound(
        name,
        [
            visit(start, 2.0, closed=False, name=f"{name}-0"),
            visit(close_day, 0.0, closed=True, name=f"{name}-1"),
            visit(close_day + 14, 0.0, closed=True, name=f"{name}-2"),
        ],
        index_leg=index_leg,
    )


def open_wound(name: str, last_day: int, *, index_leg: bool | None = None) -> Wound:
    return Wound(
        name,
        [
            visit(0, 3.0, closed=False, name=f"{name}-0"),
            visit(last_day, 2.0, closed=False, name=f"{name}-1"),
        ],
        index_leg=index_leg,
    )


def test_subject_two_wounds_where_one_heals() -> None:
    answer = subject_endpoints([healing_wound("W1", 42), open_wound("W2", 70)])
    assert [w["wound"] for w in answer["wounds"]] == ["W1", "W2"]
    assert answer["wounds"][0]["closure_confirmed"] is True
    assert answer["all_wounds_healed"] is False
    assert answer["all_healed_day"] is None
    assert answer["last_visit_day"] == 70


def test_subject_all_healed_day_is_the_latest_closure_on_the_subject_clock() -> None:
    # W2 starts 7 days after W1 and closes 42 days after its own baseline = subject day 49:
    # every day in the subject's answer (its wounds' too) counts from the time origin.
    answer = subject_endpoints([healing_wound("W1", 42), healing_wound("W2", 49, start=7)])
    assert answer["all_wounds_healed"] is True
    assert answer["wounds"][1]["closure_day"] == 49
    assert answer["wounds"][1]["visits"][0]["day"] == 7
    assert answer["all_healed_day"] == 49


def test_subject_counts_only_the_index_leg_where_recorded() -> None:
    wounds = [healing_wound("W1", 42, index_leg=True), open_wound("W2", 90, index_leg=False)]
    answer = subject_endpoints(wounds)
    assert answer["wounds_considered"] == ["W1"]
    assert answer["all_wounds_healed"] is True
    assert answer["all_healed_day"] == 42


def test_subject_with_a_reopened_wound_is_not_healed() -> None:
    reopened = Wound(
        "W2",
        [
            visit(0, 1.0, closed=False, name="x0"),
            visit(14, 0.0, closed=True, name="x1"),
            visit(28, 0.0, closed=True, name="x2"),
            visit(56, 0.2, closed=False, name="x3"),
        ],
    )
    answer = subject_endpoints([healing_wound("W1", 28), reopened])
    assert answer["all_wounds_healed"] is False


def test_study_km_by_hand() -> None:
    # Times 5, 10 (censored), 15, 20, 25 (censored):
    # S(5) = 4/5, S(15) = 4/5 · 2/3, S(20) = S(15) · 1/2; median 20.
    subjects = [
        Subject("s1", [healing_wound("s1w", 5)]),
        Subject("s2", [open_wound("s2w", 10)]),
        Subject("s3", [healing_wound("s3w", 15)]),
        Subject("s4", [healing_wound("s4w", 20)]),
        Subject("s5", [open_wound("s5w", 25)]),
    ]
    answer = study_endpoints(subjects, proportion_days=[10, 20])
    assert answer["subjects"] == 5
    assert answer["healed"] == 3
    km = dict(zip(answer["km"]["timeline_days"], answer["km"]["survival"], strict=True))
    assert km[5.0] == pytest.approx(0.8)
    assert km[15.0] == pytest.approx(0.8 * 2 / 3)
    assert km[20.0] == pytest.approx(0.8 * 2 / 3 / 2)
    assert answer["median_time_to_closure_days"] == 20.0
    assert answer["proportion_healed"] == {
        "10": pytest.approx(0.2),
        "20": pytest.approx(1 - 0.8 / 3),
    }
    assert "by_arm" not in answer
    assert all("arm" not in r for r in answer["subject_rows"])


def test_study_km_matches_lifelines_on_the_waltons_data() -> None:
    from lifelines import KaplanMeierFitter
    from lifelines.datasets import load_waltons
    from lifelines.utils import median_survival_times

    waltons = load_waltons()
    subjects = []
    for i, (t, e, group) in enumerate(
        zip(waltons["T"], waltons["E"], waltons["group"], strict=True)
    ):
        day = int(t)
        wound = healing_wound(f"w{i}", day) if e else open_wound(f"w{i}", day)
        subjects.append(Subject(f"s{i}", [wound], arm=str(group)))
    answer = study_endpoints(subjects, by_arm=True, proportion_days=[30, 60])
    for arm, group in waltons.groupby("group"):
        kmf = KaplanMeierFitter().fit(group["T"], group["E"])
        ours = answer["by_arm"][arm]
        assert ours["subjects"] == len(group)
        assert ours["km"]["timeline_days"] == pytest.approx(list(kmf.survival_function_.index))
        assert ours["km"]["survival"] == pytest.approx(
            list(kmf.survival_function_.iloc[:, 0]), abs=1e-6
        )
        assert ours["median_time_to_closure_days"] == pytest.approx(kmf.median_survival_time_)
        ci = median_survival_times(kmf.confidence_interval_)
        expected_ci = [None if math.isinf(x) else pytest.approx(x) for x in ci.iloc[0]]
        assert ours["median_time_to_closure_days_ci95"] == expected_ci
        assert ours["proportion_healed"]["30"] == pytest.approx(1 - kmf.predict(30.0), abs=1e-6)
    pooled = KaplanMeierFitter().fit(waltons["T"], waltons["E"])
    assert answer["median_time_to_closure_days"] == pytest.approx(pooled.median_survival_time_)
    assert {r["arm"] for r in answer["subject_rows"]} == set(waltons["group"])


def test_study_par_week4_distribution_and_empty_study() -> None:
    subjects = [
        Subject("s1", [Wound("a", [visit(0, 10.0), visit(28, 4.0)])]),
        Subject("s2", [Wound("b", [visit(0, 10.0), visit(30, 8.0)])]),
        Subject("s3", [Wound("c", [visit(0, 10.0), visit(60, 8.0)])]),
        Subject("s4", []),
    ]
    answer = study_endpoints(subjects)
    par = answer["par_week4"]
    assert par["wounds"] == 3
    assert par["available"] == 2
    assert par["missing"] == 1
    assert par["at_least_50_pct"] == 1
    assert par["median_pct"] == pytest.approx(40.0)
    assert par["values_pct"] == [20.0, 60.0]
    assert answer["subjects"] == 4
    assert answer["subjects_without_visits"] == 1
    assert answer["median_time_to_closure_days"] is None  # nobody healed

    empty = study_endpoints([])
    assert empty["subjects"] == 0
    assert empty["km"]["survival"] == []
    assert empty["median_time_to_closure_days"] is None


def test_which_events_end_follow_up() -> None:
    """Death and a major amputation of the index leg compete with healing; they, a
    withdrawal and a loss to follow-up end the visits (the dashboard's overdue rule)."""
    from service.core.healing import EVENT_KINDS, SubjectEvent

    on = date(2026, 1, 1)
    ends = {
        (kind, leg)
        for kind in EVENT_KINDS
        for leg in (None, "index", "contralateral")
        if SubjectEvent(kind, on, leg).ends_follow_up
    }
    assert {k for k, _ in ends} == {"death", "major_amputation", "withdrawal", "lost_to_follow_up"}
    assert ("major_amputation", "contralateral") not in ends
    assert ("major_amputation", None) not in ends
    assert not SubjectEvent("revascularisation", on).ends_follow_up


def test_last_contact_is_one_rule_for_the_answer_and_the_exports() -> None:
    """``last_contact_on``: the latest photo, event or start, never after a death,
    withdrawal or loss to follow-up; the study answer's ``last_contact_day`` and ADSL's
    LSTCNTDT read it (they were two copies that disagreed after a death)."""
    from service.core.healing import SubjectEvent, last_contact_on

    day0 = date(2026, 1, 1)
    on = [day0 + timedelta(days=d) for d in (0, 14, 30)]
    assert last_contact_on([], []) is None
    assert last_contact_on([], [], starts=(None, day0)) == day0
    assert last_contact_on([], on[:2], starts=(day0,)) == on[1]
    withdrawn = [SubjectEvent("withdrawal", on[1])]
    assert last_contact_on(withdrawn, on) == on[1]  # a photo after it does not extend it
    late_event = [SubjectEvent("death", on[1]), SubjectEvent("minor_amputation", on[2])]
    assert last_contact_on(late_event, on[:1]) == on[1]
    amputated = [SubjectEvent("major_amputation", on[2], "index")]
    assert last_contact_on(amputated, on[:2]) == on[2]  # ends the leg, not the subject
