"""What the dashboard's pages show, built from the domain's rows and answers.

Each page's context (the wound, subject, study, review-queue, data-quality, audit and
compare pages): each photo with the measurement that counts and its flags in words,
the wound and subject badges, the study's subjects table with its shareable filters,
the per-site data quality, and the tables beside the time-to-event plots. The routes
load what the caller may see (``domain.access``) and render; the rules stay where
they are (``domain.counting``: which photo counts; ``domain.followup``: overdue;
``core.healing``: the endpoints).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from service.api import queue
from service.api.figures import (
    area_figure,
    figure_json,
    incidence_figure,
    km_figure,
    subject_figure,
)
from service.api.wording import (
    NO_SCHEDULE_TEXT,
    OVERDUE_TEXT,
    ci_text,
    flag_label,
    plain_flags,
)
from service.core.errors import InvalidRequest
from service.core.healing import AFTER_SUBJECT_EVENT, EVENT_KINDS, LEGS, PAR_RESPONSE_PCT
from service.core.measure import QUALITY_CODES
from service.domain import access, batches, counting, reviewing, subjects
from service.domain.auth import Caller
from service.domain.followup import (
    follow_up_ended,
    has_visit_schedule,
    is_overdue,
    visit_schedule,
)
from service.domain.outcomes import (
    load_visible_subjects,
    study_answer,
    subject_answer,
    wound_answer,
)
from service.domain.roles import CORRECTORS, EXPORTERS
from service.persistence.orm import Study, Subject, Wound

# --- each photo of a wound, and the badges -----------------------------------------------


def assessment_rows(wound: Wound, study: Study) -> list[dict[str, Any]]:
    """Each assessment of a wound with the measurement that counts, its flags (own and
    series, in words), why it does not count, and whether it awaits review."""
    series = counting.series_flags_of(wound, study)
    rows = []
    for assessment in sorted(wound.assessments, key=lambda a: (a.captured_at, a.created_at)):
        current = counting.current_measurement(assessment, study)
        data: dict[str, Any] = current.data if current is not None else {}
        own = series.get(assessment.id, [])
        rows.append(
            {
                "assessment": assessment,
                "measurement": current,
                "data": data,
                "flags": plain_flags([*(data.get("quality") or ()), *own]),
                "uncounted_reason": counting.uncounted_reason(assessment, current, own),
                "awaiting": counting.awaiting_review(assessment, current, study, own),
                "reviewed": counting.is_reviewed(assessment, current),
                "history": len(assessment.measurements),
            }
        )
    return rows


def unmeasured_photos(rows: Iterable[dict[str, Any]]) -> frozenset[str]:
    """The photos (``assessment_rows``) where no wound was found although the wound was
    not recorded closed: not a measured 0 cm² but no measurement, a gap in the plots.
    (On a wound recorded closed, finding no wound agrees with the observation.)"""
    return frozenset(
        r["assessment"].id
        for r in rows
        if any(f["code"] == "no_wound_found" for f in r["flags"])
        and r["assessment"].epithelialized is not True
    )


STALLED_PAR_PCT = PAR_RESPONSE_PCT
"""PAR at week 4 under this is a stalled wound (the usual week-4 predictor of healing)."""
WOUND_STATUSES = {
    "healed": "healed",
    "pending": "closure pending confirmation",
    "stalled": "stalled (PAR < 50 % at week 4)",
    "open": "open",
}


def wound_status(answer: dict[str, Any]) -> str:
    """A wound's badge: healed (confirmed closure, not re-opened), closure pending
    confirmation (its last visit recorded closed, not yet confirmed), stalled (PAR at
    week 4 under ``STALLED_PAR_PCT``), else open."""
    if answer["healed_at_last_visit"]:
        return "healed"
    effective = [v for v in answer["visits"] if v["uncounted_reason"] != "voided"]
    if effective and effective[-1]["closed"]:
        return "pending"
    par = answer["par_week4_pct"]
    if par is not None and par < STALLED_PAR_PCT:
        return "stalled"
    return "open"


def subject_status(wound_statuses: Iterable[str], all_wounds_healed: bool | None) -> str:
    """A subject's badge from its considered wounds' badges (``wound_status``): healed
    when all its ulcers are healed, pending when every wound is healed or pending, stalled
    when any wound is stalled, else open."""
    statuses = list(wound_statuses)
    if all_wounds_healed:
        return "healed"
    if statuses and all(s in ("healed", "pending") for s in statuses):
        return "pending"
    if "stalled" in statuses:
        return "stalled"
    return "open"


# --- the wound, subject and review pages -------------------------------------------------


def wound_context(caller: Caller, row: Wound, form: dict[str, Any] | None) -> dict[str, Any]:
    """The wound page; ``form``: a refused form's values and error, shown in its panel."""
    study = access.study_of(row)
    answer = wound_answer(row)
    days = {v["assessment"]: v["day"] for v in answer["visits"]}
    rows = assessment_rows(row, study)
    manual = frozenset(
        r["assessment"].id for r in rows if r["measurement"] and r["measurement"].manual
    )
    awaiting = frozenset(r["assessment"].id for r in rows if r["awaiting"])
    unmeasured = unmeasured_photos(rows)
    return {
        "wound": row,
        "study": study,
        "answer": answer,
        "days": days,
        "rows": rows,
        "wound_flags": plain_flags(answer["flags"]),
        "form": form or {},
        "can_correct": caller.role in CORRECTORS and not study.locked,
        "area_json": figure_json(
            area_figure(
                answer,
                title=f"{row.subject.code} {row.label}: area over time",
                manual=manual,
                awaiting=awaiting,
                unmeasured=unmeasured,
            )
        ),
    }


def subject_context(caller: Caller, row: Subject, form: dict[str, Any] | None) -> dict[str, Any]:
    """The subject page; ``form``: a refused event form's values and error."""
    study = access.study_of(row)
    answer = subject_answer(row)
    by_id = {w.id: w for w in row.wounds}
    warnings: list[tuple[Wound, dict[str, Any]]] = []
    unmeasured: set[str] = set()
    cards = []
    for wound_answer_ in answer["wounds"]:
        wound_row = by_id[wound_answer_["wound"]]
        rows = assessment_rows(wound_row, study)
        live = [r for r in rows if not r["assessment"].voided]
        warnings += [(wound_row, r) for r in live if r["flags"]]
        unmeasured |= unmeasured_photos(live)
        photos = [r for r in live if r["measurement"] is not None]
        cards.append(
            {
                "wound": wound_row,
                "answer": wound_answer_,
                "status": wound_status(wound_answer_),
                "latest": photos[-1] if photos else None,
                "awaiting": sum(1 for r in live if r["awaiting"]),
            }
        )
    return {
        "subject": row,
        "answer": answer,
        "warnings": warning_groups(warnings),
        "warned_photos": len(warnings),
        "cards": cards,
        "statuses": WOUND_STATUSES,
        "subject_json": figure_json(
            subject_figure(
                answer,
                title=f"{row.code}: every wound's area",
                unmeasured=frozenset(unmeasured),
            )
        ),
        **_events_context(caller, row, study, form),
    }


def warning_groups(flagged: list[tuple[Wound, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The subject page's warnings, one line per wound and flag (not one per photo: a
    series of 25 near-identical lines hides the plot): the flag's label, whether any is
    severe, and its photos by date with whether each awaits review."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for wound, row in flagged:
        for flag in row["flags"]:
            group = groups.setdefault(
                (wound.id, flag["code"]),
                {
                    "wound": wound,
                    "code": flag["code"],
                    "label": flag["meaning"],
                    "severe": False,
                    "photos": [],
                },
            )
            group["severe"] = group["severe"] or flag["severe"]
            if all(p["assessment"].id != row["assessment"].id for p in group["photos"]):
                group["photos"].append(
                    {
                        "assessment": row["assessment"],
                        "awaiting": row["awaiting"],
                        "text": flag["text"],
                    }
                )
    return sorted(
        groups.values(),
        key=lambda g: (g["wound"].label, not g["severe"], -len(g["photos"]), g["label"]),
    )


def _events_context(
    caller: Caller, row: Subject, study: Study, form: dict[str, Any] | None
) -> dict[str, Any]:
    """The subject page's events panel: the events by date, the form's choices, whether
    the caller may record one, and a refused form's values (``form``)."""
    return {
        "events": sorted(row.events, key=lambda e: (e.occurred_on, e.id)),
        "event_kinds": EVENT_KINDS,
        "legs": LEGS,
        "can_record_events": caller.role in CORRECTORS and not study.locked,
        "event_form": form or {},
    }


REVIEW_PAGE_SIZE = 20


def review_context(
    session: Session, caller: Caller, study: Study, offset: int, form: dict[str, Any] | None
) -> dict[str, Any]:
    """The review queue (the API's ``reviewing.review_queue``, scoped by the caller's site):
    each photo with its reasons in words and its wound's series beside it."""
    rows, total = reviewing.review_queue(
        session, caller, study, limit=REVIEW_PAGE_SIZE, offset=offset
    )
    series: dict[str, list[dict[str, Any]]] = {}
    days: dict[str, dict[str, int]] = {}
    items = []
    for a in rows:
        if a.wound_id not in series:
            series[a.wound_id] = assessment_rows(a.wound, study)
            days[a.wound_id] = {v["assessment"]: v["day"] for v in wound_answer(a.wound)["visits"]}
        current = counting.current_measurement(a, study)
        own = counting.series_flags_of(a.wound, study).get(a.id, [])
        items.append(
            {
                "assessment": a,
                "measurement": current,
                "reasons": plain_flags(counting.review_reasons(a, current, own)),
                "series": series[a.wound_id],
                "days": days[a.wound_id],
            }
        )
    return {
        "study": study,
        "items": items,
        "total": total,
        "offset": offset,
        "page_size": REVIEW_PAGE_SIZE,
        "form": form or {},
        "can_review": caller.role in CORRECTORS and not study.locked,
        "reason_counts": queue.reason_counts(session, caller, study),
    }


# --- the study page: subjects table, filters, time-to-event tables (issue 16) -----------

SUBJECT_FILTERS = ("site", "status", "flagged", "overdue", "q")


def subject_overview(subject: Subject, study: Study, today: date) -> dict[str, Any]:
    """One row of the study's subjects table: status, last visit (none dated after the
    end of follow-up, ``after_subject_event``), current area (sum of each considered
    wound's latest counted area), the lowest wound PAR at week 4, its photos with flags
    (by code), severe ones, retakes (a wound's further live photos on the same day),
    those awaiting review, overdue (None: the study sets no visit schedule, so nobody is
    late)."""
    answer = subject_answer(subject)
    considered = [w for w in answer["wounds"] if w["wound"] in answer["wounds_considered"]]
    status = subject_status((wound_status(w) for w in considered), answer["all_wounds_healed"])
    live = [
        r
        for wound in subject.wounds
        for r in assessment_rows(wound, study)
        if not r["assessment"].voided
    ]
    followed = (r for r in live if r["uncounted_reason"] != AFTER_SUBJECT_EVENT)
    last_visit = max((r["assessment"].captured_at.date() for r in followed), default=None)
    areas = []
    for w in considered:
        counted = [v["area_cm2"] for v in w["visits"] if v["counted"] and v["area_cm2"] is not None]
        areas.append(counted[-1] if counted else None)
    pars = [w["par_week4_pct"] for w in considered if w["par_week4_pct"] is not None]
    codes: Counter[str] = Counter(f["code"] for r in live for f in r["flags"])
    per_day = Counter((r["assessment"].wound_id, r["assessment"].captured_at.date()) for r in live)
    in_follow_up = not follow_up_ended(subject)
    return {
        "subject": subject,
        "status": status,
        "last_visit": last_visit,
        "area_cm2": sum(a for a in areas if a is not None) if areas and None not in areas else None,
        "par_week4_pct": min(pars) if pars else None,
        "photos": len(live),
        "flagged": sum(1 for r in live if r["flags"]),
        "severe": sum(1 for r in live if any(f["severe"] for f in r["flags"])),
        "awaiting": sum(1 for r in live if r["awaiting"]),
        "retakes": sum(n - 1 for n in per_day.values()),
        "codes": codes,
        "in_follow_up": in_follow_up,
        "overdue": is_overdue(
            last_visit,
            today,
            status=status,
            in_follow_up=in_follow_up,
            schedule=visit_schedule(study),
            origin=subjects.day_zero(subject),
        )
        if has_visit_schedule(study)
        else None,
    }


def subject_filters(params: dict[str, str]) -> dict[str, str]:
    """The study page's filters from its query string (shareable links); an unknown
    status or yes/no value is refused with what to give."""
    filters = {k: params.get(k, "").strip() for k in SUBJECT_FILTERS}
    if filters["status"] and filters["status"] not in WOUND_STATUSES:
        raise InvalidRequest(f"status: give one of {', '.join(WOUND_STATUSES)}")
    for name in ("flagged", "overdue"):
        if filters[name] not in ("", "yes", "no"):
            raise InvalidRequest(f"{name}: give 'yes' or 'no'")
    return filters


def filter_subjects(rows: list[dict[str, Any]], filters: dict[str, str]) -> list[dict[str, Any]]:
    """The subjects table's rows that pass every filter given (``subject_filters``)."""

    def keep(row: dict[str, Any]) -> bool:
        s = row["subject"]
        if filters["site"] and s.site.code != filters["site"]:
            return False
        if filters["status"] and row["status"] != filters["status"]:
            return False
        if filters["flagged"] and (row["flagged"] > 0) != (filters["flagged"] == "yes"):
            return False
        if (
            filters["overdue"]
            and row["overdue"] is not None
            and row["overdue"] != (filters["overdue"] == "yes")
        ):
            return False
        return not filters["q"] or filters["q"].casefold() in s.code.casefold()

    return [r for r in rows if keep(r)]


def follow_up_days(answer: dict[str, Any]) -> float | None:
    """The last day of follow-up of the Kaplan–Meier curve (None without subjects)."""
    days = answer["km"]["timeline_days"]
    return max(days) if days else None


def proportions_within_follow_up(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The study's "healed by day N" figures, each marked beyond follow-up when N is
    past the last subject's last day (the Kaplan–Meier estimate is flat there, not known)."""
    last = follow_up_days(answer)
    return [
        {
            "day": int(day),
            "pct": None if p is None else 100.0 * p,
            "beyond": last is None or int(day) > last,
        }
        for day, p in answer["proportion_healed"].items()
    ]


AT_RISK_STEP_DAYS = 28


def number_at_risk(answer: dict[str, Any]) -> dict[str, Any]:
    """The number-at-risk table under the Kaplan–Meier plot: per group (pooled, or per
    arm for admins, as the curves), how many subjects are still followed and not yet
    healed at day 0, 28, 56, … up to the end of follow-up (a subject is at risk at day
    d while its time to closure, healed or censored, is ≥ d)."""
    timed = [r for r in answer["subject_rows"] if r["time_to_closure_days"] is not None]
    if not timed:
        return {"days": [], "groups": {}}
    last = max(r["time_to_closure_days"] for r in timed)
    days = list(range(0, int(last) + 1, AT_RISK_STEP_DAYS))
    if answer.get("by_arm"):
        names = list(answer["by_arm"])
        groups = {
            name: [r for r in timed if (r.get("arm") or "unassigned") == name] for name in names
        }
    else:
        groups = {"all subjects": timed}
    return {
        "days": days,
        "groups": {
            name: [sum(1 for r in rows if r["time_to_closure_days"] >= d) for d in days]
            for name, rows in groups.items()
        },
    }


def competing_at_risk(answer: dict[str, Any], days: list[int]) -> list[int]:
    """Subjects at risk in the competing-risk analysis at each day (competing-risk time
    ≥ day: not yet healed, dead or amputated, and still followed)."""
    times = [r["cr_time_days"] for r in answer["subject_rows"] if r["cr_time_days"] is not None]
    return [sum(1 for t in times if t >= d) for d in days]


def study_context(
    session: Session, caller: Caller, row: Study, params: dict[str, str]
) -> dict[str, Any]:
    """The study page: its answer, the subjects table and the cumulative incidence
    (``_subjects_table``, filtered by ``params``, the query string), the "healed by day
    N" and number-at-risk tables, the Kaplan–Meier plot, the photos awaiting review."""
    subjects = {s.id: s for s in load_visible_subjects(session, caller, row)}
    answer = study_answer(session, caller, row)
    awaiting = reviewing.review_queue(session, caller, row, limit=0, offset=0)[1]
    return {
        **_subjects_table(row, list(subjects.values()), answer, params),
        "study": row,
        "answer": answer,
        "awaiting": awaiting,
        "proportions": proportions_within_follow_up(answer),
        "at_risk": number_at_risk(answer),
        "median_ci": ci_text(*answer["median_time_to_closure_days_ci95"]),
        "subjects": subjects,
        "can_export": caller.role in EXPORTERS,
        "reanalyses": batches.recent_batches(session, caller, row),
        "km_json": figure_json(km_figure(answer, title=f"{row.id}: time to closure of all ulcers")),
    }


def _subjects_table(
    row: Study, subjects: list[Subject], answer: dict[str, Any], params: dict[str, str]
) -> dict[str, Any]:
    """The study page's subjects table (filtered by the query string) and the
    cumulative incidence beside the Kaplan–Meier plot."""
    filters = subject_filters(params)
    today = datetime.now(UTC).date()
    overview = [subject_overview(s, row, today) for s in subjects]
    at_risk = number_at_risk(answer)
    shown = filter_subjects(overview, filters)
    return {
        "overview": shown,
        "overview_total": len(overview),
        "statuses": WOUND_STATUSES,
        "filters": filters,
        "filter_query": urlencode({k: v for k, v in filters.items() if v}),
        "site_codes": sorted({s.site.code for s in subjects}),
        "subject_rows": {r["subject"]: r for r in answer["subject_rows"]},
        "scheduled": has_visit_schedule(row),
        "overdue_text": OVERDUE_TEXT if has_visit_schedule(row) else NO_SCHEDULE_TEXT,
        "incidence": answer["cumulative_incidence"],
        "incidence_at_risk": competing_at_risk(answer, at_risk["days"]),
        "incidence_json": figure_json(
            incidence_figure(answer, title=f"{row.id}: cumulative incidence of healing")
        ),
    }


# --- the data-quality page ---------------------------------------------------------------


def site_quality(overview: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per site, what a monitor chases: photos, photos flagged (by code), severe flags,
    retakes, awaiting review, subjects overdue a visit."""
    sites: dict[str, dict[str, Any]] = {}
    for row in overview:
        code = row["subject"].site.code
        site = sites.setdefault(
            code,
            {
                "site": code,
                "subjects": 0,
                "photos": 0,
                "flagged": 0,
                "severe": 0,
                "retakes": 0,
                "awaiting": 0,
                "overdue": 0,
                "codes": Counter(),
            },
        )
        site["subjects"] += 1
        for key in ("photos", "flagged", "severe", "retakes", "awaiting"):
            site[key] += row[key]
        site["overdue"] += int(bool(row["overdue"]))
        site["codes"].update(row["codes"])
    return [sites[k] for k in sorted(sites)]


def quality_context(session: Session, caller: Caller, row: Study) -> dict[str, Any]:
    """The data-quality page: per site (``site_quality``) and the subjects overdue a
    visit, over the subjects the caller sees (a site key: its own site)."""
    today = datetime.now(UTC).date()
    overview = [
        subject_overview(s, row, today) for s in load_visible_subjects(session, caller, row)
    ]
    return {
        "study": row,
        "sites": site_quality(overview),
        "overdue": [r for r in overview if r["overdue"]],
        "scheduled": has_visit_schedule(row),
        "overdue_text": OVERDUE_TEXT if has_visit_schedule(row) else NO_SCHEDULE_TEXT,
        "flag_meaning": {code: flag_label(code) for code in QUALITY_CODES},
    }
