"""The INT8 and FP16 variant steps, on the digits MLP and its uploaded inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from onnxcheck.inspection import inspect_model, sha256_file
from onnxcheck.integrity import check_integrity
from onnxcheck.variants import check_fp16_variant, check_int8_variant
from tests.onnxcheck.rules import VARIANT_QUICK


def test_int8_variant_of_digits_keeps_accuracy(tmp_path, digits, digits_inputs):
    result = check_int8_variant(
        model_path=digits.model_path,
        inputs=digits_inputs,
        output_dir=tmp_path,
        intra_op_num_threads=1,
        latency_rule=VARIANT_QUICK,
    )
    assert result.status == "passed", result.findings
    variant, fidelity = result.data["variant"], result.data["fidelity"]
    path = Path(variant["path"])
    assert path.parent == tmp_path and sha256_file(path) == variant["sha256"]
    assert variant["method"] == "dynamic"
    assert inspect_model(path=path).quantization == "int8-dynamic"
    assert variant["derived_from_sha256"] == sha256_file(digits.model_path)
    # FP32 through onnxruntime agrees with scikit-learn's own score on the same split.
    assert fidelity["fp32_accuracy"] == pytest.approx(digits.test_accuracy, abs=0.01)
    assert 0.93 <= fidelity["fp32_accuracy"] <= 1.0
    drop = fidelity["accuracy_drop_points"]
    assert drop == pytest.approx(100 * (fidelity["fp32_accuracy"] - fidelity["variant_accuracy"]))
    assert abs(drop) <= 1.0
    assert fidelity["top1_agreement"] >= 0.98
    assert fidelity["sqnr_db"] > 20
    assert fidelity["evaluated_samples"] == digits.sample_count
    assert variant["size_bytes"] < variant["baseline_size_bytes"]


def test_fp16_variant_keeps_fp32_inputs_and_outputs(tmp_path, digits, digits_inputs):
    result = check_fp16_variant(
        model_path=digits.model_path,
        inputs=digits_inputs,
        output_dir=tmp_path,
        intra_op_num_threads=1,
        latency_rule=VARIANT_QUICK,
    )
    assert result.status == "passed", result.findings
    metadata = inspect_model(path=result.data["variant"]["path"])
    assert metadata.quantization == "fp16"
    assert metadata.inputs[0].dtype == "float32"
    assert {o.name: o.dtype for o in metadata.outputs}["probabilities"] == "float32"
    assert result.data["fidelity"]["top1_agreement"] >= 0.99
    variant = result.data["variant"]
    check = check_integrity(model_path=variant["path"], expected_sha256=variant["sha256"])
    assert check.status == "passed", check.findings  # a registrable, valid model


def test_a_produced_variant_below_the_sqnr_threshold_is_not_registrable(
    tmp_path, digits, digits_inputs
):
    result = check_fp16_variant(
        model_path=digits.model_path,
        inputs=digits_inputs,
        output_dir=tmp_path,
        intra_op_num_threads=1,
        latency_rule=VARIANT_QUICK,
        min_top1_agreement=0.99,
        min_sqnr_db=200.0,  # no FP16 conversion reaches it
    )
    assert result.status == "passed", result.findings  # a poor variant is evidence, not a fault
    variant, sqnr = result.data["variant"], result.data["fidelity"]["sqnr_db"]
    assert variant["calibration"] == "none"
    assert variant["registrable"] is False
    assert variant["refusals"] == [f"SQNR {sqnr:.1f} dB < 200 dB"]
    assert result.data["fidelity"]["max_abs_difference"] > 0
    assert any(f.startswith("the fp16 variant is not registrable") for f in result.findings)


def test_a_model_that_is_already_a_variant_is_not_quantized_again(
    tmp_path, digits_inputs, digits_int8_variant, digits_fp16_variant
):
    for path, kind in ((digits_int8_variant, "INT8"), (digits_fp16_variant, "FP16")):
        for check in (check_int8_variant, check_fp16_variant):
            result = check(model_path=path, inputs=digits_inputs, output_dir=tmp_path)
            assert result.status == "skipped"
            assert result.findings == [
                f"this model is itself an {kind} variant; it is not quantized again"
            ]
            assert result.data["not_applicable"] is True
    assert not list(tmp_path.glob("*.onnx"))  # nothing was written
