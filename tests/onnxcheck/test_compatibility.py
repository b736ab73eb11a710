"""The compatibility step: operators against a target's list, and its constraints."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from onnxcheck.compatibility import check_compatibility
from onnxcheck.inspection import inspect_model
from onnxcheck.operators import (
    NNAPI_OPS_FILE,
    OPENVINO_OPS_FILE,
    TENSORRT_OPS_FILE,
    builtin_profile,
    load_documentary_table,
    mobile_ops_file_text,
)
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


# -- documentary targets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "file_name"), [("tensorrt", TENSORRT_OPS_FILE), ("openvino", OPENVINO_OPS_FILE)]
)
def test_documentary_target_supports_squeezenet_and_says_where_support_comes_from(name, file_name):
    target = builtin_profile(name)
    result = check_compatibility(
        model_path=onnx_models.light_model_path("squeezenet"), target=target
    )
    assert result.data["unsupported_node_count"] == 0, result.findings
    assert result.status in {"passed", "warning"}
    assert result.data["documentary"] is True
    assert result.data["target"]["documentary"] is True
    header = load_documentary_table(file_name).header
    assert result.findings[0] == (
        f"documentary profile: operator support from {header['title']}, {header['version']}; "
        f"not run on this hardware ({target.execution_provider} is not installed)"
    )
    # Supported-types columns are provenance, not caveats; real restrictions are.
    assert all(not c["note"].startswith("types:") for c in result.data["caveats"])


def test_tensorrt_flags_the_ml_domain_and_checks_the_documented_opset_range(digits, tmp_path):
    result = check_compatibility(model_path=digits.model_path, target=builtin_profile("tensorrt"))
    flagged = {item["operator"] for item in result.data["unsupported"]}
    assert "ai.onnx.ml:ArrayFeatureExtractor" in flagged
    assert "ai.onnx:ArgMax" not in flagged
    assert result.status == "failed"
    opset = next(c for c in result.data["constraints"] if c["name"] == "onnx_opset")
    assert opset["ok"] is True and "opset 21" in opset["detail"]

    old = onnx_models.tiny_model()
    old.opset_import[0].version = 7
    old.ir_version = 3
    path = onnx_models.write_model(old, tmp_path / "opset7.onnx")
    result = check_compatibility(model_path=path, target=builtin_profile("tensorrt"))
    opset = next(c for c in result.data["constraints"] if c["name"] == "onnx_opset")
    assert opset["ok"] is False
    assert opset["detail"] == "the model imports ai.onnx opset 7; tensorrt documents opsets 9 to 24"
    assert result.status == "failed" and opset["detail"] in result.findings


def test_qnn_is_judged_per_shape_bucket_like_the_other_static_targets(digits, digits_inputs):
    qnn = builtin_profile("qnn")
    unbucketed = check_compatibility(model_path=digits.model_path, target=qnn)
    static = next(c for c in unbucketed.data["constraints"] if c["name"] == "static_shapes")
    assert static["ok"] is False and "X[0]" in static["detail"]

    result = check_compatibility(model_path=digits.model_path, target=qnn, inputs=digits_inputs)
    assert [graph["graph"].startswith("fixed to") for graph in result.data["fixed_graphs"]] == [
        True,
        True,
    ]
    flagged = {item["operator"] for item in result.data["unsupported"]}
    assert "ai.onnx.ml:ArrayFeatureExtractor" in flagged
    assert "ai.onnx:ArgMax" not in flagged  # in the QNN table
    assert result.findings[0].startswith("documentary profile: operator support from ONNX Runtime")
    assert not any(c["name"] == "quantized_only" for c in result.data["constraints"])


def test_onnxruntime_targets_are_not_documentary(digits):
    result = check_compatibility(model_path=digits.model_path, target=builtin_profile("cpu"))
    assert result.data["documentary"] is False
    assert not any(finding.startswith("documentary profile") for finding in result.findings)


def test_compatibility_takes_a_bundle_with_external_data(tmp_path):
    from onnx.external_data_helper import convert_model_to_external_data

    bias = numpy_helper.from_array(np.array([0.5, -0.5, 1.0, -1.0], dtype=np.float32), "B")
    model = onnx_models.tiny_model(initializer=bias)
    convert_model_to_external_data(model, location="w.data", size_threshold=0)
    assert model.graph.initializer[0].data_location == onnx.TensorProto.EXTERNAL
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    onnx.save_model(model, bundle / "m.onnx")
    refused = check_compatibility(model_path=bundle / "m.onnx", target=builtin_profile("cpu"))
    assert refused.status == "failed"
    assert refused.data["rejection"]["code"] == "external_data_not_allowed"
    result = check_compatibility(
        model_path=bundle / "m.onnx", target=builtin_profile("cpu"), external_root=bundle
    )
    assert result.status == "passed", result.findings
    assert result.data["unsupported_node_count"] == 0
