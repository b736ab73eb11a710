"""Step (b), ``compatibility``: can the target run every node, within its constraints?

The graph is analysed as onnxruntime offers it to an execution provider, after its basic
optimisations (:func:`graph_as_partitioned`). Each node is checked against the target's operator
list (:mod:`onnxcheck.operators`); shapes are inferred on a weightless skeleton of the graph with
the inputs fixed to the largest shape bucket; and the target's constraints are checked: static
shapes, quantized only, model size, and memory budget against :func:`estimate_peak_memory`.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import onnx
import onnx.inliner
from onnx import TensorProto

from onnxcheck.inputs import RepresentativeInputs
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
    tensor_nbytes,
)
from onnxcheck.operators import TargetProfile, display_domain, resolve_since_version
from onnxcheck.results import FAILED, StepResult, StepTimer, first_line, step_status

QUANTIZED_LABELS = {"int8-qdq", "int8-qlinear", "int4-qdq", "int16-qdq"}
_MAX_NODE_NAMES = 50


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
            return fallback, f"as uploaded (onnxruntime could not optimise it: {first_line(exc)})"
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
    timer = StepTimer()
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
    return StepResult("compatibility", step_status(failed, warn), timer.ms(), findings, data)


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
