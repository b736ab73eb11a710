"""Plotly figures for the field accuracy page, built on the server as plain dicts.

Drawn by ``static/opshero/js/app.js`` from ``<script type="application/json" data-plotly-for>``
blocks (``telemetry/partials/figure.html``), like the fleet health charts: no inline JS.
Every title says where its figures come from (field: reviews, operator thumbs, estimated).
Pure: no Django import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from telemetry.charts import GREY, SERIES_COLOURS, empty_figure, figure_json

from .accuracy import Calibration, ConfusionMatrix

__all__ = ["accuracy_over_time", "confusion_figure", "figure_json", "reliability_figure"]

_FONT = {"family": "Inter, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12}


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title, "font": {"size": 13}, "x": 0, "xanchor": "left"},
        "font": _FONT,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
        "legend": {"orientation": "h", "y": -0.25},
        "height": 320,
    }
    layout.update(extra)
    return layout


def confusion_figure(matrix: ConfusionMatrix) -> dict[str, Any]:
    """Heatmap: rows the reviewers' true class, columns the model's prediction."""
    title = "Confusion matrix (field: reviews)"
    if not matrix.total:
        return empty_figure(title, "no reviews in this window")
    labels = list(matrix.labels)
    return {
        "data": [
            {
                "type": "heatmap",
                "z": [list(row) for row in matrix.counts],
                "x": labels,
                "y": labels,
                # plotly.js's "Blues" runs dark to light: reversed, an empty cell is pale and
                # the counts stand out.
                "colorscale": "Blues",
                "reversescale": True,
                "zmin": 0,
                "showscale": False,
                "texttemplate": "%{z}",
                "hovertemplate": "true %{y}, predicted %{x}: %{z}<extra></extra>",
            }
        ],
        "layout": _layout(
            title,
            xaxis={"title": {"text": "predicted"}, "type": "category"},
            yaxis={
                "title": {"text": "true (reviewed)"},
                "type": "category",
                "autorange": "reversed",
            },
        ),
    }


def reliability_figure(calibration: Calibration) -> dict[str, Any]:
    """Reliability diagram: accuracy per confidence bin against the diagonal of perfect
    calibration; bar width is the bin, hover gives its count."""
    title = "Reliability diagram (field: reviews, 15 bins)"
    filled = [b for b in calibration.bins if b.count]
    if not filled:
        return empty_figure(title, "no reviews in this window")
    return {
        "data": [
            {
                "type": "bar",
                "name": "accuracy in bin",
                "x": [(b.lower + b.upper) / 2 for b in filled],
                "y": [b.accuracy for b in filled],
                "width": [b.upper - b.lower for b in filled],
                "customdata": [[b.count, b.confidence_mean] for b in filled],
                "hovertemplate": "accuracy %{y:.0%} over %{customdata[0]} reviews, mean "
                "confidence %{customdata[1]:.2f}<extra></extra>",
                "marker": {"color": SERIES_COLOURS[0]},
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": "perfectly calibrated",
                "x": [0, 1],
                "y": [0, 1],
                "line": {"color": GREY, "dash": "dash"},
            },
        ],
        "layout": _layout(
            title,
            xaxis={"title": {"text": "confidence"}, "range": [0, 1]},
            yaxis={"title": {"text": "accuracy"}, "range": [0, 1], "tickformat": ".0%"},
        ),
    }


def accuracy_over_time(
    *,
    starts: Sequence[str],
    reviewed: Sequence[float | None],
    reviewed_low: Sequence[float | None],
    reviewed_high: Sequence[float | None],
    thumbs: Sequence[float | None],
    estimated: Sequence[float | None],
    lab: float | None,
) -> dict[str, Any]:
    """Reviewed accuracy (with its Wilson interval as error bars), thumbs and estimated accuracy
    per day or week; the lab accuracy as a labelled dashed line."""
    title = "Accuracy over time"
    if not any(v is not None for v in (*reviewed, *thumbs, *estimated)):
        return empty_figure(title, "no reviews, thumbs or inferences in this window")
    plus = [
        h - v if h is not None and v is not None else None
        for v, h in zip(reviewed, reviewed_high, strict=True)
    ]
    minus = [
        v - lo if lo is not None and v is not None else None
        for v, lo in zip(reviewed, reviewed_low, strict=True)
    ]
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "markers+lines",
            "name": "field: reviews (95 % interval)",
            "x": list(starts),
            "y": list(reviewed),
            "error_y": {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus},
            "connectgaps": True,
            "line": {"color": SERIES_COLOURS[0]},
        },
        {
            "type": "scatter",
            "mode": "markers+lines",
            "name": "field: operator thumbs",
            "x": list(starts),
            "y": list(thumbs),
            "connectgaps": True,
            "line": {"color": SERIES_COLOURS[1]},
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "field: estimated from confidence",
            "x": list(starts),
            "y": list(estimated),
            "connectgaps": True,
            "line": {"color": SERIES_COLOURS[2], "dash": "dot"},
        },
    ]
    if lab is not None and starts:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "lab: validation run",
                "x": [starts[0], starts[-1]],
                "y": [lab, lab],
                "line": {"color": GREY, "dash": "dash"},
            }
        )
    return {
        "data": data,
        "layout": _layout(title, yaxis={"range": [0, 1.05], "tickformat": ".0%"}),
    }
