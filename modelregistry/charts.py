"""Plotly figures for validation reports, built server-side as JSON.

Pages embed the JSON in ``<script type="application/json" data-plotly-for=...>`` and
``static/opshero/js/app.js`` draws it, so no inline script is needed (content security policy).
"""

from __future__ import annotations

import json
from typing import Any

BLUE = "#206bc4"
ORANGE = "#f76707"
GREY = "#9ba9be"

_LAYOUT = {
    "margin": {"l": 48, "r": 16, "t": 36, "b": 44},
    "font": {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12},
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
    "legend": {"orientation": "h", "y": -0.2},
}


def _figure(data: list[dict], layout: dict[str, Any]) -> str:
    return json.dumps(
        {"data": data, "layout": {**_LAYOUT, **layout}, "config": {"displaylogo": False}}
    )


def latency_histogram(bucket: dict[str, Any]) -> str | None:
    """Distribution of run times for one shape bucket, with P50/P95/P99 marked."""
    histogram = bucket.get("histogram") or {}
    edges, counts = histogram.get("edges_ms") or [], histogram.get("counts") or []
    if len(edges) < 2 or not counts:
        return None
    centres = [(edges[i] + edges[i + 1]) / 2 for i in range(len(counts))]
    widths = [edges[i + 1] - edges[i] for i in range(len(counts))]
    shapes, annotations = [], []
    marks = (("p50_ms", "P50", BLUE), ("p95_ms", "P95", ORANGE), ("p99_ms", "P99", "#d63939"))
    for row, (key, label, colour) in enumerate(marks):
        value = bucket.get(key)
        if value is None:
            continue
        shapes.append(
            {
                "type": "line",
                "x0": value,
                "x1": value,
                "yref": "paper",
                "y0": 0,
                "y1": 1,
                "line": {"color": colour, "dash": "dot", "width": 2},
            }
        )
        annotations.append(
            {
                "x": value,
                "yref": "paper",
                "y": 0.97 - 0.09 * row,
                "xanchor": "left",
                "text": f" {label} {value:.3g} ms",
                "showarrow": False,
                "bgcolor": "rgba(255,255,255,0.8)",
                "font": {"color": colour, "size": 11},
            }
        )
    return _figure(
        [
            {
                "type": "bar",
                "x": centres,
                "y": counts,
                "width": widths,
                "marker": {"color": BLUE, "opacity": 0.75},
                "name": "runs",
                "hovertemplate": "%{x:.3g} ms: %{y} runs<extra></extra>",
            }
        ],
        {
            "title": {
                "text": f"Latency, bucket {bucket.get('label')} ({bucket.get('runs')} runs)",
                "font": {"size": 13},
            },
            # Rare outliers (a GC pause, a context switch) would squash the distribution; the
            # axis stops at twice the P99 and the table still reports the maximum.
            "xaxis": {
                "title": {"text": "ms per inference"},
                "range": [edges[0], min(edges[-1], 2 * (bucket.get("p99_ms") or edges[-1]))],
            },
            "yaxis": {"title": {"text": "runs"}},
            "shapes": shapes,
            "annotations": annotations,
            "height": 300,
            "showlegend": False,
        },
    )


def reliability_diagram(bins: list[dict[str, Any]], ece: float | None) -> str | None:
    """Accuracy against confidence per bin, against the diagonal of perfect calibration."""
    filled = [b for b in bins if b.get("count")]
    if not filled:
        return None
    return _figure(
        [
            {
                "type": "bar",
                "x": [(b["lower"] + b["upper"]) / 2 for b in filled],
                "y": [b["accuracy"] for b in filled],
                "width": [b["upper"] - b["lower"] for b in filled],
                "name": "accuracy in bin",
                "marker": {"color": BLUE, "opacity": 0.8},
                "customdata": [b["count"] for b in filled],
                "hovertemplate": "confidence %{x:.2f}: accuracy %{y:.2f} (%{customdata} samples)"
                "<extra></extra>",
            },
            {
                "type": "scatter",
                "x": [0, 1],
                "y": [0, 1],
                "mode": "lines",
                "name": "perfect calibration",
                "line": {"color": GREY, "dash": "dash"},
            },
        ],
        {
            "title": {
                "text": f"Reliability (ECE {ece:.3f}, 15 bins)"
                if ece is not None
                else "Reliability",
                "font": {"size": 13},
            },
            "xaxis": {"title": {"text": "confidence"}, "range": [0, 1]},
            "yaxis": {"title": {"text": "accuracy"}, "range": [0, 1]},
            "height": 300,
        },
    )
