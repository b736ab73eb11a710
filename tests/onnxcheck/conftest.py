"""Shared fixtures of the ONNX validation tests.

Real models only: the digits MLP is trained once per session (``tests.onnx_models``) and the
``light_*`` architectures come from the onnx wheel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from onnxcheck.inputs import RepresentativeInputs, load_representative_inputs
from onnxcheck.inspection import inspect_model
from tests import onnx_models


@pytest.fixture(scope="module")
def digits() -> onnx_models.DigitsModel:
    return onnx_models.digits_mlp()


@pytest.fixture(scope="module")
def digits_inputs(digits) -> RepresentativeInputs:
    metadata = inspect_model(path=digits.model_path)
    return load_representative_inputs(
        npz_path=digits.inputs_path, inputs=metadata.inputs, shape_buckets={"X[0]": [1, 8]}
    )


@pytest.fixture(scope="module")
def digits_int8_variant(tmp_path_factory, digits, digits_inputs) -> Path:
    """The digits MLP's INT8 variant, built the way a validation run builds it."""
    from onnxcheck.quantize import build_int8_variant

    directory = tmp_path_factory.mktemp("int8-variant")
    return build_int8_variant(
        model_path=digits.model_path, inputs=digits_inputs, output_dir=directory
    ).path


@pytest.fixture(scope="module")
def digits_fp16_variant(tmp_path_factory, digits) -> Path:
    """The digits MLP converted to FP16 *including its inputs and outputs* (float16 feeds)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    path = tmp_path_factory.mktemp("fp16-variant") / "digits_mlp.fp16.onnx"
    converted = convert_float_to_float16(onnx.load(digits.model_path), keep_io_types=False)
    onnx.save(converted, path)
    return path


def perturbed_copy(source: Path, target: Path, *, scale: float, seed: int = 0) -> Path:
    """``source`` with Gaussian noise of ``scale`` times each float weight tensor's spread added:
    a variant whose outputs are plainly wrong."""
    model = onnx.load(source)
    rng = np.random.default_rng(seed)
    for tensor in model.graph.initializer:
        values = numpy_helper.to_array(tensor)
        if values.dtype.kind != "f" or values.size < 16:
            continue
        noise = rng.normal(0.0, scale * float(values.std()), values.shape)
        tensor.CopyFrom(numpy_helper.from_array((values + noise).astype(values.dtype), tensor.name))
    onnx.save(model, target)
    return target
