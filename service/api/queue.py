"""The review queue page beyond its cards: how many photos wait for each reason (the
counts at the top of the page, over the whole queue, not only the page shown)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy.orm import Session

from service.api.wording import plain_flags
from service.domain import counting, reviewing
from service.domain.auth import Caller
from service.persistence.orm import Study

CENTRAL_READING = "central reading (every model outline is read)"


def reason_counts(session: Session, caller: Caller, study: Study) -> list[tuple[str, int]]:
    """(reason in words, photos waiting for it), most frequent first; a photo with two
    reasons counts under both. Scoped like the queue (a site key: its site)."""
    rows, _ = reviewing.review_queue(session, caller, study, limit=10**6, offset=0)
    counts: Counter[str] = Counter()
    series: dict[str, dict] = {}
    for a in rows:
        if a.wound_id not in series:
            series[a.wound_id] = counting.series_flags_of(a.wound, study)
        current = counting.current_measurement(a, study)
        reasons = plain_flags(counting.review_reasons(a, current, series[a.wound_id].get(a.id, [])))
        counts.update({r["meaning"] for r in reasons} or {CENTRAL_READING})
    return counts.most_common()
