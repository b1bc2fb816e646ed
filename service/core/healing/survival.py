"""Time-to-event estimates: Kaplan–Meier with its median and band, the Aalen–Johansen
cumulative incidence with competing events."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from service.core.healing.inputs import clean

MEDIAN_TOLERANCE = 1e-9
"""S(t) within this of 0.5 counts as reaching it (KM products are floating point)."""
MEDIAN_DEFINITION = "smallest t with S(t) <= 0.5 (tolerance 1e-9)"
MEDIAN_CI_METHOD = "Brookmeyer-Crowley, log(-log) transformed Greenwood band, 95 %"


def _first_at_or_below(times: Sequence[float], values: Sequence[float], level: float) -> float:
    """Smallest t of a step function with value(t) <= level (within MEDIAN_TOLERANCE);
    inf when it never gets there."""
    for t, v in zip(times, values, strict=True):
        if v <= level + MEDIAN_TOLERANCE:
            return float(t)
    return math.inf


def km_answer(
    durations_days: Sequence[float], events: Sequence[bool], days: Sequence[int]
) -> dict[str, Any]:
    from lifelines import KaplanMeierFitter

    kmf = KaplanMeierFitter()
    kmf.fit(list(durations_days), event_observed=list(events))
    ci = kmf.confidence_interval_
    survival = kmf.survival_function_.iloc[:, 0]
    times = [float(t) for t in survival.index]
    median = _first_at_or_below(times, list(survival.to_numpy()), 0.5)
    ci_times = [float(t) for t in ci.index]
    median_low = _first_at_or_below(ci_times, list(ci.iloc[:, 0].to_numpy()), 0.5)
    median_high = _first_at_or_below(ci_times, list(ci.iloc[:, 1].to_numpy()), 0.5)
    last_at_risk = max(durations_days)
    return {
        "subjects": len(durations_days),
        "healed": int(sum(bool(e) for e in events)),
        "median_time_to_closure_days": clean(median),
        "median_time_to_closure_days_ci95": [clean(median_low), clean(median_high)],
        "median_definition": MEDIAN_DEFINITION,
        "median_ci_method": MEDIAN_CI_METHOD,
        "proportion_healed": {
            str(d): clean(1.0 - float(kmf.predict(float(d)))) if d <= last_at_risk else None
            for d in days
        },
        "at_risk": {str(d): sum(1 for t in durations_days if t >= d) for d in days},
        "last_time_at_risk_days": clean(last_at_risk),
        "km": {
            "timeline_days": times,
            "survival": [clean(float(s)) for s in survival.to_numpy()],
            "ci95_low": [clean(float(s)) for s in ci.iloc[:, 0].to_numpy()],
            "ci95_high": [clean(float(s)) for s in ci.iloc[:, 1].to_numpy()],
        },
    }


CIF_METHOD = (
    "Aalen-Johansen; competing events: death, major amputation of the index leg; 95 % CI "
    "by the delta method on log(-log) of Greenwood-type variance (Collett 3rd ed. p. 411)"
)
Z_95 = 1.959963984540054


def _exp_neg_exp(x: float) -> float:
    """exp(−exp(x)) without overflow."""
    return 0.0 if x > 700 else math.exp(-math.exp(x))


def aalen_johansen(
    durations_days: Sequence[float], causes: Sequence[int], cause: int = 1
) -> dict[str, list[float | None]]:
    """Cumulative incidence of ``cause`` (``causes``: 0 censored, 1, 2, …: event types)
    with its 95 % CI, at 0 and every distinct duration. Ties between event types are
    handled exactly (events of every type at t leave the risk set together)."""
    times = sorted({0.0, *(float(t) for t in durations_days)})
    n_at: list[int] = []
    d_all: list[int] = []
    d_k: list[int] = []
    for t in times:
        n_at.append(sum(1 for u in durations_days if u >= t))
        d_all.append(sum(1 for u, c in zip(durations_days, causes, strict=True) if u == t and c))
        d_k.append(
            sum(1 for u, c in zip(durations_days, causes, strict=True) if u == t and c == cause)
        )
    lag_s: list[float] = []
    cif: list[float] = []
    s_prev, f = 1.0, 0.0
    for i, _ in enumerate(times):
        lag_s.append(s_prev)
        if i > 0 and n_at[i]:  # lifelines' convention: the CIF is 0 at the first time
            f += s_prev * d_k[i] / n_at[i]
        cif.append(f)
        if n_at[i]:
            s_prev *= 1.0 - d_all[i] / n_at[i]
    low: list[float | None] = []
    high: list[float | None] = []
    for j, f_t in enumerate(cif):
        var = 0.0
        for i in range(j + 1):
            n, d, dk = n_at[i], d_all[i], d_k[i]
            if n == 0:
                continue
            if d and n > d:
                var += (f_t - cif[i]) ** 2 * d / (n * (n - d))
            var += lag_s[i] ** 2 * dk * (n - dk) / n**3
            var -= 2 * (f_t - cif[i]) * lag_s[i] * dk / n**2
        if 0.0 < f_t < 1.0 and var >= 0:
            se = math.sqrt(var) / (f_t * abs(math.log(f_t)))
            centre = math.log(-math.log(f_t))
            bounds = sorted(_exp_neg_exp(centre + k * Z_95 * se) for k in (1, -1))
            low.append(clean(bounds[0]))
            high.append(clean(bounds[1]))
        else:
            low.append(None)
            high.append(None)
    return {
        "timeline_days": list[float | None](times),
        "cumulative_incidence": [clean(x) for x in cif],
        "ci95_low": low,
        "ci95_high": high,
    }


def cif_answer(
    durations_days: Sequence[float], causes: Sequence[int], days: Sequence[int]
) -> dict[str, Any]:
    if not durations_days:
        curve: dict[str, list[float | None]] = {
            "timeline_days": [],
            "cumulative_incidence": [],
            "ci95_low": [],
            "ci95_high": [],
        }
    else:
        curve = aalen_johansen(durations_days, causes, 1)
    last = max(durations_days) if durations_days else None

    def at(day: int) -> float | None:
        if last is None or day > last:
            return None
        value: float | None = 0.0
        for t, f in zip(curve["timeline_days"], curve["cumulative_incidence"], strict=True):
            if t is not None and t <= day:
                value = f
        return value

    return {
        "method": CIF_METHOD,
        "healed": sum(1 for c in causes if c == 1),
        "competing": sum(1 for c in causes if c == 2),
        "censored": sum(1 for c in causes if c == 0),
        "proportion_healed": {str(d): at(d) for d in days},
        **curve,
    }


def survival_answer(durations_days: Sequence[float], events: Sequence[bool]) -> dict[str, Any]:
    """Kaplan–Meier of a time-to-event (amputation-free survival) with its median."""
    if not durations_days:
        return {
            "subjects": 0,
            "events": 0,
            "median_days": None,
            "km": {"timeline_days": [], "survival": [], "ci95_low": [], "ci95_high": []},
        }
    km = km_answer(durations_days, events, ())
    return {
        "subjects": len(durations_days),
        "events": int(sum(bool(e) for e in events)),
        "median_days": km["median_time_to_closure_days"],
        "median_days_ci95": km["median_time_to_closure_days_ci95"],
        "km": km["km"],
    }


def empty_km_answer(days: Sequence[int]) -> dict[str, Any]:
    return {
        "subjects": 0,
        "healed": 0,
        "median_time_to_closure_days": None,
        "median_time_to_closure_days_ci95": [None, None],
        "median_definition": MEDIAN_DEFINITION,
        "median_ci_method": MEDIAN_CI_METHOD,
        "proportion_healed": {str(d): None for d in days},
        "at_risk": {str(d): 0 for d in days},
        "last_time_at_risk_days": None,
        "km": {"timeline_days": [], "survival": [], "ci95_low": [], "ci95_high": []},
    }
