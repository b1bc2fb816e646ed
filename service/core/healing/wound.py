"""One wound's endpoints: its visits in order, which count, PAR, healing rates,
confirmed closure, recurrence and healed spells."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from service.core.healing.inputs import (
    AFTER_SUBJECT_EVENT,
    CLOSURE_CONFIRM_DAYS,
    DRAINAGE_NOT_RECORDED,
    PAR_RESPONSE_PCT,
    PAR_WEEK4_TARGET_DAYS,
    PAR_WEEK4_WINDOW_DAYS,
    WEEK_DAYS,
    Visit,
    as_date,
    clean,
    is_closed,
)


@dataclass
class _Row:
    visit: Visit
    captured_on: date
    day: int = 0
    effective: bool = True
    counted: bool = False
    reason: str | None = None
    par_pct: float | None = None
    flags: list[str] = field(default_factory=list)
    requires_drainage_recorded: bool = True

    @property
    def closed(self) -> bool:
        return is_closed(
            self.visit.epithelialized,
            self.visit.drainage,
            requires_drainage_recorded=self.requires_drainage_recorded,
        )

    @property
    def closure_note(self) -> str | None:
        """Why a visit observed epithelialised is not closed, when it is for want of a
        drainage record."""
        if self.visit.epithelialized is True and self.visit.drainage is None and not self.closed:
            return DRAINAGE_NOT_RECORDED
        return None

    @property
    def open(self) -> bool:
        return self.visit.epithelialized is False or self.visit.drainage is True


def _sort_key(indexed: tuple[int, Visit]) -> tuple[date, datetime, int]:
    order, visit = indexed
    uploaded = visit.uploaded_at or datetime.min
    if uploaded.tzinfo is not None:
        uploaded = uploaded.astimezone(UTC).replace(tzinfo=None)
    return (as_date(visit.captured_at), uploaded, order)


def _rows(visits: Sequence[Visit], requires_drainage_recorded: bool = True) -> list[_Row]:
    """Visits in date order; the last uploaded of a date is the effective one, and none
    dated after the subject's follow-up ended (``Visit.in_follow_up``) is."""
    ordered = [v for _, v in sorted(enumerate(visits), key=_sort_key)]
    rows = [
        _Row(
            visit=v,
            captured_on=as_date(v.captured_at),
            requires_drainage_recorded=requires_drainage_recorded,
        )
        for v in ordered
    ]
    for i, row in enumerate(rows):
        if i + 1 < len(rows) and rows[i + 1].captured_on == row.captured_on:
            row.effective = False
            row.reason = "superseded_same_day"
        if not row.visit.in_follow_up:
            row.effective = False
            row.reason = row.visit.uncounted_reason or AFTER_SUBJECT_EVENT
    return rows


def percent_area_reduction_pct(baseline_area_cm2: float, area_cm2: float) -> float | None:
    """PAR = (A0 − At) / A0 × 100, in percent; None when the baseline area is zero."""
    if baseline_area_cm2 <= 0:
        return None
    return (baseline_area_cm2 - area_cm2) / baseline_area_cm2 * 100.0


def par_at_target(
    days_par_pct: Sequence[tuple[int, float]],
    target_days: int = PAR_WEEK4_TARGET_DAYS,
    window_days: int = PAR_WEEK4_WINDOW_DAYS,
) -> tuple[int, float] | None:
    """(day, PAR %) of the visit nearest ``target_days`` within ± ``window_days``.

    On a tie the earlier visit wins; None when no visit falls in the window.
    """
    inside = [(d, p) for d, p in days_par_pct if abs(d - target_days) <= window_days]
    if not inside:
        return None
    return min(inside, key=lambda dp: (abs(dp[0] - target_days), dp[0]))


def absolute_healing_rate_cm2_per_week(
    baseline_area_cm2: float, area_cm2: float, elapsed_days: int
) -> float | None:
    """(A0 − At) / Δt in cm²/week; None when no time has elapsed."""
    if elapsed_days <= 0:
        return None
    return (baseline_area_cm2 - area_cm2) / elapsed_days * WEEK_DAYS


def gilman_cm_per_week(
    baseline_area_cm2: float,
    area_cm2: float,
    baseline_perimeter_cm: float | None,
    perimeter_cm: float | None,
    elapsed_days: int,
) -> float | None:
    """Gilman's edge advance (A1 − A2) / ((P1 + P2) / 2) / Δt in cm/week."""
    if elapsed_days <= 0 or baseline_perimeter_cm is None or perimeter_cm is None:
        return None
    mean_perimeter_cm = (baseline_perimeter_cm + perimeter_cm) / 2.0
    if mean_perimeter_cm <= 0:
        return None
    return (baseline_area_cm2 - area_cm2) / mean_perimeter_cm / elapsed_days * WEEK_DAYS


def log_linear_rate_per_day(days_area_cm2: Sequence[tuple[int, float]]) -> float | None:
    """k (1/day) of the least-squares fit ln A = c − k·day over areas > 0.

    None with fewer than two positive areas on distinct days.
    """
    points = [(float(d), math.log(a)) for d, a in days_area_cm2 if a > 0]
    if len({d for d, _ in points}) < 2:
        return None
    n = len(points)
    mean_d = sum(d for d, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((d - mean_d) ** 2 for d, _ in points)
    sxy = sum((d - mean_d) * (y - mean_y) for d, y in points)
    return -sxy / sxx


def first_day_par_at_least(
    days_par_pct: Sequence[tuple[int, float]], par_pct: float = PAR_RESPONSE_PCT
) -> float | None:
    """First day PAR reaches ``par_pct``, linearly interpolated between visits (days)."""
    previous: tuple[int, float] | None = None
    for day, par in days_par_pct:
        if par >= par_pct:
            if previous is None:
                return float(day)
            d0, p0 = previous
            return d0 + (par_pct - p0) / (par - p0) * (day - d0)
        previous = (day, par)
    return None


def _closure_runs(rows: Sequence[_Row], confirm_days: int) -> list[tuple[int, int]]:
    """(first, confirming) row indices of every confirmed closure run.

    A run is a maximal sequence of consecutive closed visits; it confirms closure when
    a visit of the run lies ≥ ``confirm_days`` after its first visit.
    """
    runs: list[tuple[int, int]] = []
    i = 0
    while i < len(rows):
        if not rows[i].closed:
            i += 1
            continue
        j = i
        confirming: int | None = None
        while j < len(rows) and rows[j].closed:
            if confirming is None and rows[j].day - rows[i].day >= confirm_days:
                confirming = j
            j += 1
        if confirming is not None:
            runs.append((i, confirming))
        i = j
    return runs


def wound_endpoints(
    visits: Sequence[Visit],
    *,
    week4_target_days: int = PAR_WEEK4_TARGET_DAYS,
    week4_window_days: int = PAR_WEEK4_WINDOW_DAYS,
    closure_confirm_days: int = CLOSURE_CONFIRM_DAYS,
    closure_requires_drainage_recorded: bool = True,
    origin: date | None = None,
) -> dict[str, Any]:
    """The wound-level endpoints of DESIGN.md for one wound's visits (any order).

    Days count from ``origin`` (the subject's time origin, ``time_origin``) when given,
    else from this wound's baseline photo."""
    all_rows = _rows(visits, closure_requires_drainage_recorded)
    baseline_row, day0 = _date_rows(all_rows, origin)
    effective = [r for r in all_rows if r.effective]
    baseline_area_cm2, flags = _baseline_area(baseline_row)
    counted = _par_rows(effective, baseline_area_cm2)
    days_par_pct = [(r.day, r.par_pct) for r in counted if r.par_pct is not None]
    baseline_on = baseline_row.captured_on if baseline_row else None
    week4 = _par_week4(counted, baseline_on, week4_target_days, week4_window_days)
    flags += _area_zero_flags(counted)
    last_day = effective[-1].day if effective else None
    return {
        "baseline_assessment": baseline_row.visit.assessment_id if baseline_row else None,
        "baseline_date": baseline_on.isoformat() if baseline_on else None,
        "time_origin": day0.isoformat() if day0 else None,
        "baseline_area_cm2": clean(baseline_area_cm2),
        "visits": [_visit_answer(r) for r in all_rows],
        "par_week4_pct": clean(week4[1].par_pct) if week4 else None,
        "par_week4_day": week4[1].day if week4 else None,
        "par_week4_days_from_baseline": week4[0] if week4 else None,
        **_rate_answer(baseline_row, baseline_area_cm2, counted),
        "par50_day": clean(first_day_par_at_least(days_par_pct, PAR_RESPONSE_PCT)),
        **_closure_answer(effective, closure_confirm_days, last_day),
        "last_visit_day": last_day,
        "flags": flags,
    }


def _par_week4(
    counted: Sequence[_Row], baseline_on: date | None, target_days: int, window_days: int
) -> tuple[int, _Row] | None:
    """PAR at week 4 (Sheehan et al. 2003): the counted visit nearest ``target_days``
    after the wound's own baseline photo, within ± ``window_days`` (the study's
    ``par_week4_window_days``); (days from the baseline, that row), or None."""
    if baseline_on is None:
        return None
    by_day = {(r.captured_on - baseline_on).days: r for r in counted if r.par_pct is not None}
    pick = par_at_target(
        [(d, r.par_pct) for d, r in by_day.items() if r.par_pct is not None],
        target_days,
        window_days,
    )
    return (pick[0], by_day[pick[0]]) if pick else None


def _date_rows(all_rows: Sequence[_Row], origin: date | None) -> tuple[_Row | None, date | None]:
    """The baseline row (the visit marked baseline, else the first) and day 0; sets each
    row's day, and whether it is counted (or why not). Visits before the baseline take
    no part: the wound's series starts at its baseline photo."""
    effective = [r for r in all_rows if r.effective]
    baseline_row: _Row | None = None
    if effective:
        marked = [r for r in effective if r.visit.baseline]
        baseline_row = marked[0] if marked else effective[0]
    baseline_on = baseline_row.captured_on if baseline_row else None
    day0 = as_date(origin) if origin is not None else baseline_on
    for row in all_rows:
        row.day = (row.captured_on - day0).days if day0 else 0
        if not row.effective:
            continue
        if baseline_on is not None and row.captured_on < baseline_on:
            row.effective = False
            row.reason = "before_baseline"
        elif not row.visit.counted:
            row.reason = row.visit.uncounted_reason or "not_counted"
        elif row.visit.area_cm2 is None:
            row.reason = "no_area"
        else:
            row.counted = True
    return baseline_row, day0


def _baseline_area(baseline_row: _Row | None) -> tuple[float | None, list[dict[str, Any]]]:
    """The baseline's counted area (None without one), and the flags that say why the
    cm² endpoints are missing or PAR is undefined."""
    if baseline_row is None:
        return None, []
    if not baseline_row.counted:
        return None, [
            {
                "code": "baseline_not_counted",
                "message": "the baseline photo has no counted area (uncalibrated or "
                "severe-flagged): correct or accept it to get cm² endpoints",
            }
        ]
    baseline_area_cm2 = baseline_row.visit.area_cm2
    if baseline_area_cm2 is not None and baseline_area_cm2 <= 0:
        return baseline_area_cm2, [
            {
                "code": "baseline_area_zero",
                "message": "the baseline area is zero, so percent area reduction is undefined",
            }
        ]
    return baseline_area_cm2, []


def _par_rows(effective: Sequence[_Row], baseline_area_cm2: float | None) -> list[_Row]:
    """The counted rows, each with its PAR; none without a baseline area (the cm²
    endpoints need one)."""
    if baseline_area_cm2 is None:
        return []
    counted = [r for r in effective if r.counted]
    for row in counted:
        assert row.visit.area_cm2 is not None
        row.par_pct = percent_area_reduction_pct(baseline_area_cm2, row.visit.area_cm2)
    return counted


def _rate_answer(
    baseline_row: _Row | None, baseline_area_cm2: float | None, counted: Sequence[_Row]
) -> dict[str, float | None]:
    """The healing rates: baseline to the last counted visit (absolute, Gilman), and the
    log-linear fit over every counted visit with its half-life."""
    last = counted[-1] if len(counted) > 1 else None
    rate_cm2_per_week = gilman = None
    if baseline_area_cm2 is not None and baseline_row is not None and last is not None:
        assert last.visit.area_cm2 is not None
        rate_cm2_per_week = absolute_healing_rate_cm2_per_week(
            baseline_area_cm2, last.visit.area_cm2, last.day - baseline_row.day
        )
        gilman = gilman_cm_per_week(
            baseline_area_cm2,
            last.visit.area_cm2,
            baseline_row.visit.perimeter_cm,
            last.visit.perimeter_cm,
            last.day - baseline_row.day,
        )
    k_per_day = log_linear_rate_per_day(
        [(r.day, r.visit.area_cm2) for r in counted if r.visit.area_cm2 is not None]
    )
    half_life_days = math.log(2) / k_per_day if k_per_day is not None and k_per_day > 0 else None
    return {
        "healing_rate_cm2_per_week": clean(rate_cm2_per_week),
        "gilman_cm_per_week": clean(gilman),
        "log_linear_rate_per_day": clean(k_per_day),
        "half_life_days": clean(half_life_days),
    }


def _closure_answer(
    effective: Sequence[_Row], confirm_days: int, last_day: int | None
) -> dict[str, Any]:
    """Confirmed closure (the first confirmed run), recurrence after it, healing at the
    last visit (the last run never re-opened) and every healed spell."""
    runs = _closure_runs(effective, confirm_days)
    closure_day = effective[runs[0][0]].day if runs else None
    recurrence_day, healed_day = _recurrence_and_healed_day(effective, runs)
    return {
        "closure_confirmed": bool(runs),
        "closure_day": closure_day,
        "closure_supported_by_area": _closure_supported_by_area(effective, runs),
        "time_to_closure_days": closure_day if runs else last_day,
        "censored": not runs,
        "recurrence": recurrence_day is not None,
        "recurrence_day": recurrence_day,
        "healed_at_last_visit": healed_day is not None,
        "healed_day": healed_day,
        "healed_spells": _healed_spells(effective, runs),
    }


def _recurrence_and_healed_day(
    effective: Sequence[_Row], runs: Sequence[tuple[int, int]]
) -> tuple[int | None, int | None]:
    """The first re-opening after the first confirmed closure, and the first day of the
    last confirmed run when nothing re-opened after it (healed at the last visit)."""
    if not runs:
        return None, None
    confirming = runs[0][1]
    reopened = [r for r in effective[confirming + 1 :] if r.open]
    recurrence_day = reopened[0].day if reopened else None
    last_first, last_confirming = runs[-1]
    if any(r.open for r in effective[last_confirming + 1 :]):
        return recurrence_day, None
    return recurrence_day, effective[last_first].day


def _healed_spells(
    effective: Sequence[_Row], runs: Sequence[tuple[int, int]]
) -> list[list[int | None]]:
    """``[closure day, re-opening day or None]`` of every confirmed run: the subject's
    all-healed event needs every wound inside a spell on the same day."""
    healed_spells: list[list[int | None]] = []
    for first, confirming in runs:
        reopened_after = [r.day for r in effective[confirming + 1 :] if r.open]
        healed_spells.append([effective[first].day, reopened_after[0] if reopened_after else None])
    return healed_spells


def _closure_supported_by_area(
    effective: Sequence[_Row], runs: Sequence[tuple[int, int]]
) -> bool | None:
    """Whether every counted area of the first confirmed run is zero (None: no run, or
    no counted area in it): supporting evidence beside the clinician's observation."""
    if not runs:
        return None
    first, confirming = runs[0]
    areas = [r.visit.area_cm2 for r in effective[first : confirming + 1] if r.counted]
    return all(a == 0 for a in areas) if areas else None


def _area_zero_flags(counted: Sequence[_Row]) -> list[dict[str, Any]]:
    """A zero area never closes a wound: say so when no clinician observed closure."""
    area_zero_open = [r.day for r in counted if r.visit.area_cm2 == 0 and not r.closed]
    if not area_zero_open:
        return []
    return [
        {
            "code": "area_zero_not_observed_closed",
            "message": "the segmented area is zero on days "
            + ", ".join(str(d) for d in area_zero_open)
            + " but no clinician observed closure: supporting evidence only",
        }
    ]


def _visit_answer(r: _Row) -> dict[str, Any]:
    """One visit of the wound answer's ``visits``, counted or not (with the reason)."""
    return {
        "assessment": r.visit.assessment_id,
        "captured_at": r.captured_on.isoformat(),
        "day": r.day,
        "area_cm2": clean(r.visit.area_cm2),
        "area_cm2_low": clean(r.visit.area_cm2_low),
        "area_cm2_high": clean(r.visit.area_cm2_high),
        "perimeter_cm": clean(r.visit.perimeter_cm),
        "par_pct": clean(r.par_pct),
        "closed": r.effective and r.closed,
        "closure_note": r.closure_note if r.effective else None,
        "counted": r.counted,
        "uncounted_reason": None if r.counted else r.reason,
        "model": r.visit.model,
        "manual": r.visit.manual,
    }
