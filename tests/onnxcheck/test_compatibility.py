"""The compatibility step: operators against a target's list, and its constraints."""

from __future__ import annotations

import dataclasses

import onnx
import pytest

from onnxcheck.compatibility import check_compatibility
from onnxcheck.inspection import inspect_model
from onnxcheck.operators import NNAPI_OPS_FILE, builtin_profile, mobile_ops_file_text
from tests import onnx_models


def test_nnapi_flags_what_the_shipped_list_lacks_in_the_digits_mlp(digits, digits_inputs):
    text = mobile_ops_file_text(NNAPI_OPS_FILE)
    result = check_compatibility(
        model_path=digits.model_path, target=builtin_profile("nnapi"), inputs=digits_inputs
    )
    flagged = {item["operator"]: item for item in result.data["unsupported"]}
    assert ("ai.onnx.ml:ArrayFeatureExtractor" in flagged) is ("|ai.onnx.ml:" not in text)
    assert ("ai.onnx:ArgMax" in flagged) is ("|ai.onnx:ArgMax|" not in text)
    assert flagged["ai.onnx:ArgMax"]["node_names"] == ["ArgMax"]
    assert result.status == "failed"
    model = onnx.load(digits.model_path)
    assert result.data["uploaded_node_count"] == len(model.graph.node)
    assert "basic optimisation" in result.data["graph_analysed"]
    share = result.data["supported_node_count"] / result.data["node_count"]
    assert result.data["supported_share"] == pytest.approx(share) and share < 1.0


def test_nnapi_sees_resnet50_after_constant_folding():
    """ConstantOfShape weights are folded by onnxruntime before NNAPI is asked; Sum is not."""
    text = mobile_ops_file_text(NNAPI_OPS_FILE)
    result = check_compatibility(
        model_path=onnx_models.light_model_path("resnet50"), target=builtin_profile("nnapi")
    )
    flagged = {item["op_type"] for item in result.data["unsupported"]}
    assert "ConstantOfShape" not in flagged
    assert result.data["node_count"] < result.data["uploaded_node_count"]
    assert ("Sum" in flagged) is ("|ai.onnx:Sum|" not in text)
    if flagged:
        assert result.data["partitions"] > 1


def test_static_only_target_flags_dynamic_inputs_without_buckets(digits):
    result = check_compatibility(model_path=digits.model_path, target=builtin_profile("nnapi"))
    static = next(c for c in result.data["constraints"] if c["name"] == "static_shapes")
    assert static["ok"] is False and "X[0]" in static["detail"]


@pytest.mark.parametrize("name", ["squeezenet", "resnet50"])
def test_light_models_are_fully_supported_on_cpu(name):
    result = check_compatibility(
        model_path=onnx_models.light_model_path(name), target=builtin_profile("cpu")
    )
    assert result.status == "passed", result.findings
    assert result.data["unsupported_node_count"] == 0
    assert result.data["supported_share"] == 1.0
    assert result.data["partitions"] == 1
    estimate = result.data["memory_estimate"]
    metadata = inspect_model(path=onnx_models.light_model_path(name))
    # Weights generated at load time are counted once onnxruntime has folded them.
    assert estimate["weights_bytes"] > 100 * metadata.initializer_bytes
    assert estimate["peak_bytes"] == estimate["weights_bytes"] + estimate["peak_activation_bytes"]
    assert estimate["peak_activation_bytes"] >= 4 * 3 * 224 * 224


def test_target_constraints_quantized_only_size_and_memory(digits):
    target = dataclasses.replace(
        builtin_profile("cpu"), quantized_only=True, max_model_bytes=1000, memory_budget_bytes=1000
    )
    result = check_compatibility(model_path=digits.model_path, target=target)
    violated = {c["name"] for c in result.data["constraints"] if not c["ok"]}
    assert violated == {"quantized_only", "max_model_bytes", "memory"}
    assert result.status == "failed"
    assert result.data["unsupported_node_count"] == 0
