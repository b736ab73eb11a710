"""The latency chart: confidence bands, the P99 only with its bound, readable sub-ms bins."""

from __future__ import annotations

import json

import numpy as np

from modelregistry.charts import latency_histogram
from onnxcheck.latency import summarize_runs


def _bucket(times_ms: np.ndarray) -> dict:
    stats = summarize_runs(
        (times_ms * 1e6).astype(np.int64),
        warmup_runs=0,
        first_run_ns=1,
        stopped_by="precision",
        measured_seconds=1.0,
    )
    return {**stats.to_dict(), "label": "batch=1"}


def test_sub_millisecond_chart_shades_each_interval_and_keeps_the_tail_apart():
    rng = np.random.default_rng(1)
    times = np.concatenate([rng.normal(0.013, 0.001, 400), [0.5, 3.0]])
    figure = json.loads(latency_histogram(_bucket(times)))
    bands = [s for s in figure["layout"]["shapes"] if s["type"] == "rect"]
    assert len(bands) == 3  # P50, P95 and, with 402 runs, the P99
    runs, slower = figure["data"]
    assert sum(runs["y"]) + sum(slower["y"]) == 402
    assert slower["y"][0] >= 2 and slower["x"][0] > runs["x"][-1]  # the 0.5 and 3 ms hiccups
    assert max(runs["y"]) < 100  # the bulk is spread over bins, not one solid bar
    texts = [a["text"] for a in figure["layout"]["annotations"]]
    assert any(t.startswith(" P95 0.0") and "[" in t for t in texts)


def test_p99_without_its_bound_is_not_marked():
    times = np.random.default_rng(2).normal(10, 0.5, 100)
    figure = json.loads(latency_histogram(_bucket(times)))
    texts = [a["text"] for a in figure["layout"]["annotations"]]
    assert [t.split()[0] for t in texts] == ["P50", "P95"]
