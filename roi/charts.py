"""Plotly figures for the planning pages, built on the server as plain dicts.

Plain dicts rather than ``plotly.graph_objects`` because building and validating a
``go.Figure`` costs tens of milliseconds per chart, and the calculator redraws three charts on
every debounced keystroke; the dicts follow Plotly's figure schema exactly and are rendered by
``static/opshero/js/app.js`` from a ``<script type="application/json">`` block (no inline JS,
as the content security policy requires).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from roi.engine import PLACEMENTS, RoiResult, TornadoResult
from roi.reports import PLACEMENT_LABELS, current_currency, format_money
from roi.scorecard import Category, RankedStack

PLACEMENT_COLOURS = {
    "on_device": "#206bc4",
    "near_edge": "#2fb344",
    "cloud": "#f59f00",
    "hybrid": "#ae3ec9",
}
SERIES_COLOURS = ("#206bc4", "#2fb344", "#f59f00", "#ae3ec9", "#d63939", "#17a2b8")

CATEGORY_SHORT = {
    Category.MODEL_COMPATIBILITY: "Compatibility",
    Category.PERFORMANCE: "Performance",
    Category.QUANTIZATION: "Quantization",
    Category.POWER_THERMAL: "Power & thermal",
    Category.OFFLINE: "Offline",
    Category.UPDATE_STRATEGY: "Update strategy",
    Category.OBSERVABILITY: "Observability",
    Category.SECURITY: "Security",
}

_FONT = {"family": "Inter, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12}
_CONFIG = {"displayModeBar": False, "responsive": True}


def _layout(**extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "font": _FONT,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "margin": {"l": 10, "r": 10, "t": 10, "b": 40},
        "legend": {"orientation": "h", "y": -0.2},
        "hoverlabel": {"font": _FONT},
    }
    layout.update(extra)
    return layout


def tornado_figure(result: TornadoResult, *, top: int = 10) -> dict[str, Any]:
    """Horizontal bars from the base NPV to the NPV with one input at its low / high value.

    The biggest swing is on top: the assumption that matters most, for the CFO conversation.
    """
    bars = list(result.bars[:top])
    labels = [bar.label for bar in bars]
    base = result.base
    low_hover = [
        f"{bar.label}<br>at low ({bar.low:g}): NPV {format_money(bar.output_at_low)}"
        for bar in bars
    ]
    high_hover = [
        f"{bar.label}<br>at high ({bar.high:g}): NPV {format_money(bar.output_at_high)}"
        for bar in bars
    ]
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "name": "Input at its low value",
            "y": labels,
            "x": [bar.output_at_low - base for bar in bars],
            "base": [base] * len(bars),
            "marker": {"color": "#d63939"},
            "hovertext": low_hover,
            "hoverinfo": "text",
        },
        {
            "type": "bar",
            "orientation": "h",
            "name": "Input at its high value",
            "y": labels,
            "x": [bar.output_at_high - base for bar in bars],
            "base": [base] * len(bars),
            "marker": {"color": "#2fb344"},
            "hovertext": high_hover,
            "hoverinfo": "text",
        },
    ]
    height = max(260, 34 * len(bars) + 90)
    layout = _layout(
        barmode="overlay",
        height=height,
        margin={"l": 10, "r": 20, "t": 10, "b": 40},
        xaxis={
            "title": {
                "text": f"NPV of {PLACEMENT_LABELS[str(result.placement)].lower()} "
                f"(base {format_money(base)})"
            },
            "zeroline": True,
            "zerolinecolor": "#667382",
            "tickformat": ",.0f",
            "automargin": True,
        },
        yaxis={"autorange": "reversed", "automargin": True},
        shapes=[
            {
                "type": "line",
                "x0": base,
                "x1": base,
                "yref": "paper",
                "y0": 0,
                "y1": 1,
                "line": {"color": "#1d273b", "width": 1, "dash": "dot"},
            }
        ],
    )
    return {"data": data, "layout": layout, "config": _CONFIG}


def cashflow_figure(result: RoiResult, *, focus: str = "") -> dict[str, Any]:
    """Cumulative undiscounted cash flow per placement, with break-even and payback marked."""
    data: list[dict[str, Any]] = []
    paybacks: dict[str, list] = {"x": [], "y": [], "text": [], "color": []}
    for placement in PLACEMENTS:
        econ = result[placement]
        key = str(placement)
        months = list(range(len(econ.cumulative_cash_flow)))
        label = PLACEMENT_LABELS[key]
        if econ.payback_month is not None:
            label += f" · pays back month {econ.payback_month}"
            paybacks["x"].append(econ.payback_month)
            paybacks["y"].append(econ.cumulative_cash_flow[econ.payback_month])
            paybacks["text"].append(
                f"{PLACEMENT_LABELS[key]} pays back in month {econ.payback_month}"
            )
            paybacks["color"].append(PLACEMENT_COLOURS[key])
        else:
            label += " · no payback"
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": label,
                "x": months,
                "y": list(econ.cumulative_cash_flow),
                "line": {
                    "color": PLACEMENT_COLOURS[key],
                    "width": 4 if key == focus else 2,
                    "shape": "hv",
                },
                "hovertemplate": "month %{x}: %{y:,.0f}<extra>"
                + PLACEMENT_LABELS[key]
                + "</extra>",
            }
        )
    data.append(
        {
            "type": "scatter",
            "mode": "markers",
            "name": "payback",
            "showlegend": False,
            "x": paybacks["x"],
            "y": paybacks["y"],
            "text": paybacks["text"],
            "hoverinfo": "text",
            "marker": {
                "size": 10,
                "color": paybacks["color"],
                "symbol": "diamond",
                "line": {"color": "#ffffff", "width": 1},
            },
        }
    )
    layout = _layout(
        height=380,
        margin={"l": 10, "r": 10, "t": 20, "b": 50},
        xaxis={"title": {"text": "Month"}, "dtick": 6, "range": [0, result.horizon_months]},
        yaxis={
            "title": {"text": f"Cumulative cash flow ({current_currency() or 'money'})"},
            "tickformat": ",.0f",
            "automargin": True,
            "zeroline": False,
        },
        shapes=[
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": 0,
                "y1": 0,
                "line": {"color": "#1d273b", "width": 1, "dash": "dash"},
            }
        ],
        annotations=[
            {
                "xref": "paper",
                "x": 1,
                "y": 0,
                "text": "break-even",
                "showarrow": False,
                "xanchor": "right",
                "yanchor": "top",
                "font": {"size": 10, "color": "#667382"},
            }
        ],
    )
    return {"data": data, "layout": layout, "config": _CONFIG}


def radar_figure(ranked: Sequence[RankedStack]) -> dict[str, Any]:
    """One closed polygon per candidate on the eight categories (1-5)."""
    theta = [CATEGORY_SHORT[category] for category in Category]
    data = []
    for index, row in enumerate(ranked):
        values = [row.candidate.scores[category].score for category in Category]
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        data.append(
            {
                "type": "scatterpolar",
                "name": f"{row.position}. {row.candidate.name}",
                "r": [*values, values[0]],
                "theta": [*theta, theta[0]],
                "fill": "toself",
                "opacity": 0.55,
                "line": {"color": colour, "width": 2},
                "hovertemplate": "%{theta}: %{r}/5<extra>" + row.candidate.name + "</extra>",
            }
        )
    layout = _layout(
        height=400,
        margin={"l": 90, "r": 90, "t": 30, "b": 20},
        polar={
            "radialaxis": {"range": [0, 5], "dtick": 1, "angle": 90, "tickfont": {"size": 10}},
            "angularaxis": {"direction": "clockwise"},
        },
        legend={"orientation": "h", "y": -0.12},
    )
    return {"data": data, "layout": layout, "config": _CONFIG}
