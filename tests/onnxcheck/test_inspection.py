"""Safe inspection of an upload: metadata, and every kind of bad file refused with its code."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxcheck.inspection import ModelRejected, inspect_model
from tests import onnx_models


def _code(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.code


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


def test_parameter_count_includes_weights_held_in_constant_nodes(tmp_path):
    as_constants = onnx_models.unknown_axes_model(weights_as_constants=True)
    as_initializers = onnx_models.unknown_axes_model(weights_as_constants=False)
    counts = [
        inspect_model(path=onnx_models.write_model(model, tmp_path / f"{i}.onnx")).parameter_count
        for i, model in enumerate([as_constants, as_initializers])
    ]
    assert counts == [2 * 3 * 3 * 3 + 2, 2 * 3 * 3 * 3 + 2]
