"""Plotly figures for the fleet health pages, built on the server as plain dicts.

Every figure here is a *field* figure (gateways' telemetry, merged from the rollups); the
titles say so. Plain dicts follow Plotly's figure schema and are rendered by
``static/opshero/js/app.js`` from a ``<script type="application/json" data-plotly-for=...>``
block, as the planning pages do (no inline JS: the content security policy forbids it).

Pure: no Django import. The inputs are ``telemetry.series``' dataclasses (what the selectors
build), so this module never imports ``selectors``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from itertools import pairwise
from typing import Any

from .series import DriftPoint, HealthSeries, VersionSeries

NO_DATA = "no data in this window"
SERIES_COLOURS = ("#206bc4", "#2fb344", "#f59f00", "#ae3ec9", "#d63939", "#17a2b8", "#667382")
GREY = "#9aa0ac"
RED = "#d63939"
OFFLINE_FILL = "rgba(214, 57, 57, 0.12)"

_FONT = {"family": "Inter, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12}
_CONFIG = {"displayModeBar": False, "responsive": True}
_JSON_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


def figure_json(figure: Mapping[str, Any] | None) -> str:
    """A figure as JSON that is safe inside ``<script type="application/json">`` (model names
    and class labels are user text: ``<``, ``>`` and ``&`` are escaped as ``json_script`` does)."""
    text = json.dumps(figure or {}, separators=(",", ":"), allow_nan=False, default=_default)
    return text.translate(_JSON_ESCAPES)


def _default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _iso(moments: Sequence[datetime]) -> list[str]:
    return [moment.isoformat() for moment in moments]


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title, "font": {"size": 13}, "x": 0, "xanchor": "left"},
        "font": _FONT,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
        "legend": {"orientation": "h", "y": -0.2},
        "height": 300,
        "hoverlabel": {"font": _FONT},
    }
    layout.update(extra)
    return layout


def empty_figure(title: str, message: str = NO_DATA) -> dict[str, Any]:
    """A figure that says there is nothing to draw, rather than an empty pair of axes."""
    layout = _layout(
        title,
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[
            {
                "text": message,
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "showarrow": False,
                "font": {"size": 14, "color": GREY},
            }
        ],
    )
    return {"data": [], "layout": layout, "config": _CONFIG}


def version_label(version: VersionSeries) -> str:
    return f"{version.model_name} {version.model_version}"


Window = tuple[datetime, datetime] | None


def _time_axis(window: Window, **extra: Any) -> dict[str, Any]:
    """The page's whole window on the x axis, so one bucket is not stretched across it."""
    axis: dict[str, Any] = {"type": "date", **extra}
    if window is not None:
        axis["range"] = [window[0].isoformat(), window[1].isoformat()]
    return axis


def _bar_width_ms(buckets: Sequence[datetime], window: Window) -> float:
    """Bars as wide as most of a bucket: Plotly guesses a width from the spacing of the
    points, and with one bucket it has none to go by."""
    if len(buckets) >= 2:
        step = min((b - a).total_seconds() for a, b in pairwise(buckets))
    elif window is not None and (window[1] - window[0]).total_seconds() <= 3 * 3600:
        step = 60.0
    else:
        step = 3600.0
    return 0.8 * step * 1000


def _offline_shapes(periods: Sequence[tuple[datetime, datetime]]) -> list[dict[str, Any]]:
    return [
        {
            "type": "rect",
            "xref": "x",
            "yref": "paper",
            "x0": start.isoformat(),
            "x1": end.isoformat(),
            "y0": 0,
            "y1": 1,
            "fillcolor": OFFLINE_FILL,
            "line": {"width": 0},
            "layer": "below",
        }
        for start, end in periods
    ]


# --- inference ---------------------------------------------------------------------------------


def latency_figure(
    versions: Sequence[VersionSeries],
    *,
    title: str = "Inference latency (field, ms)",
    window: Window = None,
) -> dict[str, Any]:
    """P50, P95 and P99 per bucket, one colour per version (P50 dotted, P99 dashed)."""
    if not any(v.buckets for v in versions):
        return empty_figure(title)
    data = []
    for index, version in enumerate(versions):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        x = _iso(version.buckets)
        for name, values, dash in (
            ("P50", version.p50, "dot"),
            ("P95", version.p95, "solid"),
            ("P99", version.p99, "dash"),
        ):
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": f"{version_label(version)} {name}",
                    "x": x,
                    "y": list(values),
                    "line": {"color": colour, "dash": dash, "width": 2 if name == "P95" else 1},
                    "marker": {"size": 4},
                    "connectgaps": False,
                }
            )
    layout = _layout(
        title, xaxis=_time_axis(window), yaxis={"title": {"text": "ms"}, "rangemode": "tozero"}
    )
    return {"data": data, "layout": layout, "config": _CONFIG}


def _shares(bins: Sequence[int]) -> list[float]:
    total = sum(bins)
    return [count / total for count in bins] if total else []


def confidence_figure(version: VersionSeries, *, title: str | None = None) -> dict[str, Any]:
    """The window's confidence histogram against the validation baseline, both as shares of
    their own totals (the baseline ran on far fewer or far more inputs than the field)."""
    bins = list(version.total.get("confidence_bins") or [])
    baseline = list(version.baseline_bins or [])
    title = title or f"Confidence, {version_label(version)} (field vs validation baseline)"
    if not baseline or not sum(baseline):
        title += " · no validation baseline"
    window = _shares(bins)
    if not window:
        return empty_figure(title)
    width = 1 / len(bins)
    x = [round((i + 0.5) * width, 4) for i in range(len(bins))]
    data: list[dict[str, Any]] = [
        {
            "type": "bar",
            "name": f"field ({sum(bins)} inferences)",
            "x": x,
            "y": window,
            "width": width * 0.9,
            "marker": {"color": SERIES_COLOURS[0]},
        }
    ]
    if baseline and sum(baseline):
        base_width = 1 / len(baseline)
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": f"validation baseline ({sum(baseline)} inputs, lab)",
                "x": [round((i + 0.5) * base_width, 4) for i in range(len(baseline))],
                "y": _shares(baseline),
                "line": {"color": SERIES_COLOURS[2], "shape": "hvh"},
            }
        )
    layout = _layout(
        title,
        xaxis={"title": {"text": "confidence"}, "range": [0, 1]},
        yaxis={"title": {"text": "share"}, "tickformat": ".0%", "rangemode": "tozero"},
        bargap=0.05,
    )
    return {"data": data, "layout": layout, "config": _CONFIG}


def class_mix_figure(
    version: VersionSeries, *, title: str | None = None, window: Window = None
) -> dict[str, Any]:
    """Predicted classes per bucket, stacked (counts, so the volume shows as well)."""
    title = title or f"Class mix, {version_label(version)} (field)"
    if not version.buckets or not version.class_mix:
        return empty_figure(title)
    x = _iso(version.buckets)
    width = _bar_width_ms(version.buckets, window)
    data = [
        {
            "type": "bar",
            "name": name,
            "x": x,
            "y": list(counts),
            "width": width,
            "marker": {"color": SERIES_COLOURS[index % len(SERIES_COLOURS)]},
        }
        for index, (name, counts) in enumerate(version.class_mix.items())
    ]
    layout = _layout(
        title,
        barmode="stack",
        xaxis=_time_axis(window),
        yaxis={"title": {"text": "inferences"}},
    )
    return {"data": data, "layout": layout, "config": _CONFIG}


def low_confidence_figure(
    versions: Sequence[VersionSeries],
    *,
    title: str = "Low-confidence share (field, < 0.5)",
    window: Window = None,
) -> dict[str, Any]:
    if not any(v.buckets for v in versions):
        return empty_figure(title)
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": version_label(version),
            "x": _iso(version.buckets),
            "y": list(version.low_confidence_share),
            "line": {"color": SERIES_COLOURS[index % len(SERIES_COLOURS)]},
        }
        for index, version in enumerate(versions)
    ]
    layout = _layout(
        title, xaxis=_time_axis(window), yaxis={"tickformat": ".0%", "rangemode": "tozero"}
    )
    return {"data": data, "layout": layout, "config": _CONFIG}


# --- drift -------------------------------------------------------------------------------------


def drift_figure(
    points: Sequence[DriftPoint],
    *,
    labels: Mapping[str, str] | None = None,
    title: str = "Signals per window (field)",
    window: Window = None,
) -> dict[str, Any]:
    """One panel per signal kind: the statistic against its threshold, breached windows in
    red, windows that could not be judged as grey markers (a gap in the value line)."""
    if not points:
        return empty_figure(title)
    labels = labels or {}
    kinds = sorted({p.kind for p in points})
    rows = len(kinds)
    gap = 0.08 if rows > 1 else 0.0
    height = (1 - gap * (rows - 1)) / rows
    data: list[dict[str, Any]] = []
    layout = _layout(
        title,
        height=max(300, 170 * rows),
        showlegend=True,
        xaxis=_time_axis(window, anchor=f"y{rows if rows > 1 else ''}"),
    )
    for row, kind in enumerate(kinds):
        axis = "" if row == 0 else str(row + 1)
        yref = f"y{axis}"
        top = 1 - row * (height + gap)
        layout[f"yaxis{axis}"] = {
            "domain": [max(0.0, top - height), top],
            "title": {"text": labels.get(kind, kind), "font": {"size": 11}},
            "rangemode": "tozero",
            "anchor": "x",
        }
        mine = sorted((p for p in points if p.kind == kind), key=lambda p: p.window_end)
        x = [p.window_end.isoformat() for p in mine]
        show = row == 0
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "value",
                "legendgroup": "value",
                "showlegend": show,
                "x": x,
                "y": [p.value if p.evaluated else None for p in mine],
                "text": [f"{p.statistic} {p.reason}".strip() for p in mine],
                "line": {"color": SERIES_COLOURS[0]},
                "connectgaps": False,
                "yaxis": yref,
            }
        )
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "threshold",
                "legendgroup": "threshold",
                "showlegend": show,
                "x": x,
                "y": [p.threshold for p in mine],
                "line": {"color": GREY, "dash": "dash", "shape": "hv"},
                "yaxis": yref,
            }
        )
        breached = [p for p in mine if p.evaluated and p.breached]
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "breached",
                "legendgroup": "breached",
                "showlegend": show,
                "x": [p.window_end.isoformat() for p in breached],
                "y": [p.value for p in breached],
                "text": [p.reason for p in breached],
                "marker": {"color": RED, "size": 10, "symbol": "x"},
                "yaxis": yref,
            }
        )
        skipped = [p for p in mine if not p.evaluated]
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "not evaluated",
                "legendgroup": "not evaluated",
                "showlegend": show,
                "x": [p.window_end.isoformat() for p in skipped],
                "y": [p.threshold or 0 for p in skipped],
                "text": [f"not evaluated: {p.reason}" for p in skipped],
                "hoverinfo": "x+text",
                "marker": {"color": GREY, "size": 8, "symbol": "circle-open"},
                "yaxis": yref,
            }
        )
    return {"data": data, "layout": layout, "config": _CONFIG}


# --- device health -----------------------------------------------------------------------------


def temperature_power_figure(
    health: HealthSeries, *, title: str = "Temperature and power (field)", window: Window = None
) -> dict[str, Any]:
    has = any(v is not None for v in [*health.temperature_mean, *health.power_mean])
    if not health.buckets or not has:
        return empty_figure(title)
    x = _iso(health.buckets)
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "temperature mean (°C)",
            "x": x,
            "y": list(health.temperature_mean),
            "line": {"color": SERIES_COLOURS[4]},
        },
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "temperature max (°C)",
            "x": x,
            "y": list(health.temperature_max),
            "line": {"color": SERIES_COLOURS[4], "dash": "dot"},
        },
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "power mean (W)",
            "x": x,
            "y": list(health.power_mean),
            "line": {"color": SERIES_COLOURS[0]},
            "yaxis": "y2",
        },
    ]
    layout = _layout(
        title,
        xaxis=_time_axis(window),
        yaxis={"title": {"text": "°C"}},
        yaxis2={"title": {"text": "W"}, "overlaying": "y", "side": "right", "rangemode": "tozero"},
        shapes=_offline_shapes(health.offline_periods),
    )
    return {"data": data, "layout": layout, "config": _CONFIG}


def availability_figure(
    health: HealthSeries,
    *,
    title: str = "Online and throttled share (field)",
    window: Window = None,
) -> dict[str, Any]:
    """Online share and throttled share per bucket; offline periods shaded."""
    if not health.buckets:
        return empty_figure(title)
    x = _iso(health.buckets)
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "online share",
            "x": x,
            "y": list(health.online_share),
            "line": {"color": SERIES_COLOURS[1]},
        },
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "throttled share",
            "x": x,
            "y": list(health.throttled_share),
            "line": {"color": SERIES_COLOURS[2]},
        },
    ]
    if health.offline_periods:
        data.append(  # a legend entry for the shading
            {
                "type": "scatter",
                "mode": "markers",
                "name": "offline",
                "x": [None],
                "y": [None],
                "marker": {"color": OFFLINE_FILL, "size": 12, "symbol": "square"},
            }
        )
    layout = _layout(
        title,
        xaxis=_time_axis(window),
        yaxis={"tickformat": ".0%", "range": [0, 1.05]},
        shapes=_offline_shapes(health.offline_periods),
    )
    return {"data": data, "layout": layout, "config": _CONFIG}


def loss_figure(
    health: HealthSeries, *, title: str = "Loss accounting (field)", window: Window = None
) -> dict[str, Any]:
    """Events delivered and replays dropped per bucket; events the gateway had to evict from
    its buffer are a counter, so they are given in the title for the whole window."""
    total = health.total
    evicted = int(total.get("evicted_max") or 0)
    title = (
        f"{title}: {int(total.get('delivered') or 0)} delivered, "
        f"{int(total.get('duplicates') or 0)} duplicates dropped, {evicted} evicted on the gateway"
    )
    if not health.buckets:
        return empty_figure(title)
    x = _iso(health.buckets)
    width = _bar_width_ms(health.buckets, window) / 2
    data = [
        {
            "type": "bar",
            "name": "delivered",
            "width": width,
            "x": x,
            "y": list(health.delivered),
            "marker": {"color": SERIES_COLOURS[1]},
        },
        {
            "type": "bar",
            "name": "duplicates (dropped)",
            "width": width,
            "x": x,
            "y": list(health.duplicates),
            "marker": {"color": SERIES_COLOURS[2]},
        },
    ]
    layout = _layout(
        title,
        barmode="group",
        xaxis=_time_axis(window),
        yaxis={"title": {"text": "events"}},
    )
    return {"data": data, "layout": layout, "config": _CONFIG}
