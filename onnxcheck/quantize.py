"""Building the INT8 and FP16 variants of a model with onnxruntime's own tools.

INT8 (:func:`build_int8_variant`):

- MatMul/Gemm-dominated graphs (MLPs, transformers) get **dynamic** quantization
  (``quantize_dynamic``, int8 weights, activations quantized at run time): no calibration data is
  needed and accuracy is usually kept.
- Convolution-dominated graphs get **static QDQ** quantization (``quantize_static``), calibrated
  (MinMax) on the representative inputs, int8 activations and weights, per-channel weights. The
  model is first pre-processed (``quant_pre_process``: ONNX shape inference + onnxruntime basic
  optimisation, which folds ``ConstantOfShape`` weights and BatchNorm into initializers; symbolic
  shape inference is skipped, so ``sympy`` is not needed) and, if its opset is below 13, upgraded
  to 13 because per-channel ``DequantizeLinear`` needs the ``axis`` attribute. If the upgrade is
  impossible, per-tensor quantization is used instead. ``QDQDisableWeightAdjustForInt32Bias`` is
  set because onnxruntime 1.32 otherwise raises on per-channel ``Gemm`` (see FACTS.md).

FP16 (:func:`build_fp16_variant`): ``onnxruntime.transformers.float16.convert_float_to_float16``
with ``keep_io_types=True`` (inputs and outputs stay fp32, so the variant is a drop-in
replacement). Its output is not topologically sorted when it inserts input casts, so nodes are
re-sorted before saving. Operators on its default block list stay fp32.

Before either, graph inputs that are really initializers (IR < 4 models list every initializer
as an input) are dropped: left in, they survive pre-processing as required inputs with no data.

A model that is already a variant is never converted again (:func:`is_quantized_graph`,
:func:`is_fp16_graph`, :func:`existing_variant_kind`): quantizing an INT8 graph duplicates its
node names, and ``DynamicQuantizeLinear`` has no float16 kernel, so neither can succeed, and a
variant of a variant is not evidence about anything the user uploaded.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from onnxcheck.inputs import RepresentativeInputs
from onnxcheck.inspection import iter_nodes, sha256_file

MATMUL_OPS = {"MatMul", "Gemm", "Attention", "MultiHeadAttention", "LSTM", "GRU"}
CONV_OPS = {"Conv", "ConvTranspose"}
DEFAULT_CALIBRATION_SAMPLES = 64

QUANTIZED_OPS = {
    "QuantizeLinear",
    "DequantizeLinear",
    "DynamicQuantizeLinear",
    "MatMulInteger",
    "ConvInteger",
    "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat",
    "DynamicQuantizeLSTM",
    "MatMulNBits",
    "QGemm",
    "QAttention",
}
"""Operators that only a quantized graph contains (plus every ``QLinear*`` operator)."""


def _is_quantized_op(op_type: str) -> bool:
    return op_type in QUANTIZED_OPS or op_type.startswith("QLinear")


def is_quantized_graph(model: onnx.ModelProto) -> bool:
    """Whether the graph is already quantized: it holds quantization operators (QDQ pairs,
    ``QLinear*``, the integer MatMul/Conv family, ``DynamicQuantizeLinear``), which is also
    where int8/uint8 weights of a quantized graph are consumed. Subgraphs count.

    An int8/uint8 initializer on its own is not evidence (masks, lookup tables, image
    constants are stored that way in float models); one feeding a quantization operator is.
    """
    return any(_is_quantized_op(node.op_type) for _, node in iter_nodes(model.graph))


def is_fp16_graph(model: onnx.ModelProto) -> bool:
    """Whether the graph is already FP16: a float16 graph input, or float16 initializers holding
    more elements than the float32 ones (``keep_io_types`` variants keep float32 inputs)."""
    initializers = {tensor.name for tensor in model.graph.initializer}
    for item in model.graph.input:
        if item.name in initializers:
            continue
        if item.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16:
            return True
    elements: Counter[int] = Counter()
    for tensor in model.graph.initializer:
        count = 1
        for dim in tensor.dims:
            count *= dim
        elements[tensor.data_type] += count
    return elements[onnx.TensorProto.FLOAT16] > elements[onnx.TensorProto.FLOAT]


def existing_variant_kind(model: onnx.ModelProto) -> str | None:
    """``"int8"`` or ``"fp16"`` when the model is itself such a variant, else ``None``."""
    if is_quantized_graph(model):
        return "int8"
    if is_fp16_graph(model):
        return "fp16"
    return None


def not_quantized_again_reason(kind: str) -> str:
    """The skip reason recorded for the quantization steps of a model that is a variant."""
    return f"this model is itself an {kind.upper()} variant; it is not quantized again"


@dataclass(frozen=True)
class VariantFile:
    """A variant written to disk, ready to be registered as a version ``derived_from`` the
    original."""

    kind: str
    path: Path
    sha256: str
    size_bytes: int
    method: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": str(self.path),
            "file_name": self.path.name,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "method": self.method,
            "settings": dict(self.settings),
            "notes": list(self.notes),
        }


class VariantUnavailable(Exception):
    """A variant cannot be produced for this model; the message says why."""


def choose_int8_method(model: onnx.ModelProto) -> tuple[str, str]:
    """``("dynamic" | "static-qdq", reason)`` from the graph's compute operators."""
    ops = Counter(node.op_type for _, node in iter_nodes(model.graph))
    conv = sum(ops[op] for op in CONV_OPS)
    matmul = sum(ops[op] for op in MATMUL_OPS)
    if conv and conv >= matmul:
        return "static-qdq", f"{conv} convolution vs {matmul} MatMul/Gemm nodes: convolutional"
    return "dynamic", f"{matmul} MatMul/Gemm vs {conv} convolution nodes: MLP/transformer-like"


def normalize_for_conversion(model: onnx.ModelProto) -> onnx.ModelProto:
    """Copy of the model without initializer-backed graph inputs (IR ≥ 4 semantics)."""
    normalized = onnx.ModelProto()
    normalized.CopyFrom(model)
    initializers = {tensor.name for tensor in normalized.graph.initializer}
    keep = [item for item in normalized.graph.input if item.name not in initializers]
    if len(keep) != len(normalized.graph.input):
        del normalized.graph.input[:]
        normalized.graph.input.extend(keep)
        normalized.ir_version = max(normalized.ir_version, 4)
    return normalized


def topologically_sorted(graph: onnx.GraphProto) -> None:
    """Reorder ``graph.node`` so every node follows the producers of its inputs (in place).

    Names consumed inside a node's subgraphs count as its inputs. Leaves the order untouched if
    the graph has a cycle.
    """
    produced_by: dict[str, int] = {}
    for index, node in enumerate(graph.node):
        for output in node.output:
            if output:
                produced_by[output] = index

    def consumed(node: onnx.NodeProto) -> set[str]:
        names = set(node.input)
        for attribute in node.attribute:
            subgraphs = [attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else []
            subgraphs += list(attribute.graphs)
            for subgraph in subgraphs:
                for _, inner in iter_nodes(subgraph):
                    names.update(inner.input)
        return names

    dependencies = [
        {produced_by[name] for name in consumed(node) if name in produced_by} - {index}
        for index, node in enumerate(graph.node)
    ]
    dependants: dict[int, list[int]] = {}
    for index, needs in enumerate(dependencies):
        for need in needs:
            dependants.setdefault(need, []).append(index)
    remaining = [len(needs) for needs in dependencies]
    ready = [index for index, count in enumerate(remaining) if count == 0]
    order: list[int] = []
    while ready:
        index = ready.pop(0)
        order.append(index)
        for dependant in dependants.get(index, []):
            remaining[dependant] -= 1
            if remaining[dependant] == 0:
                ready.append(dependant)
    if len(order) != len(graph.node):
        return
    nodes = [graph.node[index] for index in order]
    copies = [onnx.NodeProto() for _ in nodes]
    for copy, node in zip(copies, nodes, strict=True):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)


def _variant(kind: str, path: Path, method: str, settings: dict, notes: list[str]) -> VariantFile:
    return VariantFile(
        kind=kind,
        path=path,
        sha256=sha256_file(path),
        size_bytes=path.stat().st_size,
        method=method,
        settings=settings,
        notes=tuple(notes),
    )


class _CalibrationReader:
    """Feeds the representative inputs to onnxruntime's calibrator, at most ``limit`` samples."""

    def __init__(self, inputs: RepresentativeInputs, limit: int) -> None:
        self._feeds = iter(list(self._collect(inputs, limit)))
        self.sample_count = 0

    @staticmethod
    def _collect(inputs: RepresentativeInputs, limit: int) -> Iterator[dict[str, np.ndarray]]:
        if inputs.samples:
            taken = 0
            for feed, count in inputs.iter_batches(max_batch=16):
                yield feed
                taken += count
                if taken >= limit:
                    return
        else:
            for feed in inputs.bucket_feeds:
                yield dict(feed)

    def get_next(self) -> dict[str, np.ndarray] | None:
        """onnxruntime's CalibrationDataReader protocol (duck-typed): next feed or ``None``."""
        feed = next(self._feeds, None)
        if feed is not None:
            first = next(iter(feed.values()))
            self.sample_count += int(first.shape[0]) if first.ndim else 1
        return feed


def build_int8_variant(
    *,
    model_path: str | os.PathLike[str],
    inputs: RepresentativeInputs,
    output_dir: str | os.PathLike[str],
    max_calibration_samples: int = DEFAULT_CALIBRATION_SAMPLES,
) -> VariantFile:
    """Write ``<stem>.int8.onnx`` into ``output_dir`` (method chosen by
    :func:`choose_int8_method`). Raises :class:`VariantUnavailable` with the reason."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source = Path(model_path)
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{source.stem}.int8.onnx"
    model = onnx.load_model(os.fspath(source), load_external_data=False)
    method, reason = choose_int8_method(model)
    notes = [reason]
    with tempfile.TemporaryDirectory(dir=out_dir) as scratch_dir:
        scratch = Path(scratch_dir)
        # Loaded with its (already vetted) external data and saved as one self-contained file:
        # the upload limit keeps it far below protobuf's 2 GB ceiling.
        normalized = scratch / "normalized.onnx"
        full = onnx.load_model(os.fspath(source))
        onnx.save_model(normalize_for_conversion(full), os.fspath(normalized))
        del full
        try:
            if method == "dynamic":
                quantize_dynamic(
                    os.fspath(normalized), os.fspath(target), weight_type=QuantType.QInt8
                )
                settings: dict[str, Any] = {"weight_type": "int8", "activations": "dynamic"}
            else:
                prepared = scratch / "prepared.onnx"
                quant_pre_process(
                    os.fspath(normalized), os.fspath(prepared), skip_symbolic_shape=True
                )
                per_channel = _ensure_opset_13(prepared, notes)
                reader = _CalibrationReader(inputs, max_calibration_samples)
                quantize_static(
                    os.fspath(prepared),
                    os.fspath(target),
                    reader,
                    quant_format=QuantFormat.QDQ,
                    per_channel=per_channel,
                    activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax,
                    extra_options={"QDQDisableWeightAdjustForInt32Bias": True},
                )
                settings = {
                    "format": "QDQ",
                    "activation_type": "int8",
                    "weight_type": "int8",
                    "per_channel": per_channel,
                    "calibration": "MinMax",
                    "calibration_samples": reader.sample_count,
                    "calibration_source": inputs.source,
                }
                if inputs.synthetic:
                    notes.append(
                        "calibrated on synthetic inputs: size and latency only, "
                        "do not register without recalibrating on real data"
                    )
        except Exception as exc:  # onnxruntime raises bare ValueError/RuntimeError/KeyError
            raise VariantUnavailable(f"{method} INT8 quantization failed: {exc}") from exc
    return _variant("int8", target, method, settings, notes)


def _ensure_opset_13(path: Path, notes: list[str]) -> bool:
    """Upgrade the default-domain opset to 13 in place if lower; False if per-channel is off."""
    model = onnx.load_model(os.fspath(path))
    opset = next((o.version for o in model.opset_import if o.domain in {"", "ai.onnx"}), 0)
    if opset >= 13:
        return True
    try:
        upgraded = onnx.version_converter.convert_version(model, 13)
        onnx.checker.check_model(upgraded)
    except Exception as exc:  # noqa: BLE001 - any adapter error just means "stay per-tensor"
        notes.append(f"opset {opset} could not be upgraded to 13 ({exc}); per-tensor weights")
        return False
    onnx.save_model(upgraded, os.fspath(path))
    notes.append(f"opset upgraded from {opset} to 13 for per-channel DequantizeLinear")
    return True


def fp16_converter_available() -> tuple[bool, str]:
    """Whether the installed onnxruntime ships its float16 converter."""
    try:
        from onnxruntime.transformers.float16 import convert_float_to_float16  # noqa: F401
    except ImportError as exc:
        return False, f"onnxruntime.transformers.float16 is not importable: {exc}"
    return True, "onnxruntime.transformers.float16.convert_float_to_float16"


def build_fp16_variant(
    *, model_path: str | os.PathLike[str], output_dir: str | os.PathLike[str]
) -> VariantFile:
    """Write ``<stem>.fp16.onnx`` (fp32 inputs/outputs kept). Raises
    :class:`VariantUnavailable` when the converter is missing or the result is invalid."""
    available, detail = fp16_converter_available()
    if not available:
        raise VariantUnavailable(detail)
    from onnxruntime.transformers.float16 import convert_float_to_float16

    source = Path(model_path)
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{source.stem}.fp16.onnx"
    try:
        model = normalize_for_conversion(onnx.load_model(os.fspath(source)))
        converted = convert_float_to_float16(model, keep_io_types=True)
        topologically_sorted(converted.graph)
        onnx.checker.check_model(converted)
        onnx.save_model(converted, os.fspath(target))
    except Exception as exc:  # the converter raises generic errors for unsupported graphs
        target.unlink(missing_ok=True)
        raise VariantUnavailable(f"FP16 conversion failed: {exc}") from exc
    return _variant(
        "fp16",
        target,
        "convert_float_to_float16",
        {"keep_io_types": True, "op_block_list": "onnxruntime default"},
        [detail],
    )
