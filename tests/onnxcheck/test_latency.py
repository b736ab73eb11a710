"""The latency step and its statistics; no timing is asserted, only consistency."""

from __future__ import annotations

import numpy as np
import pytest

from onnxcheck.inputs import synthesize_inputs
from onnxcheck.inspection import inspect_model
from onnxcheck.latency import REFERENCE_LABEL, check_latency, p95_confidence_interval
from tests import onnx_models
from tests.onnxcheck.rules import QUICK


def test_p95_confidence_interval_order_statistics():
    sample = np.arange(1, 101)
    assert p95_confidence_interval(sample) == (90.0, 100.0)
    assert p95_confidence_interval(np.arange(1, 51)) is None  # too few runs to bound a P95


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
    assert sum(bucket["histogram"]["counts"]) == bucket["runs"]
    assert bucket["stopped_by"] in {"precision", "max_runs", "max_seconds"}
    assert bucket["throughput_inferences_per_s"] == pytest.approx(1000 / bucket["mean_ms"])


def test_latency_counts_items_per_batch(tmp_path, digits, digits_inputs):
    result = check_latency(
        model_path=digits.model_path, inputs=digits_inputs, rule=QUICK, intra_op_num_threads=1
    )
    one, eight = result.data["buckets"]
    assert (one["batch_size"], eight["batch_size"]) == (1, 8)
    per_second = eight["throughput_inferences_per_s"]
    assert eight["throughput_items_per_s"] == pytest.approx(8 * per_second)
