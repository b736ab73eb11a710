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
    check_shape_buckets,
    load_representative_inputs,
    npz_array_shapes,
    open_axes,
    parse_shape_buckets,
    resolve_shape_buckets,
    suggest_axis_size,
    synthesize_inputs,
)
from onnxcheck.inspection import TensorSpec, inspect_model, meaningful_axis_name
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
    details = excinfo.value.details
    assert (details["input"], details["axis"]) == ("X", 0)
    assert details["suggested_shape_buckets"] == {"X[0]": [1]}
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


# -- independent unknown axes, all open axes at once, malformed specs, budgets ------------------


def _unknown_axes_inputs(tmp_path, **kwargs):
    path = onnx_models.write_model(
        onnx_models.unknown_axes_model(**kwargs), tmp_path / "detector.onnx"
    )
    return path, inspect_model(path=path)


@pytest.mark.parametrize(
    ("dim", "meaningful"),
    [
        *[(dim, None) for dim in ("", "?", "-1", "0", "unk", None, -1)],
        *[(dim, dim) for dim in ("batch", "height", "unk__214")],
    ],
)
def test_only_real_names_tie_axes_together(dim, meaningful):
    assert meaningful_axis_name(dim) == meaningful


@pytest.mark.parametrize("batch_dim", [-1, 0, None, ""])
def test_every_unknown_spelling_is_a_dynamic_axis(tmp_path, batch_dim):
    _, metadata = _unknown_axes_inputs(tmp_path, batch_dim=batch_dim)
    assert metadata.inputs[0].dynamic_axes == (0, 2, 3)
    assert TensorSpec.from_dict(
        {"name": "x", "kind": "tensor", "dtype": "float32", "shape": [0, 3, "?", "?"]}
    ).dynamic_axes == (0, 2, 3)


def test_two_question_mark_axes_take_different_sizes_from_real_inputs(tmp_path):
    _, metadata = _unknown_axes_inputs(tmp_path)
    npz = _save(tmp_path / "x.npz", x=np.zeros((4, 3, 48, 192), np.float32))
    loaded = load_representative_inputs(
        npz_path=npz, inputs=metadata.inputs, shape_buckets={"x[0]": [1, 2]}
    )
    assert [feed["x"].shape for feed in loaded.bucket_feeds] == [(1, 3, 48, 192), (2, 3, 48, 192)]
    synthetic = synthesize_inputs(
        inputs=metadata.inputs, shape_buckets={"x[0]": [1], "x[2]": [48], "x[3]": [192]}
    )
    assert synthetic.bucket_feeds[0]["x"].shape == (1, 3, 48, 192)
    assert synthetic.buckets[0].label == "x[0]=1,x[2]=48,x[3]=192"
    # The old form ("?" as a key) is still read: it sizes both axes, each independently.
    old_form = synthesize_inputs(inputs=metadata.inputs, shape_buckets={"x[0]": [1], "?": [64]})
    assert old_form.bucket_feeds[0]["x"].shape == (1, 3, 64, 64)


def test_a_repeated_meaningful_name_still_ties_axes(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Add", ["A", "B"], ["C"])],
        "tied",
        [
            helper.make_tensor_value_info("A", TensorProto.FLOAT, ["batch", "?"]),
            helper.make_tensor_value_info("B", TensorProto.FLOAT, ["batch", "?"]),
        ],
        [helper.make_tensor_value_info("C", TensorProto.FLOAT, ["batch", None])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    metadata = inspect_model(path=onnx_models.write_model(model, tmp_path / "tied.onnx"))
    untied = _save(
        tmp_path / "u.npz", A=np.zeros((2, 3), np.float32), B=np.zeros((2, 3), np.float32)
    )
    assert load_representative_inputs(npz_path=untied, inputs=metadata.inputs).sample_count == 2
    with pytest.raises(InputsRejected) as excinfo:
        resolve_shape_buckets(
            inputs=metadata.inputs,
            spec=[{"A": [1, 3], "B": [2, 3]}],
        )
    assert _code(excinfo) == "invalid_shape_bucket" and "'batch'" in excinfo.value.message
    entries = open_axes(metadata.inputs)
    assert [e["key"] for e in entries] == ["batch", "A[1]", "B[1]"]
    assert entries[0]["axes"] == ["A[0]", "B[0]"]


def test_every_open_axis_is_listed_at_once_with_suggested_sizes(tmp_path):
    _, metadata = _unknown_axes_inputs(tmp_path)
    with pytest.raises(InputsRejected) as excinfo:
        synthesize_inputs(inputs=metadata.inputs)
    assert _code(excinfo) == "missing_shape_bucket"
    details = excinfo.value.details
    assert details["suggested_shape_buckets"] == {"x[0]": [1], "x[2]": [224], "x[3]": [224]}
    assert [e["reason"].split(",")[0] for e in details["open_axes"]] == [
        "first axis",
        "image height of a 4-D NCHW input",
        "image width of a 4-D NCHW input",
    ]
    assert all(key in excinfo.value.message for key in ("x[0]", "x[2]", "x[3]"))
    with pytest.raises(InputsRejected) as excinfo:  # one given: the two others are listed
        synthesize_inputs(inputs=metadata.inputs, shape_buckets={"x[2]": [48]})
    assert excinfo.value.details["suggested_shape_buckets"] == {"x[0]": [1], "x[3]": [224]}


@pytest.mark.parametrize(
    ("shape", "dtype", "axis", "hints", "size"),
    [
        (["batch", 3, "h", "w"], "float32", 0, None, 1),
        ([1, "?", "?", 3], "float32", 1, None, 224),  # NHWC
        ([1, 3, "?", "?"], "float32", 3, {"imgsz": "[480, 640]"}, 640),
        ([1, 3, "?", "?"], "float32", 2, {"imgsz": "[480, 640]"}, 480),
        ([1, "sequence_length"], "int64", 1, None, 128),
        ([1, None], "int64", 1, None, 128),
        ([1, 4, 4, None, 2], "float32", 3, None, 1),
    ],
)
def test_suggested_sizes_follow_conventions(shape, dtype, axis, hints, size):
    spec = TensorSpec(name="x", kind="tensor", dtype=dtype, shape=tuple(shape))
    assert suggest_axis_size(spec, axis, hints=hints)[0] == size


MALFORMED_BUCKETS = [
    5,
    True,
    "[1,2]",
    '{"x[0]": [1]}',
    [1, 2],
    [None],
    [],
    {"x[0]": "a"},
    {"x[0]": []},
    {"x[0]": [0]},
    {"x[0]": [-3]},
    {"x[0]": [True]},
    {"x[0]": [1.5]},
    {"x[0]": [None]},
    {"x[0]": {"a": 1}},
    {"": [1]},
    [{"x": "1,3,4,4"}],
    [{"x": [1, 3, 0, 4]}],
]


@pytest.mark.parametrize("value", MALFORMED_BUCKETS, ids=repr)
def test_malformed_bucket_specs_are_refused_before_any_model_is_read(value):
    with pytest.raises(InputsRejected) as excinfo:
        parse_shape_buckets(value)
    assert _code(excinfo) == "invalid_shape_bucket"


def test_bucket_specs_in_good_form_are_returned_as_lists():
    assert parse_shape_buckets(None) is None and parse_shape_buckets({}) is None
    assert parse_shape_buckets({"batch": 8, "x[2]": [48, 96]}) == {"batch": [8], "x[2]": [48, 96]}
    assert parse_shape_buckets([{"x": [1, 3, 4, 4]}]) == [{"x": [1, 3, 4, 4]}]


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        ({"unk__214": [100000000]}, "shape_bucket_too_large"),
        ({"x[0]": [1], "x[2]": [100000], "x[3]": [100000]}, "inputs_too_large"),
        ({"nope": [1]}, "invalid_shape_bucket"),
        ({"x[1]": [3]}, "invalid_shape_bucket"),  # fixed by the model
        ({"x[7]": [3]}, "invalid_shape_bucket"),  # no such axis
        ({"x[0]": [1, 2], "x[2]": [4, 4, 4], "x[3]": [4]}, "invalid_shape_bucket"),
        ([{"y": [1, 3, 4, 4]}], "invalid_shape_bucket"),  # unknown input
        ([{"x": [1, 3, 4]}], "invalid_shape_bucket"),  # wrong rank
    ],
)
def test_bucket_specs_are_checked_against_the_model_and_the_budgets(tmp_path, spec, code):
    _, metadata = _unknown_axes_inputs(tmp_path)
    with pytest.raises(InputsRejected) as excinfo:
        check_shape_buckets(inputs=metadata.inputs, spec=spec)
    assert _code(excinfo) == code


def test_a_huge_tensor_is_refused_by_the_byte_budget(tmp_path):
    _, metadata = _unknown_axes_inputs(tmp_path)
    # 3.9 GB of float32: 1 x 3 x 18000 x 18000
    spec = {"x[0]": [1], "x[2]": [18000], "x[3]": [18000]}
    with pytest.raises(InputsRejected) as excinfo:
        check_shape_buckets(inputs=metadata.inputs, spec=spec)
    assert _code(excinfo) == "inputs_too_large"
    assert excinfo.value.details["size_bytes"] == 3 * 18000 * 18000 * 4
    assert excinfo.value.details["limit_bytes"] == 256 * 1024 * 1024
    smaller = {"x[0]": [1], "x[2]": [64], "x[3]": [64]}
    with pytest.raises(InputsRejected):
        check_shape_buckets(inputs=metadata.inputs, spec=smaller, max_tensor_bytes=1000)
    with pytest.raises(InputsRejected) as excinfo:
        check_shape_buckets(inputs=metadata.inputs, spec={"x[2]": [65]}, max_axis_size=64)
    assert _code(excinfo) == "shape_bucket_too_large"
    # Open axes are allowed at upload: a partial spec is checked, not completed.
    assert check_shape_buckets(inputs=metadata.inputs, spec={"x[2]": [64]}) == {"x[2]": [64]}


def test_npz_shapes_are_read_from_an_open_file(tmp_path):
    npz = _save(tmp_path / "x.npz", x=np.zeros((4, 3, 48, 192), np.float32))
    with npz.open("rb") as handle:
        assert npz_array_shapes(handle) == {"x": (4, 3, 48, 192)}
