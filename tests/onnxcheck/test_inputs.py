"""Representative inputs: an uploaded ``.npz`` validated and bucketed, or synthesised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from onnxcheck.inputs import (
    SYNTHETIC_NOTE,
    InputsRejected,
    RepresentativeInputs,
    load_representative_inputs,
    synthesize_inputs,
)
from onnxcheck.inspection import inspect_model
from tests import onnx_models


def _code(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.code


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
