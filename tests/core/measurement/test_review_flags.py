"""The series flags that send a photo to review (``service.core.review.series_flags``):
an area that jumps against its neighbours, and an outline that contradicts the
clinician's closure observation. Pure: no database, no model."""

from __future__ import annotations

from datetime import date, timedelta

from service.core.review import CLOSED_MAX_AREA_CM2, SeriesPoint, series_flags

DAY0 = date(2026, 1, 5)


def series(areas: list[float | None], **per_point: dict[int, object]) -> list[SeriesPoint]:
    """Weekly visits with these areas; ``per_point`` sets a field on chosen visits,
    e.g. ``reviewed={1: True}``."""
    points = []
    for i, area in enumerate(areas):
        fields = {name: values[i] for name, values in per_point.items() if i in values}
        fields.setdefault("epithelialized", False)
        fields.setdefault("drainage", True)
        points.append(
            SeriesPoint(
                assessment_id=f"a{i}",
                captured_on=DAY0 + timedelta(days=7 * i),
                area_cm2=area,
                area_px=None if area is None else int(area * 10_000),
                **fields,  # type: ignore[arg-type]
            )
        )
    return points


def codes(flags: dict[str, list[dict[str, object]]], i: int) -> list[object]:
    return [f["code"] for f in flags.get(f"a{i}", [])]


def test_steady_healing_raises_nothing() -> None:
    flags = series_flags(series([4.0, 3.4, 2.9, 2.3, 1.8]))
    assert flags == {}


def test_a_dip_under_both_neighbours_is_implausible_until_a_clinician_reviews_it() -> None:
    flags = series_flags(series([4.0, 0.1, 3.8, 3.5]))
    assert codes(flags, 1) == ["implausible_change"]
    assert codes(flags, 0) == codes(flags, 2) == []  # the neighbours are not blamed
    reviewed = series_flags(series([4.0, 0.1, 3.8, 3.5], reviewed={1: True}))
    assert codes(reviewed, 1) == []


def test_a_spike_over_both_neighbours_is_implausible() -> None:
    flags = series_flags(series([2.0, 9.5, 1.9]))
    assert codes(flags, 1) == ["implausible_change"]


def test_a_low_area_recorded_closed_and_a_recurrence_are_not_implausible() -> None:
    """(A 3 cm² wound recorded closed a week later *is* implausible: healing does not
    divide an area by more than 5 in a week; a small one closing is not.)"""
    closed = {1: True}
    flags = series_flags(
        series([0.6, 0.0, 0.7], epithelialized=closed, drainage={1: False})  # type: ignore[arg-type]
    )
    assert "implausible_change" not in codes(flags, 1) + codes(flags, 2)


def test_an_outline_that_contradicts_a_closure_observation_goes_to_review() -> None:
    big = CLOSED_MAX_AREA_CM2 + 1.0
    closed = series([3.0, big], epithelialized={1: True}, drainage={1: False})  # type: ignore[arg-type]
    assert codes(series_flags(closed), 1) == ["closure_area_mismatch"]
    scar = series([0.5, CLOSED_MAX_AREA_CM2 / 2], epithelialized={1: True}, drainage={1: False})  # type: ignore[arg-type]
    assert codes(series_flags(scar), 1) == []
    # Recorded open, but the model found nothing: also a contradiction.
    empty = series([0.5, 0.0])
    assert codes(series_flags(empty), 1) == ["closure_area_mismatch"]


def test_closure_with_drainage_not_recorded_follows_the_study_setting() -> None:
    """With ``closure_requires_drainage_recorded`` (the default) an epithelialised visit
    without a drainage record is not closed, so its outline contradicts nothing; with
    the setting off it is closed, and a large outline goes to review."""
    big = CLOSED_MAX_AREA_CM2 + 1.0
    unrecorded = {"epithelialized": {1: True}, "drainage": {1: None}}
    strict = series([3.0, big], **unrecorded)  # type: ignore[arg-type]
    assert codes(series_flags(strict), 1) == []
    lenient = series([3.0, big], **unrecorded, requires_drainage_recorded={0: False, 1: False})  # type: ignore[arg-type]
    assert codes(series_flags(lenient), 1) == ["closure_area_mismatch"]
