"""The Django-free ONNX validation: safe inspection, inputs, steps, gates and the full run.

Real models only: the digits MLP is trained here (cached per session) and the ``light_*``
architectures come from the onnx wheel. No timing is asserted; latency tests check that the
figures are consistent with each other.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxcheck.inputs import (
    SYNTHETIC_NOTE,
    InputsRejected,
    RepresentativeInputs,
    load_representative_inputs,
    synthesize_inputs,
)
from onnxcheck.inspection import ModelRejected, inspect_model, sha256_file
from onnxcheck.latency import REFERENCE_LABEL, LatencyRule, p95_confidence_interval
from onnxcheck.operators import NNAPI_OPS_FILE, builtin_profile, mobile_ops_file_text
from onnxcheck.pipeline import (
    STEP_ORDER,
    GateThresholds,
    InputsSpec,
    StepLimits,
    StepResult,
    canonical_json,
    check_calibration,
    check_compatibility,
    check_fp16_variant,
    check_int8_variant,
    check_integrity,
    check_latency,
    evaluate_gates,
    run_validation,
)
from onnxcheck.scoring import (
    as_probabilities,
    calibration_bins,
    expected_calibration_error,
    find_score_output,
    sqnr_db,
)
from tests import onnx_models

# Small budgets keep the module fast on 2 cores; the rule is the same code as production.
QUICK = LatencyRule(
    warmup_runs=3, warmup_max_seconds=0.3, min_runs=20, min_seconds=0.2, max_seconds=0.8
)
VARIANT_QUICK = LatencyRule(
    warmup_runs=2, warmup_max_seconds=0.2, min_runs=10, min_seconds=0.1, max_seconds=0.3
)


@pytest.fixture(scope="module")
def digits() -> onnx_models.DigitsModel:
    return onnx_models.digits_mlp()


@pytest.fixture(scope="module")
def digits_inputs(digits) -> RepresentativeInputs:
    metadata = inspect_model(path=digits.model_path)
    return load_representative_inputs(
        npz_path=digits.inputs_path, inputs=metadata.inputs, shape_buckets={"X[0]": [1, 8]}
    )


def _code(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.code


# -- safe inspection ----------------------------------------------------------------------------


def test_digits_metadata_describes_the_model(digits):
    metadata = inspect_model(path=digits.model_path)
    model = onnx.load(digits.model_path)
    assert metadata.ir_version == model.ir_version
    assert metadata.opset_imports == {
        ("" if o.domain == "ai.onnx" else o.domain): o.version for o in model.opset_import
    }
    assert metadata.producer_name == "skl2onnx"
    (features,) = metadata.inputs
    assert (features.name, features.dtype, features.shape) == ("X", "float32", (None, 64))
    assert features.dynamic_axes == (0,)
    outputs = {spec.name: spec for spec in metadata.outputs}
    assert outputs["label"].dtype == "int64"
    assert outputs["probabilities"].shape == (None, 10)
    assert metadata.operator_inventory[("ai.onnx.ml", "ArrayFeatureExtractor")] == 1
    assert metadata.operator_inventory[("", "ArgMax")] == 1
    assert metadata.node_count == len(model.graph.node)
    expected_params = sum(numpy_helper.to_array(t).size for t in model.graph.initializer)
    assert metadata.parameter_count == expected_params
    assert metadata.quantization == "fp32"
    assert json.loads(json.dumps(metadata.to_dict()))["inputs"][0]["shape"] == [None, 64]


def test_every_spelling_of_a_dynamic_dimension_is_dynamic(tmp_path):
    model = onnx_models.tiny_model(input_shape=["batch", 4])
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[0].Clear()
    dims[0].dim_param = "batch"
    dims[1].Clear()
    dims[1].dim_param = ""  # empty name
    output_dims = model.graph.output[0].type.tensor_type.shape.dim
    output_dims[1].Clear()
    output_dims[1].dim_value = -1
    metadata = inspect_model(path=onnx_models.write_model(model, tmp_path / "dyn.onnx"))
    assert metadata.inputs[0].shape == ("batch", None)
    assert metadata.inputs[0].dynamic_axes == (0, 1)
    assert metadata.outputs[0].shape[1] is None


def test_light_models_count_generated_weights_and_hide_initializer_inputs():
    metadata = inspect_model(path=onnx_models.light_model_path("squeezenet"))
    assert [spec.name for spec in metadata.inputs] == ["data_0"]
    assert metadata.inputs[0].shape == (1, 3, 224, 224)
    assert metadata.overridable_initializer_inputs > 0
    assert metadata.generated_constant_elements > 1_000_000
    assert metadata.operator_inventory[("", "ConstantOfShape")] > 0


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("builder", "code"),
    [
        (lambda d: onnx_models.write_zero_bytes(d / "empty.onnx"), "empty_file"),
        (lambda d: onnx_models.write_png(d / "photo.onnx"), "not_onnx"),
        (lambda d: onnx_models.write_text(d / "notes.onnx"), "not_onnx"),
        (
            lambda d: onnx_models.write_truncated(
                onnx_models.light_model_path("squeezenet"), d / "cut.onnx"
            ),
            "truncated",
        ),
        (
            lambda d: onnx_models.write_sparse_file(d / "huge.onnx", size_bytes=2 * 1024**3),
            "too_large",
        ),
        (
            lambda d: onnx_models.write_external_data_model(
                d / "up" / "m.onnx", location="../../etc/passwd", data_bytes=None
            ),
            "external_data_outside_upload",
        ),
        (
            lambda d: onnx_models.write_external_data_model(
                d / "up" / "m.onnx", location="/etc/passwd", data_bytes=None
            ),
            "external_data_outside_upload",
        ),
        (
            lambda d: onnx_models.write_external_data_model(
                d / "up" / "m.onnx", location="weights.bin", data_bytes=None
            ),
            "external_data_missing",
        ),
        (
            lambda d: onnx_models.write_external_data_model(
                d / "up" / "m.onnx", location="short.bin", data_bytes=b"\0" * 8
            ),
            "external_data_invalid",
        ),
        (lambda d: d / "never-uploaded.onnx", "file_missing"),
        (lambda d: _write_bytes(d / "header-only.onnx", b"\x08\x08"), "invalid_model"),
        (
            lambda d: _write_bytes(d / "garbage.onnx", b"\x08\x08\xff\xff\x7f" + b"\0" * 64),
            "corrupt",
        ),
        (lambda d: onnx_models.write_absurd_input_model(d / "a.onnx"), "absurd_dimensions"),
        (lambda d: onnx_models.write_absurd_initializer_model(d / "b.onnx"), "absurd_dimensions"),
        (
            lambda d: onnx_models.write_absurd_generated_constant_model(d / "c.onnx"),
            "absurd_dimensions",
        ),
    ],
    ids=[
        "zero-bytes",
        "png",
        "text",
        "truncated",
        "2GB",
        "traversal",
        "absolute",
        "missing-external",
        "short-external",
        "missing-file",
        "no-graph",
        "bad-field",
        "absurd-input",
        "absurd-initializer",
        "absurd-constantofshape",
    ],
)
def test_bad_uploads_are_refused_with_a_specific_code(tmp_path, builder, code):
    path = builder(tmp_path)
    with pytest.raises(ModelRejected) as excinfo:
        inspect_model(path=path)
    assert _code(excinfo) == code
    error = excinfo.value.to_dict()
    assert error["code"] == code and error["message"] == excinfo.value.message
    json.dumps(error)  # the API returns it as JSON


def test_external_data_inside_the_upload_is_accepted(tmp_path):
    path = onnx_models.write_external_data_model(
        tmp_path / "m.onnx", location="weights.bin", data_bytes=b"\0" * 16
    )
    metadata = inspect_model(path=path)
    assert metadata.external_data_files == ("weights.bin",)
    assert metadata.total_bytes == path.stat().st_size + 16


def test_size_limit_is_configurable_and_counts_external_data(tmp_path, digits):
    with pytest.raises(ModelRejected) as excinfo:
        inspect_model(path=digits.model_path, max_bytes=digits.model_path.stat().st_size - 1)
    assert _code(excinfo) == "too_large"
    path = onnx_models.write_external_data_model(
        tmp_path / "m.onnx", location="w.bin", data_bytes=b"\0" * 16
    )
    with pytest.raises(ModelRejected) as excinfo:
        inspect_model(path=path, max_bytes=path.stat().st_size + 15)
    assert _code(excinfo) == "too_large"


def test_inline_tensor_whose_data_disagrees_with_its_dims_is_refused(tmp_path):
    bias = helper.make_tensor("B", TensorProto.FLOAT, [4], [0.0, 1.0, 2.0, 3.0])
    bias.dims[0] = 400  # claims 100x the data it carries
    path = onnx_models.write_model(onnx_models.tiny_model(initializer=bias), tmp_path / "m.onnx")
    with pytest.raises(ModelRejected) as excinfo:
        inspect_model(path=path)
    assert _code(excinfo) == "tensor_data_mismatch"


# -- representative inputs ----------------------------------------------------------------------


def _save(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def test_uploaded_inputs_are_validated_and_bucketed(digits, digits_inputs):
    assert digits_inputs.sample_count == digits.sample_count
    assert digits_inputs.labels is not None and len(digits_inputs.labels) == digits.sample_count
    assert [bucket.shapes["X"] for bucket in digits_inputs.buckets] == [(1, 64), (8, 64)]
    assert [feed["X"].shape for feed in digits_inputs.bucket_feeds] == [(1, 64), (8, 64)]
    assert not digits_inputs.synthetic


@pytest.mark.parametrize(
    ("arrays", "code"),
    [
        ({"x": np.zeros((4, 64), np.float32)}, "inputs_missing_array"),
        (
            {"X": np.zeros((4, 64), np.float32), "extra": np.zeros(4, np.float32)},
            "inputs_unknown_array",
        ),
        ({"X": np.zeros((4, 64), np.float64)}, "inputs_wrong_dtype"),
        ({"X": np.zeros((4, 8, 8), np.float32)}, "inputs_wrong_rank"),
        ({"X": np.zeros((4, 63), np.float32)}, "inputs_wrong_shape"),
        (
            {"X": np.zeros((4, 64), np.float32), "labels": np.zeros(5, np.int64)},
            "labels_length_mismatch",
        ),
        (
            {"X": np.zeros((4, 64), np.float32), "labels": np.zeros(4, np.float32)},
            "labels_wrong_dtype",
        ),
        ({"X": np.zeros((0, 64), np.float32)}, "inputs_empty"),
        (
            {"X": np.zeros((4, 64), np.float32), "labels": np.array([0, -1, 2, 3])},
            "labels_out_of_range",
        ),
    ],
    ids=[
        "wrong-name",
        "unknown-array",
        "float64",
        "wrong-rank",
        "wrong-size",
        "labels-length",
        "labels-float",
        "empty",
        "labels-negative",
    ],
)
def test_bad_npz_gets_a_precise_error(tmp_path, digits, arrays, code):
    metadata = inspect_model(path=digits.model_path)
    path = _save(tmp_path / "inputs.npz", **arrays)
    with pytest.raises(InputsRejected) as excinfo:
        load_representative_inputs(npz_path=path, inputs=metadata.inputs)
    assert _code(excinfo) == code


def _two_input_model(tmp_path: Path) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Add", ["A", "B"], ["Y"])],
        "pair",
        [
            helper.make_tensor_value_info("A", TensorProto.FLOAT, ["batch", "width"]),
            helper.make_tensor_value_info("B", TensorProto.FLOAT, ["batch", "width"]),
        ],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", "width"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return onnx_models.write_model(model, tmp_path / "pair.onnx")


def test_inputs_must_agree_with_each_other(tmp_path):
    metadata = inspect_model(path=_two_input_model(tmp_path))
    counts = _save(
        tmp_path / "a.npz", A=np.zeros((4, 3), np.float32), B=np.zeros((5, 3), np.float32)
    )
    with pytest.raises(InputsRejected) as excinfo:
        load_representative_inputs(npz_path=counts, inputs=metadata.inputs)
    assert _code(excinfo) == "inputs_sample_count_mismatch"
    widths = _save(
        tmp_path / "b.npz", A=np.zeros((4, 3), np.float32), B=np.zeros((4, 2), np.float32)
    )
    with pytest.raises(InputsRejected) as excinfo:
        load_representative_inputs(npz_path=widths, inputs=metadata.inputs)
    assert _code(excinfo) == "inputs_wrong_shape" and "width" in excinfo.value.message
    good = _save(tmp_path / "c.npz", A=np.ones((4, 3), np.float32), B=np.ones((4, 3), np.float32))
    with pytest.raises(InputsRejected) as excinfo:
        load_representative_inputs(npz_path=good, inputs=metadata.inputs, max_bytes=64)
    assert _code(excinfo) == "inputs_too_large"
    loaded = load_representative_inputs(
        npz_path=good, inputs=metadata.inputs, shape_buckets={"batch": [2]}
    )
    assert loaded.bucket_feeds[0]["A"].shape == (2, 3)
    with pytest.raises(InputsRejected) as excinfo:  # uploaded data fixes the width
        load_representative_inputs(
            npz_path=good, inputs=metadata.inputs, shape_buckets={"width": [5]}
        )
    assert _code(excinfo) == "invalid_shape_bucket"


def test_string_inputs_cannot_be_synthesised(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Identity", ["S"], ["T"])],
        "strings",
        [helper.make_tensor_value_info("S", TensorProto.STRING, [1])],
        [helper.make_tensor_value_info("T", TensorProto.STRING, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    metadata = inspect_model(path=onnx_models.write_model(model, tmp_path / "s.onnx"))
    assert metadata.inputs[0].dtype == "str"
    with pytest.raises(InputsRejected) as excinfo:
        synthesize_inputs(inputs=metadata.inputs)
    assert _code(excinfo) == "unsupported_input_type"


def test_npz_that_is_not_an_archive_or_holds_objects_is_unreadable(tmp_path, digits):
    metadata = inspect_model(path=digits.model_path)
    text = tmp_path / "inputs.npz"
    text.write_text("X\n1,2,3\n")
    with pytest.raises(InputsRejected) as excinfo:
        load_representative_inputs(npz_path=text, inputs=metadata.inputs)
    assert _code(excinfo) == "inputs_unreadable"
    objects = tmp_path / "objects.npz"
    np.savez(objects, X=np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputsRejected) as excinfo:
        load_representative_inputs(npz_path=objects, inputs=metadata.inputs)
    assert _code(excinfo) == "inputs_unreadable"


def test_synthetic_inputs_need_a_bucket_for_every_dynamic_axis(digits):
    metadata = inspect_model(path=digits.model_path)
    with pytest.raises(InputsRejected) as excinfo:
        synthesize_inputs(inputs=metadata.inputs)
    assert _code(excinfo) == "missing_shape_bucket"
    assert "X[0]" in excinfo.value.message
    assert excinfo.value.details == {"input": "X", "axis": 0}
    with pytest.raises(InputsRejected) as excinfo:
        synthesize_inputs(inputs=metadata.inputs, shape_buckets={"height": [8]})
    assert _code(excinfo) == "invalid_shape_bucket"
    assert "X[0]" in excinfo.value.message  # lists the axes that do exist


def test_synthetic_inputs_follow_buckets_by_name_and_axis(tmp_path):
    model = onnx_models.tiny_model(input_shape=["batch", 4])
    path = onnx_models.write_model(model, tmp_path / "m.onnx")
    metadata = inspect_model(path=path)
    by_name = synthesize_inputs(inputs=metadata.inputs, shape_buckets={"batch": [1, 8]})
    by_axis = synthesize_inputs(inputs=metadata.inputs, shape_buckets={"X[0]": [1, 8]})
    explicit = synthesize_inputs(inputs=metadata.inputs, shape_buckets=[{"X": [3, 4]}])
    assert [f["X"].shape for f in by_name.bucket_feeds] == [(1, 4), (8, 4)]
    assert [b.batch_size for b in by_axis.buckets] == [1, 8]
    assert explicit.bucket_feeds[0]["X"].shape == (3, 4)
    assert by_name.synthetic and by_name.note == SYNTHETIC_NOTE
    assert by_name.bucket_feeds[0]["X"].dtype == np.float32
    with pytest.raises(InputsRejected) as excinfo:
        synthesize_inputs(inputs=metadata.inputs, shape_buckets=[{"X": [3, 5]}])
    assert _code(excinfo) == "invalid_shape_bucket"


def test_inputs_round_trip_through_the_worker_file(tmp_path, digits_inputs):
    copy = RepresentativeInputs.load(digits_inputs.save(tmp_path / "inputs.npz"))
    assert copy.describe() == digits_inputs.describe()
    np.testing.assert_array_equal(copy.labels, digits_inputs.labels)
    np.testing.assert_array_equal(copy.samples["X"], digits_inputs.samples["X"])


# -- scoring maths ------------------------------------------------------------------------------


def test_ece_matches_a_hand_computed_example():
    # One sample per bin: ECE = mean |correct - confidence| = (0.05 + 0.85 + 0.38 + 0.31) / 4.
    confidences = np.array([0.95, 0.85, 0.62, 0.31])
    correct = np.array([True, False, True, False])
    assert expected_calibration_error(confidences=confidences, correct=correct) == pytest.approx(
        0.3975
    )
    # Two samples in bin (13/15, 14/15]: accuracy 0.5, confidence 0.91 -> ECE 0.41.
    shared = expected_calibration_error(
        confidences=np.array([0.90, 0.92]), correct=np.array([True, False])
    )
    assert shared == pytest.approx(0.41)
    bins = calibration_bins(confidences=np.array([0.90, 0.92]), correct=np.array([True, False]))
    assert len(bins) == 15 and bins[13]["count"] == 2 and bins[13]["accuracy"] == 0.5


def test_sqnr_and_softmax_and_score_output_choice(digits):
    assert sqnr_db(reference=np.array([3.0, 4.0]), test=np.array([3.0, 4.5])) == pytest.approx(20.0)
    assert sqnr_db(reference=np.array([1.0]), test=np.array([1.0])) is None
    probabilities, form = as_probabilities(np.array([[0.2, 0.8], [0.5, 0.5]]))
    assert form == "probabilities" and probabilities[0, 1] == 0.8
    from_logits, form = as_probabilities(np.array([[0.0, math.log(3.0)]]))
    assert form.startswith("logits") and from_logits[0] == pytest.approx([0.25, 0.75])
    chosen = find_score_output(outputs=inspect_model(path=digits.model_path).outputs)
    assert chosen is not None and (chosen.name, chosen.num_classes) == ("probabilities", 10)
    light = inspect_model(path=onnx_models.light_model_path("squeezenet"))
    assert find_score_output(outputs=light.outputs).name == light.outputs[0].name


def test_p95_confidence_interval_order_statistics():
    sample = np.arange(1, 101)
    assert p95_confidence_interval(sample) == (90.0, 100.0)
    assert p95_confidence_interval(np.arange(1, 51)) is None  # too few runs to bound a P95


# -- steps --------------------------------------------------------------------------------------


def test_integrity_passes_for_a_real_model_and_reports_a_wrong_digest(digits):
    good = check_integrity(
        model_path=digits.model_path, expected_sha256=sha256_file(digits.model_path)
    )
    assert good.status == "passed", good.findings
    assert good.data["checker_passed"] and good.data["strict_shape_inference_passed"]
    bad = check_integrity(model_path=digits.model_path, expected_sha256="0" * 64)
    assert bad.status == "failed" and bad.data["fatal"] is True
    assert "SHA-256 mismatch" in bad.findings[0]


def test_integrity_records_checker_failures_as_findings(tmp_path):
    model = onnx_models.tiny_model()
    model.graph.node[1].input[0] = "does_not_exist"  # Relu reads an undefined value
    path = onnx_models.write_model(model, tmp_path / "broken.onnx")
    result = check_integrity(model_path=path, expected_sha256=sha256_file(path))
    assert result.status == "failed" and result.data["fatal"] is False
    assert result.data["checker_passed"] is False
    assert any("onnx.checker" in finding for finding in result.findings)


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


# -- gates --------------------------------------------------------------------------------------


def _steps(*, unsupported: int, p95: float, drop: float, ece: float, labels: bool = True):
    return [
        StepResult("integrity", "passed", 1.0),
        StepResult("inputs", "passed", 1.0, data={"has_labels": labels}),
        StepResult(
            "compatibility",
            "failed" if unsupported else "passed",
            1.0,
            data={
                "target": {"name": "nnapi"},
                "unsupported_node_count": unsupported,
                "unsupported": [
                    {
                        "operator": "ai.onnx:ArgMax",
                        "reason": "not in the nnapi operator list",
                        "node_count": unsupported,
                        "node_names": ["ArgMax"],
                    }
                ]
                if unsupported
                else [],
                "constraints": [{"name": "memory", "ok": False, "detail": "memory over budget"}],
            },
        ),
        StepResult(
            "latency",
            "passed",
            1.0,
            data={
                "buckets": [
                    {"label": "batch=1", "p95_ms": p95},
                    {"label": "batch=8", "p95_ms": p95 * 4},
                ]
            },
        ),
        StepResult(
            "quantization_int8", "passed", 1.0, data={"fidelity": {"accuracy_drop_points": drop}}
        ),
        StepResult("calibration", "passed", 1.0, data={"ece": ece, "accuracy": 0.9}),
    ]


def test_gates_list_every_failing_reason():
    thresholds = GateThresholds(latency_budget_ms=10.0)
    result = evaluate_gates(
        steps=_steps(unsupported=1, p95=5.0, drop=2.5, ece=0.2), thresholds=thresholds
    )
    assert result.status == "failed" and result.data["passed"] is False
    reasons = result.data["reasons"]
    assert any("ai.onnx:ArgMax" in reason and "ArgMax" in reason for reason in reasons)
    assert "memory over budget" in reasons
    assert any("batch=8" in reason for reason in reasons)
    assert not any("batch=1" in reason for reason in reasons)  # 5 ms is within budget
    assert any("2.50 points" in reason for reason in reasons)
    assert any(reason.startswith("ece 0.2000") for reason in reasons)
    assert len(reasons) == 5
    failed = {g["name"] for g in result.data["gates"] if g["status"] == "failed"}
    assert failed == {
        "operators_supported",
        "target_constraints",
        "latency_p95",
        "int8_accuracy_drop",
        "ece",
    }


def test_gates_pass_and_skip_what_cannot_be_judged():
    steps = _steps(unsupported=0, p95=5.0, drop=0.2, ece=0.01, labels=False)
    steps[2].data["constraints"] = [{"name": "memory", "ok": True, "detail": "fine"}]
    result = evaluate_gates(steps=steps, thresholds=GateThresholds())
    assert result.status == "passed" and result.data["reasons"] == []
    statuses = {g["name"]: g["status"] for g in result.data["gates"]}
    assert statuses["latency_p95"] == "not_evaluated"  # no budget
    assert statuses["int8_accuracy_drop"] == statuses["ece"] == "not_evaluated"  # no labels


# -- the full run -------------------------------------------------------------------------------


def test_run_validation_digits_on_nnapi(tmp_path, digits):
    seen: list[str] = []
    report = run_validation(
        model_path=digits.model_path,
        expected_sha256=sha256_file(digits.model_path),
        target=builtin_profile("nnapi"),
        inputs=InputsSpec(npz_path=digits.inputs_path, shape_buckets={"X[0]": [1, 8]}),
        gates=GateThresholds(latency_budget_ms=1000.0),
        workdir=tmp_path / "run",
        on_step=lambda step: seen.append(step.name),
        latency_rule=QUICK,
        variant_latency_rule=VARIANT_QUICK,
        intra_op_num_threads=1,
    )
    assert seen == list(STEP_ORDER)
    assert [step.name for step in report.steps] == list(STEP_ORDER)
    assert report.passed is False
    assert any("ai.onnx.ml:ArrayFeatureExtractor" in reason for reason in report.reasons)
    assert report.step("calibration").data["accuracy"] == pytest.approx(
        digits.test_accuracy, abs=0.01
    )
    assert report.step("quantization_int8").status == "passed"
    assert all(Path(v["path"]).is_file() for v in report.variants)
    assert {v["kind"] for v in report.variants} == {"int8", "fp16"}
    as_dict = report.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    digest = hashlib.sha256(canonical_json(as_dict)).hexdigest()
    assert report.report_digest() == digest == report.report_digest()
    report.reasons.append("tampered")
    assert report.report_digest() != digest


def test_run_validation_synthetic_light_model_is_latency_and_compatibility_only(tmp_path):
    path = onnx_models.light_model_path("squeezenet")
    report = run_validation(
        model_path=path,
        expected_sha256=sha256_file(path),
        target=builtin_profile("cpu"),
        inputs=InputsSpec(),
        gates=GateThresholds(),
        workdir=tmp_path / "run",
        latency_rule=QUICK,
        variant_latency_rule=VARIANT_QUICK,
        intra_op_num_threads=1,
    )
    assert report.inputs["synthetic"] is True and report.inputs["note"] == SYNTHETIC_NOTE
    assert report.step("calibration").status == "skipped"
    assert report.step("compatibility").status == "passed"
    int8 = report.step("quantization_int8")
    assert int8.data["variant"]["method"] == "static-qdq"
    assert int8.data["fidelity"]["top1_agreement"] is None
    assert any(SYNTHETIC_NOTE in finding for finding in int8.findings)
    gates = {g["name"]: g["status"] for g in report.step("gates").data["gates"]}
    assert gates["int8_accuracy_drop"] == gates["ece"] == "not_evaluated"
    assert report.passed is True, report.reasons


def test_run_validation_stops_on_a_digest_mismatch(tmp_path, digits):
    report = run_validation(
        model_path=digits.model_path,
        expected_sha256="f" * 64,
        target=builtin_profile("cpu"),
        inputs=InputsSpec(npz_path=digits.inputs_path),
        gates=GateThresholds(),
        workdir=tmp_path / "run",
    )
    assert [s.status for s in report.steps] == ["failed"] + ["skipped"] * 6 + ["failed"]
    assert any("SHA-256 mismatch" in reason for reason in report.reasons)


def test_run_validation_reports_a_refused_upload(tmp_path):
    path = onnx_models.write_truncated(
        onnx_models.light_model_path("squeezenet"), tmp_path / "cut.onnx"
    )
    report = run_validation(
        model_path=path,
        expected_sha256=sha256_file(path),
        target=builtin_profile("cpu"),
        inputs=InputsSpec(),
        gates=GateThresholds(),
        workdir=tmp_path / "run",
    )
    assert report.step("integrity").data["rejection"]["code"] == "truncated"
    assert report.passed is False and report.metadata is None


def test_run_validation_with_bad_inputs_skips_what_needs_them(tmp_path, digits):
    bad = _save(tmp_path / "bad.npz", X=np.zeros((4, 64), np.float64))
    report = run_validation(
        model_path=digits.model_path,
        expected_sha256=sha256_file(digits.model_path),
        target=builtin_profile("cpu"),
        inputs=InputsSpec(npz_path=bad),
        gates=GateThresholds(),
        workdir=tmp_path / "run",
    )
    assert report.step("inputs").data["error"]["code"] == "inputs_wrong_dtype"
    assert report.step("compatibility").status == "passed"
    assert report.step("latency").status == "skipped"
    assert any("inputs_wrong_dtype" in reason for reason in report.reasons)


def test_a_step_over_its_time_limit_is_stopped_and_reported(tmp_path):
    path = onnx_models.write_model(onnx_models.tiny_model(), tmp_path / "tiny.onnx")
    endless = LatencyRule(min_runs=10**9, min_seconds=600, max_runs=10**9, max_seconds=600)
    report = run_validation(
        model_path=path,
        expected_sha256=sha256_file(path),
        target=builtin_profile("cpu"),
        inputs=InputsSpec(),
        gates=GateThresholds(),
        workdir=tmp_path / "run",
        latency_rule=endless,
        variant_latency_rule=VARIANT_QUICK,
        limits=StepLimits(latency_s=3.0),
    )
    latency = report.step("latency")
    assert latency.status == "failed" and latency.data["timed_out"] is True
    assert any("time limit" in reason for reason in report.reasons)
    assert report.step("quantization_int8").status != "skipped"  # the run went on


def test_a_worker_that_dies_is_a_failed_step_not_a_crash(tmp_path, digits):
    # 64 MiB of address space is not enough to even import numpy in the child.
    report = run_validation(
        model_path=digits.model_path,
        expected_sha256=sha256_file(digits.model_path),
        target=builtin_profile("cpu"),
        inputs=InputsSpec(npz_path=digits.inputs_path),
        gates=GateThresholds(),
        workdir=tmp_path / "run",
        limits=StepLimits(address_space_bytes=64 * 2**20),
    )
    integrity = report.step("integrity")
    assert integrity.status == "failed" and "worker process died" in integrity.findings[0]
    assert report.passed is False
