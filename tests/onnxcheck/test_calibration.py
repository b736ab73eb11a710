"""The calibration step: accuracy, ECE, reliability and the drift baseline."""

from __future__ import annotations

import numpy as np
import pytest

from onnxcheck.calibration import check_calibration
from onnxcheck.inputs import SYNTHETIC_NOTE, synthesize_inputs
from onnxcheck.inspection import inspect_model


def test_calibration_on_digits(digits, digits_inputs):
    result = check_calibration(
        model_path=digits.model_path, inputs=digits_inputs, intra_op_num_threads=1
    )
    assert result.status == "passed", result.findings
    data = result.data
    assert 0.0 <= data["ece"] <= 1.0
    assert data["accuracy"] == pytest.approx(digits.test_accuracy, abs=0.01)
    bins = data["reliability"]
    assert len(bins) == 15 and sum(b["count"] for b in bins) == digits.sample_count
    recomputed = sum(
        b["count"] / digits.sample_count * abs(b["accuracy"] - b["confidence_mean"])
        for b in bins
        if b["count"]
    )
    assert data["ece"] == pytest.approx(recomputed)
    baseline = data["drift_baseline"]
    assert baseline["predicted_class_mix"]["total"] == digits.sample_count
    assert sum(baseline["confidence_histogram"]["counts"]) == digits.sample_count
    assert baseline["label_class_mix"]["counts"] == np.bincount(digits_inputs.labels).tolist()


def test_calibration_is_skipped_on_synthetic_inputs(digits):
    metadata = inspect_model(path=digits.model_path)
    synthetic = synthesize_inputs(inputs=metadata.inputs, shape_buckets={"X[0]": [4]})
    result = check_calibration(model_path=digits.model_path, inputs=synthetic)
    assert result.status == "skipped" and result.findings == [SYNTHETIC_NOTE]
