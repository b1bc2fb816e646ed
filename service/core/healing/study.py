"""The study's endpoints: one row per subject (time to healing or censoring, competing
events, amputation-free survival), the figures over them, PAR at week 4."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any, Unpack

from service.core.healing.comparisons import arm_comparison
from service.core.healing.inputs import (
    PAR_RESPONSE_PCT,
    PROPORTION_HEALED_DAYS,
    EndpointOptions,
    Subject,
    clean,
    follow_up_end,
    followed_events,
    last_contact_on,
)
from service.core.healing.subject import subject_endpoints
from service.core.healing.survival import (
    cif_answer,
    empty_km_answer,
    km_answer,
    survival_answer,
)


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
        "values_pct": [clean(p) for p in values],
    }
    for name, q in (("q1_pct", 0.25), ("median_pct", 0.5), ("q3_pct", 0.75)):
        summary[name] = clean(_quantile(values, q)) if values else None
    summary["mean_pct"] = clean(sum(values) / len(values)) if values else None
    return summary


def study_endpoints(
    subjects: Sequence[Subject],
    *,
    by_arm: bool = False,
    proportion_days: Sequence[int] = PROPORTION_HEALED_DAYS,
    control_arm: str | None = None,
    **options: Unpack[EndpointOptions],
) -> dict[str, Any]:
    """Kaplan–Meier time to the first confirmed healing of all index-leg ulcers (per
    subject), median with 95 % CI, proportion healed at ``proportion_days`` (1 − KM
    survival, null past the last time at risk, with the number at risk), durable
    healing and recurrence beside it, PAR-at-week-4 spread.

    Subjects randomised but never photographed are censored at day 0 (reason given);
    subjects with neither a photo nor ``randomized_on`` are left out of the curve, as
    are subjects without an index-leg wound (reason given). Per-arm figures only with
    ``by_arm`` (admins: blinding), compared against ``control_arm`` (the study's)."""
    rows: list[dict[str, Any]] = []
    par: dict[str, tuple[list[float | None], list[float | None]]] = {}
    for subject in subjects:
        answer = subject_endpoints(subject.wounds, randomized_on=subject.randomized_on, **options)
        considered = [w for w in answer["wounds"] if w["wound"] in answer["wounds_considered"]]
        par[subject.subject_id] = (
            [w["par_week4_pct"] for w in considered],
            [_par_last_visit(w) for w in considered],
        )
        rows.append(_study_row(subject, answer, by_arm=by_arm))

    timed = [r for r in rows if r["time_to_closure_days"] is not None]
    days = list(proportion_days)
    answer = _study_figures(timed, days, rows)
    answer["subjects"] = len(rows)
    answer["subjects_in_analysis"] = len(timed)
    answer["subjects_without_visits"] = sum(1 for r in rows if not r["photographed"])
    answer["subjects_left_out"] = [
        {"subject": r["subject"], "code": r["code"], "reason": r["reason"]}
        for r in rows
        if r["time_to_closure_days"] is None
    ]
    answer.update(_par_figures(rows, par))
    answer["subject_rows"] = rows
    if by_arm:
        arms = sorted({r.get("arm") or "" for r in timed})
        by_arm_figures = {}
        for arm in arms:
            of_arm = [r for r in rows if (r.get("arm") or "") == arm]
            figures = _study_figures([r for r in of_arm if r in timed], days, of_arm)
            by_arm_figures[arm or "unassigned"] = {**figures, **_par_figures(of_arm, par)}
        answer["by_arm"] = by_arm_figures
        sites = {s.subject_id: s.site or "" for s in subjects}
        answer["arm_comparison"] = arm_comparison(
            timed, sites, arms, everyone=rows, control_arm=control_arm
        )
    return answer


def _par_last_visit(wound: dict[str, Any]) -> float | None:
    """PAR at the wound's last counted visit after its baseline (None without one)."""
    later = [
        v["par_pct"]
        for v in wound["visits"]
        if v["counted"] and v["par_pct"] is not None and v["captured_at"] > wound["baseline_date"]
    ]
    return later[-1] if later else None


def _par_figures(
    rows: Sequence[dict[str, Any]], par: dict[str, tuple[list[float | None], list[float | None]]]
) -> dict[str, Any]:
    """PAR at week 4 and at the last visit over the considered wounds of ``rows``, with
    the counts reaching 50 %."""
    week4 = [p for r in rows for p in par[r["subject"]][0]]
    last = [p for r in rows for p in par[r["subject"]][1]]
    return {"par_week4": par_distribution(week4), "par_last_visit": par_distribution(last)}


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
        "recurrence_day": answer["recurrence_day"],
        "time_to_closure_days": time_days if answer["reason"] is None else None,
        "censored": not event,
        "time_origin": answer["time_origin"],
        "photographed": answer["last_visit_day"] is not None,
        "reason": reason,
    }
    row.update(_outcomes(subject, answer, row))
    row.update(_durable(answer, row))
    if by_arm:
        row["arm"] = subject.arm
    return row


def _durable(answer: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """Durable healing as a time to event (healed at the last visit: the event on
    ``all_healed_day``, else censored at the last visit), and the log of the subject's
    baseline area (the sum over its considered wounds; None when one is missing)."""
    durable = bool(answer["all_wounds_healed"])
    if row["time_to_closure_days"] is None:
        time_days = None
    elif durable:
        time_days = answer["all_healed_day"]
    else:
        time_days = answer["last_visit_day"] or 0
    considered = [w for w in answer["wounds"] if w["wound"] in answer["wounds_considered"]]
    areas = [w["baseline_area_cm2"] for w in considered]
    total = sum(a for a in areas if a is not None)
    known = bool(areas) and all(a is not None for a in areas) and total > 0
    return {
        "durable_event": durable,
        "durable_time_days": time_days,
        "log_baseline_area": clean(math.log(total)) if known else None,
    }


def _study_figures(
    group: Sequence[dict[str, Any]], days: Sequence[int], everyone: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The figures of a group of study rows (all of them, or one arm's): Kaplan–Meier
    time to healing, durable healing and recurrence, the cumulative incidence with
    competing events (over ``group``: the subjects in the healing analysis), and
    amputation-free survival over ``everyone`` with a time origin (an outcome of the
    subject, whatever its wounds)."""
    if not group:
        out = empty_km_answer(days)
    else:
        out = km_answer(
            [float(r["time_to_closure_days"]) for r in group],
            [bool(r["healing_event"]) for r in group],
            days,
        )
    out["durably_healed"] = sum(1 for r in group if r["all_wounds_healed"])
    out["recurred"] = sum(1 for r in group if r["recurrence"])
    out["cumulative_incidence"] = cif_answer(
        [float(r["cr_time_days"]) for r in group], [r["cr_cause"] for r in group], days
    )
    out["durable_healing"] = survival_answer(
        [float(r["durable_time_days"]) for r in group], [bool(r["durable_event"]) for r in group]
    )
    afs = [r for r in everyone if r["afs_time_days"] is not None]
    out["amputation_free_survival"] = survival_answer(
        [float(r["afs_time_days"]) for r in afs], [bool(r["afs_event"]) for r in afs]
    )
    return out


def _outcomes(subject: Subject, answer: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """Competing-risk outcome (``cr_cause``: 1 healed, 2 death or major amputation of the
    index leg first, 0 censored) and amputation-free survival of one study row.

    Only events in follow-up count (``followed_events``: none after a death, withdrawal
    or loss to follow-up). ``last_contact_day``: ``last_contact_on`` (the latest photo
    of any wound, either leg, or event in follow-up), where a subject without an event
    is censored (AFS), never at 0 when it has data."""
    origin = date.fromisoformat(answer["time_origin"]) if answer["time_origin"] else None
    if origin is None:
        return {
            "cr_time_days": None,
            "cr_cause": 0,
            "afs_time_days": None,
            "afs_event": False,
            "last_contact_day": None,
            "follow_up_end_day": None,
        }
    events = sorted(followed_events(subject.events), key=lambda e: e.on)
    days = [((e.on - origin).days, e) for e in events]
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
    last_photo_day = answer["last_photo_day"]
    photos = [origin + timedelta(days=last_photo_day)] if last_photo_day is not None else []
    last_on = last_contact_on(subject.events, photos, starts=(origin,))
    last_contact = (last_on - origin).days if last_on is not None else 0
    end = follow_up_end(subject.events)
    return {
        "cr_time_days": cr_time,
        "cr_cause": cause,
        "afs_time_days": first_competing if first_competing is not None else last_contact,
        "afs_event": first_competing is not None,
        "last_contact_day": last_contact,
        "follow_up_end_day": (end - origin).days if end is not None else None,
    }
