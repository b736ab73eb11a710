"""Telling a model that is already a variant from one that may be quantized."""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from onnxcheck.quantize import existing_variant_kind, is_fp16_graph, is_quantized_graph
from tests import onnx_models


def test_the_fp32_digits_model_is_neither_int8_nor_fp16(digits):
    model = onnx.load(digits.model_path)
    assert is_quantized_graph(model) is False
    assert is_fp16_graph(model) is False
    assert existing_variant_kind(model) is None


def test_an_int8_variant_is_detected(digits_int8_variant):
    model = onnx.load(digits_int8_variant)
    assert is_quantized_graph(model) is True
    assert existing_variant_kind(model) == "int8"


def test_an_fp16_variant_is_detected_with_or_without_float16_inputs(
    tmp_path, digits, digits_fp16_variant
):
    from onnxruntime.transformers.float16 import convert_float_to_float16

    float16_io = onnx.load(digits_fp16_variant)
    assert float16_io.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT16
    keep_io = convert_float_to_float16(onnx.load(digits.model_path), keep_io_types=True)
    assert keep_io.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    for model in (float16_io, keep_io):
        assert is_fp16_graph(model) is True
        assert is_quantized_graph(model) is False
        assert existing_variant_kind(model) == "fp16"


def test_a_qdq_pair_or_qlinear_operator_marks_a_graph_quantized():
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [], [0.1])
    zero = helper.make_tensor("zero", TensorProto.INT8, [], [0])
    qdq = onnx_models.tiny_model(
        extra_nodes=[
            helper.make_node("QuantizeLinear", ["Y", "scale", "zero"], ["Q"], name="q"),
            helper.make_node("DequantizeLinear", ["Q", "scale", "zero"], ["D"], name="dq"),
        ]
    )
    qdq.graph.initializer.extend([scale, zero])
    assert is_quantized_graph(qdq) is True
    # An int8 initializer alone (a mask, a lookup table) is not quantization.
    plain = onnx_models.tiny_model()
    plain.graph.initializer.append(helper.make_tensor("mask", TensorProto.INT8, [4], [1] * 4))
    assert is_quantized_graph(plain) is False
    assert is_fp16_graph(plain) is False
