"""The dashboard's plots as plotly figure dicts: a wound's area over time, a subject's
wounds on one plot, the study's Kaplan–Meier curves and cumulative incidence of
healing, each time-to-event curve as a step line with its 95 % band.

Plain data in (the typed answers as dicts), plain dicts out: the templates embed them
with ``figure_json`` and plotly.js draws them in the browser.
"""

from __future__ import annotations

import json
from typing import Any

LEGEND_BELOW = {"orientation": "h", "x": 0, "y": -0.22, "yanchor": "top"}
"""Legends sit under the plot: beside it they squeeze a phone-width plot to nothing."""

AREA_TRACE = "area (cm²)"
BAND_TRACE = "95 % interval"
POINT_STYLES: dict[str, tuple[str, str, str]] = {
    # kind: (legend label, marker symbol, colour)
    "model": ("model outline, counted", "circle", "#1d3557"),
    "manual": ("clinician's outline", "square", "#2a7d3b"),
    "awaiting": ("awaiting review (not counted)", "diamond-open", "#d97706"),
    "uncounted": ("not counted", "x-thin-open", "#a4161a"),
}
"""How the area plot marks each kind of point (one home: the legend and the points)."""


def figure_json(figure: dict[str, Any]) -> str:
    """JSON safe to embed in a <script type="application/json"> element."""
    text = json.dumps(figure, separators=(",", ":"), default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def step_path(times: list[float], values: list[float]) -> tuple[list[float], list[float]]:
    """The corners of a right-continuous step function (plotly's ``hv``) as a plain
    polyline, so a band's lower edge can be walked backwards without plotly
    re-interpreting the steps (its ``hv`` reversed draws ``vh``)."""
    xs: list[float] = []
    ys: list[float] = []
    for i, (t, v) in enumerate(zip(times, values, strict=True)):
        if i:
            xs.append(t)
            ys.append(values[i - 1])
        xs.append(t)
        ys.append(v)
    return xs, ys


def km_band(km: dict[str, Any]) -> tuple[list[float], list[float]]:
    """The closed polygon of the 95 % band: upper steps forward, lower steps backward."""
    keep = [
        i
        for i, (lo, hi) in enumerate(zip(km["ci95_low"], km["ci95_high"], strict=True))
        if lo is not None and hi is not None
    ]
    times = [km["timeline_days"][i] for i in keep]
    hx, hy = step_path(times, [km["ci95_high"][i] for i in keep])
    lx, ly = step_path(times, [km["ci95_low"][i] for i in keep])
    return hx + lx[::-1], hy + ly[::-1]


def km_figure(answer: dict[str, Any], *, title: str) -> dict[str, Any]:
    """Kaplan–Meier step curves of time to closure (pooled, or per arm for admins), each
    with its 95 % band in the curve's colour, drawn only over the follow-up."""
    groups = answer.get("by_arm") or {"all subjects": answer}
    data: list[dict[str, Any]] = []
    for i, (name, group) in enumerate(groups.items()):
        km = group["km"]
        if not km["timeline_days"]:
            continue
        data += step_traces(
            str(name),
            km,
            km["survival"],
            PALETTE[i % len(PALETTE)],
            band_name=f"{name}: 95% CI",
            hover="day %{x}: %{y:.2f} not yet healed<extra></extra>",
        )
    return step_figure(data, title, "proportion not yet healed")


def step_traces(
    name: str,
    curve: dict[str, Any],
    y: list[float],
    colour: str,
    *,
    band_name: str,
    hover: str,
) -> list[dict[str, Any]]:
    """A step curve (``curve["timeline_days"]`` against ``y``) and its 95 % band
    (``km_band``) in the curve's colour, one legend entry for both."""
    band_x, band_y = km_band(curve)
    return [
        {
            "type": "scatter",
            "mode": "lines",
            "name": band_name,
            "x": band_x,
            "y": band_y,
            "line": {"width": 0, "color": colour},
            "fill": "toself",
            "fillcolor": _rgba(colour, 0.18),
            "hoverinfo": "skip",
            "legendgroup": name,
            "showlegend": False,
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": name,
            "x": curve["timeline_days"],
            "y": y,
            "line": {"shape": "hv", "color": colour},
            "legendgroup": name,
            "hovertemplate": hover,
        },
    ]


def step_figure(data: list[dict[str, Any]], title: str, y_title: str) -> dict[str, Any]:
    """The layout every time-to-event plot shares: days from baseline, a 0–1 axis."""
    return {
        "data": data,
        "layout": {
            "title": {"text": title},
            "xaxis": {"title": {"text": "days from baseline"}, "rangemode": "tozero"},
            "yaxis": {"title": {"text": y_title}, "range": [0, 1.05]},
            "legend": LEGEND_BELOW,
            "margin": {"t": 50, "r": 20, "l": 60},
        },
    }


def point_kind(visit: dict[str, Any], *, manual: bool, awaiting: bool) -> str:
    """Which of ``POINT_STYLES`` marks a visit: awaiting review before all else (it does
    not count yet), then not counted, then whose outline counts."""
    if awaiting:
        return "awaiting"
    if not visit["counted"]:
        return "uncounted"
    return "manual" if manual else "model"


UNMEASURED_TRACE = "no wound found (left as a gap, not 0 cm²)"


def with_gaps(visits: list[dict[str, Any]], unmeasured: frozenset[str]) -> list[dict[str, Any]]:
    """The visits with an area, those in ``unmeasured`` (no wound found in a photo of an
    open wound) with no area: plotly leaves a gap there instead of a fall to 0 cm², which
    reads as healed."""
    return [
        {**v, "area_cm2": None, "area_cm2_low": None, "area_cm2_high": None}
        if v["assessment"] in unmeasured
        else v
        for v in visits
        if v["area_cm2"] is not None
    ]


def area_figure(
    answer: dict[str, Any],
    *,
    title: str,
    manual: frozenset[str] = frozenset(),
    awaiting: frozenset[str] = frozenset(),
    unmeasured: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Area over time: one point per assessment with an area, marked by kind
    (``POINT_STYLES``: model, clinician's outline, awaiting review, not counted), the
    95 % interval as a band, clinician closure observations, and the confirmed closure
    and recurrence as vertical lines with their own legend entries. A photo in
    ``unmeasured`` is a gap (``with_gaps``)."""
    visits = answer["visits"]
    measured = with_gaps(visits, unmeasured)
    kinds = [
        point_kind(v, manual=v["assessment"] in manual, awaiting=v["assessment"] in awaiting)
        for v in measured
    ]
    shown = [v for v in measured if v["area_cm2"] is not None]
    data = [
        *_interval_band(shown),
        _area_trace(measured, kinds),
        *_point_legend(
            [k for k, v in zip(kinds, measured, strict=True) if v["area_cm2"] is not None]
        ),
        *_gap_legend(len(shown) < len(measured)),
        *_closed_markers(visits),
        *_closure_lines(answer, shown),
    ]
    return {"data": data, "layout": _area_layout(title)}


def _gap_legend(any_gap: bool) -> list[dict[str, Any]]:
    """A legend entry that says what a gap in the area line is (none without a gap)."""
    if not any_gap:
        return []
    return [
        {
            "type": "scatter",
            "mode": "lines",
            "name": UNMEASURED_TRACE,
            "x": [None],
            "y": [None],
            "line": {"color": "#8896ab", "dash": "dot"},
            "hoverinfo": "skip",
        }
    ]


def _interval_band(measured: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The 95 % interval of the visits that have one, as a filled band (none without)."""
    banded = [
        v for v in measured if v["area_cm2_low"] is not None and v["area_cm2_high"] is not None
    ]
    if not banded:
        return []
    return [
        {
            "type": "scatter",
            "mode": "lines",
            "name": BAND_TRACE,
            "x": [v["captured_at"] for v in banded] + [v["captured_at"] for v in banded[::-1]],
            "y": [v["area_cm2_high"] for v in banded] + [v["area_cm2_low"] for v in banded[::-1]],
            "fill": "toself",
            "fillcolor": "rgba(29,53,87,0.18)",
            "line": {"width": 0},
            "hoverinfo": "skip",
        }
    ]


def _area_trace(measured: list[dict[str, Any]], kinds: list[str]) -> dict[str, Any]:
    """The area line, each point drawn as its kind; out of the legend (``_point_legend``
    names the kinds), the hover says the day, PAR and kind."""
    colours = [POINT_STYLES[k][2] for k in kinds]
    return {
        "type": "scatter",
        "mode": "lines+markers",
        "name": AREA_TRACE,
        "x": [v["captured_at"] for v in measured],
        "y": [v["area_cm2"] for v in measured],
        "customdata": [
            [v["day"], v["par_pct"], v["assessment"], POINT_STYLES[k][0]]
            for v, k in zip(measured, kinds, strict=True)
        ],
        "line": {"color": "#8896ab"},
        "marker": {
            "size": 10,
            "symbol": [POINT_STYLES[k][1] for k in kinds],
            "color": colours,
            "line": {"width": 2, "color": colours},
        },
        "showlegend": False,
        "hovertemplate": "day %{customdata[0]}: %{y:.2f} cm² (PAR %{customdata[1]:.0f} %)"
        "<br>%{customdata[3]}<extra>%{customdata[2]}</extra>",
    }


def _point_legend(kinds: list[str]) -> list[dict[str, Any]]:
    """One empty trace per kind of point on the plot: a legend entry each, in
    ``POINT_STYLES`` order (one trace of many marker styles has no per-point legend)."""
    return [
        {
            "type": "scatter",
            "mode": "markers",
            "name": label,
            "x": [None],
            "y": [None],
            "marker": {"size": 10, "symbol": symbol, "color": colour},
            "hoverinfo": "skip",
        }
        for kind, (label, symbol, colour) in POINT_STYLES.items()
        if kind in kinds
    ]


def _closed_markers(visits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stars at zero where a clinician recorded the wound closed (none without)."""
    closed = [v for v in visits if v["closed"]]
    if not closed:
        return []
    return [
        {
            "type": "scatter",
            "mode": "markers",
            "name": "recorded closed (clinician)",
            "x": [v["captured_at"] for v in closed],
            "y": [0 for _ in closed],
            "marker": {"symbol": "star", "size": 12, "color": "#2a9d4b"},
            "hovertemplate": "day %{text}: recorded closed<extra></extra>",
            "text": [str(v["day"]) for v in closed],
        }
    ]


def _closure_lines(answer: dict[str, Any], measured: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Dashed vertical lines at the confirmed closure and the recurrence (on the date
    of that visit), as tall as the plot's highest point or interval."""
    day_to_date = {v["day"]: v["captured_at"] for v in answer["visits"]}
    top = max([v["area_cm2_high"] or v["area_cm2"] for v in measured] or [1.0]) or 1.0
    return [
        {
            "type": "scatter",
            "mode": "lines",
            "name": f"{label} (day {day})",
            "x": [day_to_date[day], day_to_date[day]],
            "y": [0, top * 1.05],
            "line": {"color": colour, "dash": "dash", "width": 2},
            "hoverinfo": "name",
        }
        for day, colour, label in (
            (answer.get("closure_day"), "#2a9d4b", "closure confirmed"),
            (answer.get("recurrence_day"), "#c0392b", "recurrence"),
        )
        if day is not None and day in day_to_date
    ]


def _area_layout(title: str) -> dict[str, Any]:
    """The layout of the area plots (a wound's, a subject's): area against capture date."""
    return {
        "title": {"text": title},
        "xaxis": {"title": {"text": "captured"}, "type": "date"},
        "yaxis": {"title": {"text": "area (cm²)"}, "rangemode": "tozero"},
        "legend": LEGEND_BELOW,
        "margin": {"t": 50, "r": 20, "l": 60},
    }


def subject_figure(
    answer: dict[str, Any], *, title: str, unmeasured: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Every wound's area over the subject's visits on one plot (open markers: not
    counted), one colour per wound; a photo in ``unmeasured`` is a gap (``with_gaps``)."""
    data: list[dict[str, Any]] = []
    for i, wound in enumerate(answer["wounds"]):
        measured = with_gaps(wound["visits"], unmeasured)
        if not measured:
            continue
        colour = PALETTE[i % len(PALETTE)]
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": str(wound["label"]),
                "x": [v["captured_at"] for v in measured],
                "y": [v["area_cm2"] for v in measured],
                "customdata": [[v["day"], v["assessment"]] for v in measured],
                "line": {"color": colour},
                "marker": {
                    "size": 9,
                    "color": colour,
                    "symbol": ["circle" if v["counted"] else "circle-open" for v in measured],
                },
                "hovertemplate": f"{wound['label']} day %{{customdata[0]}}: %{{y:.2f}} cm²"
                "<extra>%{customdata[1]}</extra>",
            }
        )
    return {"data": data, "layout": _area_layout(title)}


def incidence_figure(answer: dict[str, Any], *, title: str) -> dict[str, Any]:
    """Cumulative incidence of healing (Aalen–Johansen, death and index-leg major
    amputation competing) with its 95 % band, as the study answer gives it."""
    ci = answer["cumulative_incidence"]
    data: list[dict[str, Any]] = []
    if ci["timeline_days"]:
        data = step_traces(
            "healed (death, major amputation competing)",
            ci,
            ci["cumulative_incidence"],
            PALETTE[2],
            band_name="95% CI",
            hover="day %{x}: %{y:.2f} healed<extra></extra>",
        )
    return step_figure(data, title, "cumulative incidence of healing")
