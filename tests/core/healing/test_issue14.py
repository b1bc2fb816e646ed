"""Issue 14's six endpoint defects, each against an independent reference written from
DESIGN.md ("Endpoints"), not from service/core/healing.py.

The reference below is deliberately plain: exact fractions for Kaplan–Meier, a visit
loop for closure, and the DESIGN wording for each rule, so a shared mistake with the
engine is unlikely.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction

import pytest

from service.core.healing import (
    Subject,
    Visit,
    Wound,
    is_closed,
    study_endpoints,
    subject_endpoints,
    wound_endpoints,
)
from service.core.healing.coxfit import COX_FIT_OPTIONS

BASE = date(2026, 1, 5)


# --- the independent reference (from DESIGN.md) ----------------------------------------


@dataclass(frozen=True)
class Obs:
    """One visit as DESIGN describes it: day, epithelialised?, drainage (None = not recorded)."""

    day: int
    epithelialized: bool | None
    drainage: bool | None


def ref_closed(o: Obs, requires_drainage_recorded: bool = True) -> bool:
    # "clinician-observed full re-epithelialisation without drainage"; "Closure needs
    # drainage recorded as false unless the study turns closure_requires_drainage_recorded off".
    if o.epithelialized is not True:
        return False
    if requires_drainage_recorded:
        return o.drainage is False
    return o.drainage is not True


def ref_open(o: Obs) -> bool:
    return o.epithelialized is False or o.drainage is True


def ref_first_confirmed_closure(obs: list[Obs], requires: bool = True) -> int | None:
    """Day of the first observation of the first closure confirmed ≥ 14 days later with
    every visit in between also closed."""
    obs = sorted(obs, key=lambda o: o.day)
    for i, first in enumerate(obs):
        if not ref_closed(first, requires):
            continue
        for later in obs[i + 1 :]:
            if not ref_closed(later, requires):
                break
            if later.day - first.day >= 14:
                return first.day
    return None


def ref_km(times: list[int], events: list[bool]) -> list[tuple[int, Fraction]]:
    """Product-limit estimate at each distinct event time, in exact fractions."""
    s = Fraction(1)
    out = []
    for t in sorted({t for t, e in zip(times, events, strict=True) if e}):
        at_risk = sum(1 for u in times if u >= t)
        d = sum(1 for u, e in zip(times, events, strict=True) if u == t and e)
        s *= Fraction(at_risk - d, at_risk)
        out.append((t, s))
    return out


def ref_median(times: list[int], events: list[bool]) -> int | None:
    # "median time (smallest t with S(t) ≤ 0.5)"
    for t, s in ref_km(times, events):
        if s <= Fraction(1, 2):
            return t
    return None


def ref_proportion(times: list[int], events: list[bool], day: int) -> Fraction | None:
    # "proportion healed at chosen days ..., null past the last time at risk"
    if day > max(times):
        return None
    s = Fraction(1)
    for t, st in ref_km(times, events):
        if t <= day:
            s = st
    return 1 - s


def ref_at_risk(times: list[int], day: int) -> int:
    return sum(1 for t in times if t >= day)


# --- building engine inputs -----------------------------------------------------------


def visits_of(obs: list[Obs], name: str) -> list[Visit]:
    return [
        Visit(
            assessment_id=f"{name}-{o.day}",
            captured_at=BASE + timedelta(days=o.day),
            area_cm2=0.0 if ref_closed(o) else 1.0,
            epithelialized=o.epithelialized,
            drainage=o.drainage,
            uploaded_at=datetime(2026, 1, 1) + timedelta(days=o.day),
        )
        for o in obs
    ]


def closed(day: int) -> Obs:
    return Obs(day, True, False)


def opened(day: int) -> Obs:
    return Obs(day, False, True)


# --- 1. recurrence keeps the first confirmed healing as the event ----------------------


def test_recurrence_does_not_erase_the_study_event() -> None:
    # DESIGN: "the event is the first confirmed healing (a later recurrence does not erase it)".
    recurring = [opened(0), closed(14), closed(28), opened(56), opened(70)]
    durable = [opened(0), closed(21), closed(35), closed(49)]
    never = [opened(0), opened(40)]
    series = {"s1": recurring, "s2": durable, "s3": never}
    subjects = [Subject(k, [Wound(f"{k}w", visits_of(v, k))]) for k, v in series.items()]
    answer = study_endpoints(subjects, proportion_days=[30])

    ref_times, ref_events = [], []
    for obs in series.values():
        healed = ref_first_confirmed_closure(obs)
        ref_times.append(healed if healed is not None else max(o.day for o in obs))
        ref_events.append(healed is not None)
    rows = {r["subject"]: r for r in answer["subject_rows"]}
    assert [rows[k]["time_to_closure_days"] for k in series] == ref_times == [14, 21, 40]
    assert [not rows[k]["censored"] for k in series] == ref_events
    assert rows["s1"]["recurrence"] is True
    assert rows["s1"]["all_wounds_healed"] is False  # durable healing is separate
    assert answer["healed"] == 2
    assert answer["durably_healed"] == 1
    assert answer["recurred"] == 1
    km = dict(zip(answer["km"]["timeline_days"], answer["km"]["survival"], strict=True))
    for t, s in ref_km(ref_times, ref_events):
        assert km[float(t)] == pytest.approx(float(s), abs=1e-9)

    wound = wound_endpoints(visits_of(recurring, "w"))
    assert wound["closure_confirmed"] is True
    assert wound["closure_day"] == 14
    assert wound["recurrence_day"] == 56
    assert wound["healed_at_last_visit"] is False


def test_two_wounds_the_event_is_the_first_day_both_are_healed() -> None:
    # W1 heals at 14 and re-opens at 56; W2 heals at 42 (W1 still healed): event 42.
    w1 = [opened(0), closed(14), closed(28), closed(42), opened(56), opened(84)]
    w2 = [opened(0), opened(28), closed(42), closed(56), closed(84)]
    answer = subject_endpoints([Wound("W1", visits_of(w1, "a")), Wound("W2", visits_of(w2, "b"))])
    assert answer["healing_event"] is True
    assert answer["first_healed_day"] == 42
    assert answer["all_wounds_healed"] is False
    # W2 heals only after W1 has re-opened: no day on which both are healed.
    w2_late = [opened(0), opened(56), closed(63), closed(84)]
    late = subject_endpoints(
        [Wound("W1", visits_of(w1, "a")), Wound("W2", visits_of(w2_late, "b"))]
    )
    assert late["healing_event"] is False
    assert late["first_healed_day"] is None


def test_random_series_match_the_reference_first_closure() -> None:
    rng = random.Random(14)
    kinds = [opened, closed, lambda d: Obs(d, True, None), lambda d: Obs(d, None, None)]
    series = {}
    for i in range(200):
        day, obs = 0, [opened(0)]
        for _ in range(rng.randint(1, 9)):
            day += rng.choice([7, 7, 14, 3, 21])
            obs.append(rng.choice(kinds)(day))
        series[f"s{i}"] = obs
    subjects = [Subject(k, [Wound(f"{k}w", visits_of(v, k))]) for k, v in series.items()]
    answer = study_endpoints(subjects, proportion_days=[28, 84, 400])
    rows = {r["subject"]: r for r in answer["subject_rows"]}
    times, events = [], []
    for key, obs in series.items():
        healed = ref_first_confirmed_closure(obs)
        times.append(healed if healed is not None else max(o.day for o in obs))
        events.append(healed is not None)
        assert rows[key]["time_to_closure_days"] == times[-1], key
        assert rows[key]["censored"] is not events[-1], key
    assert answer["median_time_to_closure_days"] == ref_median(times, events)
    for d in (28, 84, 400):
        expected = ref_proportion(times, events, d)
        got = answer["proportion_healed"][str(d)]
        assert (got is None) if expected is None else got == pytest.approx(float(expected))
        assert answer["at_risk"][str(d)] == ref_at_risk(times, d)


# --- 3. index-leg fallback -------------------------------------------------------------


def test_wounds_marked_false_never_count_and_none_left_answers_null() -> None:
    # DESIGN: "every wound of the subject not marked index_leg: false".
    healed = visits_of([opened(0), closed(14), closed(28)], "h")
    still_open = visits_of([opened(0), opened(28)], "o")
    only_false = subject_endpoints(
        [Wound("W1", healed, index_leg=False), Wound("W2", healed, index_leg=False)]
    )
    assert only_false["all_wounds_healed"] is None
    assert only_false["healing_event"] is None
    assert only_false["reason"]
    mixed = subject_endpoints(
        [Wound("W1", healed, index_leg=None), Wound("W2", still_open, index_leg=False)]
    )
    assert mixed["wounds_considered"] == ["W1"]
    assert mixed["all_wounds_healed"] is True
    study = study_endpoints([Subject("s", [Wound("W1", healed, index_leg=False)])])
    assert study["subjects"] == 1
    assert study["km"]["survival"] == []
    assert study["subjects_left_out"][0]["reason"] == only_false["reason"]


# --- 4. the median on a plateau at exactly one half ------------------------------------


@pytest.mark.parametrize("n", range(2, 41, 2))
def test_median_is_the_smallest_t_with_survival_at_most_one_half(n: int) -> None:
    # n subjects, the first n/2 heal on days 10, 20, ...; the rest censored at day 1000:
    # S reaches exactly 1/2 on the (n/2)-th event and stays there (a plateau).
    times = [10 * (i + 1) for i in range(n // 2)] + [1000] * (n // 2)
    events = [True] * (n // 2) + [False] * (n // 2)
    subjects = []
    for i, (t, e) in enumerate(zip(times, events, strict=True)):
        obs = [opened(0), closed(t), closed(t + 14)] if e else [opened(0), opened(t)]
        subjects.append(Subject(f"s{i}", [Wound(f"w{i}", visits_of(obs, f"s{i}"))]))
    answer = study_endpoints(subjects)
    assert answer["median_time_to_closure_days"] == ref_median(times, events) == 10 * (n // 2)
    assert "S(t) <= 0.5" in answer["median_definition"]
    assert "Brookmeyer" in answer["median_ci_method"]
    assert "log(-log)" in answer["median_ci_method"]


# --- 5. proportion healed beyond follow-up ---------------------------------------------


def test_proportion_healed_is_null_past_the_last_time_at_risk() -> None:
    series = [
        [opened(0), closed(14), closed(28)],
        [opened(0), opened(35)],
        [opened(0), closed(42), closed(56)],
        [opened(0), opened(70)],
    ]
    subjects = [
        Subject(f"s{i}", [Wound(f"w{i}", visits_of(o, f"s{i}"))]) for i, o in enumerate(series)
    ]
    answer = study_endpoints(subjects, proportion_days=[28, 70, 365])
    times = [14, 35, 42, 70]
    events = [True, False, True, False]
    assert answer["proportion_healed"]["28"] == pytest.approx(
        float(ref_proportion(times, events, 28))
    )
    assert answer["proportion_healed"]["70"] == pytest.approx(
        float(ref_proportion(times, events, 70))
    )
    assert answer["proportion_healed"]["365"] is None
    assert answer["at_risk"] == {"28": 3, "70": 1, "365": 0}
    assert answer["last_time_at_risk_days"] == 70


# --- 6. closure without recorded drainage ----------------------------------------------


def test_unrecorded_drainage_does_not_close_unless_the_study_says_so() -> None:
    obs = [opened(0), Obs(14, True, None), Obs(28, True, None), Obs(42, True, None)]
    strict = wound_endpoints(visits_of(obs, "w"))
    assert ref_first_confirmed_closure(obs, True) is None
    assert strict["closure_confirmed"] is False
    notes = {v["day"]: v["closure_note"] for v in strict["visits"]}
    assert notes[14] == "not closed (drainage not recorded)"
    assert all(v["closed"] is False for v in strict["visits"])
    lenient = wound_endpoints(visits_of(obs, "w"), closure_requires_drainage_recorded=False)
    assert ref_first_confirmed_closure(obs, False) == 14
    assert lenient["closure_confirmed"] is True
    assert lenient["closure_day"] == 14
    for e in (True, False, None):
        for d in (True, False, None):
            for req in (True, False):
                o = Obs(0, e, d)
                assert is_closed(e, d, requires_drainage_recorded=req) is ref_closed(o, req)


# --- time origin -------------------------------------------------------------------------


def test_randomized_on_is_day_zero_and_unphotographed_subjects_are_censored_at_zero() -> None:
    obs = [opened(0), closed(14), closed(28)]
    randomised = BASE - timedelta(days=10)
    answer = subject_endpoints([Wound("W1", visits_of(obs, "a"))], randomized_on=randomised)
    assert answer["time_origin"] == randomised.isoformat()
    assert answer["first_healed_day"] == 24
    assert answer["last_visit_day"] == 38
    study = study_endpoints(
        [
            Subject("s1", [Wound("W1", visits_of(obs, "a"))], randomized_on=randomised),
            Subject("s2", [], randomized_on=BASE),
            Subject("s3", []),
        ]
    )
    rows = {r["subject"]: r for r in study["subject_rows"]}
    assert rows["s1"]["time_to_closure_days"] == 24
    assert rows["s2"]["time_to_closure_days"] == 0
    assert rows["s2"]["censored"] is True
    assert "never photographed" in rows["s2"]["reason"]
    assert rows["s3"]["time_to_closure_days"] is None
    assert study["subjects_in_analysis"] == 2
    assert study["km"]["timeline_days"] == [0.0, 24.0]


# --- 2. the pinned model is honoured -----------------------------------------------------


def _stored_wound(pinned: str | None, photos: list[list[tuple[str, bool, float]]]):  # type: ignore[no-untyped-def]
    """ORM rows (not persisted) for one wound: per photo, its measurements as
    (model id, manual, area_cm2), oldest first."""
    from service.persistence.orm import Assessment, Measurement, Site, Study
    from service.persistence.orm import Subject as SubjectRow
    from service.persistence.orm import Wound as WoundRow

    study = Study(id="T", name="t", marker_mm=20.0, model=pinned, review="none")
    study.closure_requires_drainage_recorded = True
    site = Site(study=study, code="A", name="")
    subject = SubjectRow(id="sub1", study_id="T", code="S01", site=site)
    wound = WoundRow(id="wnd1", subject=subject, label="W1", index_leg=True)
    mid = 0
    for day, measurements in enumerate(photos):
        a = Assessment(
            id=f"asm{day}",
            wound=wound,
            captured_at=datetime(2026, 1, 5) + timedelta(days=7 * day),
            created_at=datetime(2026, 1, 5) + timedelta(days=7 * day),
            voided=False,
            accepted=False,
            epithelialized=None,
            drainage=None,
        )
        for model, manual, area in measurements:
            mid += 1
            name, version = model.rsplit("-", 1)
            a.measurements.append(
                Measurement(
                    id=mid,
                    data={"area_cm2": area, "calibrated": True, "quality": []},
                    area_cm2=area,
                    calibrated=True,
                    severe=False,
                    model_name=name,
                    model_version=version,
                    model_sha256="0" * 64,
                    manual=manual,
                )
            )
    return study, wound


def test_only_the_pinned_models_measurement_counts() -> None:
    # DESIGN: "the latest manual correction, else the measurement of the study's pinned
    # model (none from another model: such a photo answers not counted, 'not measured
    # with the pinned model')".
    from service.domain.outcomes import wound_input

    study, wound = _stored_wound(
        "ulcerseg-1.1.0",
        [
            [("ulcerseg-1.1.0", False, 4.0), ("ulcerseg-1.2.0", False, 4.4)],
            [("ulcerseg-1.2.0", False, 3.3)],  # only the newer model: not counted
            [("ulcerseg-1.2.0", False, 2.2), ("ulcerseg-1.2.0", True, 2.0)],  # manual wins
        ],
    )
    visits = {v.assessment_id: v for v in wound_input(wound, study).visits}
    assert visits["asm0"].counted and visits["asm0"].area_cm2 == 4.0
    assert not visits["asm1"].counted
    assert visits["asm0"].model == "ulcerseg-1.1.0"
    assert visits["asm1"].uncounted_reason == "not measured with the pinned model: run reanalyze"
    assert visits["asm2"].counted and visits["asm2"].area_cm2 == 2.0
    assert visits["asm2"].manual is True
    answer = wound_endpoints(list(visits.values()))
    by_id = {v["assessment"]: v for v in answer["visits"]}
    assert by_id["asm0"]["model"] == "ulcerseg-1.1.0"
    assert by_id["asm1"]["counted"] is False
    assert by_id["asm2"]["manual"] is True
    assert answer["baseline_area_cm2"] == 4.0

    # No pinned model: the newest automatic measurement counts, as before.
    unpinned, wound2 = _stored_wound(
        None, [[("ulcerseg-1.1.0", False, 4.0), ("ulcerseg-1.2.0", False, 4.4)]]
    )
    (only,) = wound_input(wound2, unpinned).visits
    assert only.counted and only.area_cm2 == 4.4 and only.model == "ulcerseg-1.2.0"


# --- typed answers ------------------------------------------------------------------------


def test_typed_answer_models_hold_every_engine_key() -> None:
    from service.core.answers import StudyAnswer, SubjectAnswer, WoundAnswer

    WoundAnswer.model_validate(
        {
            "wound": "w",
            "subject": "s",
            "label": "W1",
            **wound_endpoints(visits_of([opened(0)], "c")),
        }
    )

    obs = [opened(0), closed(14), closed(28), opened(56)]
    wounds = [Wound("W1", visits_of(obs, "a")), Wound("W2", visits_of([opened(0)], "b"))]
    sub = subject_endpoints(wounds)
    SubjectAnswer.model_validate({"subject": "s", "code": "S", "study": "T", **sub})
    for by_arm in (False, True):
        study = study_endpoints([Subject("s", wounds, arm="x"), Subject("t", [])], by_arm=by_arm)
        dumped = StudyAnswer.model_validate({"study": "T", "scope": "study", **study}).model_dump(
            exclude_unset=True
        )
        assert set(dumped) == {"study", "scope", *study}
        assert ("by_arm" in dumped) is by_arm


# --- competing events: Aalen–Johansen and amputation-free survival -----------------------


def ref_cif(times: list[int], causes: list[int], day: int) -> Fraction:
    """Cumulative incidence of cause 1 by ``day``: Σ S(t−) · d1(t) / n(t), exact."""
    s, f = Fraction(1), Fraction(0)
    for t in sorted(set(times)):
        if t > day:
            break
        n = sum(1 for u in times if u >= t)
        d = sum(1 for u, c in zip(times, causes, strict=True) if u == t and c)
        d1 = sum(1 for u, c in zip(times, causes, strict=True) if u == t and c == 1)
        if t > 0:
            f += s * Fraction(d1, n)
        s *= Fraction(n - d, n)
    return f


def competing_trial(seed: int, n: int = 60) -> tuple[list[Subject], list[int], list[int]]:
    """Subjects that heal, die, lose the index leg or are censored, with distinct days
    (lifelines' Aalen–Johansen jitters tied event times of different kinds)."""
    from service.core.healing import SubjectEvent

    rng = random.Random(seed)
    days = rng.sample(range(20, 400), n)
    subjects, times, causes = [], [], []
    for i, t in enumerate(days):
        kind = rng.choice(["heal", "heal", "death", "amputation", "censor", "minor"])
        events: list[SubjectEvent] = []
        if kind == "heal":
            obs = [opened(0), closed(t), closed(t + 14)]
            times.append(t)
            causes.append(1)
        else:
            obs = [opened(0), opened(t)]
            if kind == "death":
                events = [SubjectEvent("death", BASE + timedelta(days=t))]
            elif kind == "amputation":
                events = [SubjectEvent("major_amputation", BASE + timedelta(days=t), "index")]
            elif kind == "minor":  # not competing: censored at the last visit
                events = [SubjectEvent("minor_amputation", BASE + timedelta(days=t - 5), "index")]
            times.append(t)
            causes.append(2 if kind in ("death", "amputation") else 0)
        wound = Wound(f"w{i}", visits_of(obs, f"s{i}"))
        subjects.append(Subject(f"s{i}", [wound], events=events))
    return subjects, times, causes


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cumulative_incidence_matches_lifelines_and_the_exact_reference(seed: int) -> None:
    from lifelines import AalenJohansenFitter

    subjects, times, causes = competing_trial(seed)
    answer = study_endpoints(subjects, proportion_days=[100, 200, 500])
    cif = answer["cumulative_incidence"]
    assert cif["healed"] == causes.count(1)
    assert cif["competing"] == causes.count(2)
    ajf = AalenJohansenFitter(calculate_variance=True).fit(times, causes, event_of_interest=1)
    expected = ajf.cumulative_density_.iloc[:, 0]
    ours = dict(zip(cif["timeline_days"], cif["cumulative_incidence"], strict=True))
    assert len(ours) == len(expected)
    for t, f in expected.items():
        assert ours[float(t)] == pytest.approx(float(f), abs=1e-9)
        assert ours[float(t)] == pytest.approx(float(ref_cif(times, causes, int(t))), abs=1e-9)
    bands = ajf.confidence_interval_
    low = dict(zip(cif["timeline_days"], cif["ci95_low"], strict=True))
    high = dict(zip(cif["timeline_days"], cif["ci95_high"], strict=True))
    compared = 0
    for t, (a, b) in zip(bands.index, bands.to_numpy(), strict=True):
        if math.isnan(a) or math.isnan(b):
            continue
        compared += 1
        assert low[float(t)] == pytest.approx(min(a, b), abs=1e-9)
        assert high[float(t)] == pytest.approx(max(a, b), abs=1e-9)
    assert compared > 10
    assert cif["proportion_healed"]["200"] == pytest.approx(float(ref_cif(times, causes, 200)))
    assert cif["proportion_healed"]["500"] is None
    assert "Aalen-Johansen" in cif["method"]


def test_amputation_free_survival_matches_lifelines() -> None:
    from lifelines import KaplanMeierFitter

    subjects, times, causes = competing_trial(4)
    answer = study_endpoints(subjects)
    afs = answer["amputation_free_survival"]
    # AFS event: death or index-leg major amputation; otherwise censored at follow-up
    # (the last visit; healed subjects are followed to their confirming visit).
    afs_times = [t + 14 if c == 1 else t for t, c in zip(times, causes, strict=True)]
    afs_events = [c == 2 for c in causes]
    kmf = KaplanMeierFitter().fit(afs_times, afs_events)
    assert afs["events"] == sum(afs_events)
    ours = dict(zip(afs["km"]["timeline_days"], afs["km"]["survival"], strict=True))
    for t, s in kmf.survival_function_.iloc[:, 0].items():
        assert ours[float(t)] == pytest.approx(float(s), abs=1e-9)


# --- ADTTE -------------------------------------------------------------------------------


def test_adtte_rebuilds_the_study_answer_with_lifelines() -> None:
    import csv
    import io

    from lifelines import AalenJohansenFitter, KaplanMeierFitter

    from service.core.adtte import adtte_csv, adtte_rows

    subjects, times, causes = competing_trial(5, n=40)
    subjects = [
        Subject(s.subject_id, s.wounds, code=f"C{i}", arm="ab"[i % 2], site="A", events=s.events)
        for i, s in enumerate(subjects)
    ] + [Subject("late", [], code="LATE", randomized_on=BASE, site="A")]
    answer = study_endpoints(subjects, proportion_days=[100])
    text = adtte_csv(adtte_rows("T", subjects), include_arm=False)
    table = list(csv.DictReader(io.StringIO(text)))
    assert "TRTP" not in table[0]
    heal = [r for r in table if r["PARAMCD"] == "TTHEAL"]
    assert len(heal) == answer["subjects_in_analysis"] == 41
    kmf = KaplanMeierFitter().fit(
        [float(r["AVAL"]) for r in heal], [r["CNSR"] == "0" for r in heal]
    )
    survival = kmf.survival_function_.iloc[:, 0]
    assert answer["km"]["timeline_days"] == list(survival.index)
    assert answer["km"]["survival"] == pytest.approx(list(survival), abs=1e-9)
    late = next(r for r in heal if r["SUBJID"] == "LATE")
    assert (late["AVAL"], late["CNSR"], late["STARTDT"]) == ("0", "1", BASE.isoformat())
    assert "never photographed" in late["CNSDTDSC"]
    cr = [r for r in table if r["PARAMCD"] == "CRHEAL"]
    ajf = AalenJohansenFitter().fit(
        [float(r["AVAL"]) for r in cr], [int(r["CRCAUSE"]) for r in cr], event_of_interest=1
    )
    cif = dict(
        zip(
            answer["cumulative_incidence"]["timeline_days"],
            answer["cumulative_incidence"]["cumulative_incidence"],
            strict=True,
        )
    )
    for t, f in ajf.cumulative_density_.iloc[:, 0].items():
        assert cif[float(t)] == pytest.approx(float(f), abs=1e-9)
    afs = [r for r in table if r["PARAMCD"] == "AFS"]
    assert sum(r["CNSR"] == "0" for r in afs) == answer["amputation_free_survival"]["events"]
    for r in table:
        if r["ADT"]:
            start = date.fromisoformat(r["STARTDT"])
            assert (date.fromisoformat(r["ADT"]) - start).days == int(r["AVAL"])
    admin = list(
        csv.DictReader(
            io.StringIO(adtte_csv(adtte_rows("T", subjects, include_arm=True), include_arm=True))
        )
    )
    assert {r["TRTP"] for r in admin if r["SUBJID"] != "LATE"} == {"a", "b"}


# --- by arm (admins): stratified log-rank and Cox hazard ratio ---------------------------


def arm_trial(seed: int, sites: tuple[str, ...] = ("A",)) -> list[Subject]:
    rng = random.Random(seed)
    subjects = []
    days = rng.sample(range(20, 300), 60)
    for i, t in enumerate(days):
        arm = "active" if i % 2 else "control"
        heals = rng.random() < (0.8 if arm == "active" else 0.4)
        obs = [opened(0), closed(t), closed(t + 14)] if heals else [opened(0), opened(t)]
        subjects.append(
            Subject(
                f"s{i}",
                [Wound(f"w{i}", visits_of(obs, f"s{i}"))],
                arm=arm,
                site=sites[(i // 2) % len(sites)],  # both arms at every site
            )
        )
    return subjects


def test_logrank_equals_lifelines_with_one_site_and_adds_over_sites() -> None:
    from lifelines.statistics import logrank_test

    subjects = arm_trial(11)
    answer = study_endpoints(subjects, by_arm=True)
    rows = answer["subject_rows"]
    a = [r for r in rows if r["arm"] == "active"]
    c = [r for r in rows if r["arm"] == "control"]
    expected = logrank_test(
        [r["time_to_closure_days"] for r in a],
        [r["time_to_closure_days"] for r in c],
        [r["healing_event"] for r in a],
        [r["healing_event"] for r in c],
    )
    ours = answer["arm_comparison"]
    assert ours["reference_arm"] == "control" or ours["reference_arm"] == "active"
    assert ours["logrank"]["statistic"] == pytest.approx(expected.test_statistic, abs=1e-9)
    assert ours["logrank"]["p_value"] == pytest.approx(expected.p_value, abs=1e-9)
    # The same trial copied into a second site: O − E and V double, so does χ².
    copy = [Subject(s.subject_id + "b", s.wounds, arm=s.arm, site="B") for s in subjects]
    doubled = study_endpoints(subjects + copy, by_arm=True)["arm_comparison"]["logrank"]
    assert doubled["statistic"] == pytest.approx(2 * expected.test_statistic, rel=1e-9)
    assert "stratified by site" in doubled["method"]


def test_cox_hazard_ratio_favours_the_faster_healing_arm_and_matches_lifelines() -> None:
    import pandas as pd
    from lifelines import CoxPHFitter

    subjects = arm_trial(12, sites=("A", "B"))
    answer = study_endpoints(subjects, by_arm=True)
    cox = answer["arm_comparison"]["cox"]
    rows = answer["subject_rows"]
    frame = pd.DataFrame(
        {
            "T": [r["time_to_closure_days"] for r in rows],
            "E": [r["healing_event"] for r in rows],
            "x": [int(r["arm"] == "control") for r in rows],
            "site": [s.site for s in subjects],
        }
    )
    # lifelines run to the maximum (its default stops early on a flat likelihood; the
    # engine's fit is checked against an independent Efron fit in test_comparisons).
    expected = (
        CoxPHFitter()
        .fit(frame, "T", "E", strata=["site"], fit_options=COX_FIT_OPTIONS)
        .summary.loc["x"]
    )
    assert answer["arm_comparison"]["reference_arm"] == "active"
    assert cox["hazard_ratio"] == pytest.approx(float(expected["exp(coef)"]), rel=1e-6)
    assert cox["hazard_ratio"] < 1  # control heals more slowly than active
    low, high = cox["ci95"]
    assert low < cox["hazard_ratio"] < high
    pooled = study_endpoints(subjects, by_arm=False)
    assert "arm_comparison" not in pooled and "by_arm" not in pooled
