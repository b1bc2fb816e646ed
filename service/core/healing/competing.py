"""Competing risks between two groups: Gray's test of the cumulative incidence of a
cause (Gray 1988, Ann. Stat. 16:1141) and the Fine–Gray subdistribution hazard ratio
(Fine & Gray 1999, JASA 94:496) through its weighted-Cox form (Geskus 2011, Biometrics
67:39; R survival's ``finegray``).

Causes: 0 censored, ``cause`` (1: healing) the event of interest, any other non-zero
code a competing event (2: death or major amputation of the index leg)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from service.core.healing.coxfit import by_site, fit_cox
from service.core.healing.inputs import clean

GRAY_METHOD = "Gray's test (1988) of the cumulative incidence of healing, rho = {rho:g}{by}"
GRAY_STRATIFIED = ", stratified by site (scores and variances summed over sites)"
FINE_GRAY_METHOD = (
    "Fine-Gray subdistribution hazard ratio: weighted Cox (Efron ties) on counting-process "
    "rows, a subject with a competing event kept at risk with weight G(t-)/G(T-) (G: "
    "Kaplan-Meier of censoring{per}){by}; 95 % CI from the robust sandwich variance "
    "clustered by subject (G taken as known)"
)


def _group_tables(
    t: np.ndarray, c: np.ndarray, g: np.ndarray, times: np.ndarray, cause: int
) -> dict[str, np.ndarray]:
    """Per distinct time (rows) and group (columns 0: reference, 1: compared): at risk,
    failures of ``cause`` and of other causes, the all-cause Kaplan–Meier and the
    cumulative incidence of ``cause`` (left and right limits)."""
    at_risk = np.stack([(t[g == k][None, :] >= times[:, None]).sum(1) for k in (0, 1)], 1)
    hit = t[None, :] == times[:, None]
    d1 = np.stack([(hit & (c == cause) & (g == k)).sum(1) for k in (0, 1)], 1)
    d2 = np.stack([(hit & (c != cause) & (c != 0) & (g == k)).sum(1) for k in (0, 1)], 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(at_risk > 0, 1.0 - (d1 + d2) / np.maximum(at_risk, 1), 1.0)
        km = np.cumprod(step, 0)
        km_left = np.vstack([np.ones((1, 2)), km[:-1]])
        df1 = np.where(at_risk > 0, km_left * d1 / np.maximum(at_risk, 1), 0.0)
    cif = np.cumsum(df1, 0)
    cif_left = np.vstack([np.zeros((1, 2)), cif[:-1]])
    return {"Y": at_risk, "d1": d1, "d2": d2, "S": km, "S_": km_left, "F_": cif_left}


def _gray_stratum(
    t: np.ndarray, c: np.ndarray, g: np.ndarray, cause: int, rho: float
) -> tuple[float, float]:
    """Score of the compared group and its variance under H0 in one stratum (Gray 1988,
    section 2: the score ∫ L R_1 (dΓ_1 − dΓ_0) and the variance of its asymptotic
    representation, with the tie corrections of cmprsk's ``cuminc``)."""
    times = np.unique(t)
    tab = _group_tables(t, c, g, times, cause)
    y, d1, d2, s, s_, f_ = (tab[k] for k in ("Y", "d1", "d2", "S", "S_", "F_"))
    nd1 = d1.sum(1)
    live = y > 0
    h = np.where(live, y / np.where(live, s_, 1.0), 0.0)  # Y_k / S_k(t−)
    h_sum = h.sum(1)
    r = h * (1.0 - f_)  # R_k: the subdistribution risk set
    safe_h = np.where(h_sum > 0, h_sum, 1.0)
    pooled = np.cumsum(np.where(h_sum > 0, nd1 / safe_h, 0.0))  # F⁰(t)
    pooled_left = np.concatenate([[0.0], pooled[:-1]])
    weight = (1.0 - pooled_left) ** rho  # L(t)
    r_sum = r.sum(1)
    score = float(
        np.sum(
            np.where(
                r_sum > 0, weight * (d1[:, 1] - nd1 * r[:, 1] / np.where(r_sum > 0, r_sum, 1)), 0
            )
        )
    )
    # a_k(t) = L h_1 (δ_1k − h_k / Σh); c_k(t) = Σ_{u ≤ t} a_k dF⁰ / (1 − F⁰(u−)).
    a = weight[:, None] * h[:, [1]] * (np.array([0.0, 1.0])[None, :] - h / safe_h[:, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        jump = np.where((h_sum > 0) & (pooled_left < 1), nd1 / safe_h / (1.0 - pooled_left), 0.0)
    cum = np.cumsum(a * jump[:, None], 0)
    rest = cum[-1][None, :] - cum  # c_k(τ) − c_k(t)
    with np.errstate(divide="ignore", invalid="ignore"):
        survive = np.where(s > 0, (1.0 - pooled)[:, None] / np.where(s > 0, s, 1.0), 0.0)
        # failures of the cause (pooled, under H0) in group k
        t4 = np.where(s > 0, 1.0 - survive, 1.0)
        tie1 = np.where(nd1[:, None] > 1, 1.0 - (nd1[:, None] - 1) / (h_sum[:, None] * s_ - 1), 1.0)
        t3 = np.where(
            live & (nd1[:, None] > 0),
            tie1 * nd1[:, None] / (safe_h[:, None] * np.where(live, h, 1.0)),
            0.0,
        )
        psi1 = a + t4 * rest
        # failures of the other causes in group k
        tie2 = np.where(d2 > 1, 1.0 - (d2 - 1) / (y - 1.0), 1.0)
        t3b = np.where((s > 0) & (d2 > 0), tie2 * s_**2 * d2 / np.where(live, y, 1.0) ** 2, 0.0)
        psi2 = survive * rest
    variance = float(np.sum(t3 * psi1**2) + np.sum(t3b * psi2**2))
    return score, variance


def gray_test(
    durations_days: Sequence[float],
    causes: Sequence[int],
    groups: Sequence[str],
    reference: str,
    cause: int = 1,
    rho: float = 0.0,
    strata: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Gray's K-sample test (here two groups: ≠ ``reference`` vs ``reference``) of equal
    cumulative incidence of ``cause``, weight (1 − F⁰(t−))^rho (F⁰ pooled); with
    ``strata``, scores and variances are summed over strata. χ² on 1 df; ``score`` is
    the compared group's (positive: more of ``cause`` than expected under H0)."""
    from scipy.stats import chi2

    t = np.asarray(durations_days, dtype=float)
    c = np.asarray(causes, dtype=int)
    g = np.asarray([0 if x == reference else 1 for x in groups], dtype=int)
    st = np.asarray(strata if strata is not None else [""] * len(t), dtype=object)
    score = variance = 0.0
    for stratum in sorted(set(st.tolist())):
        m = st == stratum
        if m.any():
            s_k, v_k = _gray_stratum(t[m], c[m], g[m], cause, rho)
            score, variance = score + s_k, variance + v_k
    statistic = score**2 / variance if variance > 0 else None
    return {
        "method": GRAY_METHOD.format(rho=rho, by=GRAY_STRATIFIED if strata is not None else "")
        + " (chi-squared, 1 df)",
        "statistic": clean(statistic),
        "df": 1,
        "p_value": clean(float(chi2.sf(statistic, 1))) if statistic is not None else None,
        "score": clean(score) if variance > 0 else None,
        "variance": clean(variance) if variance > 0 else None,
        "rho": rho,
    }


def _censoring_km(t: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan–Meier of the censoring times (failures of any cause censor it): its jump
    times and G just after each (right-continuous)."""
    jumps = np.unique(t[c == 0])
    at_risk = (t[None, :] >= jumps[:, None]).sum(1)
    censored = ((t[None, :] == jumps[:, None]) & (c == 0)[None, :]).sum(1)
    return jumps, np.cumprod(1.0 - censored / at_risk)


def _g(jumps: np.ndarray, g: np.ndarray, x: float, *, left: bool) -> float:
    """G(x−) with ``left``, else G(x)."""
    return float(np.concatenate([[1.0], g])[np.searchsorted(jumps, x, "left" if left else "right")])


def fine_gray_rows(
    durations_days: Sequence[float],
    causes: Sequence[int],
    strata: Sequence[str],
    cause: int = 1,
) -> list[tuple[int, float, float, bool, float]]:
    """The weighted counting-process rows of the Fine–Gray model (Geskus 2011): per
    subject i ``(i, entry, exit, event, weight)``. Every subject has (−1, T_i] with
    weight 1 (the event: failure from ``cause``); a subject with a competing event stays
    at risk after T_i on rows (p, q] cut at the censoring times, weight G(p)/G(T_i−)
    = G(t−)/G(T_i−) for t in (p, q], up to its stratum's last failure from ``cause``
    (G: Kaplan–Meier of censoring within the stratum; zero weights left out)."""
    t = np.asarray(durations_days, dtype=float)
    c = np.asarray(causes, dtype=int)
    st = np.asarray(strata, dtype=object)
    rows: list[tuple[int, float, float, bool, float]] = [
        (i, -1.0, float(t[i]), bool(c[i] == cause), 1.0) for i in range(len(t))
    ]
    for stratum in sorted(set(st.tolist())):
        m = np.flatnonzero(st == stratum)
        of_interest = t[m][c[m] == cause]
        if not len(of_interest):
            continue
        last = float(of_interest.max())
        jumps, g = _censoring_km(t[m], c[m])
        for i in m:
            if c[i] in (0, cause) or t[i] >= last:
                continue
            points = [float(t[i]), *(float(u) for u in jumps if t[i] < u < last), last]
            start = _g(jumps, g, float(t[i]), left=True)
            for p, q in zip(points[:-1], points[1:], strict=True):
                weight = _g(jumps, g, p, left=False) / start
                if weight > 0:
                    rows.append((int(i), p, q, False, weight))
    return rows


def efron_score_residuals(
    entry: np.ndarray,
    exit_: np.ndarray,
    event: np.ndarray,
    weight: np.ndarray,
    x: np.ndarray,
    stratum: np.ndarray,
    beta: float,
) -> np.ndarray:
    """Weighted score residuals of a one-covariate Cox model on (entry, exit] rows with
    Efron ties, as lifelines' likelihood (the tied failures' mean weight on each of the
    d steps): w_r ∫ (x_r − x̄(t)) dM_r(t). They sum to the score, zero at β̂."""
    phi = np.exp(beta * x)
    wphi = weight * phi
    out = np.zeros(len(x))
    for s in np.unique(stratum):
        in_s = stratum == s
        for u in np.unique(exit_[in_s & event]):
            risk = in_s & (entry < u) & (u <= exit_)
            dead = risk & event & (exit_ == u)
            d = int(dead.sum())
            k = np.arange(d) / d
            s0 = wphi[risk].sum() - k * wphi[dead].sum()
            mean = (wphi[risk] * x[risk]).sum() - k * (wphi[dead] * x[dead]).sum()
            mean = mean / s0
            step = weight[dead].mean() / s0
            out[dead] += x[dead] - mean.mean()
            alive = risk & ~dead
            out[alive] -= phi[alive] * (x[alive] * step.sum() - (mean * step).sum())
            share = (1.0 - k) * step
            out[dead] -= phi[dead] * (x[dead] * share.sum() - (mean * share).sum())
    return out * weight


def fine_gray_hazard_ratio(
    durations_days: Sequence[float],
    causes: Sequence[int],
    groups: Sequence[str],
    reference: str,
    cause: int = 1,
    strata: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Fine–Gray subdistribution hazard ratio of ``cause``, group ≠ ``reference`` vs
    ``reference``, with its 95 % CI: lifelines' CoxPHFitter on the rows of
    :func:`fine_gray_rows` (entry, exit, weights; stratified when there are several
    strata). The CI uses the robust sandwich variance clustered by subject computed
    here from Efron score residuals on the (entry, exit] risk sets: lifelines'
    ``robust=True`` ignores entry times in its residuals (and ties), so it is not used."""
    import pandas as pd

    sites = list(strata) if strata is not None else [""] * len(durations_days)
    rows = fine_gray_rows(durations_days, causes, sites, cause)
    treated = [0 if x == reference else 1 for x in groups]
    frame = pd.DataFrame(rows, columns=["subject", "entry", "exit", "event", "weight"])
    frame["treated"] = [treated[i] for i in frame["subject"]]
    frame["site"] = [sites[i] for i in frame["subject"]]
    stratified = by_site(frame)
    method = FINE_GRAY_METHOD.format(
        per=", per site" if stratified else "", by=", stratified by site" if stratified else ""
    )
    answer: dict[str, Any] = {"method": method, "subjects": len(durations_days)}
    cph, warning = fit_cox(
        frame.drop(columns=["subject"]), "exit", "event", entry_col="entry", weights_col="weight"
    )
    if cph is None:
        return {**answer, "hazard_ratio": None, "ci95": [None, None], "warning": warning}
    beta = float(cph.params_["treated"])
    residuals = efron_score_residuals(
        frame["entry"].to_numpy(float),
        frame["exit"].to_numpy(float),
        frame["event"].to_numpy(bool),
        frame["weight"].to_numpy(float),
        frame["treated"].to_numpy(float),
        frame["site"].to_numpy(object),
        beta,
    )
    per_subject = np.bincount(frame["subject"].to_numpy(int), weights=residuals)
    naive = float(cph.variance_matrix_.to_numpy()[0, 0])
    se = float(np.sqrt(naive**2 * np.sum(per_subject**2)))
    z = 1.959963984540054
    return {
        **answer,
        "warning": warning,
        "hazard_ratio": clean(float(np.exp(beta))),
        "ci95": [clean(float(np.exp(beta - z * se))), clean(float(np.exp(beta + z * se)))],
    }
