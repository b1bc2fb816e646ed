"""Comparisons between arms (admins only: blinding): log-rank and Cox hazard ratio."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.core.healing.inputs import clean


def stratified_logrank(
    durations_days: Sequence[float],
    events: Sequence[bool],
    groups: Sequence[str],
    strata: Sequence[str],
    reference: str,
) -> dict[str, Any]:
    """Log-rank test of the group ≠ ``reference`` against ``reference`` (two groups),
    stratified: observed − expected and the hypergeometric variance summed over strata,
    χ² on 1 df."""
    from scipy.stats import chi2

    o_minus_e = 0.0
    variance = 0.0
    for stratum in sorted(set(strata)):
        idx = [i for i, s in enumerate(strata) if s == stratum]
        for t in sorted({durations_days[i] for i in idx if events[i]}):
            at_risk = [i for i in idx if durations_days[i] >= t]
            n = len(at_risk)
            n1 = sum(1 for i in at_risk if groups[i] != reference)
            d = sum(1 for i in at_risk if durations_days[i] == t and events[i])
            d1 = sum(
                1
                for i in at_risk
                if durations_days[i] == t and events[i] and groups[i] != reference
            )
            o_minus_e += d1 - d * n1 / n
            if n > 1:
                variance += d * (n1 / n) * (1 - n1 / n) * (n - d) / (n - 1)
    statistic = o_minus_e**2 / variance if variance > 0 else None
    return {
        "method": "log-rank stratified by site (chi-squared, 1 df)",
        "statistic": clean(statistic),
        "p_value": clean(float(chi2.sf(statistic, 1))) if statistic is not None else None,
    }


def cox_hazard_ratio(
    durations_days: Sequence[float],
    events: Sequence[bool],
    groups: Sequence[str],
    strata: Sequence[str],
    reference: str,
) -> dict[str, Any]:
    """Cox hazard ratio of healing, group ≠ ``reference`` vs ``reference``, stratified by
    site (lifelines CoxPHFitter, Efron ties), with its 95 % CI."""
    import pandas as pd
    from lifelines import CoxPHFitter

    frame = pd.DataFrame(
        {
            "T": list(durations_days),
            "E": [bool(e) for e in events],
            "treated": [0 if g == reference else 1 for g in groups],
            "site": list(strata),
        }
    )
    import warnings

    cph = CoxPHFitter()
    method = "Cox proportional hazards, Efron ties, stratified by site"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cph.fit(frame, "T", "E", strata=["site"] if frame["site"].nunique() > 1 else None)
        except Exception as exc:  # no events in a group, separation: no estimate, say why
            return {
                "method": method,
                "hazard_ratio": None,
                "ci95": [None, None],
                "warning": f"no estimate: {exc}".splitlines()[0],
            }
    summary = cph.summary.loc["treated"]
    return {
        "warning": str(caught[0].message).strip().splitlines()[0] if caught else None,
        "method": method,
        "hazard_ratio": clean(float(summary["exp(coef)"])),
        "ci95": [
            clean(float(summary["exp(coef) lower 95%"])),
            clean(float(summary["exp(coef) upper 95%"])),
        ],
    }


def arm_comparison(
    timed: Sequence[dict[str, Any]], sites: dict[str, str], arms: Sequence[str]
) -> dict[str, Any] | None:
    """Admins only: with exactly two arms, the stratified log-rank test and the Cox
    hazard ratio (second arm vs first, alphabetically) of the time to healing."""
    named = [a for a in arms if a]
    if len(named) != 2:
        return None
    group = [r for r in timed if r.get("arm") in named]
    args = (
        [float(r["time_to_closure_days"]) for r in group],
        [bool(r["healing_event"]) for r in group],
        [str(r["arm"]) for r in group],
        [sites.get(r["subject"], "") for r in group],
        named[0],
    )
    return {
        "reference_arm": named[0],
        "compared_arm": named[1],
        "logrank": stratified_logrank(*args),
        "cox": cox_hazard_ratio(*args),
    }
