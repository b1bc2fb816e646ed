"""The dashboard's words: quality and series flags as a person reads them, why a photo
does not count, the closure and overdue rules, the subject events, a median's interval
and the templates' ``fmt`` filter.

Only wording: the codes and rules themselves live in ``core.measure`` (flag codes),
``domain.counting`` (why a photo does not count), ``core.healing`` (closure, event kinds)
and ``domain.followup`` (overdue).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from service.core.healing import CLOSURE_CONFIRM_DAYS, EVENT_KINDS, PAR_WEEK4_WINDOW_DAYS
from service.core.measure import QUALITY_CODES, QualityLimits
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


FLAG_LABELS: dict[str, str] = {
    "marker_not_found": "no marker: area in pixels only",
    "marker_unreadable": "marker unclear: area approximate",
    "no_wound_found": "no wound found",
    "no_perspective_correction": "scale sent with the photo: tilt not corrected",
    "scale_ignored": "marker used, the sent scale ignored",
    "multiple_markers": "several markers in view",
    "marker_too_small": "marker too small in the photo",
    "tilt_too_large": "camera tilted too far",
    "marker_far_from_wound": "marker too far from the wound",
    "photo_blurred": "photo blurred",
    "photo_too_dark": "photo too dark",
    "photo_overexposed": "photo overexposed",
    "wound_touches_edge": "wound runs off the photo",
    "target_outside_wound": "tapped point not on a wound",
    "area_imprecise": "scale imprecise",
    "outline_uncertain": "outline uncertain",
    "several_wounds": "several wound areas outlined together",
    "implausible_change": "area jumps against the other visits",
    "closure_area_mismatch": "recorded closure and outline disagree",
}
"""Each flag code as a short label a nurse or clinician reads (table cells, counts): no
setting names, no codes. The codes and their thresholds live in ``core.measure``."""

UNCLEAR_ABOVE_PCT = 100.0
"""An uncertainty beyond ±100 % says nothing a reader can use: above it the flag reads
"outline unclear" (or "scale unclear") instead of the number."""
UNCLEAR_TEXT = {
    "outline_uncertain": "Outline unclear: the model cannot tell where this wound's edge is."
    " Check the outline on the photo and correct it.",
    "area_imprecise": "Scale unclear: the marker is too far or too small to size this wound."
    " Retake with the marker right beside the wound.",
}
_PERCENT = re.compile(r"±\s*(\d+(?:\.\d+)?)\s*%")
_SETTING_NAMES = frozenset(QualityLimits.model_fields)


def flag_label(code: str) -> str:
    """A flag's short label (``FLAG_LABELS``; a code without one reads as its words)."""
    return FLAG_LABELS.get(code) or code.replace("_", " ")


def flag_text(code: str, message: str | None) -> str:
    """A flag's sentence: its own message (which names the numbers and what to do), else
    the code's meaning (``QUALITY_CODES``), unless it names a setting or an uncertainty
    past ``UNCLEAR_ABOVE_PCT``: then the plain label (or ``UNCLEAR_TEXT``)."""
    message = message or QUALITY_CODES.get(code, ("", False))[0]
    if not message:
        return flag_label(code).capitalize() + "."
    if any(float(p) > UNCLEAR_ABOVE_PCT for p in _PERCENT.findall(message)):
        return UNCLEAR_TEXT.get(code, flag_label(code).capitalize() + ": check the photo.")
    if any(name in message for name in _SETTING_NAMES):
        return flag_label(code).capitalize() + "."
    return message


def plain_flag(flag: dict[str, Any]) -> dict[str, Any]:
    """A quality or series flag as a person reads it: ``meaning``, the short label
    (``flag_label``), and ``text``, its sentence (``flag_text``); severity from the flag,
    else from ``QUALITY_CODES``. The code stays as a data attribute, not as the text."""
    code = str(flag.get("code"))
    _, severe = QUALITY_CODES.get(code, ("", False))
    message = flag.get("message")
    return {
        "code": code,
        "severe": bool(flag.get("severe", severe)),
        "meaning": flag_label(code),
        "text": flag_text(code, str(message) if message else None),
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
    " window)."
)
"""``domain.followup``'s overdue rule in words (the study table and the quality page),
shown only for a study with a visit schedule (``followup.has_visit_schedule``)."""
NO_SCHEDULE_TEXT = (
    "This study sets no visit schedule, so no subject is marked overdue: a visit can only be"
    " late against a schedule."
)
"""What the study and quality pages say instead of ``OVERDUE_TEXT`` without a schedule."""


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
