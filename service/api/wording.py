"""The dashboard's words: quality and series flags as a person reads them, why a photo
does not count, the closure and overdue rules, the subject events, a median's interval
and the templates' ``fmt`` filter.

Only wording: the codes and rules themselves live in ``core.measure`` (flag codes),
``domain.counting`` (why a photo does not count), ``core.healing`` (closure, event kinds)
and ``domain.followup`` (overdue).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from service.core.healing import CLOSURE_CONFIRM_DAYS, EVENT_KINDS, PAR_WEEK4_WINDOW_DAYS
from service.core.measure import QUALITY_CODES
from service.domain.followup import FOLLOW_UP_VISIT_DAYS, OVERDUE_AFTER_DAYS


def fmt(value: Any, digits: int = 2) -> str:
    """A number, flag or missing value as a table cell shows it (the ``fmt`` filter)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def plain_flag(flag: dict[str, Any]) -> dict[str, Any]:
    """A quality or series flag as a person reads it: its own message (which names the
    numbers), else the code's meaning from ``QUALITY_CODES`` (the one home of flag
    messages); the code stays as a data attribute, not as the text."""
    code = str(flag.get("code"))
    meaning, severe = QUALITY_CODES.get(code, (code.replace("_", " "), False))
    return {
        "code": code,
        "severe": bool(flag.get("severe", severe)),
        "meaning": meaning,
        "text": str(flag.get("message") or meaning),
    }


def plain_flags(flags: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each flag through ``plain_flag``, in order."""
    return [plain_flag(f) for f in flags]


UNCOUNTED_TEXT = {
    "voided": "voided",
    "no_measurement": "no measurement",
    "uncalibrated": "no scale on the photo (area in pixels only)",
    "severe_quality_flag": "a severe quality flag: counts once a clinician accepts or corrects it",
    "awaiting_review": "awaiting a clinician's review",
    "after_subject_event": "dated after the subject's death, withdrawal, loss to follow-up or"
    " amputation of this leg: outside follow-up, never counted",
    "scale_conflict": "the sent scale and the marker disagree: counts once a clinician"
    " corrects the outline giving the scale",
    "implausible_measurement": "physically impossible (a false marker or a wrong scale):"
    " never counted",
}
"""Why a photo does not count (``counting.uncounted_reason``), in words."""

CLOSURE_RULE = (
    "Closure is confirmed when the wound is recorded closed (fully re-epithelialised, no"
    f" drainage) at consecutive visits spanning at least {CLOSURE_CONFIRM_DAYS} days: a"
    f" single closed visit, or a visit recorded open within {CLOSURE_CONFIRM_DAYS} days, is"
    " not yet closure. The day of closure is the first closed visit of that run."
)
"""The confirmation rule in words, shown wherever closure is (``endpoints``' rule)."""

OVERDUE_TEXT = (
    f"Overdue: not healed, still in follow-up, and no photo for more than {OVERDUE_AFTER_DAYS}"
    f" days (the next {FOLLOW_UP_VISIT_DAYS}-day visit plus its ±{PAR_WEEK4_WINDOW_DAYS}-day"
    " window; the study has no visit schedule of its own)."
)
"""``domain.followup``'s overdue rule in words (the study table and the quality page)."""


EVENT_TEXT = {
    "death": "death",
    "major_amputation": "major amputation",
    "minor_amputation": "minor amputation",
    "revascularisation": "revascularisation",
    "withdrawal": "withdrawal",
    "lost_to_follow_up": "lost to follow-up",
}
"""Each ``endpoints.EVENT_KINDS`` in words (the kinds themselves live there)."""
assert set(EVENT_TEXT) == set(EVENT_KINDS)


def ci_text(low: float | None, high: float | None) -> str:
    """A median's 95 % CI in words: an open end is "not reached", not a dash."""
    if low is None and high is None:
        return "not estimable"
    lo = "not reached" if low is None else f"{low:.0f}"
    hi = "not reached" if high is None else f"{high:.0f}"
    return f"{lo} to {hi} days"
