"""The comparisons a sponsor asks for (issue 26), each against lifelines or a reference
written here from the README's rules: the control arm, Cox stratified by site and
adjusted for log baseline area (an Efron partial likelihood maximised here), log-rank
by arm of time to healing, durable healing and amputation-free survival (a stratified
log-rank written here; lifelines with one site), Kaplan–Meier of durable healing, and
PAR at week 4 / at the last visit by arm."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test
from scipy.optimize import minimize

from service.core.healing import Subject, SubjectEvent, Visit, Wound, study_endpoints

BASE = date(2026, 1, 5)


@dataclass
class Truth:
    """What a generated subject is, by construction (the README's rules applied by hand)."""

    subject: str
    arm: str
    site: str
    area0: float
    healed_day: int | None  # confirmed healing (closed, and again 14 days later)
    durable: bool
    last_day: int
    death_day: int | None
    par_week4: float | None
    par_last: float | None


def generate(seed: int, n: int = 60, sites: tuple[str, ...] = ("A", "B", "C")):
    rng = random.Random(seed)
    subjects, truths = [], []
    for i in range(n):
        arm = rng.choice(["placebo", "active"])
        site = rng.choice(sites)
        area0 = rng.uniform(0.5, 20.0)
        k = rng.uniform(0.002, 0.03) * (1.6 if arm == "active" else 1.0)
        last_day = 14 * rng.randint(3, 20)
        close = 14 * rng.randint(2, 24) if rng.random() < 0.7 else None
        reopen = close + 14 * rng.randint(2, 6) if close and rng.random() < 0.25 else None
        death = rng.randint(20, last_day) if rng.random() < 0.15 else None
        if death is not None:
            last_day = 14 * (death // 14)
        days = list(range(0, last_day + 1, 14))
        visits, areas = [], {}
        for d in days:
            closed = close is not None and close <= d and (reopen is None or d < reopen)
            area = 0.0 if closed else area0 * math.exp(-k * d)
            areas[d] = area
            visits.append(
                Visit(
                    f"s{i}d{d}",
                    BASE + timedelta(days=d),
                    area_cm2=area,
                    epithelialized=closed,
                    drainage=not closed,
                )
            )
        confirmed = (
            close is not None
            and close + 14 <= last_day
            and (reopen is None or reopen >= close + 28)
        )
        healed_day = close if confirmed else None
        durable = confirmed and (reopen is None or reopen > last_day)
        later = [d for d in days if d > 0]
        events = [SubjectEvent("death", BASE + timedelta(days=death))] if death else []
        subjects.append(
            Subject(
                f"s{i}",
                [Wound(f"w{i}", visits)],
                arm=arm,
                site=site,
                randomized_on=BASE,
                events=events,
            )
        )
        truths.append(
            Truth(
                f"s{i}",
                arm,
                site,
                area0,
                healed_day,
                durable,
                last_day,
                death,
                (area0 - areas[28]) / area0 * 100 if 28 in areas else None,
                (area0 - areas[later[-1]]) / area0 * 100 if later else None,
            )
        )
    return subjects, truths


def ref_stratified_logrank(times, events, treated, strata) -> float:
    """χ² of the log-rank test stratified by ``strata``: (Σ O − E)² / Σ V."""
    times, events, treated, strata = map(np.asarray, (times, events, treated, strata))
    o_e = v = 0.0
    for s in np.unique(strata):
        m = strata == s
        t, e, x = times[m], events[m], treated[m]
        for u in np.unique(t[e]):
            risk = t >= u
            n, n1 = risk.sum(), (risk & x).sum()
            d = (e & (t == u)).sum()
            d1 = (e & (t == u) & x).sum()
            o_e += d1 - d * n1 / n
            if n > 1:
                v += d * n1 * (n - n1) * (n - d) / (n * n * (n - 1))
    return o_e**2 / v


def efron_fit(times, events, covariates, strata) -> np.ndarray:
    """β maximising the Efron partial likelihood stratified by ``strata``."""
    times, events, strata = np.asarray(times), np.asarray(events, bool), np.asarray(strata)
    x = np.asarray(covariates, dtype=float).reshape(len(times), -1)

    def negative_loglik(beta: np.ndarray) -> float:
        eta = x @ beta
        total = 0.0
        for s in np.unique(strata):
            m = strata == s
            t, e, h = times[m], events[m], eta[m]
            for u in np.unique(t[e]):
                dead = e & (t == u)
                d = dead.sum()
                risk_sum = np.exp(h[t >= u]).sum()
                dead_sum = np.exp(h[dead]).sum()
                total += h[dead].sum()
                total -= sum(math.log(risk_sum - k / d * dead_sum) for k in range(d))
        return -total

    start = minimize(negative_loglik, np.zeros(x.shape[1]), method="BFGS").x
    polished = minimize(
        negative_loglik,
        start,
        method="Nelder-Mead",
        options={"xatol": 1e-12, "fatol": 1e-15, "maxiter": 20000},
    )
    return np.asarray(polished.x)


@pytest.fixture(scope="module", params=[11, 12])
def trial(request):
    subjects, truths = generate(request.param)
    answer = study_endpoints(subjects, by_arm=True, control_arm="placebo")
    return answer, {t.subject: t for t in truths}


def test_rows_follow_the_rules(trial) -> None:
    answer, truth = trial
    for row in answer["subject_rows"]:
        t = truth[row["subject"]]
        assert row["healing_event"] == (t.healed_day is not None), row["subject"]
        assert row["durable_event"] == t.durable, row["subject"]
        assert row["durable_time_days"] == (t.healed_day if t.durable else t.last_day)
        assert row["log_baseline_area"] == pytest.approx(math.log(t.area0), abs=1e-8)


def test_the_control_arm_is_the_reference(trial) -> None:
    answer, _ = trial
    comparison = answer["arm_comparison"]
    assert comparison["reference_arm"] == "placebo" and comparison["compared_arm"] == "active"
    assert comparison["reference_source"] == "control_arm"
    assert "Gray's test" in comparison["cumulative_incidence_test"]["method"]
    assert "Fine-Gray" in comparison["fine_gray"]["method"]


def test_cox_stratified_and_adjusted_equal_an_efron_fit(trial) -> None:
    answer, truth = trial
    rows = answer["subject_rows"]
    times = [r["time_to_closure_days"] for r in rows]
    events = [r["healing_event"] for r in rows]
    treated = [float(truth[r["subject"]].arm == "active") for r in rows]
    sites = [truth[r["subject"]].site for r in rows]
    log_area = [math.log(truth[r["subject"]].area0) for r in rows]
    comparison = answer["arm_comparison"]
    (beta,) = efron_fit(times, events, treated, sites)
    assert comparison["cox"]["hazard_ratio"] == pytest.approx(math.exp(beta), rel=1e-6)
    beta_arm, beta_area = efron_fit(times, events, np.column_stack([treated, log_area]), sites)
    adjusted = comparison["cox_adjusted"]
    assert adjusted["subjects"] == len(rows)
    assert adjusted["hazard_ratio"] == pytest.approx(math.exp(beta_arm), rel=1e-6)
    assert adjusted["log_baseline_area"]["hazard_ratio"] == pytest.approx(
        math.exp(beta_area), rel=1e-6
    )


@pytest.mark.parametrize(
    ("key", "time", "event"),
    [
        ("logrank", "time_to_closure_days", "healing_event"),
        ("durable_logrank", "durable_time_days", "durable_event"),
        ("afs_logrank", "afs_time_days", "afs_event"),
    ],
)
def test_logrank_by_arm_equals_the_reference(trial, key: str, time: str, event: str) -> None:
    answer, truth = trial
    rows = answer["subject_rows"]
    statistic = ref_stratified_logrank(
        [r[time] for r in rows],
        [r[event] for r in rows],
        [truth[r["subject"]].arm == "active" for r in rows],
        [truth[r["subject"]].site for r in rows],
    )
    assert answer["arm_comparison"][key]["statistic"] == pytest.approx(statistic, abs=1e-8)


def test_afs_events_are_the_deaths(trial) -> None:
    answer, truth = trial
    for row in answer["subject_rows"]:
        t = truth[row["subject"]]
        assert row["afs_event"] == (t.death_day is not None)
        if t.death_day is not None:
            assert row["afs_time_days"] == t.death_day


def test_with_one_site_the_logrank_tests_equal_lifelines() -> None:
    subjects, truths = generate(5, sites=("A",))
    answer = study_endpoints(subjects, by_arm=True, control_arm="placebo")
    rows = answer["subject_rows"]
    active = [truths[i].arm == "active" for i in range(len(rows))]
    for key, time, event in (
        ("logrank", "time_to_closure_days", "healing_event"),
        ("durable_logrank", "durable_time_days", "durable_event"),
        ("afs_logrank", "afs_time_days", "afs_event"),
    ):
        t = np.asarray([r[time] for r in rows], float)
        e = np.asarray([r[event] for r in rows], bool)
        a = np.asarray(active)
        expected = logrank_test(t[a], t[~a], e[a], e[~a])
        ours = answer["arm_comparison"][key]
        assert ours["statistic"] == pytest.approx(expected.test_statistic, abs=1e-8), key
        assert ours["p_value"] == pytest.approx(expected.p_value, abs=1e-8), key


def test_durable_healing_km_equals_lifelines(trial) -> None:
    answer, truth = trial
    for arm, figures in [("all", answer), *answer["by_arm"].items()]:
        chosen = [t for t in truth.values() if arm == "all" or t.arm == arm]
        kmf = KaplanMeierFitter().fit(
            [t.healed_day if t.durable else t.last_day for t in chosen],
            [t.durable for t in chosen],
        )
        km = figures["durable_healing"]["km"]
        expected = kmf.survival_function_.iloc[:, 0]
        assert km["timeline_days"] == [float(x) for x in expected.index]
        assert km["survival"] == pytest.approx(list(expected.to_numpy()), abs=1e-9)
        assert figures["durable_healing"]["events"] == sum(t.durable for t in chosen)


def test_par_by_arm_with_counts(trial) -> None:
    answer, truth = trial
    for arm, figures in answer["by_arm"].items():
        chosen = [t for t in truth.values() if t.arm == arm]
        for key, attr in (("par_week4", "par_week4"), ("par_last_visit", "par_last")):
            values = [getattr(t, attr) for t in chosen if getattr(t, attr) is not None]
            got = figures[key]
            assert got["wounds"] == len(chosen), (arm, key)
            assert got["available"] == len(values)
            assert got["at_least_50_pct"] == sum(v >= 50 for v in values)
            assert got["median_pct"] == pytest.approx(float(np.median(values)), abs=1e-6)


def test_with_one_site_the_cox_ratios_are_estimated_and_equal_an_efron_fit() -> None:
    """A single-site study gets its Cox hazard ratios (the site column was once passed
    to lifelines as a text covariate, and every ratio came back "no estimate")."""
    subjects, truths = generate(5, sites=("A",))
    answer = study_endpoints(subjects, by_arm=True, control_arm="placebo")
    rows = answer["subject_rows"]
    times = [r["time_to_closure_days"] for r in rows]
    events = [r["healing_event"] for r in rows]
    treated = [float(truths[i].arm == "active") for i in range(len(rows))]
    comparison = answer["arm_comparison"]
    (beta,) = efron_fit(times, events, treated, ["A"] * len(rows))
    assert comparison["cox"]["warning"] is None
    assert comparison["cox"]["hazard_ratio"] == pytest.approx(math.exp(beta), rel=1e-6)
    assert "stratified" not in comparison["cox"]["method"]
    assert comparison["fine_gray"]["hazard_ratio"] is not None
