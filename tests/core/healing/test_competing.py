"""Gray's test and the Fine–Gray subdistribution hazard ratio (issue 26), each against a
reference written here another way: Gray's score as a weighted difference of the two
arms' subdistribution hazards and its variance from the per-time influence terms, in
plain loops; the Fine–Gray estimate by maximising Fine & Gray's (1999) weighted partial
likelihood over subjects (no counting-process rows) with scipy, and its robust variance
from per-subject scores; the log-rank test and the ordinary Cox model where the two
must agree; and the study answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
from lifelines import CoxPHFitter
from lifelines.statistics import logrank_test
from scipy.optimize import minimize_scalar

from service.core.healing import study_endpoints
from service.core.healing.competing import fine_gray_hazard_ratio, gray_test
from service.core.healing.coxfit import COX_FIT_OPTIONS
from tests.core.healing.test_comparisons import generate

# --- data ----------------------------------------------------------------------------


def dataset(seed: int, n: int = 120, competing: float = 0.25, censored: float = 0.3):
    """Times on a coarse grid (ties within and between causes), arms "c" / "t", sites."""
    rng = np.random.default_rng(seed)
    groups = rng.choice(["c", "t"], n)
    times = np.round(rng.exponential(20.0, n) * np.where(groups == "t", 0.8, 1.0)) + 1
    causes = rng.choice([0, 1, 2], n, p=[censored, 1 - censored - competing, competing])
    sites = rng.choice(["A", "B", "C"], n)
    return times.astype(float), causes.astype(int), groups.tolist(), sites.tolist()


# --- Gray's test: a reference in loops -------------------------------------------------


def ref_gray(times, causes, groups, reference, rho=0.0):
    """Gray (1988) for two groups from the paper's quantities, one time at a time:
    h_k = Y_k / S_k(t−), R_k = h_k (1 − F_k(t−)), F⁰ from dF⁰ = d₁ / Σ h, L = (1 −
    F⁰(t−))^ρ; score = Σ L R_0 R_1 / (R_0 + R_1) (d_11 / R_1 − d_10 / R_0); variance =
    Σ over groups and failure times of the increment's variance times ψ², ψ the
    influence of that increment on the score (c_k(τ) − c_k(t) summed over later times)."""
    data = list(zip(times, causes, [0 if g == reference else 1 for g in groups], strict=True))
    grid = sorted({t for t, _, _ in data})
    per = []  # one dict per time
    s_left, f_left, pooled_left = [1.0, 1.0], [0.0, 0.0], 0.0
    for u in grid:
        y = [sum(1 for t, _, k in data if t >= u and k == g) for g in (0, 1)]
        d1 = [sum(1 for t, c, k in data if t == u and c == 1 and k == g) for g in (0, 1)]
        d2 = [sum(1 for t, c, k in data if t == u and c == 2 and k == g) for g in (0, 1)]
        h = [y[g] / s_left[g] if y[g] else 0.0 for g in (0, 1)]
        total_h = h[0] + h[1]
        s_right = [s_left[g] * (1 - (d1[g] + d2[g]) / y[g]) if y[g] else s_left[g] for g in (0, 1)]
        pooled = pooled_left + ((d1[0] + d1[1]) / total_h if total_h else 0.0)
        per.append(
            {
                "y": y,
                "d1": d1,
                "d2": d2,
                "h": h,
                "H": total_h,
                "R": [h[g] * (1 - f_left[g]) for g in (0, 1)],
                "L": (1 - pooled_left) ** rho,
                "S_": list(s_left),
                "S": s_right,
                "F0_": pooled_left,
                "F0": pooled,
            }
        )
        f_left = [f_left[g] + (s_left[g] * d1[g] / y[g] if y[g] else 0.0) for g in (0, 1)]
        s_left, pooled_left = s_right, pooled
    score = 0.0
    for p in per:
        r0, r1 = p["R"]
        if r0 > 0 and r1 > 0:
            score += p["L"] * r0 * r1 / (r0 + r1) * (p["d1"][1] / r1 - p["d1"][0] / r0)

    def a(p, k):
        if not p["H"]:
            return 0.0
        return p["L"] * p["h"][1] * ((1.0 if k == 1 else 0.0) - p["h"][k] / p["H"])

    def later(j, k):  # c_k(τ) − c_k(t_j)
        total = 0.0
        for p in per[j + 1 :]:
            n1 = p["d1"][0] + p["d1"][1]
            if p["H"] and p["F0_"] < 1:
                total += a(p, k) * n1 / (p["H"] * (1 - p["F0_"]))
        return total

    variance = 0.0
    for j, p in enumerate(per):
        n1 = p["d1"][0] + p["d1"][1]
        for k in (0, 1):
            if n1 and p["y"][k]:
                tie = 1 - (n1 - 1) / (p["H"] * p["S_"][k] - 1) if n1 > 1 else 1.0
                var_inc = tie * n1 / (p["H"] * p["h"][k])
                keep = 1 - (1 - p["F0"]) / p["S"][k] if p["S"][k] > 0 else 1.0
                variance += var_inc * (a(p, k) + keep * later(j, k)) ** 2
            if p["d2"][k] and p["S"][k] > 0:
                d = p["d2"][k]
                tie = 1 - (d - 1) / (p["y"][k] - 1) if d > 1 else 1.0
                var_inc = tie * p["S_"][k] ** 2 * d / p["y"][k] ** 2
                variance += var_inc * ((1 - p["F0"]) / p["S"][k] * later(j, k)) ** 2
    return score, variance


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("rho", [0.0, 1.0])
def test_gray_equals_the_loop_reference(seed: int, rho: float) -> None:
    times, causes, groups, _ = dataset(seed)
    assert len(set(times)) < len(times)  # ties
    score, variance = ref_gray(times, causes, groups, "c", rho)
    ours = gray_test(times, causes, groups, "c", rho=rho)
    assert ours["score"] == pytest.approx(score, abs=1e-6)
    assert ours["variance"] == pytest.approx(variance, abs=1e-6)
    assert ours["statistic"] == pytest.approx(score**2 / variance, abs=1e-6)
    assert ours["df"] == 1 and ours["rho"] == rho


def test_gray_stratified_sums_the_strata() -> None:
    times, causes, groups, sites = dataset(7, n=200)
    score = variance = 0.0
    for site in sorted(set(sites)):
        m = [s == site for s in sites]
        s_k, v_k = ref_gray(
            times[m], causes[m], [g for g, keep in zip(groups, m, strict=True) if keep], "c"
        )
        score, variance = score + s_k, variance + v_k
    ours = gray_test(times, causes, groups, "c", strata=sites)
    assert ours["statistic"] == pytest.approx(score**2 / variance, abs=1e-6)
    assert "stratified by site" in ours["method"]


def test_gray_holds_its_size_under_the_null() -> None:
    """Same distributions in both arms: the χ² averages about 1 and rejects about 5 %."""
    statistics = []
    for seed in range(300):
        times, causes, groups, _ = dataset(1000 + seed, n=150)
        times = np.round(np.random.default_rng(seed).exponential(20.0, 150)) + 1
        statistics.append(gray_test(times, causes, groups, "c")["statistic"])
    assert 0.85 < float(np.mean(statistics)) < 1.15
    assert 0.02 < float(np.mean(np.asarray(statistics) > 3.841)) < 0.09


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_without_competing_events_gray_is_a_logrank_test(seed: int) -> None:
    """No competing events, ρ = 0: S_k = 1 − F_k, so R_k = Y_k and Gray's score is the
    log-rank O − E exactly; its variance is Gray's asymptotic one, not the log-rank's
    hypergeometric one, so the χ² agree only asymptotically (here within 5 %)."""
    times, causes, groups, _ = dataset(seed, n=300, competing=0.0)
    g = np.asarray(groups)
    e = causes == 1
    o_minus_e = 0.0
    for u in sorted(set(times[e])):
        at_risk = times >= u
        d = (e & (times == u)).sum()
        o_minus_e += (e & (times == u) & (g == "t")).sum() - d * (at_risk & (g == "t")).sum() / (
            at_risk.sum()
        )
    ours = gray_test(times, causes, groups, "c")
    assert ours["score"] == pytest.approx(o_minus_e, abs=1e-9)
    t = g == "t"
    expected = logrank_test(times[t], times[~t], e[t], e[~t]).test_statistic
    assert ours["statistic"] == pytest.approx(expected, rel=0.05)
    assert abs(ours["statistic"] - expected) > 1e-6  # not the same variance


# --- Fine–Gray: Fine & Gray's likelihood maximised here ----------------------------------


def censoring_survival(times, causes):
    """G(u) for u: Kaplan–Meier of censoring (failures censor it), by a loop."""

    def g(u: float, *, left: bool) -> float:
        value = 1.0
        for c in sorted({t for t, k in zip(times, causes, strict=True) if k == 0}):
            if c < u or (c == u and not left):
                at_risk = sum(1 for t in times if t >= c)
                gone = sum(1 for t, k in zip(times, causes, strict=True) if t == c and k == 0)
                value *= 1 - gone / at_risk
        return value

    return g


def fg_weights(times, causes):
    """w[i][j]: subject j's weight in the risk set at subject i's failure of interest."""
    g = censoring_survival(times, causes)
    w = np.zeros((len(times), len(times)))
    for i, (ti, ci) in enumerate(zip(times, causes, strict=True)):
        if ci != 1:
            continue
        for j, (tj, cj) in enumerate(zip(times, causes, strict=True)):
            if tj >= ti:
                w[i, j] = 1.0
            elif cj == 2:
                w[i, j] = g(ti, left=True) / g(tj, left=True)
    return w


def fg_fit(times, causes, groups, strata):
    """β̂ maximising Σ_i [β z_i − log Σ_j w_ij exp(β z_j)] over failures of interest
    (Fine & Gray 1999, with G per stratum; Breslow = Efron without tied failures), and
    the robust SE from per-subject scores ∫ (z_j − z̄) w_j dM_j (G taken as known)."""
    z = np.asarray([0.0 if g == "c" else 1.0 for g in groups])
    blocks = []
    for site in sorted(set(strata)):
        m = np.asarray([s == site for s in strata])
        blocks.append((m, fg_weights(times[m], causes[m])))

    def loglik(beta: float) -> float:
        total = 0.0
        for m, w in blocks:
            zs = z[m]
            for i in np.flatnonzero(causes[m] == 1):
                total += beta * zs[i] - math.log(np.sum(w[i] * np.exp(beta * zs)))
        return total

    beta = minimize_scalar(
        lambda b: -loglik(b), bounds=(-5, 5), method="bounded", options={"xatol": 1e-12}
    ).x
    score = np.zeros(len(z))
    information = 0.0
    for m, w in blocks:
        zs, idx = z[m], np.flatnonzero(m)
        for i in np.flatnonzero(causes[m] == 1):
            r = w[i] * np.exp(beta * zs)
            mean = np.sum(r * zs) / np.sum(r)
            information += np.sum(r * zs**2) / np.sum(r) - mean**2
            score[idx[i]] += zs[i] - mean
            score[idx] -= r / np.sum(r) * (zs - mean)
    return beta, math.sqrt(np.sum(score**2)) / information


def untied_dataset(seed: int, n: int = 80):
    times, causes, groups, sites = dataset(seed, n=n)
    # failures of interest at distinct times; ties left among the others and across causes
    times = times + np.where(causes == 1, np.arange(n) * 1e-3, 0.0)
    return times, causes, groups, sites


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fine_gray_equals_the_likelihood_maximised_here(seed: int) -> None:
    times, causes, groups, sites = untied_dataset(seed)
    beta, se = fg_fit(times, causes, groups, [""] * len(times))
    ours = fine_gray_hazard_ratio(times, causes, groups, "c")
    assert math.log(ours["hazard_ratio"]) == pytest.approx(beta, abs=1e-6)
    low, high = ours["ci95"]
    assert math.log(high / low) / (2 * 1.959963984540054) == pytest.approx(se, abs=1e-6)
    assert "stratified" not in ours["method"]


def test_fine_gray_stratified_by_site_equals_the_likelihood_maximised_here() -> None:
    times, causes, groups, sites = untied_dataset(4, n=120)
    beta, se = fg_fit(times, causes, groups, sites)
    ours = fine_gray_hazard_ratio(times, causes, groups, "c", strata=sites)
    assert math.log(ours["hazard_ratio"]) == pytest.approx(beta, abs=1e-6)
    low, high = ours["ci95"]
    assert math.log(high / low) / (2 * 1.959963984540054) == pytest.approx(se, abs=1e-6)
    assert "stratified by site" in ours["method"]


@pytest.mark.parametrize("censored", [0.0, 0.3])
def test_without_competing_events_fine_gray_is_the_cox_model(censored: float) -> None:
    """No competing event: every weight is 1 and the rows are the subjects, so the HR is
    the ordinary Cox HR (Efron ties); without ties the robust CI is lifelines' too."""
    import pandas as pd

    for times in (None, "untied"):
        t, causes, groups, _ = dataset(9, n=150, competing=0.0, censored=censored)
        if times == "untied":
            t = t + np.arange(len(t)) * 1e-3
        frame = pd.DataFrame({"T": t, "E": causes == 1, "x": [g == "t" for g in groups]})
        cox = CoxPHFitter().fit(frame, "T", "E", robust=True, fit_options=COX_FIT_OPTIONS)
        ours = fine_gray_hazard_ratio(t, causes, groups, "c")
        assert ours["hazard_ratio"] == pytest.approx(cox.hazard_ratios_["x"], rel=1e-8)
        if times == "untied":
            low, high = ours["ci95"]
            se = math.log(high / low) / (2 * 1.959963984540054)
            assert se == pytest.approx(float(cox.standard_errors_["x"]), rel=1e-7)


# --- the study's answer ----------------------------------------------------------------


@pytest.mark.parametrize("seed", [11, 12])
def test_the_study_answer_carries_gray_and_fine_gray(seed: int) -> None:
    subjects, truths = generate(seed)
    answer = study_endpoints(subjects, by_arm=True, control_arm="placebo")
    rows = answer["subject_rows"]
    site = {t.subject: t.site for t in truths}
    times = np.asarray([float(r["cr_time_days"]) for r in rows])
    causes = np.asarray([r["cr_cause"] for r in rows])
    groups = ["c" if r["arm"] == "placebo" else "t" for r in rows]
    sites = [site[r["subject"]] for r in rows]
    assert (causes == 2).sum() > 0 and (causes == 1).sum() > 0
    comparison = answer["arm_comparison"]
    gray = comparison["cumulative_incidence_test"]
    score = variance = 0.0
    for s in sorted(set(sites)):
        m = np.asarray([x == s for x in sites])
        s_k, v_k = ref_gray(
            times[m], causes[m], [g for g, k in zip(groups, m, strict=True) if k], "c"
        )
        score, variance = score + s_k, variance + v_k
    assert gray["statistic"] == pytest.approx(score**2 / variance, abs=1e-6)
    assert 0 <= gray["p_value"] <= 1 and gray["rho"] == 0.0
    fine_gray = comparison["fine_gray"]
    expected = fine_gray_hazard_ratio(times, causes, groups, "c", strata=sites)
    assert fine_gray == expected
    assert fine_gray["ci95"][0] < fine_gray["hazard_ratio"] < fine_gray["ci95"][1]
    assert fine_gray["subjects"] == len(rows)
