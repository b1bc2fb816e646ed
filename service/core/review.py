"""Clinician review: the flags that need a wound's whole series, and the study's review
policy. Pure functions over plain values (no database, no HTTP).

Two quality flags cannot be raised by ``measure`` on one photo, because they compare
a photo with the rest of its wound's series or with the clinician's observation:

- ``implausible_change``: the area jumps against the wound's other visits beyond what
  healing allows;
- ``closure_area_mismatch``: recorded closed while the outline measures more than
  ``CLOSED_MAX_AREA_CM2``, or recorded open while the mask is empty.

**Derived, never stored.** ``series_flags`` is computed from the wound's current
state whenever a photo is shown, counted or queued (upload, correction, accept,
void, a changed observation, a re-pinned model all change the answer at once); a
stored copy would need invalidating on every one of those paths. Its one caller is
``counting.series_flags_of``.

**Review policy** (per study, ``Study.review``): ``flagged`` (default) — a photo with
a severe or review flag counts only once a clinician accepts or corrects it; ``all``
(central reading) — no model measurement counts until accepted or corrected;
``none`` — review flags do not hold a photo back (severe flags still do, as DESIGN
requires). ``counts_under_review_policy`` is the one rule; ``awaiting_review`` says
which photos the review queue lists (review-flagged ones under every policy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any, Literal

from service.core.healing import is_closed

ReviewPolicy = Literal["flagged", "all", "none"]
REVIEW_POLICIES: tuple[ReviewPolicy, ...] = ("flagged", "all", "none")
DEFAULT_REVIEW_POLICY: ReviewPolicy = "flagged"

REVIEW_CODES = frozenset(
    {
        "outline_uncertain",
        "implausible_change",
        "closure_area_mismatch",
        "target_outside_wound",
        "no_wound_found",
    }
)
"""Quality flags that send a photo to the clinician's review queue (DESIGN)."""

# --- limits of the series checks (the one home; README "Quality flags" cites them) ---

CLOSED_MAX_AREA_CM2 = 0.2
"""A photo recorded closed whose outline measures more than this (cm², a 4.5 mm
square) disagrees with the observation. Smaller outlines on a closed wound are the
scar's colour, not an open wound, and are reported only as supporting evidence."""
DIP_FRACTION = 0.25
"""An area under this share of both neighbouring visits (or over its inverse, 4×,
of both) is a dip or spike: a wound does not shrink to a quarter and grow back."""
MIN_CHANGE_CM2 = 0.05
"""Dips and spikes smaller than this (cm²) are outline noise near closure."""
MAX_LOG_CHANGE_PER_WEEK = math.log(5.0)
"""Healing, even fast, does not divide the area by more than 5 in a week (log-linear
rate ln 5 = 1.6/week; the virtual trial's fastest wounds heal at about 1/week)."""
MAX_EDGE_CM_PER_WEEK = 0.5
"""Nor does the edge move by more than 5 mm a week (equivalent-circle radius; fast
healing advances 1–2 mm a week). A change counts as implausible only beyond both
limits: the ratio guards large wounds, the edge small ones and closure."""


@dataclass(frozen=True)
class SeriesPoint:
    """One (non-voided) assessment of a wound, with the measurement that counts for it."""

    assessment_id: str
    captured_on: date
    area_cm2: float | None
    """None when uncalibrated (or no measurement)."""
    area_px: int | None = None
    comparable: bool = True
    """Whether its area may be compared with other visits: calibrated and, when
    severe-flagged, accepted or corrected by a clinician."""
    reviewed: bool = False
    """A clinician accepted this measurement or drew it (manual correction)."""
    epithelialized: bool | None = None
    drainage: bool | None = None
    superseded: bool = False
    """A later photo of the same day replaced it (it takes no part in the series)."""
    requires_drainage_recorded: bool = True
    """The study's ``closure_requires_drainage_recorded``."""

    @property
    def observed_closed(self) -> bool:
        """Closed by the one closure rule (``endpoints.is_closed``) under the study's setting."""
        return is_closed(
            self.epithelialized,
            self.drainage,
            requires_drainage_recorded=self.requires_drainage_recorded,
        )

    @property
    def observed_open(self) -> bool:
        return self.epithelialized is False or self.drainage is True


def _flag(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "severe": False}


def _radius_cm(area_cm2: float) -> float:
    return math.sqrt(max(area_cm2, 0.0) / math.pi)


def _weeks(a: SeriesPoint, b: SeriesPoint) -> float:
    """Weeks between two visits, at least one (noise of visits days apart is not healing)."""
    return max(abs((b.captured_on - a.captured_on).days) / 7.0, 1.0)


def change_beyond_healing(earlier: SeriesPoint, later: SeriesPoint) -> bool:
    """Whether the area changes between two visits faster than healing (or growth)
    allows: beyond ``MAX_LOG_CHANGE_PER_WEEK`` and ``MAX_EDGE_CM_PER_WEEK`` both.
    A wound re-opening after a visit recorded closed is a recurrence, not implausible."""
    a, b = earlier.area_cm2, later.area_cm2
    assert a is not None and b is not None
    if b > a and earlier.observed_closed and later.observed_open:
        return False
    weeks = _weeks(earlier, later)
    low, high = min(a, b), max(a, b)
    log_change = math.inf if low <= 0 else math.log(high / low)
    edge_cm = _radius_cm(high) - _radius_cm(low)
    return log_change > MAX_LOG_CHANGE_PER_WEEK * weeks and edge_cm > MAX_EDGE_CM_PER_WEEK * weeks


def _dip_or_spike(prev: SeriesPoint, point: SeriesPoint, nxt: SeriesPoint) -> str | None:
    """The message when ``point`` dips under or spikes over both neighbours."""
    a, ap, an = point.area_cm2, prev.area_cm2, nxt.area_cm2
    assert a is not None and ap is not None and an is not None
    around = f"{ap:.2f} cm² on {prev.captured_on}, {an:.2f} cm² on {nxt.captured_on}"
    low, high = min(ap, an), max(ap, an)
    if a < DIP_FRACTION * low and low - a >= MIN_CHANGE_CM2 and not point.observed_closed:
        return (
            f"The area, {a:.2f} cm², is under {DIP_FRACTION:.0%} of both neighbouring visits"
            f" ({around}): a wound does not shrink and grow back like this. Check the"
            " outline (did it miss part of the wound?): correct it, or accept it if it is right."
        )
    recurrence = prev.observed_closed and point.observed_open
    if a * DIP_FRACTION > high and a - high >= MIN_CHANGE_CM2 and not recurrence:
        return (
            f"The area, {a:.2f} cm², is over {1 / DIP_FRACTION:.0f}× both neighbouring visits"
            f" ({around}): a wound does not grow and shrink back like this. Check the outline"
            " (did it take in skin around the wound?): correct it, or accept it if it is right."
        )
    return None


def _pair_message(earlier: SeriesPoint, later: SeriesPoint) -> str:
    return (
        f"The area changes from {earlier.area_cm2:.2f} cm² on {earlier.captured_on} to"
        f" {later.area_cm2:.2f} cm² on {later.captured_on}, faster than a wound heals or grows"
        f" (more than {math.exp(MAX_LOG_CHANGE_PER_WEEK):.0f}-fold and"
        f" {MAX_EDGE_CM_PER_WEEK * 10:.0f} mm of edge a week): one of the two outlines is"
        " probably wrong. Check both photos: correct the wrong one, accept the right one."
    )


def _closure_mismatch(point: SeriesPoint) -> str | None:
    area_cm2 = point.area_cm2
    if point.observed_closed and area_cm2 is not None and area_cm2 > CLOSED_MAX_AREA_CM2:
        return (
            f"Recorded as closed (re-epithelialised, no drainage) but the outline measures"
            f" {area_cm2:.2f} cm² (more than {CLOSED_MAX_AREA_CM2:g} cm²). Check the photo:"
            " correct the outline if the wound is closed, or the observation if it is not."
        )
    if point.observed_open and point.area_px == 0:
        return (
            "Recorded as open but no wound was found on the photo: outline the wound by hand"
            " (or retake the photo), or correct the observation if the wound has closed."
        )
    return None


def series_flags(points: Sequence[SeriesPoint]) -> dict[str, list[dict[str, Any]]]:
    """``{assessment_id: [flag, ...]}`` of the series flags of one wound's assessments.

    Memoised on the points (a pure function of them): the counted rule asks once per
    photo, exports and the dashboard once per wound."""
    cached = _series_flags(tuple(points))
    return {key: [dict(flag) for flag in flags] for key, flags in cached.items()}


@lru_cache(maxsize=4096)
def _series_flags(points: tuple[SeriesPoint, ...]) -> dict[str, list[dict[str, Any]]]:
    """The rules of ``series_flags``:

    ``points`` are the wound's non-voided assessments in capture order. A photo's area
    is compared with the other comparable visits (superseded ones take no part):

    1. a dip or spike against both neighbouring visits (``DIP_FRACTION``), unless the
       observation explains it (a low area recorded closed; a jump recorded open after
       a closed visit: recurrence);
    2. a change between any two visits beyond what healing allows
       (``change_beyond_healing``): both photos are flagged — which one is wrong needs
       a person — except one that a clinician reviewed, or a pair explained by rule 1.

    A reviewed photo (accepted or corrected) gets no ``implausible_change``: the
    clinician saw it against its neighbours. ``closure_area_mismatch`` is raised on
    every photo it applies to, reviewed or not (the observation and the outline
    disagree, whoever made them).
    """
    out: dict[str, list[dict[str, Any]]] = {}
    effective = [p for p in points if not p.superseded]
    for point in effective:
        message = _closure_mismatch(point)
        if message is not None:
            _add(out, point, "closure_area_mismatch", message)
    series = [p for p in effective if p.comparable and p.area_cm2 is not None]
    dips = _flag_dips(out, series)
    _flag_pairs(out, series, dips)
    return out


def _add(out: dict[str, list[dict[str, Any]]], point: SeriesPoint, code: str, message: str) -> None:
    """Add the flag ``code`` to ``point`` in ``out``, once: the first message stays."""
    flags = out.setdefault(point.assessment_id, [])
    if not any(f["code"] == code for f in flags):
        flags.append(_flag(code, message))


def _flag_dips(out: dict[str, list[dict[str, Any]]], series: Sequence[SeriesPoint]) -> set[str]:
    """Rule 1 of ``_series_flags``: flag each unreviewed dip or spike against both
    neighbours; returns every dip's or spike's id, reviewed or not, since it explains
    the large changes it makes with the other visits (rule 2 skips them)."""
    dips: set[str] = set()
    for i in range(1, len(series) - 1):
        message = _dip_or_spike(series[i - 1], series[i], series[i + 1])
        if message is not None:
            dips.add(series[i].assessment_id)
            if not series[i].reviewed:
                _add(out, series[i], "implausible_change", message)
    return dips


def _flag_pairs(
    out: dict[str, list[dict[str, Any]]], series: Sequence[SeriesPoint], dips: set[str]
) -> None:
    """Rule 2 of ``_series_flags``: flag both unreviewed photos of every pair (neither a
    dip) whose change is beyond healing: which one is wrong needs a person."""
    for j, earlier in enumerate(series):
        for later in series[j + 1 :]:
            if earlier.assessment_id in dips or later.assessment_id in dips:
                continue
            if not change_beyond_healing(earlier, later):
                continue
            for point in (earlier, later):
                if not point.reviewed:
                    _add(out, point, "implausible_change", _pair_message(earlier, later))


def counts_under_review_policy(
    policy: str, *, reviewed: bool, severe: bool, review_flagged: bool
) -> bool:
    """Whether a calibrated photo's measurement enters the cm² endpoints under the study's
    review ``policy``. ``reviewed``: a clinician accepted it or it is their correction;
    ``severe``: any severe quality flag; ``review_flagged``: any of ``REVIEW_CODES``."""
    if reviewed:
        return True
    if severe or policy == "all":
        return False
    if policy == "none":
        return True
    return not review_flagged


def awaiting_review(policy: str, *, reviewed: bool, severe: bool, review_flagged: bool) -> bool:
    """Whether the review queue lists the photo: not yet reviewed, and severe- or
    review-flagged (every policy), or any model measurement under ``all``."""
    return not reviewed and (severe or review_flagged or policy == "all")


def own_review_flags(
    quality: Sequence[dict[str, Any]], *, recorded_closed: bool
) -> list[dict[str, Any]]:
    """A photo's own flags that send it to review: the severe ones and ``REVIEW_CODES``,
    except ``outline_uncertain`` on a wound recorded closed: closure rests on the
    clinician's observation, not on the outline (a scar's faint outline is always
    "uncertain"), and an outline beyond ``CLOSED_MAX_AREA_CM2`` raises
    ``closure_area_mismatch`` instead."""
    return [
        q
        for q in quality
        if (q.get("severe") or q.get("code") in REVIEW_CODES)
        and not (recorded_closed and q.get("code") == "outline_uncertain")
    ]


def review_flagged(flags: Sequence[dict[str, Any]]) -> bool:
    return any(f.get("code") in REVIEW_CODES for f in flags)
