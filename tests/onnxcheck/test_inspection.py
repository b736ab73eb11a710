"""Safe inspection of an upload: metadata, and every kind of bad file refused with its code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
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
                d / "up" / "m.onnx", location="weights.bin", data_bytes=b"\0" * 16
            ),
            "external_data_not_allowed",
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
        "single-file-external",
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


# -- external data: refused in a single file, confined to the bundle ----------------------------


def _bundle_model(bundle: Path, location: str, data_bytes: bytes | None = b"\0" * 16) -> Path:
    """``bundle/m.onnx`` whose 16-byte bias lives at ``location`` (data written if given)."""
    return onnx_models.write_external_data_model(
        bundle / "m.onnx", location=location, data_bytes=data_bytes
    )


def _refusal(path: Path, **kwargs) -> ModelRejected:
    with pytest.raises(ModelRejected) as excinfo:
        inspect_model(path=path, **kwargs)
    return excinfo.value


def test_single_file_with_external_data_is_refused_without_looking_at_the_disk(
    tmp_path, monkeypatch
):
    path = _bundle_model(tmp_path / "up", "weights.bin")
    assert (tmp_path / "up" / "weights.bin").is_file()  # the data is right there, yet refused

    def no_filesystem(*_args, **_kwargs):
        raise AssertionError("the filesystem was consulted for an external-data location")

    monkeypatch.setattr("onnxcheck.inspection.os.path.realpath", no_filesystem)
    monkeypatch.setattr(Path, "lstat", no_filesystem)
    error = _refusal(path)
    assert error.code == "external_data_not_allowed"
    assert "a single .onnx upload may reference no file outside itself" in error.message
    assert ".zip or .tar bundle" in error.message
    json.dumps(error.to_dict())


def test_single_file_is_no_existence_or_size_oracle_for_its_directory(tmp_path):
    """The attack: name a neighbour of the upload's temp file, with a large offset."""
    upload_dir = tmp_path / "tmp"
    neighbour = upload_dir / "someone-elses-upload.onnx"
    bias = TensorProto()
    bias.name, bias.data_type = "B", TensorProto.FLOAT
    bias.dims.append(4)
    bias.data_location = TensorProto.EXTERNAL
    for key, value in (("location", neighbour.name), ("offset", "999999"), ("length", "16")):
        entry = bias.external_data.add()
        entry.key, entry.value = key, value
    path = onnx_models.write_model(onnx_models.tiny_model(initializer=bias), upload_dir / "m.onnx")
    absent = _refusal(path).to_dict()
    neighbour.write_bytes(b"\1" * 12345)
    present = _refusal(path).to_dict()
    assert present == absent
    assert present["code"] == "external_data_not_allowed"
    assert "12345" not in json.dumps(present)


def test_bundle_built_by_onnx_with_external_data_is_accepted(tmp_path):
    from onnx.external_data_helper import convert_model_to_external_data

    weights = numpy_helper.from_array(np.arange(256, dtype=np.float32).reshape(64, 4), "W")
    model = onnx_models.tiny_model()
    model.graph.initializer.append(weights)
    convert_model_to_external_data(
        model, all_tensors_to_one_file=True, location="weights/model.data", size_threshold=0
    )
    bundle = tmp_path / "bundle"
    (bundle / "sub" / "weights").mkdir(parents=True)
    path = bundle / "sub" / "model.onnx"
    onnx.save_model(model, path)
    data_file = bundle / "sub" / "weights" / "model.data"
    assert data_file.stat().st_size >= 256 * 4

    metadata = inspect_model(path=path, external_root=bundle)
    assert metadata.external_data_files == ("sub/weights/model.data",)
    assert metadata.external_data_bytes == data_file.stat().st_size
    assert metadata.total_bytes == path.stat().st_size + data_file.stat().st_size
    assert metadata.initializer_bytes >= 256 * 4
    # The same model as a single file is refused, whatever lies next to it.
    assert _refusal(path).code == "external_data_not_allowed"


def test_external_data_inside_the_bundle_is_accepted(tmp_path):
    path = _bundle_model(tmp_path, "weights.bin")
    metadata = inspect_model(path=path, external_root=tmp_path)
    assert metadata.external_data_files == ("weights.bin",)
    assert metadata.total_bytes == path.stat().st_size + 16


def _symlink(link: Path, target: Path) -> Path:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    return link


@pytest.mark.parametrize(
    ("location", "prepare", "code"),
    [
        ("../secret.bin", None, "external_data_outside_upload"),
        ("../../etc/passwd", None, "external_data_outside_upload"),
        ("/etc/passwd", None, "external_data_outside_upload"),
        ("C:/Windows/win.ini", None, "external_data_outside_upload"),
        ("sub\\..\\..\\secret.bin", None, "external_data_outside_upload"),
        ("", None, "external_data_outside_upload"),
        (".", None, "external_data_outside_upload"),
        (
            "out.bin",
            lambda bundle: _symlink(bundle / "out.bin", bundle.parent / "secret.bin"),
            "external_data_outside_upload",
        ),
        (
            "linked/w.bin",
            lambda bundle: _symlink(bundle / "linked", bundle.parent),
            "external_data_outside_upload",
        ),
        (
            "alias.bin",  # a symlink to a file inside the bundle is refused too
            lambda bundle: _symlink(bundle / "alias.bin", bundle / "real.bin"),
            "external_data_outside_upload",
        ),
        ("weights.bin", lambda bundle: None, "external_data_missing"),
        ("dir.bin", lambda bundle: (bundle / "dir.bin").mkdir(), "external_data_invalid"),
        (
            "short.bin",
            lambda bundle: (bundle / "short.bin").write_bytes(b"\0" * 8),
            "external_data_invalid",
        ),
    ],
    ids=[
        "traversal",
        "deep-traversal",
        "absolute",
        "windows-drive",
        "backslashes",
        "empty",
        "the-bundle-itself",
        "symlink-out",
        "symlinked-directory-out",
        "symlink-inside",
        "missing",
        "directory",
        "short",
    ],
)
def test_bundle_external_data_must_be_a_regular_file_inside_the_bundle(
    tmp_path, location, prepare, code
):
    bundle = tmp_path / "bundle"
    (tmp_path / "secret.bin").write_bytes(b"\0" * 4096)
    path = _bundle_model(bundle, location, data_bytes=None)
    (bundle / "real.bin").write_bytes(b"\0" * 16)
    if prepare is not None:
        prepare(bundle)
    error = _refusal(path, external_root=bundle)
    assert error.code == code
    assert str(tmp_path) not in error.message and "4096" not in error.message
    json.dumps(error.to_dict())


@pytest.mark.parametrize("via", ["traversal", "symlink"])
def test_bundle_refusal_says_nothing_about_files_outside_it(tmp_path, via):
    """Outside file present (with a size a large offset would print) or absent: same answer."""
    bundle = tmp_path / "bundle"
    outside = tmp_path / "secret.bin"
    if via == "traversal":
        path = _bundle_model(bundle, "../secret.bin", data_bytes=None)
    else:
        path = _bundle_model(bundle, "link.bin", data_bytes=None)
        _symlink(bundle / "link.bin", outside)
    model = onnx.load(path, load_external_data=False)
    for entry in model.graph.initializer[0].external_data:
        if entry.key == "offset":
            entry.value = "999999"  # past the end: the old check printed the file's size
    onnx_models.write_model(model, path)
    absent = _refusal(path, external_root=bundle).to_dict()
    outside.write_bytes(b"\0" * 54321)
    present = _refusal(path, external_root=bundle).to_dict()
    assert present == absent
    assert present["code"] == "external_data_outside_upload"
    assert "54321" not in json.dumps(present)


def test_model_outside_its_bundle_is_a_caller_error(tmp_path):
    path = _bundle_model(tmp_path / "a", "weights.bin")
    (tmp_path / "b").mkdir()
    with pytest.raises(ValueError, match="inside external_root"):
        inspect_model(path=path, external_root=tmp_path / "b")


def test_size_limit_is_configurable_and_counts_external_data(tmp_path, digits):
    with pytest.raises(ModelRejected) as excinfo:
        inspect_model(path=digits.model_path, max_bytes=digits.model_path.stat().st_size - 1)
    assert _code(excinfo) == "too_large"
    path = _bundle_model(tmp_path, "w.bin")
    inspect_model(path=path, external_root=tmp_path, max_bytes=path.stat().st_size + 16)
    with pytest.raises(ModelRejected) as excinfo:
        inspect_model(path=path, external_root=tmp_path, max_bytes=path.stat().st_size + 15)
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
