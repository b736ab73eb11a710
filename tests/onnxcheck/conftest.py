"""Shared fixtures of the ONNX validation tests.

Real models only: the digits MLP is trained once per session (``tests.onnx_models``) and the
``light_*`` architectures come from the onnx wheel.
"""

from __future__ import annotations

import pytest

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
