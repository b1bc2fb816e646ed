"""Wound-healing endpoints: pure functions from visit series to the wire answers.

Implements the "Endpoints" table of DESIGN.md. Inputs are plain dataclasses (no
database, no HTTP); outputs are JSON-ready dicts carrying the wire-contract keys.

Conventions:

- Days are calendar days between ``captured_at`` dates; the baseline visit is day 0.
- A visit is *counted* (enters the cm² endpoints) only when the caller says so
  (calibrated, not severe-flagged, or accepted/corrected by a clinician) and it has
  an area. Several assessments on one date: the last uploaded one is the visit; the
  others are listed with ``counted: false`` and take no part in closure either.
- A visit is *closed* when the clinician observed full re-epithelialisation and
  drainage recorded as absent (``is_closed``; a study may turn
  ``closure_requires_drainage_recorded`` off, and then unrecorded drainage does not
  keep a wound open). It is *open* only on an explicit observation
  (``epithelialized is False`` or ``drainage is True``); a visit without an
  observation is neither, and breaks a closure confirmation.
- A segmented area of zero never closes a wound; it is reported as a flag.
- The study's time-to-event is the **first** confirmed healing of all the wounds
  considered (a later recurrence does not erase it); durable healing (healed at the
  last visit) and recurrence are reported beside it.
- Median: the smallest t with S(t) <= 0.5 (within ``MEDIAN_TOLERANCE``), its 95 %
  CI by Brookmeyer–Crowley inversion of the log(−log) Greenwood band.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypedDict, Unpack

WEEK_DAYS = 7.0
PAR_WEEK4_TARGET_DAYS = 28
PAR_WEEK4_WINDOW_DAYS = 7
CLOSURE_CONFIRM_DAYS = 14
PAR_RESPONSE_PCT = 50.0
"""PAR at week 4 of at least this predicts healing (the 50 % response: par50_day, the
study's at_least_50_pct, the dashboard's "stalled" badge below it)."""
PROPORTION_HEALED_DAYS: tuple[int, ...] = (84, 182, 365)
MEDIAN_TOLERANCE = 1e-9
"""S(t) within this of 0.5 counts as reaching it (KM products are floating point)."""
MEDIAN_DEFINITION = "smallest t with S(t) <= 0.5 (tolerance 1e-9)"
MEDIAN_CI_METHOD = "Brookmeyer-Crowley, log(-log) transformed Greenwood band, 95 %"
DRAINAGE_NOT_RECORDED = "not closed (drainage not recorded)"
NO_INDEX_LEG_WOUND = "no wound of the index leg: every wound is marked index_leg false"


def is_closed(
    epithelialized: bool | None,
    drainage: bool | None,
    *,
    requires_drainage_recorded: bool = True,
) -> bool:
    """The one closure rule (DESIGN: complete closure): full re-epithelialisation
    observed and no drainage; with ``requires_drainage_recorded`` (the study setting,
    default on, the FDA reading) drainage must be recorded as absent."""
    if epithelialized is not True:
        return False
    return drainage is False if requires_drainage_recorded else drainage is not True


@dataclass(frozen=True)
class Visit:
    """One assessment of a wound, with the measurement that counts for its photo."""

    assessment_id: str
    captured_at: date
    area_cm2: float | None = None
    perimeter_cm: float | None = None
    counted: bool = True
    epithelialized: bool | None = None
    drainage: bool | None = None
    uploaded_at: datetime | None = None
    baseline: bool = False
    area_cm2_low: float | None = None
    area_cm2_high: float | None = None
    uncounted_reason: str | None = None
    model: str | None = None
    manual: bool = False


EVENT_KINDS = (
    "death",
    "major_amputation",
    "minor_amputation",
    "revascularisation",
    "withdrawal",
    "lost_to_follow_up",
)
LEGS = ("index", "contralateral")
LEAVES_STUDY = ("withdrawal", "lost_to_follow_up")
"""Events after which the subject is no longer followed (besides the competing ones)."""


@dataclass(frozen=True)
class SubjectEvent:
    """A dated clinical event of a subject (DESIGN: events); voided ones are left out by
    the caller. ``leg``: ``index`` or ``contralateral`` (amputations)."""

    kind: str
    on: date
    leg: str | None = None

    @property
    def competing(self) -> bool:
        """Death or major amputation of the index leg: ends the chance of healing it."""
        return self.kind == "death" or (self.kind == "major_amputation" and self.leg == "index")

    @property
    def ends_follow_up(self) -> bool:
        """Competing, or the subject left the study (withdrawal, lost to follow-up): no
        visit is expected after it."""
        return self.competing or self.kind in LEAVES_STUDY


@dataclass(frozen=True)
class Wound:
    wound_id: str
    visits: Sequence[Visit]
    label: str | None = None
    index_leg: bool | None = None


@dataclass(frozen=True)
class Subject:
    subject_id: str
    wounds: Sequence[Wound]
    code: str | None = None
    arm: str | None = None
    randomized_on: date | None = None
    site: str | None = None
    events: Sequence[SubjectEvent] = ()


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


def _as_date(value: date) -> date:
    return value.date() if isinstance(value, datetime) else value


def _sort_key(indexed: tuple[int, Visit]) -> tuple[date, datetime, int]:
    order, visit = indexed
    uploaded = visit.uploaded_at or datetime.min
    if uploaded.tzinfo is not None:
        uploaded = uploaded.astimezone(UTC).replace(tzinfo=None)
    return (_as_date(visit.captured_at), uploaded, order)


def _rows(visits: Sequence[Visit], requires_drainage_recorded: bool = True) -> list[_Row]:
    """Visits in date order; the last uploaded of a date is the effective one."""
    ordered = [v for _, v in sorted(enumerate(visits), key=_sort_key)]
    rows = [
        _Row(
            visit=v,
            captured_on=_as_date(v.captured_at),
            requires_drainage_recorded=requires_drainage_recorded,
        )
        for v in ordered
    ]
    for i, row in enumerate(rows):
        if i + 1 < len(rows) and rows[i + 1].captured_on == row.captured_on:
            row.effective = False
            row.reason = "superseded_same_day"
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


def _clean(value: float | None, digits: int = 9) -> float | None:
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return round(float(value), digits)


class EndpointOptions(TypedDict, total=False):
    """The study's endpoint settings, as ``wound_endpoints`` takes them (its keyword
    arguments but ``origin``); ``subject_endpoints`` and ``study_endpoints`` pass them on."""

    week4_target_days: int
    week4_window_days: int
    closure_confirm_days: int
    closure_requires_drainage_recorded: bool


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
    week4 = par_at_target(days_par_pct, week4_target_days, week4_window_days)
    flags += _area_zero_flags(counted)
    last_day = effective[-1].day if effective else None
    baseline_on = baseline_row.captured_on if baseline_row else None
    return {
        "baseline_assessment": baseline_row.visit.assessment_id if baseline_row else None,
        "baseline_date": baseline_on.isoformat() if baseline_on else None,
        "time_origin": day0.isoformat() if day0 else None,
        "baseline_area_cm2": _clean(baseline_area_cm2),
        "visits": [_visit_answer(r) for r in all_rows],
        "par_week4_pct": _clean(week4[1]) if week4 else None,
        "par_week4_day": week4[0] if week4 else None,
        **_rate_answer(baseline_row, baseline_area_cm2, counted),
        "par50_day": _clean(first_day_par_at_least(days_par_pct, PAR_RESPONSE_PCT)),
        **_closure_answer(effective, closure_confirm_days, last_day),
        "last_visit_day": last_day,
        "flags": flags,
    }


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
    day0 = _as_date(origin) if origin is not None else baseline_on
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
        "healing_rate_cm2_per_week": _clean(rate_cm2_per_week),
        "gilman_cm_per_week": _clean(gilman),
        "log_linear_rate_per_day": _clean(k_per_day),
        "half_life_days": _clean(half_life_days),
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
        "area_cm2": _clean(r.visit.area_cm2),
        "area_cm2_low": _clean(r.visit.area_cm2_low),
        "area_cm2_high": _clean(r.visit.area_cm2_high),
        "perimeter_cm": _clean(r.visit.perimeter_cm),
        "par_pct": _clean(r.par_pct),
        "closed": r.effective and r.closed,
        "closure_note": r.closure_note if r.effective else None,
        "counted": r.counted,
        "uncounted_reason": None if r.counted else r.reason,
        "model": r.visit.model,
        "manual": r.visit.manual,
    }


BASE_DATE = date(2000, 1, 1)
"""Any date: spells are compared as dates only relative to each other."""


def first_all_healed(spells_by_wound: Sequence[Sequence[tuple[date, date | None]]]) -> date | None:
    """The first date on which every wound is inside a confirmed healed spell
    ``[closure date, re-opening date)`` (``None``: never re-opened), or None.

    The study's event: the first confirmed healing of all the wounds; a later
    recurrence does not erase it."""
    if not spells_by_wound or any(not spells for spells in spells_by_wound):
        return None
    candidates = sorted({start for spells in spells_by_wound for start, _ in spells})
    for on in candidates:
        if all(
            any(start <= on and (end is None or on < end) for start, end in spells)
            for spells in spells_by_wound
        ):
            return on
    return None


def subject_endpoints(
    wounds: Sequence[Wound],
    *,
    randomized_on: date | None = None,
    **options: Unpack[EndpointOptions],
) -> dict[str, Any]:
    """All ulcers healed, over every wound not marked ``index_leg: false``.

    Days count from the subject's time origin: ``randomized_on`` when given, else the
    subject's first baseline photo (``time_origin``). ``healing_event`` and
    ``first_healed_day``: the first day every such wound was confirmed closed (the
    study's event). ``all_wounds_healed`` / ``all_healed_day``: healed at the last
    visit (durable), the day being the latest of their closure days. A subject whose
    every wound is marked ``index_leg: false`` answers null with a reason."""
    first_pass = [wound_endpoints(w.visits, **options)["baseline_date"] for w in wounds]
    start = time_origin(randomized_on, first_pass)
    answers = []
    for wound in wounds:
        answer = wound_endpoints(wound.visits, origin=start, **options)
        answers.append(
            {"wound": wound.wound_id, "label": wound.label, "index_leg": wound.index_leg, **answer}
        )
    index_leg = [a for a in answers if a["index_leg"] is not False]
    considered = [a for a in index_leg if a["baseline_date"] is not None]

    reason = NO_INDEX_LEG_WOUND if answers and not index_leg else None
    healed_days = [a["healed_day"] for a in considered if a["healed_day"] is not None]
    last_days = [a["last_visit_day"] for a in considered if a["last_visit_day"] is not None]
    origin_on = start or BASE_DATE
    first_healed = _first_all_healed_on(considered, origin_on) if considered else None
    all_healed: bool | None
    if reason is not None:
        all_healed = None
    else:
        all_healed = bool(considered) and all(a["healed_at_last_visit"] for a in considered)
    return {
        "wounds": answers,
        "wounds_considered": [a["wound"] for a in considered],
        "time_origin": start.isoformat() if start else None,
        "time_origin_source": "randomized_on"
        if randomized_on is not None
        else ("first_photo" if start is not None else None),
        "baseline_date": start.isoformat() if start else None,
        "healing_event": None if reason else first_healed is not None,
        "first_healed_day": (first_healed - origin_on).days if first_healed else None,
        "recurrence": None if reason else any(a["recurrence"] for a in considered),
        "all_wounds_healed": all_healed,
        "all_healed_day": max(healed_days) if all_healed and healed_days else None,
        "last_visit_day": max(last_days) if last_days else None,
        "reason": reason,
    }


def _first_all_healed_on(considered: Sequence[dict[str, Any]], origin_on: date) -> date | None:
    """``first_all_healed`` of the wound answers' ``healed_spells`` (days from
    ``origin_on``), as dates."""
    spells = [
        [
            (
                origin_on + timedelta(days=first),
                None if end is None else origin_on + timedelta(days=end),
            )
            for first, end in a["healed_spells"]
        ]
        for a in considered
    ]
    return first_all_healed(spells)


def time_origin(randomized_on: date | None, baseline_dates: Sequence[str | None]) -> date | None:
    """The one "day 0" rule (DESIGN): ``randomized_on`` when given, else the subject's
    first baseline photo (ISO dates, any wound); None when neither exists."""
    if randomized_on is not None:
        return _as_date(randomized_on)
    known = [date.fromisoformat(d) for d in baseline_dates if d is not None]
    return min(known) if known else None


def _first_at_or_below(times: Sequence[float], values: Sequence[float], level: float) -> float:
    """Smallest t of a step function with value(t) <= level (within MEDIAN_TOLERANCE);
    inf when it never gets there."""
    for t, v in zip(times, values, strict=True):
        if v <= level + MEDIAN_TOLERANCE:
            return float(t)
    return math.inf


def _km_answer(
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
        "median_time_to_closure_days": _clean(median),
        "median_time_to_closure_days_ci95": [_clean(median_low), _clean(median_high)],
        "median_definition": MEDIAN_DEFINITION,
        "median_ci_method": MEDIAN_CI_METHOD,
        "proportion_healed": {
            str(d): _clean(1.0 - float(kmf.predict(float(d)))) if d <= last_at_risk else None
            for d in days
        },
        "at_risk": {str(d): sum(1 for t in durations_days if t >= d) for d in days},
        "last_time_at_risk_days": _clean(last_at_risk),
        "km": {
            "timeline_days": times,
            "survival": [_clean(float(s)) for s in survival.to_numpy()],
            "ci95_low": [_clean(float(s)) for s in ci.iloc[:, 0].to_numpy()],
            "ci95_high": [_clean(float(s)) for s in ci.iloc[:, 1].to_numpy()],
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
            low.append(_clean(bounds[0]))
            high.append(_clean(bounds[1]))
        else:
            low.append(None)
            high.append(None)
    return {
        "timeline_days": list[float | None](times),
        "cumulative_incidence": [_clean(x) for x in cif],
        "ci95_low": low,
        "ci95_high": high,
    }


def _cif_answer(
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


def _survival_answer(durations_days: Sequence[float], events: Sequence[bool]) -> dict[str, Any]:
    """Kaplan–Meier of a time-to-event (amputation-free survival) with its median."""
    if not durations_days:
        return {
            "subjects": 0,
            "events": 0,
            "median_days": None,
            "km": {"timeline_days": [], "survival": [], "ci95_low": [], "ci95_high": []},
        }
    km = _km_answer(durations_days, events, ())
    return {
        "subjects": len(durations_days),
        "events": int(sum(bool(e) for e in events)),
        "median_days": km["median_time_to_closure_days"],
        "median_days_ci95": km["median_time_to_closure_days_ci95"],
        "km": km["km"],
    }


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
        "statistic": _clean(statistic),
        "p_value": _clean(float(chi2.sf(statistic, 1))) if statistic is not None else None,
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
        "hazard_ratio": _clean(float(summary["exp(coef)"])),
        "ci95": [
            _clean(float(summary["exp(coef) lower 95%"])),
            _clean(float(summary["exp(coef) upper 95%"])),
        ],
    }


def _empty_km_answer(days: Sequence[int]) -> dict[str, Any]:
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


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    position = (len(sorted_values) - 1) * q
    low = math.floor(position)
    high = math.ceil(position)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def par_distribution(par_pct: Sequence[float | None]) -> dict[str, Any]:
    """Summary of PAR at week 4 across wounds (percent); missing values are counted."""
    values = sorted(p for p in par_pct if p is not None)
    summary: dict[str, Any] = {
        "wounds": len(par_pct),
        "available": len(values),
        "missing": len(par_pct) - len(values),
        "at_least_50_pct": sum(1 for p in values if p >= PAR_RESPONSE_PCT),
        "values_pct": [_clean(p) for p in values],
    }
    for name, q in (("q1_pct", 0.25), ("median_pct", 0.5), ("q3_pct", 0.75)):
        summary[name] = _clean(_quantile(values, q)) if values else None
    summary["mean_pct"] = _clean(sum(values) / len(values)) if values else None
    return summary


def study_endpoints(
    subjects: Sequence[Subject],
    *,
    by_arm: bool = False,
    proportion_days: Sequence[int] = PROPORTION_HEALED_DAYS,
    **options: Unpack[EndpointOptions],
) -> dict[str, Any]:
    """Kaplan–Meier time to the first confirmed healing of all index-leg ulcers (per
    subject), median with 95 % CI, proportion healed at ``proportion_days`` (1 − KM
    survival, null past the last time at risk, with the number at risk), durable
    healing and recurrence beside it, PAR-at-week-4 spread.

    Subjects randomised but never photographed are censored at day 0 (reason given);
    subjects with neither a photo nor ``randomized_on`` are left out of the curve, as
    are subjects without an index-leg wound (reason given). Per-arm figures only with
    ``by_arm`` (admins: blinding)."""
    rows: list[dict[str, Any]] = []
    par_week4: list[float | None] = []
    for subject in subjects:
        answer = subject_endpoints(subject.wounds, randomized_on=subject.randomized_on, **options)
        for wound in answer["wounds"]:
            if wound["wound"] in answer["wounds_considered"]:
                par_week4.append(wound["par_week4_pct"])
        rows.append(_study_row(subject, answer, by_arm=by_arm))

    timed = [r for r in rows if r["time_to_closure_days"] is not None]
    days = list(proportion_days)
    answer = _study_figures(timed, days)
    answer["subjects"] = len(rows)
    answer["subjects_in_analysis"] = len(timed)
    answer["subjects_without_visits"] = sum(1 for r in rows if not r["photographed"])
    answer["subjects_left_out"] = [
        {"subject": r["subject"], "code": r["code"], "reason": r["reason"]}
        for r in rows
        if r["time_to_closure_days"] is None
    ]
    answer["par_week4"] = par_distribution(par_week4)
    answer["subject_rows"] = rows
    if by_arm:
        arms = sorted({r.get("arm") or "" for r in timed})
        answer["by_arm"] = {
            arm or "unassigned": _study_figures(
                [r for r in timed if (r.get("arm") or "") == arm], days
            )
            for arm in arms
        }
        sites = {s.subject_id: s.site or "" for s in subjects}
        answer["arm_comparison"] = arm_comparison(timed, sites, arms)
    return answer


def _study_row(subject: Subject, answer: dict[str, Any], *, by_arm: bool) -> dict[str, Any]:
    """One subject's row of the study (``subject_rows``): its time to healing or to
    censoring, or why it is left out of the curve; its competing-risk and
    amputation-free-survival outcomes; its arm only with ``by_arm`` (blinding)."""
    event = answer["healing_event"]
    reason = answer["reason"]
    time_days = answer["first_healed_day"] if event else answer["last_visit_day"]
    if reason is None and time_days is None and subject.randomized_on is not None:
        time_days = 0
        reason = "randomised, never photographed: censored at day 0"
    elif reason is None and time_days is None:
        reason = "no photo and no randomized_on: no time origin"
    row: dict[str, Any] = {
        "subject": subject.subject_id,
        "code": subject.code,
        "healing_event": bool(event),
        "first_healed_day": answer["first_healed_day"],
        "all_wounds_healed": answer["all_wounds_healed"],
        "all_healed_day": answer["all_healed_day"],
        "recurrence": answer["recurrence"],
        "time_to_closure_days": time_days if answer["reason"] is None else None,
        "censored": not event,
        "time_origin": answer["time_origin"],
        "photographed": answer["last_visit_day"] is not None,
        "reason": reason,
    }
    row.update(_outcomes(subject, answer, row))
    if by_arm:
        row["arm"] = subject.arm
    return row


def _study_figures(group: Sequence[dict[str, Any]], days: Sequence[int]) -> dict[str, Any]:
    """The figures of a group of study rows (all of them, or one arm's): Kaplan–Meier
    time to healing, durable healing and recurrence, the cumulative incidence with
    competing events, amputation-free survival."""
    if not group:
        out = _empty_km_answer(days)
    else:
        out = _km_answer(
            [float(r["time_to_closure_days"]) for r in group],
            [bool(r["healing_event"]) for r in group],
            days,
        )
    out["durably_healed"] = sum(1 for r in group if r["all_wounds_healed"])
    out["recurred"] = sum(1 for r in group if r["recurrence"])
    out["cumulative_incidence"] = _cif_answer(
        [float(r["cr_time_days"]) for r in group], [r["cr_cause"] for r in group], days
    )
    afs = [r for r in group if r["afs_time_days"] is not None]
    out["amputation_free_survival"] = _survival_answer(
        [float(r["afs_time_days"]) for r in afs], [bool(r["afs_event"]) for r in afs]
    )
    return out


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


def _outcomes(subject: Subject, answer: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """Competing-risk outcome (``cr_cause``: 1 healed, 2 death or major amputation of the
    index leg first, 0 censored) and amputation-free survival of one study row."""
    origin = date.fromisoformat(answer["time_origin"]) if answer["time_origin"] else None
    if origin is None:
        return {"cr_time_days": None, "cr_cause": 0, "afs_time_days": None, "afs_event": False}
    days = sorted(((e.on - origin).days, e) for e in subject.events)
    competing = [d for d, e in days if e.competing]
    first_competing = competing[0] if competing else None
    time_days = row["time_to_closure_days"]
    healed_day = row["first_healed_day"] if row["healing_event"] else None
    if healed_day is not None and (first_competing is None or healed_day <= first_competing):
        cr_time, cause = healed_day, 1
    elif first_competing is not None:
        cr_time, cause = first_competing, 2
    else:
        cr_time, cause = time_days, 0
    follow_up = max([d for d, _ in days] + [answer["last_visit_day"] or 0])
    return {
        "cr_time_days": cr_time,
        "cr_cause": cause,
        "afs_time_days": first_competing if first_competing is not None else follow_up,
        "afs_event": first_competing is not None,
    }
