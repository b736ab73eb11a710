"""The validation run a Celery worker performs on an uploaded model version.

Each step is a function returning a :class:`StepResult` (name, status, duration, findings,
data). :func:`run_validation` runs them in order, reports each through ``on_step`` (the Celery task
persists progress with it) and returns a :class:`ValidationReport` whose :meth:`report_digest` is
what the signing manifest commits to.

Order and dependencies::

    integrity ─▶ inputs ─▶ compatibility ─▶ latency ─▶ quantization_int8 ─▶ quantization_fp16
                                                         ─▶ calibration ─▶ gates

A digest mismatch or a refused file stops the run (evidence about another file is worthless);
every later step is then recorded as skipped with the reason. Bad representative inputs skip
the steps that need them. Otherwise every step runs, so a failing report lists *every* reason.

Never hangs: every step except ``inputs`` and ``gates`` (bounded pure Python) runs in a child
Python process (``python -m onnxcheck.worker``) with a wall-clock limit and an optional
address-space limit (:class:`StepLimits`). A step that exceeds its limit is killed and recorded
as failed with the reason; so is one whose process dies (segfault, OOM kill). The child process
also makes the latency step's peak-memory figure clean.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.inliner
from onnx import TensorProto

from onnxcheck.inputs import (
    SYNTHETIC_NOTE,
    InputsRejected,
    RepresentativeInputs,
    ShapeBucketsSpec,
    load_representative_inputs,
    synthesize_inputs,
)
from onnxcheck.inspection import (
    DEFAULT_MAX_MODEL_BYTES,
    DEFAULT_MAX_TENSOR_ELEMENTS,
    ModelMetadata,
    ModelRejected,
    dims_of,
    generated_constant_shapes,
    iter_nodes,
    load_checked_model,
    model_inputs,
    operator_label,
    sha256_file,
    tensor_nbytes,
)
from onnxcheck.latency import (
    DEFAULT_LATENCY_RULE,
    REFERENCE_LABEL,
    LatencyRule,
    compare_latency,
    create_session,
    machine_description,
    measure_model_latency,
)
from onnxcheck.operators import TargetProfile, display_domain, resolve_since_version
from onnxcheck.scoring import (
    ECE_BINS,
    accuracy,
    as_probabilities,
    calibration_bins,
    confidence_histogram,
    distribution,
    expected_calibration_error,
    find_score_output,
    sqnr_db,
    top1,
)

PASSED, FAILED, WARNING, SKIPPED = "passed", "failed", "warning", "skipped"
STEP_ORDER = (
    "integrity",
    "inputs",
    "compatibility",
    "latency",
    "quantization_int8",
    "quantization_fp16",
    "calibration",
    "gates",
)
QUANTIZED_LABELS = {"int8-qdq", "int8-qlinear", "int4-qdq", "int16-qdq"}
_MAX_NODE_NAMES = 50
VARIANT_LATENCY_RULE = LatencyRule(
    warmup_runs=5, warmup_max_seconds=0.5, min_runs=20, min_seconds=0.5, max_seconds=2.0
)
"""Shorter rule for FP32-vs-variant comparisons (two alternating rounds each)."""
DEFAULT_MAX_EVAL_SAMPLES = 5000


# -- results ------------------------------------------------------------------------------------


def json_safe(value: Any) -> Any:
    """Plain JSON types only: numpy scalars unwrapped, NaN/inf → None, tuples → lists."""
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8, no NaN: the same data always gives the same bytes."""
    return json.dumps(
        json_safe(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


@dataclass
class StepResult:
    """One validation step. ``status`` is passed | failed | warning | skipped."""

    name: str
    status: str
    duration_ms: float
    findings: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "name": self.name,
                "status": self.status,
                "duration_ms": self.duration_ms,
                "findings": list(self.findings),
                "data": self.data,
            }
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepResult:
        return cls(
            name=data["name"],
            status=data["status"],
            duration_ms=float(data["duration_ms"]),
            findings=list(data.get("findings", [])),
            data=dict(data.get("data", {})),
        )

    @classmethod
    def skipped(cls, name: str, reason: str) -> StepResult:
        return cls(name=name, status=SKIPPED, duration_ms=0.0, findings=[reason])


class _Timer:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def ms(self) -> float:
        return (time.perf_counter() - self.start) * 1000.0


def _status(findings_fail: bool, findings_warn: bool = False) -> str:
    return FAILED if findings_fail else (WARNING if findings_warn else PASSED)


# -- (a) integrity ------------------------------------------------------------------------------


def check_integrity(
    *,
    model_path: str | os.PathLike[str],
    expected_sha256: str,
    max_bytes: int = DEFAULT_MAX_MODEL_BYTES,
    max_tensor_elements: int = DEFAULT_MAX_TENSOR_ELEMENTS,
) -> StepResult:
    """Digest, safe inspection, ``onnx.checker`` (full check) and strict shape inference.

    The digest is re-computed from disk because the file may have changed since upload. Checker
    and shape-inference errors become findings; a refused file or a digest mismatch sets
    ``data["fatal"]`` so the run stops.
    """
    timer = _Timer()
    path = Path(model_path)
    findings: list[str] = []
    data: dict[str, Any] = {"expected_sha256": expected_sha256.lower()}
    try:
        actual = sha256_file(path)
    except OSError as exc:
        return StepResult(
            "integrity", FAILED, timer.ms(), [f"cannot read the model: {exc}"], {"fatal": True}
        )
    data["sha256"] = actual
    data["sha256_matches"] = actual == expected_sha256.lower()
    if not data["sha256_matches"]:
        findings.append(f"SHA-256 mismatch: expected {expected_sha256.lower()}, file is {actual}")
        data["fatal"] = True
        return StepResult("integrity", FAILED, timer.ms(), findings, data)
    try:
        _, metadata = load_checked_model(
            path=path, max_bytes=max_bytes, max_tensor_elements=max_tensor_elements
        )
    except ModelRejected as exc:
        findings.append(f"refused ({exc.code}): {exc.message}")
        data.update(fatal=True, rejection=exc.to_dict())
        return StepResult("integrity", FAILED, timer.ms(), findings, data)
    data["metadata"] = metadata.to_dict()

    try:
        onnx.checker.check_model(os.fspath(path), full_check=True)
        data["checker_passed"] = True
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        data["checker_passed"] = False
        findings.append(f"onnx.checker (full_check): {_first_line(exc)}")
    with tempfile.TemporaryDirectory() as scratch:
        try:
            onnx.shape_inference.infer_shapes_path(
                os.fspath(path),
                os.fspath(Path(scratch) / "inferred.onnx"),
                check_type=True,
                strict_mode=True,
                data_prop=True,
            )
            data["strict_shape_inference_passed"] = True
        except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as exc:
            data["strict_shape_inference_passed"] = False
            findings.append(f"strict shape inference: {_first_line(exc)}")
    data["fatal"] = False
    return StepResult("integrity", _status(bool(findings)), timer.ms(), findings, data)


def _first_line(exc: BaseException, limit: int = 500) -> str:
    text = " ".join(str(exc).split())
    return text[:limit] + ("…" if len(text) > limit else "")


# -- representative inputs ----------------------------------------------------------------------


@dataclass(frozen=True)
class InputsSpec:
    """What the user provided: an ``.npz`` (optional) and shape buckets for dynamic axes."""

    npz_path: str | os.PathLike[str] | None = None
    shape_buckets: ShapeBucketsSpec | None = None
    seed: int = 0


def prepare_inputs(
    *, metadata: ModelMetadata, spec: InputsSpec | RepresentativeInputs
) -> tuple[RepresentativeInputs, StepResult]:
    """Load/validate or synthesise the inputs and describe them as the ``inputs`` step.

    Raises :class:`InputsRejected`; :func:`run_validation` records it as a failed step.
    """
    timer = _Timer()
    if isinstance(spec, RepresentativeInputs):
        inputs = spec
    elif spec.npz_path is not None:
        inputs = load_representative_inputs(
            npz_path=spec.npz_path, inputs=metadata.inputs, shape_buckets=spec.shape_buckets
        )
    else:
        inputs = synthesize_inputs(
            inputs=metadata.inputs, shape_buckets=spec.shape_buckets, seed=spec.seed
        )
    findings = [inputs.note, *inputs.notes]
    return inputs, StepResult("inputs", PASSED, timer.ms(), findings, inputs.describe())


# -- (b) compatibility --------------------------------------------------------------------------


def _shape_skeleton(
    model: onnx.ModelProto, fixed_inputs: Mapping[str, Sequence[int]] | None
) -> onnx.ModelProto:
    """The graph without its weights: large initializers become typed graph inputs.

    Shape inference needs only their types and dims (and the values of small constants such as
    Reshape targets), so a 500 MB model is not copied twice just to infer shapes.
    """
    skeleton = onnx.ModelProto()
    skeleton.ir_version = model.ir_version
    skeleton.opset_import.extend(model.opset_import)
    skeleton.functions.extend(model.functions)
    graph = skeleton.graph
    graph.name = model.graph.name
    graph.node.extend(model.graph.node)
    graph.input.extend(model.graph.input)
    graph.output.extend(model.graph.output)
    graph.value_info.extend(model.graph.value_info)
    declared = {value.name for value in graph.input}
    for tensor in model.graph.initializer:
        small = math.prod(tensor.dims) <= 64 and tensor.data_location != TensorProto.EXTERNAL
        if small:
            graph.initializer.append(tensor)
        elif tensor.name not in declared:
            graph.input.append(
                onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, tensor.dims)
            )
    for value in graph.input:
        shape = (fixed_inputs or {}).get(value.name)
        if shape is not None and value.type.HasField("tensor_type"):
            for dim, size in zip(value.type.tensor_type.shape.dim, shape, strict=False):
                dim.Clear()
                dim.dim_value = int(size)
    return skeleton


def _infer_value_shapes(
    model: onnx.ModelProto, fixed_inputs: Mapping[str, Sequence[int]] | None
) -> dict[str, tuple[int, tuple[int | str | None, ...] | None]]:
    """(elem_type, dims) per value after ONNX shape inference with inputs fixed to a bucket.

    Inference errors leave values unknown rather than failing the step.
    """
    skeleton = _shape_skeleton(model, fixed_inputs)
    try:
        inferred = onnx.shape_inference.infer_shapes(skeleton, data_prop=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError, RuntimeError):
        inferred = skeleton
    values: dict[str, tuple[int, tuple[int | str | None, ...] | None]] = {}
    graph = inferred.graph
    for value in [*graph.input, *graph.value_info, *graph.output]:
        if value.type.HasField("tensor_type"):
            tensor_type = value.type.tensor_type
            dims = dims_of(tensor_type.shape) if tensor_type.HasField("shape") else None
            values[value.name] = (tensor_type.elem_type, dims)
    for tensor in model.graph.initializer:
        values[tensor.name] = (tensor.data_type, tuple(int(d) for d in tensor.dims))
    return values


def estimate_peak_memory(
    model: onnx.ModelProto,
    values: Mapping[str, tuple[int, tuple[int | str | None, ...] | None]],
) -> dict[str, Any]:
    """Static estimate: weights + the largest set of activations alive at once.

    Nodes run in graph order; a value is allocated when produced and freed after its last
    consumer (what onnxruntime's memory planner approximates). ConstantOfShape outputs with a
    constant shape count as weights (onnxruntime folds them at load). Values of unknown size
    count as zero and are reported, so the figure is then a lower bound.
    """
    graph = model.graph
    initializer_names = {tensor.name for tensor in graph.initializer}
    weights = sum(
        tensor_nbytes(tensor.data_type, math.prod(tensor.dims)) or 0 for tensor in graph.initializer
    )
    generated = generated_constant_shapes(model)
    generated_bytes = sum(4 * math.prod(shape) for shape in generated.values())

    def size_of(name: str) -> int | None:
        elem_type, dims = values.get(name, (0, None))
        if dims is None or not all(isinstance(d, int) for d in dims):
            return None
        return tensor_nbytes(elem_type, math.prod(dims))  # type: ignore[arg-type]

    last_use: dict[str, int] = {}
    for index, node in enumerate(graph.node):
        for name in node.input:
            last_use[name] = index
    outputs = {value.name for value in graph.output}
    unknown: set[str] = set()
    live = 0
    for value in model_inputs(graph):
        size = size_of(value.name)
        if size is None:
            unknown.add(value.name)
        live += size or 0
    peak = live
    for index, node in enumerate(graph.node):
        for name in node.output:
            if not name or name in generated:
                continue
            size = size_of(name)
            if size is None:
                unknown.add(name)
            live += size or 0
        peak = max(peak, live)
        for name in set(node.input):
            if (
                last_use.get(name) == index
                and name not in outputs
                and name not in initializer_names
                and name not in generated
            ):
                live -= size_of(name) or 0
    return {
        "method": "static: weights + peak live activations (free after last use), main graph",
        "weights_bytes": weights + generated_bytes,
        "peak_activation_bytes": peak,
        "peak_bytes": weights + generated_bytes + peak,
        "values_of_unknown_size": len(unknown),
        "lower_bound": bool(unknown),
    }


def _largest_bucket(inputs: RepresentativeInputs | None) -> Mapping[str, Sequence[int]] | None:
    if inputs is None or not inputs.buckets:
        return None
    return max(inputs.buckets, key=lambda b: sum(math.prod(s) for s in b.shapes.values())).shapes


def graph_as_partitioned(
    *, model_path: str | os.PathLike[str], model: onnx.ModelProto
) -> tuple[onnx.ModelProto, str]:
    """The graph an execution provider is offered: after onnxruntime's *basic* optimisations.

    onnxruntime applies these provider-independent rewrites (constant folding, which
    materialises ``ConstantOfShape`` weights; Conv+BatchNorm/Add/Mul fusion; Dropout, Identity
    and redundant Cast elimination) before partitioning, so nodes they remove never reach
    NNAPI or CoreML. Its own mobile usability checker optimises the same way before checking.
    If onnxruntime cannot load the model, the uploaded graph is analysed and that is said.
    """
    import onnxruntime as ort

    from onnxcheck.quantize import normalize_for_conversion

    with tempfile.TemporaryDirectory() as scratch:
        optimized_path = Path(scratch) / "basic.onnx"
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = os.fspath(optimized_path)
        try:
            # Initializer-backed inputs (IR < 4) would block constant folding; drop them.
            full = normalize_for_conversion(onnx.load_model(os.fspath(model_path)))
            ort.InferenceSession(
                full.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
            )
            del full
            optimized = onnx.load_model(os.fspath(optimized_path))
        except Exception as exc:  # noqa: BLE001 - onnxruntime's load errors are untyped
            fallback = onnx.inliner.inline_local_functions(model) if model.functions else model
            return fallback, f"as uploaded (onnxruntime could not optimise it: {_first_line(exc)})"
    return optimized, (
        "after onnxruntime basic optimisation (constant folding, Conv fusions, Dropout/Identity/"
        "Cast elimination): the graph execution providers are offered"
    )


def check_compatibility(
    *,
    model_path: str | os.PathLike[str],
    target: TargetProfile,
    inputs: RepresentativeInputs | None = None,
    max_bytes: int = DEFAULT_MAX_MODEL_BYTES,
    max_tensor_elements: int = DEFAULT_MAX_TENSOR_ELEMENTS,
) -> StepResult:
    """Every node against the target's operator list, plus the target's constraints.

    A node is supported when an entry for its (domain, op_type) covers the schema version its
    opset resolves to (onnxruntime's rule), and, for targets with a rank limit, its tensors are
    within it. Constraints: static shapes (dynamic inputs are acceptable only when every dynamic
    axis has a bucket, i.e. one fixed-shape model per bucket), quantized-only, model size, and
    memory budget against :func:`estimate_peak_memory` at the largest bucket.
    """
    timer = _Timer()
    try:
        model, metadata = load_checked_model(
            path=model_path, max_bytes=max_bytes, max_tensor_elements=max_tensor_elements
        )
    except ModelRejected as exc:
        return StepResult(
            "compatibility", FAILED, timer.ms(), [exc.message], {"rejection": exc.to_dict()}
        )
    model, analysed = graph_as_partitioned(model_path=model_path, model=model)
    opsets = {
        ("" if opset.domain == "ai.onnx" else opset.domain): int(opset.version)
        for opset in model.opset_import
    }
    fixed = _largest_bucket(inputs)
    values = _infer_value_shapes(model, fixed)

    def classify(node: onnx.NodeProto) -> tuple[str, int | None, int | None, Any, str | None]:
        """(domain, opset, since_version, list entry, reason it is unsupported or None)."""
        domain = "" if node.domain in {"", "ai.onnx"} else node.domain
        opset = opsets.get(domain)
        since = resolve_since_version(domain=domain, op_type=node.op_type, opset=opset)
        if opset is None:
            return (
                domain,
                opset,
                since,
                None,
                (f"the model imports no opset for domain {display_domain(domain)}"),
            )
        if since is None:
            return domain, opset, since, None, f"onnxruntime has no schema for it at opset {opset}"
        entry = target.find(domain=domain, op_type=node.op_type, since_version=since)
        if entry is None:
            listed = target.entries_for(domain=domain, op_type=node.op_type)
            reason = (
                f"listed only for opsets {_ranges(listed)}, node resolves to {since}"
                if listed
                else f"not in the {target.name} operator list"
            )
            return domain, opset, since, None, reason
        if target.max_tensor_rank is not None:
            ranks = [len(dims) for dims in _node_dims(node, values) if dims is not None]
            if ranks and max(ranks) > target.max_tensor_rank:
                return (
                    domain,
                    opset,
                    since,
                    entry,
                    (f"a tensor of rank {max(ranks)} > {target.max_tensor_rank}"),
                )
        return domain, opset, since, entry, None

    unsupported: dict[tuple[str, str, int | None], dict[str, Any]] = {}
    caveats: dict[tuple[str, str], dict[str, Any]] = {}
    node_total = 0
    dynamic_nodes: list[str] = []
    for node_name, node in iter_nodes(model.graph):
        node_total += 1
        domain, opset, since, entry, reason = classify(node)
        if any(
            dims is not None and not all(isinstance(d, int) for d in dims)
            for dims in _node_dims(node, values)
        ):
            dynamic_nodes.append(node_name)
        if reason is not None:
            item = unsupported.setdefault(
                (domain, node.op_type, since),
                {
                    "operator": operator_label(domain, node.op_type),
                    "domain": domain,
                    "op_type": node.op_type,
                    "opset": opset,
                    "since_version": since,
                    "reason": reason,
                    "node_count": 0,
                    "node_names": [],
                },
            )
            item["node_count"] += 1
            if len(item["node_names"]) < _MAX_NODE_NAMES:
                item["node_names"].append(node_name)
        elif entry is not None and entry.note and not entry.note.startswith("kernel types"):
            caveat = caveats.setdefault(
                (domain, node.op_type),
                {"operator": operator_label(domain, node.op_type), "note": entry.note, "nodes": 0},
            )
            caveat["nodes"] += 1

    # Partitions as onnxruntime would cut the main graph: runs of consecutive supported nodes.
    supported_flags = [classify(node)[4] is None for node in model.graph.node]
    partitions = sum(
        1
        for index, ok in enumerate(supported_flags)
        if ok and (index == 0 or not supported_flags[index - 1])
    )
    unsupported_nodes = sum(item["node_count"] for item in unsupported.values())
    constraints = _target_constraints(target, metadata, inputs, model, values, dynamic_nodes)
    findings = [
        f"{item['operator']} (opset {item['opset']}): {item['node_count']} node(s) unsupported "
        f"on {target.name} — {item['reason']}: {', '.join(item['node_names'][:5])}"
        + (" …" if item["node_count"] > 5 else "")
        for item in unsupported.values()
    ]
    findings += [c["detail"] for c in constraints if not c["ok"]]
    findings += [c["detail"] for c in constraints if c["ok"] and c.get("warning")]
    findings += [
        f"{c['operator']}: conditions not checked statically — {c['note']}"
        for c in caveats.values()
    ]
    data = {
        "target": target.to_dict(include_operators=False),
        "graph_analysed": analysed,
        "uploaded_node_count": metadata.node_count,
        "node_count": node_total,
        "supported_node_count": node_total - unsupported_nodes,
        "unsupported_node_count": unsupported_nodes,
        "supported_share": (node_total - unsupported_nodes) / node_total if node_total else 1.0,
        "unsupported": sorted(unsupported.values(), key=lambda item: item["operator"]),
        "caveats": sorted(caveats.values(), key=lambda item: item["operator"]),
        "partitions": partitions,
        "partitions_note": "contiguous runs of supported main-graph nodes in graph order; "
        "unsupported nodes fall back to the CPU EP, each switch costs a copy",
        "constraints": constraints,
        "memory_estimate": next(c["estimate"] for c in constraints if c["name"] == "memory"),
        "inputs_fixed_to": {k: list(v) for k, v in fixed.items()} if fixed else None,
    }
    failed = bool(unsupported) or any(not c["ok"] for c in constraints)
    warn = bool(caveats) or any(c.get("warning") for c in constraints)
    return StepResult("compatibility", _status(failed, warn), timer.ms(), findings, data)


def _node_dims(
    node: onnx.NodeProto,
    values: Mapping[str, tuple[int, tuple[int | str | None, ...] | None]],
) -> list[tuple[int | str | None, ...] | None]:
    return [values.get(name, (0, None))[1] for name in [*node.input, *node.output] if name]


def _ranges(entries: Sequence[Any]) -> str:
    return ", ".join(f"{e.min_opset or 1}-{e.max_opset or 'latest'}" for e in entries)


def _target_constraints(
    target: TargetProfile,
    metadata: ModelMetadata,
    inputs: RepresentativeInputs | None,
    model: onnx.ModelProto,
    values: Mapping[str, tuple[int, tuple[int | str | None, ...] | None]],
    dynamic_nodes: Sequence[str],
) -> list[dict[str, Any]]:
    constraints: list[dict[str, Any]] = []
    dynamic_axes = [
        f"{spec.name}[{axis}]" for spec in metadata.inputs for axis in spec.dynamic_axes
    ]
    if target.static_shapes_only:
        if not dynamic_axes:
            ok, warning, detail = True, bool(dynamic_nodes), "all inputs have static shapes"
        elif inputs is not None and inputs.buckets:
            ok, warning = True, True
            detail = (
                f"dynamic input axes {dynamic_axes} are fixed by shape bucket(s) "
                f"{[b.label for b in inputs.buckets]}: {target.name} needs one fixed-shape model "
                "per bucket (python -m onnxruntime.tools.make_dynamic_shape_fixed)"
            )
        else:
            ok, warning = False, False
            detail = (
                f"{target.name} supports static shapes only and inputs have dynamic axes "
                f"{dynamic_axes} with no shape bucket"
            )
        if ok and dynamic_nodes:
            ok, warning = False, False
            detail += (
                f"; {len(dynamic_nodes)} node(s) still have dynamic dimensions after shape "
                f"inference with fixed inputs (e.g. {', '.join(dynamic_nodes[:3])}) and would "
                "fall back to CPU"
            )
        constraints.append(
            {"name": "static_shapes", "ok": ok, "warning": warning, "detail": detail}
        )
    if target.quantized_only:
        ok = metadata.quantization in QUANTIZED_LABELS
        constraints.append(
            {
                "name": "quantized_only",
                "ok": ok,
                "detail": (
                    f"{target.name} runs fully quantized models only; this model is "
                    f"{metadata.quantization}"
                    + ("" if ok else " (use the static INT8 QDQ variant)")
                ),
            }
        )
    if target.max_model_bytes is not None:
        ok = metadata.total_bytes <= target.max_model_bytes
        constraints.append(
            {
                "name": "max_model_bytes",
                "ok": ok,
                "detail": f"model is {metadata.total_bytes:,} bytes; {target.name} allows "
                f"{target.max_model_bytes:,}",
            }
        )
    estimate = estimate_peak_memory(model, values)
    memory: dict[str, Any] = {"name": "memory", "ok": True, "estimate": estimate}
    if target.memory_budget_bytes is not None:
        memory["ok"] = estimate["peak_bytes"] <= target.memory_budget_bytes
        bound = " (lower bound)" if estimate["lower_bound"] else ""
        memory["detail"] = (
            f"estimated peak memory {estimate['peak_bytes']:,} bytes{bound}; {target.name} "
            f"budget is {target.memory_budget_bytes:,} bytes"
        )
    else:
        memory["detail"] = f"estimated peak memory {estimate['peak_bytes']:,} bytes (no budget)"
    constraints.append(memory)
    return constraints


# -- (c) latency --------------------------------------------------------------------------------


def check_latency(
    *,
    model_path: str | os.PathLike[str],
    inputs: RepresentativeInputs,
    rule: LatencyRule = DEFAULT_LATENCY_RULE,
    intra_op_num_threads: int | None = None,
) -> StepResult:
    """onnxruntime CPU latency per shape bucket; see :mod:`onnxcheck.latency` for the rule."""
    timer = _Timer()
    feeds = [
        (bucket.label, bucket.batch_size, feed)
        for bucket, feed in zip(inputs.buckets, inputs.bucket_feeds, strict=True)
    ]
    try:
        data = measure_model_latency(
            model_path=model_path,
            bucket_feeds=feeds,
            rule=rule,
            intra_op_num_threads=intra_op_num_threads,
        )
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
        return StepResult(
            "latency", FAILED, timer.ms(), [f"onnxruntime could not run the model: {exc}"]
        )
    data["synthetic_inputs"] = inputs.synthetic
    findings = [REFERENCE_LABEL]
    for bucket in data["buckets"]:
        findings.append(
            f"{bucket['label']}: P50 {bucket['p50_ms']:.2f} ms, P95 {bucket['p95_ms']:.2f} ms, "
            f"P99 {bucket['p99_ms']:.2f} ms over {bucket['runs']} runs "
            f"(stopped by {bucket['stopped_by']})"
        )
    return StepResult("latency", PASSED, timer.ms(), findings, data)


# -- (d) quantization ---------------------------------------------------------------------------


def _evaluation_feeds(
    inputs: RepresentativeInputs, max_samples: int
) -> Iterator[tuple[dict[str, np.ndarray], int]]:
    if inputs.samples:
        taken = 0
        for feed, count in inputs.iter_batches():
            yield feed, count
            taken += count
            if taken >= max_samples:
                return
    else:
        for bucket, feed in zip(inputs.buckets, inputs.bucket_feeds, strict=True):
            yield dict(feed), bucket.batch_size


def _collect_outputs(
    session: Any, feeds: Sequence[tuple[dict[str, np.ndarray], int]], names: Sequence[str]
) -> dict[str, np.ndarray]:
    collected: dict[str, list[np.ndarray]] = defaultdict(list)
    for feed, _ in feeds:
        for name, value in zip(names, session.run(list(names), feed), strict=True):
            collected[name].append(np.asarray(value))
    # Every output is flattened to [samples, features] so batches of any size concatenate.
    return {
        name: np.concatenate(
            [part.reshape(len(part), -1) if part.ndim else part.reshape(1, 1) for part in parts]
        )
        for name, parts in collected.items()
    }


def _float_output_names(metadata: ModelMetadata) -> list[str]:
    return [
        spec.name
        for spec in metadata.outputs
        if spec.kind == "tensor" and spec.dtype and "float" in spec.dtype
    ]


def evaluate_variant(
    *,
    model_path: str | os.PathLike[str],
    variant_path: str | os.PathLike[str],
    metadata: ModelMetadata,
    inputs: RepresentativeInputs,
    score_output: str | None = None,
    intra_op_num_threads: int | None = None,
    rule: LatencyRule = VARIANT_LATENCY_RULE,
    max_samples: int = DEFAULT_MAX_EVAL_SAMPLES,
) -> dict[str, Any]:
    """Fidelity (top-1 agreement, accuracy drop, SQNR) and latency change of a variant.

    Fidelity is computed only on uploaded inputs; on synthetic inputs it is ``None``.
    """
    baseline, _ = create_session(model_path, intra_op_num_threads=intra_op_num_threads)
    variant, _ = create_session(variant_path, intra_op_num_threads=intra_op_num_threads)
    first_feed = dict(inputs.bucket_feeds[0])
    stats = compare_latency(
        sessions={"fp32": baseline, "variant": variant}, feeds=first_feed, rule=rule
    )
    latency = {
        "bucket": inputs.buckets[0].label,
        "fp32_p50_ms": stats["fp32"].p50_ms,
        "variant_p50_ms": stats["variant"].p50_ms,
        "fp32_p95_ms": stats["fp32"].p95_ms,
        "variant_p95_ms": stats["variant"].p95_ms,
        "change_pct": 100.0 * (stats["variant"].p50_ms / stats["fp32"].p50_ms - 1.0),
        "runs_each": stats["fp32"].runs,
    }
    fidelity: dict[str, Any] = {
        "evaluated_samples": 0,
        "top1_agreement": None,
        "fp32_accuracy": None,
        "variant_accuracy": None,
        "accuracy_drop_points": None,
        "sqnr_db": None,
        "score_output": None,
    }
    if inputs.synthetic:
        return {"latency": latency, "fidelity": fidelity}
    feeds = list(_evaluation_feeds(inputs, max_samples))
    chosen = find_score_output(outputs=metadata.outputs, preferred=score_output)
    names = [chosen.name] if chosen else _float_output_names(metadata)
    if not names:
        return {"latency": latency, "fidelity": fidelity}
    reference = _collect_outputs(baseline, feeds, names)
    candidate = _collect_outputs(variant, feeds, names)
    count = sum(n for _, n in feeds)
    fidelity["evaluated_samples"] = count
    fidelity["sqnr_db"] = sqnr_db(
        reference=np.concatenate([reference[n].ravel() for n in names]),
        test=np.concatenate([candidate[n].ravel() for n in names]),
    )
    if chosen is not None:
        ref_probs, _ = as_probabilities(reference[chosen.name])
        var_probs, _ = as_probabilities(candidate[chosen.name])
        ref_top, var_top = top1(ref_probs), top1(var_probs)
        fidelity["score_output"] = chosen.to_dict()
        fidelity["top1_agreement"] = float(np.mean(ref_top == var_top))
        if inputs.labels is not None:
            labels = inputs.labels[: len(ref_top)]
            fp32_acc = accuracy(predictions=ref_top, labels=labels)
            var_acc = accuracy(predictions=var_top, labels=labels)
            fidelity.update(
                fp32_accuracy=fp32_acc,
                variant_accuracy=var_acc,
                accuracy_drop_points=100.0 * (fp32_acc - var_acc),
            )
    return {"latency": latency, "fidelity": fidelity}


def _check_variant(
    *,
    step: str,
    build: Callable[[], Any],
    unavailable_status: str,
    model_path: Path,
    metadata: ModelMetadata,
    inputs: RepresentativeInputs,
    score_output: str | None,
    intra_op_num_threads: int | None,
    latency_rule: LatencyRule,
) -> StepResult:
    from onnxcheck.quantize import VariantUnavailable

    timer = _Timer()
    try:
        variant = build()
    except VariantUnavailable as exc:
        return StepResult(step, unavailable_status, timer.ms(), [str(exc)])
    try:
        evaluation = evaluate_variant(
            model_path=model_path,
            variant_path=variant.path,
            metadata=metadata,
            inputs=inputs,
            score_output=score_output,
            intra_op_num_threads=intra_op_num_threads,
            rule=latency_rule,
        )
    except Exception as exc:  # noqa: BLE001 - a variant onnxruntime cannot run is a finding
        return StepResult(
            step,
            unavailable_status,
            timer.ms(),
            [f"the {variant.kind} variant was written but onnxruntime cannot run it: {exc}"],
            {"variant": variant.to_dict()},
        )
    baseline_size = metadata.total_bytes
    # Weights generated at load time (ConstantOfShape) are stored by the variant; compare with
    # the FP32 weights as materialised too, or the "size change" is meaningless.
    materialized = metadata.initializer_bytes + 4 * metadata.generated_constant_elements
    data = {
        "variant": {
            **variant.to_dict(),
            "derived_from_sha256": sha256_file(model_path),
            "baseline_size_bytes": baseline_size,
            "size_change_pct": 100.0 * (variant.size_bytes / baseline_size - 1.0),
            "materialized_fp32_weight_bytes": materialized,
            "size_change_vs_materialized_pct": (
                100.0 * (variant.size_bytes / materialized - 1.0) if materialized else None
            ),
        },
        **evaluation,
        "synthetic_inputs": inputs.synthetic,
    }
    fid, lat = evaluation["fidelity"], evaluation["latency"]
    findings = [
        f"{variant.kind} ({variant.method}): {variant.size_bytes:,} bytes "
        f"({data['variant']['size_change_pct']:+.1f} % vs the uploaded file), P50 "
        f"{lat['variant_p50_ms']:.2f} ms vs {lat['fp32_p50_ms']:.2f} ms "
        f"({lat['change_pct']:+.1f} %)",
        *variant.notes,
    ]
    if metadata.generated_constant_elements:
        findings.append(
            "the uploaded file generates its weights at load time (ConstantOfShape): against "
            f"the {materialized:,} bytes of materialised FP32 weights the variant is "
            f"{data['variant']['size_change_vs_materialized_pct']:+.1f} %"
        )
    if inputs.synthetic:
        findings.append(f"{SYNTHETIC_NOTE}: no agreement, accuracy or SQNR")
    else:
        findings.append(
            f"top-1 agreement {_fmt(fid['top1_agreement'], '.4f')}, accuracy drop "
            f"{_fmt(fid['accuracy_drop_points'], '.2f')} points, SQNR "
            f"{_fmt(fid['sqnr_db'], '.1f')} dB on {fid['evaluated_samples']} samples"
        )
    return StepResult(step, PASSED, timer.ms(), findings, data)


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def check_int8_variant(
    *,
    model_path: str | os.PathLike[str],
    inputs: RepresentativeInputs,
    output_dir: str | os.PathLike[str],
    score_output: str | None = None,
    intra_op_num_threads: int | None = None,
    latency_rule: LatencyRule = VARIANT_LATENCY_RULE,
) -> StepResult:
    """Build the INT8 variant (dynamic or static QDQ, see :mod:`onnxcheck.quantize`) into
    ``output_dir`` and compare it with FP32. A model that cannot be quantized fails the step."""
    from onnxcheck.quantize import build_int8_variant

    _, metadata = load_checked_model(path=model_path)
    return _check_variant(
        step="quantization_int8",
        build=lambda: build_int8_variant(
            model_path=model_path, inputs=inputs, output_dir=output_dir
        ),
        unavailable_status=FAILED,
        model_path=Path(model_path),
        metadata=metadata,
        inputs=inputs,
        score_output=score_output,
        intra_op_num_threads=intra_op_num_threads,
        latency_rule=latency_rule,
    )


def check_fp16_variant(
    *,
    model_path: str | os.PathLike[str],
    inputs: RepresentativeInputs,
    output_dir: str | os.PathLike[str],
    score_output: str | None = None,
    intra_op_num_threads: int | None = None,
    latency_rule: LatencyRule = VARIANT_LATENCY_RULE,
) -> StepResult:
    """Build the FP16 variant into ``output_dir`` and compare it with FP32. If conversion is
    impossible the step is *skipped* with the reason (FP16 is optional evidence).

    On x86 CPUs onnxruntime runs few kernels in fp16, so the latency change measured here says
    little about GPUs/NPUs; fidelity and size are what this step is for.
    """
    from onnxcheck.quantize import build_fp16_variant

    _, metadata = load_checked_model(path=model_path)
    return _check_variant(
        step="quantization_fp16",
        build=lambda: build_fp16_variant(model_path=model_path, output_dir=output_dir),
        unavailable_status=SKIPPED,
        model_path=Path(model_path),
        metadata=metadata,
        inputs=inputs,
        score_output=score_output,
        intra_op_num_threads=intra_op_num_threads,
        latency_rule=latency_rule,
    )


# -- (e) calibration ----------------------------------------------------------------------------


def check_calibration(
    *,
    model_path: str | os.PathLike[str],
    inputs: RepresentativeInputs,
    score_output: str | None = None,
    intra_op_num_threads: int | None = None,
    max_samples: int = DEFAULT_MAX_EVAL_SAMPLES,
) -> StepResult:
    """Accuracy, ECE (15 equal-width bins), reliability diagram, and the drift baseline
    (top-1 confidence histogram and class mix). Needs uploaded inputs with labels."""
    timer = _Timer()
    if inputs.synthetic:
        return StepResult.skipped("calibration", SYNTHETIC_NOTE)
    if inputs.labels is None:
        return StepResult.skipped("calibration", "no labels in the uploaded inputs")
    _, metadata = load_checked_model(path=model_path)
    chosen = find_score_output(outputs=metadata.outputs, preferred=score_output)
    if chosen is None:
        return StepResult.skipped(
            "calibration", "no class-score output ([samples, classes] float tensor) found"
        )
    session, _ = create_session(model_path, intra_op_num_threads=intra_op_num_threads)
    feeds = list(_evaluation_feeds(inputs, max_samples))
    raw = _collect_outputs(session, feeds, [chosen.name])[chosen.name]
    probabilities, form = as_probabilities(raw)
    labels = inputs.labels[: len(probabilities)]
    classes = probabilities.shape[1]
    findings: list[str] = []
    if labels.size and int(labels.max()) >= classes:
        return StepResult(
            "calibration",
            FAILED,
            timer.ms(),
            [
                f"labels go up to {int(labels.max())} but '{chosen.name}' has {classes} "
                "classes; labels must be class indices 0..C-1"
            ],
            {"score_output": chosen.to_dict()},
        )
    predictions = top1(probabilities)
    confidences = probabilities.max(axis=1)
    correct = predictions == labels
    ece = expected_calibration_error(confidences=confidences, correct=correct)
    acc = accuracy(predictions=predictions, labels=labels)
    data = {
        "score_output": {**chosen.to_dict(), "form": form},
        "samples": len(labels),
        "accuracy": acc,
        "ece": ece,
        "ece_bins": ECE_BINS,
        "mean_confidence": float(confidences.mean()),
        "reliability": calibration_bins(confidences=confidences, correct=correct),
        "drift_baseline": {
            "confidence_histogram": confidence_histogram(confidences),
            "predicted_class_mix": distribution(predictions, num_classes=classes),
            "label_class_mix": distribution(labels, num_classes=classes),
        },
    }
    findings.append(
        f"accuracy {acc:.4f}, ECE {ece:.4f} ({ECE_BINS} bins), mean confidence "
        f"{data['mean_confidence']:.4f} on {len(labels)} labelled samples ({form})"
    )
    return StepResult("calibration", PASSED, timer.ms(), findings, data)


# -- (f) gates ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateThresholds:
    """Pass/fail thresholds; ``None`` disables a gate. Defaults follow the issue and MLPerf."""

    max_unsupported_nodes: int = 0
    require_target_constraints: bool = True
    latency_budget_ms: float | None = None
    max_int8_accuracy_drop_points: float | None = 1.0
    max_ece: float | None = 0.05
    min_accuracy: float | None = None
    require_all_steps: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.__dataclass_fields__}


def evaluate_gates(*, steps: Sequence[StepResult], thresholds: GateThresholds) -> StepResult:
    """Decide pass/fail from the steps' data, listing every failing reason.

    A gate whose evidence is absent for a legitimate reason (no labels, no budget) is
    ``not_evaluated``; one whose evidence is missing because its step failed or was skipped
    for a fault fails.
    """
    timer = _Timer()
    by_name = {step.name: step for step in steps}
    gates: list[dict[str, Any]] = []

    def gate(name: str, status: str, reasons: Sequence[str], **extra: Any) -> None:
        gates.append({"name": name, "status": status, "reasons": list(reasons), **extra})

    def step_failure(name: str) -> list[str] | None:
        step = by_name.get(name)
        if step is None:
            return [f"step {name} did not run"]
        if step.status == FAILED:
            return [f"{name} failed: {finding}" for finding in step.findings] or [f"{name} failed"]
        return None

    for name in ("integrity", "inputs"):
        failure = step_failure(name)
        gate(name, FAILED if failure else PASSED, failure or [])

    compat = by_name.get("compatibility")
    if compat is None or "unsupported" not in compat.data:
        gate("operators_supported", FAILED, step_failure("compatibility") or ["not checked"])
        gate("target_constraints", FAILED, ["compatibility was not checked"])
    else:
        count = compat.data["unsupported_node_count"]
        reasons = [
            f"{item['operator']} unsupported on {compat.data['target']['name']} "
            f"({item['reason']}): {item['node_count']} node(s): "
            f"{', '.join(item['node_names'][:10])}"
            for item in compat.data["unsupported"]
        ]
        ok = count <= thresholds.max_unsupported_nodes
        gate(
            "operators_supported",
            PASSED if ok else FAILED,
            [] if ok else reasons,
            observed=count,
            threshold=thresholds.max_unsupported_nodes,
        )
        violated = [c["detail"] for c in compat.data["constraints"] if not c["ok"]]
        if thresholds.require_target_constraints:
            gate("target_constraints", FAILED if violated else PASSED, violated)
        else:
            gate("target_constraints", "not_evaluated", violated)

    latency = by_name.get("latency")
    if thresholds.latency_budget_ms is None:
        gate("latency_p95", "not_evaluated", ["no latency budget set"])
    elif latency is None or latency.status != PASSED:
        gate("latency_p95", FAILED, step_failure("latency") or ["latency was not measured"])
    else:
        slow = [
            f"P95 {bucket['p95_ms']:.2f} ms > budget {thresholds.latency_budget_ms:.2f} ms "
            f"at bucket {bucket['label']}"
            for bucket in latency.data["buckets"]
            if bucket["p95_ms"] > thresholds.latency_budget_ms
        ]
        gate(
            "latency_p95",
            FAILED if slow else PASSED,
            slow,
            observed=max(bucket["p95_ms"] for bucket in latency.data["buckets"]),
            threshold=thresholds.latency_budget_ms,
        )

    int8 = by_name.get("quantization_int8")
    has_labels = bool(by_name.get("inputs") and by_name["inputs"].data.get("has_labels"))
    if thresholds.max_int8_accuracy_drop_points is None:
        gate("int8_accuracy_drop", "not_evaluated", ["gate disabled"])
    elif not has_labels:
        gate("int8_accuracy_drop", "not_evaluated", ["no labelled inputs"])
    elif int8 is None or int8.status != PASSED:
        failure = step_failure("quantization_int8") or ["no INT8 evidence"]
        gate("int8_accuracy_drop", FAILED, failure)
    else:
        drop = int8.data["fidelity"]["accuracy_drop_points"]
        if drop is None:
            gate("int8_accuracy_drop", FAILED, ["no class-score output to measure accuracy on"])
        else:
            ok = drop <= thresholds.max_int8_accuracy_drop_points
            gate(
                "int8_accuracy_drop",
                PASSED if ok else FAILED,
                []
                if ok
                else [
                    f"INT8 accuracy drop {drop:.2f} points > "
                    f"{thresholds.max_int8_accuracy_drop_points:.2f}"
                ],
                observed=drop,
                threshold=thresholds.max_int8_accuracy_drop_points,
            )

    calibration = by_name.get("calibration")
    for gate_name, key, limit, worse in (
        ("ece", "ece", thresholds.max_ece, lambda v, t: v > t),
        ("min_accuracy", "accuracy", thresholds.min_accuracy, lambda v, t: v < t),
    ):
        if limit is None:
            gate(gate_name, "not_evaluated", ["gate disabled"])
        elif not has_labels:
            gate(gate_name, "not_evaluated", ["no labelled inputs"])
        elif calibration is None or calibration.status != PASSED:
            reasons = step_failure("calibration") or [
                f"calibration did not run: {'; '.join(calibration.findings)}"
                if calibration
                else "calibration did not run"
            ]
            gate(gate_name, FAILED, reasons)
        else:
            value = calibration.data[key]
            bad = worse(value, limit)
            relation = ">" if gate_name == "ece" else "<"
            gate(
                gate_name,
                FAILED if bad else PASSED,
                [f"{key} {value:.4f} {relation} {limit}"] if bad else [],
                observed=value,
                threshold=limit,
            )

    # A step that failed outside any gate above (e.g. latency crashed while no budget was set,
    # INT8 quantization failed without labels) still fails the run: evidence is missing.
    gated = {g["name"] for g in gates if g["status"] == FAILED}
    covered_by = {
        "integrity": {"integrity"},
        "inputs": {"inputs"},
        "compatibility": {"operators_supported", "target_constraints"},
        "latency": {"latency_p95"},
        "quantization_int8": {"int8_accuracy_drop"},
        "quantization_fp16": set(),
        "calibration": {"ece", "min_accuracy"},
    }
    uncovered = [
        reason
        for step in steps
        if step.status == FAILED
        and not covered_by.get(step.name, set()) & gated
        and step.name not in {"integrity", "inputs", "compatibility"}
        for reason in (step_failure(step.name) or [])
    ]
    if thresholds.require_all_steps:
        gate("steps_completed", FAILED if uncovered else PASSED, uncovered)
    else:
        gate("steps_completed", "not_evaluated", uncovered)

    reasons = [reason for g in gates if g["status"] == FAILED for reason in g["reasons"]]
    passed = not reasons
    data = {
        "passed": passed,
        "gates": gates,
        "reasons": reasons,
        "thresholds": thresholds.to_dict(),
    }
    return StepResult("gates", PASSED if passed else FAILED, timer.ms(), reasons, data)


# -- isolation: one child process per heavy step ------------------------------------------------


@dataclass(frozen=True)
class StepLimits:
    """Wall-clock limits per step (seconds) and an optional address-space cap per child."""

    integrity_s: float = 300.0
    compatibility_s: float = 300.0
    latency_s: float | None = None
    quantization_s: float = 900.0
    calibration_s: float = 600.0
    address_space_bytes: int | None = None
    isolate: bool = True

    def latency_limit(self, rule: LatencyRule, buckets: int) -> float:
        """Default: each bucket's worst case plus margin for session creation and slow runs."""
        if self.latency_s is not None:
            return self.latency_s
        return 120.0 + buckets * (rule.worst_case_seconds() + 30.0)


_STEP_FUNCTIONS: dict[str, Callable[..., StepResult]] = {
    "integrity": check_integrity,
    "compatibility": check_compatibility,
    "latency": check_latency,
    "quantization_int8": check_int8_variant,
    "quantization_fp16": check_fp16_variant,
    "calibration": check_calibration,
}


def _encode_kwargs(kwargs: Mapping[str, Any], inputs_file: Path | None) -> dict[str, Any]:
    encoded: dict[str, Any] = {}
    for key, value in kwargs.items():
        if isinstance(value, RepresentativeInputs):
            encoded[key] = {"__inputs__": str(inputs_file)}
        elif isinstance(value, TargetProfile):
            encoded[key] = {"__target__": value.to_dict()}
        elif isinstance(value, LatencyRule):
            encoded[key] = {"__rule__": value.to_dict()}
        elif isinstance(value, Path):
            encoded[key] = str(value)
        else:
            encoded[key] = value
    return encoded


def decode_kwargs(encoded: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of the parent's encoding, used by :mod:`onnxcheck.worker`."""
    decoded: dict[str, Any] = {}
    for key, value in encoded.items():
        if isinstance(value, Mapping) and "__inputs__" in value:
            decoded[key] = RepresentativeInputs.load(value["__inputs__"])
        elif isinstance(value, Mapping) and "__target__" in value:
            decoded[key] = TargetProfile.from_dict(value["__target__"])
        elif isinstance(value, Mapping) and "__rule__" in value:
            decoded[key] = LatencyRule.from_dict(value["__rule__"])
        else:
            decoded[key] = value
    return decoded


def run_step(step: str, **kwargs: Any) -> StepResult:
    """Call a step function in this process (what the worker subprocess does)."""
    return _STEP_FUNCTIONS[step](**kwargs)


def _run_isolated(
    step: str,
    kwargs: Mapping[str, Any],
    *,
    workdir: Path,
    timeout_s: float,
    limits: StepLimits,
    inputs_file: Path | None,
) -> StepResult:
    started = time.perf_counter()
    if not limits.isolate:
        return run_step(step, **kwargs)
    request = workdir / f"{step}.request.json"
    result = workdir / f"{step}.result.json"
    result.unlink(missing_ok=True)
    request.write_text(
        json.dumps(
            {
                "step": step,
                "kwargs": _encode_kwargs(kwargs, inputs_file),
                "address_space_bytes": limits.address_space_bytes,
            }
        )
    )
    package_root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        part for part in (package_root, env.get("PYTHONPATH", "")) if part
    )
    log = workdir / f"{step}.log"
    with open(log, "wb") as log_file:
        try:
            completed = subprocess.run(  # noqa: S603 - fixed argv: this interpreter, our module
                [sys.executable, "-m", "onnxcheck.worker", str(request), str(result)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                timeout=timeout_s,
                env=env,
                cwd=workdir,
                check=False,
            )
            returncode = completed.returncode
        except subprocess.TimeoutExpired:
            elapsed = (time.perf_counter() - started) * 1000.0
            return StepResult(
                step,
                FAILED,
                elapsed,
                [f"{step} exceeded its time limit of {timeout_s:.0f} s and was stopped"],
                {"timed_out": True, "timeout_s": timeout_s},
            )
    elapsed = (time.perf_counter() - started) * 1000.0
    if returncode == 0 and result.is_file():
        outcome = StepResult.from_dict(json.loads(result.read_text()))
        # The step's own timing excludes starting the process; progress shows wall time.
        outcome.data.setdefault("compute_ms", outcome.duration_ms)
        outcome.duration_ms = elapsed
        return outcome
    tail = log.read_text(errors="replace")[-1500:] if log.is_file() else ""
    how = f"signal {-returncode}" if returncode < 0 else f"exit code {returncode}"
    return StepResult(
        step,
        FAILED,
        elapsed,
        [f"the {step} worker process died ({how}): {_first_line(Exception(tail), 800)}"],
        {"returncode": returncode},
    )


# -- the report and the run ---------------------------------------------------------------------


@dataclass
class ValidationReport:
    """Everything the registry stores about one validation run (JSON via :meth:`to_dict`)."""

    model_file: str
    expected_sha256: str
    target: dict[str, Any]
    metadata: dict[str, Any] | None
    inputs: dict[str, Any] | None
    steps: list[StepResult]
    passed: bool
    reasons: list[str]
    started_at: str
    finished_at: str
    environment: dict[str, Any]
    measurement_label: str = REFERENCE_LABEL
    schema_version: int = 1

    def step(self, name: str) -> StepResult:
        for item in self.steps:
            if item.name == name:
                return item
        raise KeyError(name)

    @property
    def variants(self) -> list[dict[str, Any]]:
        """Variant files the caller may register as new versions (``derived_from`` this one)."""
        return [
            step.data["variant"]
            for step in self.steps
            if step.status == PASSED and "variant" in step.data
        ]

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "schema_version": self.schema_version,
                "model_file": self.model_file,
                "expected_sha256": self.expected_sha256,
                "target": self.target,
                "metadata": self.metadata,
                "inputs": self.inputs,
                "steps": [step.to_dict() for step in self.steps],
                "passed": self.passed,
                "reasons": self.reasons,
                "measurement_label": self.measurement_label,
                "environment": self.environment,
                "started_at": self.started_at,
                "finished_at": self.finished_at,
            }
        )

    def report_digest(self) -> str:
        """SHA-256 (hex) of the canonical JSON of :meth:`to_dict`: what signing commits to."""
        return hashlib.sha256(canonical_json(self.to_dict())).hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def run_validation(
    *,
    model_path: str | os.PathLike[str],
    expected_sha256: str,
    target: TargetProfile,
    inputs: InputsSpec | RepresentativeInputs,
    gates: GateThresholds,
    workdir: str | os.PathLike[str],
    on_step: Callable[[StepResult], None] | None = None,
    limits: StepLimits = StepLimits(),
    latency_rule: LatencyRule = DEFAULT_LATENCY_RULE,
    variant_latency_rule: LatencyRule = VARIANT_LATENCY_RULE,
    intra_op_num_threads: int | None = None,
    score_output: str | None = None,
    max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES,
) -> ValidationReport:
    """Run every step in order (see module docstring) and return the report.

    ``workdir`` receives the step requests/logs, the prepared inputs and the variant files
    (``workdir/variants``). ``on_step`` is called after each step, skipped ones included;
    exceptions it raises propagate (the caller's persistence failing must not be hidden).
    Bad models and bad inputs never raise: they are failed steps in the report.

    Tuning: ``limits`` (per-step time limits, address-space cap, isolation),
    ``latency_rule`` / ``variant_latency_rule`` (stopping rules of the latency step and of the
    FP32-vs-variant comparisons), ``intra_op_num_threads`` (``None`` = onnxruntime's default),
    ``score_output`` (force the class-score output), ``max_model_bytes`` (upload limit).
    """
    started_at = _now()
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    model = Path(model_path).resolve()
    steps: list[StepResult] = []

    def record(result: StepResult) -> StepResult:
        steps.append(result)
        if on_step is not None:
            on_step(result)
        return result

    def skip_rest(reason: str) -> None:
        done = {step.name for step in steps}
        for name in STEP_ORDER:
            if name not in done and name != "gates":
                record(StepResult.skipped(name, reason))

    def isolated(step: str, timeout_s: float, inputs_file: Path | None, **kwargs: Any):
        return _run_isolated(
            step, kwargs, workdir=work, timeout_s=timeout_s, limits=limits, inputs_file=inputs_file
        )

    integrity = record(
        isolated(
            "integrity",
            limits.integrity_s,
            None,
            model_path=str(model),
            expected_sha256=expected_sha256,
            max_bytes=max_model_bytes,
        )
    )
    metadata_dict = integrity.data.get("metadata")
    prepared: RepresentativeInputs | None = None
    inputs_file: Path | None = None
    if integrity.data.get("fatal", True) or metadata_dict is None:
        why = integrity.findings[0] if integrity.findings else "no metadata"
        skip_rest(f"integrity failed, nothing else is evidence about this artifact: {why}")
    else:
        metadata = ModelMetadata.from_dict(metadata_dict)
        try:
            prepared, inputs_step = prepare_inputs(metadata=metadata, spec=inputs)
        except InputsRejected as exc:
            inputs_step = StepResult(
                "inputs", FAILED, 0.0, [f"{exc.code}: {exc.message}"], {"error": exc.to_dict()}
            )
        record(inputs_step)
        if prepared is not None:
            inputs_file = prepared.save(work / "inputs.npz")
        record(
            isolated(
                "compatibility",
                limits.compatibility_s,
                inputs_file,
                model_path=str(model),
                target=target,
                inputs=prepared,
                max_bytes=max_model_bytes,
            )
        )
        if prepared is None:
            skip_rest("representative inputs were refused")
        else:
            record(
                isolated(
                    "latency",
                    limits.latency_limit(latency_rule, len(prepared.buckets)),
                    inputs_file,
                    model_path=str(model),
                    inputs=prepared,
                    rule=latency_rule,
                    intra_op_num_threads=intra_op_num_threads,
                )
            )
            variants_dir = work / "variants"
            for step_name in ("quantization_int8", "quantization_fp16"):
                record(
                    isolated(
                        step_name,
                        limits.quantization_s,
                        inputs_file,
                        model_path=str(model),
                        inputs=prepared,
                        output_dir=str(variants_dir),
                        score_output=score_output,
                        intra_op_num_threads=intra_op_num_threads,
                        latency_rule=variant_latency_rule,
                    )
                )
            if prepared.synthetic:
                record(StepResult.skipped("calibration", SYNTHETIC_NOTE))
            elif prepared.labels is None:
                record(StepResult.skipped("calibration", "no labels in the uploaded inputs"))
            else:
                record(
                    isolated(
                        "calibration",
                        limits.calibration_s,
                        inputs_file,
                        model_path=str(model),
                        inputs=prepared,
                        score_output=score_output,
                        intra_op_num_threads=intra_op_num_threads,
                    )
                )
    gate_step = record(evaluate_gates(steps=steps, thresholds=gates))
    return ValidationReport(
        model_file=model.name,
        expected_sha256=expected_sha256.lower(),
        target=target.to_dict(include_operators=False),
        metadata=metadata_dict,
        inputs=prepared.describe() if prepared is not None else None,
        steps=steps,
        passed=bool(gate_step.data["passed"]),
        reasons=list(gate_step.data["reasons"]),
        started_at=started_at,
        finished_at=_now(),
        environment=machine_description(intra_op_num_threads=intra_op_num_threads),
    )
