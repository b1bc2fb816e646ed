"""Comparisons between arms (admins only: blinding): stratified log-rank tests and Cox
hazard ratios (stratified by site; adjusted for log baseline area), treatment vs the
study's control arm."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.core.healing.competing import fine_gray_hazard_ratio, gray_test
from service.core.healing.coxfit import by_site, fit_cox
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
    log_baseline_area: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Cox hazard ratio, group ≠ ``reference`` vs ``reference``, stratified by site
    (``coxfit.fit_cox``: lifelines, Efron ties), with its 95 % CI; with
    ``log_baseline_area`` (one per subject, ln cm²) the model is also adjusted for it (the
    sensitivity analysis), and its own HR per unit of ln area is reported."""
    import pandas as pd

    columns: dict[str, list[Any]] = {
        "T": list(durations_days),
        "E": [bool(e) for e in events],
        "treated": [0 if g == reference else 1 for g in groups],
        "site": list(strata),
    }
    if log_baseline_area is not None:
        columns["log_baseline_area"] = list(log_baseline_area)
    frame = pd.DataFrame(columns)
    method = (
        "Cox proportional hazards, Efron ties"
        + (", stratified by site" if by_site(frame) else "")
        + (", adjusted for log baseline area" if log_baseline_area is not None else "")
    )
    answer: dict[str, Any] = {"method": method, "subjects": len(frame)}
    cph, warning = fit_cox(frame, "T", "E")
    if cph is None:
        return {**answer, "hazard_ratio": None, "ci95": [None, None], "warning": warning}
    summary = cph.summary
    answer |= {"warning": warning, **_hr(summary.loc["treated"])}
    if log_baseline_area is not None:
        answer["log_baseline_area"] = _hr(summary.loc["log_baseline_area"])
    return answer


def _hr(row: Any) -> dict[str, Any]:
    return {
        "hazard_ratio": clean(float(row["exp(coef)"])),
        "ci95": [
            clean(float(row["exp(coef) lower 95%"])),
            clean(float(row["exp(coef) upper 95%"])),
        ],
    }


def _times_events(
    rows: Sequence[dict[str, Any]], time: str, event: str
) -> tuple[list[float], list[bool]]:
    return [float(r[time]) for r in rows], [bool(r[event]) for r in rows]


def arm_comparison(
    timed: Sequence[dict[str, Any]],
    sites: dict[str, str],
    arms: Sequence[str],
    *,
    everyone: Sequence[dict[str, Any]] = (),
    control_arm: str | None = None,
) -> dict[str, Any] | None:
    """Admins only: with exactly two arms, the other arm against the control
    (``control_arm``, the study's; else the first alphabetically): the stratified
    log-rank test and Cox hazard ratio of the time to healing, the Cox hazard ratio
    adjusted for log baseline area (subjects with a baseline area), Gray's test and the
    Fine–Gray subdistribution hazard ratio of healing with death and major amputation
    competing, and stratified log-rank tests of durable healing and of amputation-free
    survival (over ``everyone`` with a time origin)."""
    named = [a for a in arms if a]
    if len(named) != 2:
        return None
    reference = control_arm if control_arm in named else named[0]
    compared = next(a for a in named if a != reference)
    group = [r for r in timed if r.get("arm") in named]

    def args(
        rows: Sequence[dict[str, Any]], time: str, event: str
    ) -> tuple[list[float], list[bool], list[str], list[str], str]:
        durations, events = _times_events(rows, time, event)
        arm_of = [str(r["arm"]) for r in rows]
        return durations, events, arm_of, [sites.get(r["subject"], "") for r in rows], reference

    healing = args(group, "time_to_closure_days", "healing_event")
    with_area = [r for r in group if r.get("log_baseline_area") is not None]
    competing = (
        [float(r["cr_time_days"]) for r in group],
        [int(r["cr_cause"]) for r in group],
        healing[2],
        reference,
    )
    afs = [r for r in everyone if r.get("arm") in named and r["afs_time_days"] is not None]
    return {
        "reference_arm": reference,
        "compared_arm": compared,
        "reference_source": "control_arm" if control_arm in named else "first alphabetically",
        "logrank": stratified_logrank(*healing),
        "cox": cox_hazard_ratio(*healing),
        "cox_adjusted": cox_hazard_ratio(
            *args(with_area, "time_to_closure_days", "healing_event"),
            log_baseline_area=[float(r["log_baseline_area"]) for r in with_area],
        ),
        "cumulative_incidence_test": gray_test(*competing, strata=healing[3]),
        "fine_gray": fine_gray_hazard_ratio(*competing, strata=healing[3]),
        "durable_logrank": stratified_logrank(*args(group, "durable_time_days", "durable_event")),
        "afs_logrank": stratified_logrank(*args(afs, "afs_time_days", "afs_event")),
    }
