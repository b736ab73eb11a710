"""Plotly figures for validation reports, built server-side as JSON.

Pages embed the JSON in ``<script type="application/json" data-plotly-for=...>`` and
``static/opshero/js/app.js`` draws it, so no inline script is needed (content security policy).
"""

from __future__ import annotations

import json
import math
from typing import Any

from onnxcheck.latency import format_ms, interval_text

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
    """Distribution of run times for one shape bucket, with P50/P95/P99 marked and each one's
    confidence interval shaded (a P99 without its bound is not marked). The bins span the bulk
    of the runs; slower runs are one bar past it, and a logarithmic axis is used when the
    step chose logarithmic bins (``histogram.scale``)."""
    histogram = bucket.get("histogram") or {}
    edges, counts = histogram.get("edges_ms") or [], histogram.get("counts") or []
    if len(edges) < 2 or not counts:
        return None
    log = histogram.get("scale") == "log"
    if log:
        centres = [(edges[i] * edges[i + 1]) ** 0.5 for i in range(len(counts))]
    else:
        centres = [(edges[i] + edges[i + 1]) / 2 for i in range(len(counts))]
    widths = [edges[i + 1] - edges[i] for i in range(len(counts))]
    shapes, annotations = [], []
    marks = (("p50", "P50", BLUE), ("p95", "P95", ORANGE), ("p99", "P99", "#d63939"))
    for row, (key, label, colour) in enumerate(marks):
        value = bucket.get(f"{key}_ms")
        low, high = bucket.get(f"{key}_ci_low_ms"), bucket.get(f"{key}_ci_high_ms")
        if value is None or (key == "p99" and high is None):
            continue
        if low is not None or high is not None:
            shapes.append(
                {
                    "type": "rect",
                    "x0": low if low is not None else value,
                    "x1": high if high is not None else value,
                    "yref": "paper",
                    "y0": 0,
                    "y1": 1,
                    "fillcolor": colour,
                    "opacity": 0.15,
                    "line": {"width": 0},
                    "layer": "below",
                }
            )
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
        interval = f" {interval_text(low, high)}" if low is not None or high is not None else ""
        annotations.append(
            {
                "x": math.log10(value) if log and value > 0 else value,
                "yref": "paper",
                "y": 0.97 - 0.09 * row,
                "xanchor": "left",
                "text": f" {label} {format_ms(value)} ms{interval}",
                "showarrow": False,
                "bgcolor": "rgba(255,255,255,0.8)",
                "font": {"color": colour, "size": 11},
            }
        )
    data = [
        {
            "type": "bar",
            "x": centres,
            "y": counts,
            "width": widths,
            "marker": {"color": BLUE, "opacity": 0.75},
            "name": "runs",
            "hovertemplate": "%{x:.3g} ms: %{y} runs<extra></extra>",
        }
    ]
    overflow = histogram.get("overflow_count") or 0
    top = edges[-1]
    if overflow:
        data.append(
            {
                "type": "bar",
                "x": [top * 1.08 if log else top + 1.5 * widths[-1]],
                "y": [overflow],
                "width": [top * 0.1 if log else 2 * widths[-1]],
                "marker": {"color": GREY, "opacity": 0.75},
                "name": "slower",
                "hovertemplate": f"{overflow} runs slower than {format_ms(top)} ms "
                f"(max {format_ms(histogram.get('max_ms'))} ms)<extra></extra>",
            }
        )
    right = top * 1.2 if log else top + 3 * widths[-1]
    if "overflow_count" not in histogram:  # reports before issue 9: bins span every run
        right = min(edges[-1], 2 * (bucket.get("p99_ms") or edges[-1]))
    xaxis: dict[str, Any] = {"title": {"text": "ms per inference"}}
    if log:
        xaxis.update(type="log", range=[math.log10(edges[0]), math.log10(right)])
    else:
        xaxis["range"] = [edges[0], right]
    return _figure(
        data,
        {
            "title": {
                "text": f"Latency, bucket {bucket.get('label')} ({bucket.get('runs')} runs; "
                "shaded: 95 % confidence bounds)",
                "font": {"size": 13},
            },
            "xaxis": xaxis,
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
