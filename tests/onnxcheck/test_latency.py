"""The latency step and its statistics; no timing is asserted, only consistency."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from onnxcheck.inputs import synthesize_inputs
from onnxcheck.inspection import inspect_model
from onnxcheck.latency import (
    REFERENCE_LABEL,
    bucket_sentence,
    check_latency,
    latency_histogram,
    p95_confidence_interval,
    quantile_bound_ranks,
    quantile_bounds,
    summarize_runs,
)
from tests import onnx_models
from tests.onnxcheck.rules import QUICK


def test_p95_confidence_interval_order_statistics():
    sample = np.arange(1, 101)
    # Binomial(100, 0.95): P[B <= 98] = 0.9629 >= 0.95 > P[B <= 97] = 0.8817, so the 99th
    # value bounds the P95 from above; P[B <= 90] = 0.0282 <= 0.05 < P[B <= 91] = 0.0631.
    assert p95_confidence_interval(sample) == (91.0, 99.0)
    assert p95_confidence_interval(np.arange(1, 51)) is None  # too few runs to bound a P95


@pytest.mark.parametrize(
    ("n", "quantile"), [(59, 0.95), (100, 0.95), (300, 0.5), (299, 0.99), (1000, 0.99), (400, 0.95)]
)
def test_bounds_cover_at_least_95_percent_and_are_the_tightest(n, quantile):
    lower, upper = quantile_bound_ranks(n, quantile)
    # P[X(u) >= true quantile] = P[B <= u-1]; one rank lower would no longer cover 95 %.
    assert binom.cdf(upper - 1, n, quantile) >= 0.95
    assert binom.cdf(upper - 2, n, quantile) < 0.95
    # P[X(l) <= true quantile] = P[B >= l]; one rank higher would no longer cover 95 %.
    assert 1 - binom.cdf(lower - 1, n, quantile) >= 0.95
    assert 1 - binom.cdf(lower, n, quantile) < 0.95


def test_upper_bounds_need_59_runs_for_p95_and_299_for_p99():
    assert quantile_bound_ranks(59, 0.95)[1] == 59  # 1 - 0.95**59 = 0.9515
    assert quantile_bound_ranks(58, 0.95)[1] is None  # 1 - 0.95**58 = 0.9490
    assert quantile_bound_ranks(299, 0.99)[1] == 299
    assert quantile_bound_ranks(298, 0.99)[1] is None
    assert quantile_bounds(np.arange(1.0, 59.0), quantile=0.95)[1] is None
    assert quantile_bound_ranks(0, 0.5) == (None, None)


def test_summary_reports_p99_only_with_its_bound():
    few = summarize_runs(
        np.arange(1, 101) * 1_000_000,
        warmup_runs=0,
        first_run_ns=1,
        stopped_by="max_seconds",
        measured_seconds=1.0,
    )
    assert (few.p95_ci_low_ms, few.p95_ci_high_ms) == (91.0, 99.0)
    assert few.p99_ci_high_ms is None
    bucket = {**few.to_dict(), "label": "batch=1", "capped": True, "time_cap_s": 1.0}
    sentence = bucket_sentence(bucket)
    assert "P95 95.0 ms [91.0\u201399.0]" in sentence
    assert "P99 not available (100 runs; its bound needs 299)" in sentence
    assert "stopped by the 1 s time cap" in sentence
    many = summarize_runs(
        np.arange(1, 301) * 1_000_000,
        warmup_runs=0,
        first_run_ns=1,
        stopped_by="precision",
        measured_seconds=1.0,
    )
    assert many.p99_ci_high_ms == 300.0 and many.p99_ci_low_ms is not None  # rank 300 of 300


def test_sub_millisecond_histogram_is_readable():
    rng = np.random.default_rng(0)
    ms = np.sort(np.concatenate([rng.normal(0.013, 0.001, 500), [0.4, 2.0]]))
    histogram = latency_histogram(ms)
    assert sum(histogram["counts"]) + histogram["overflow_count"] == len(ms)
    assert histogram["overflow_count"] >= 2 and histogram["max_ms"] == 2.0
    assert histogram["edges_ms"][-1] < 0.02  # the bins span the bulk, not the hiccups
    assert max(histogram["counts"]) < 0.2 * len(ms)  # spread over bins, not one solid bar
    assert histogram["scale"] == "linear"
    wide = latency_histogram(np.sort(rng.lognormal(0, 1.5, 1000)))
    assert wide["scale"] == "log"


def test_latency_report_is_internally_consistent():
    path = onnx_models.light_model_path("squeezenet")
    inputs = synthesize_inputs(inputs=inspect_model(path=path).inputs)
    result = check_latency(model_path=path, inputs=inputs, rule=QUICK, intra_op_num_threads=1)
    assert result.status == "passed", result.findings
    data = result.data
    assert data["label"] == REFERENCE_LABEL and data["synthetic_inputs"] is True
    assert data["session_creation_ms"] > 0 and data["first_inference_ms"] > 0
    assert data["peak_rss_bytes"] >= data["rss_before_bytes"] > 0
    (bucket,) = data["buckets"]
    assert bucket["min_ms"] <= bucket["p50_ms"] <= bucket["p90_ms"] <= bucket["p95_ms"]
    assert bucket["p95_ms"] <= bucket["p99_ms"] <= bucket["max_ms"]
    assert QUICK.min_runs <= bucket["runs"] <= QUICK.max_runs
    histogram = bucket["histogram"]
    assert sum(histogram["counts"]) + histogram["overflow_count"] == bucket["runs"]
    assert bucket["stopped_by"] in {"precision", "max_runs", "max_seconds"}
    assert bucket["capped"] == (bucket["stopped_by"] == "max_seconds")
    assert bucket["time_cap_s"] == QUICK.max_seconds
    assert bucket["other_cpu_cores"] is None or bucket["other_cpu_cores"] >= 0
    assert data["load_average_before"] is not None and data["load_average_after"] is not None
    assert data["machine"]["cpu_model"]
    assert bucket["throughput_inferences_per_s"] == pytest.approx(1000 / bucket["mean_ms"])


def test_latency_counts_items_per_batch(tmp_path, digits, digits_inputs):
    result = check_latency(
        model_path=digits.model_path, inputs=digits_inputs, rule=QUICK, intra_op_num_threads=1
    )
    one, eight = result.data["buckets"]
    assert (one["batch_size"], eight["batch_size"]) == (1, 8)
    per_second = eight["throughput_inferences_per_s"]
    assert eight["throughput_items_per_s"] == pytest.approx(8 * per_second)
