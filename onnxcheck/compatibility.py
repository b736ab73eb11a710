"""Step (b), ``compatibility``: can the target run every node, within its constraints?

Each figure is about one graph, and says which: ``original`` (as uploaded), ``optimised`` (after
onnxruntime's basic optimisations, what an execution provider is offered) or ``fixed to
<bucket>``. Targets that take static shapes only (NNAPI, Core ML) are judged per shape bucket on
the graph they really get: the inputs fixed with onnxruntime's own tool, optimised and
partitioned exactly as onnxruntime's mobile usability checker does (:mod:`onnxcheck.fixing`).
Other targets (CPU) are judged on the optimised dynamic graph (:func:`graph_as_partitioned`).
Each node is checked against the target's operator list (:mod:`onnxcheck.operators`); and the
target's constraints are checked: static shapes, quantized only, model size, and memory budget
against :func:`estimate_peak_memory` at the largest shape bucket.

Documentary targets (TensorRT, OpenVINO, QNN: ``TargetProfile.documentary``) are checked the same
way against the vendor's published table; their result says that the support comes from that
document and that nothing ran on the hardware.
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

from onnxcheck import fixing
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


GRAPH_ORIGINAL = "original"
GRAPH_OPTIMISED = "optimised"


def _operator_verdict(
    node: onnx.NodeProto, target: TargetProfile, opsets: Mapping[str, int]
) -> tuple[str, int | None, int | None, Any, str | None]:
    """(domain, opset, since_version, list entry, reason the operator is unsupported or None).

    Only the operator list and its opset ranges; rank and shape conditions are checked by the
    caller for the graph it analyses.
    """
    domain = "" if node.domain in {"", "ai.onnx"} else node.domain
    opset = opsets.get(domain)
    since = resolve_since_version(domain=domain, op_type=node.op_type, opset=opset)
    if opset is None:
        reason = f"the model imports no opset for domain {display_domain(domain)}"
        return domain, opset, since, None, reason
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
    return domain, opset, since, entry, None


def _opsets_of(model: onnx.ModelProto) -> dict[str, int]:
    return {
        ("" if opset.domain == "ai.onnx" else opset.domain): int(opset.version)
        for opset in model.opset_import
    }


class _Findings:
    """Unsupported nodes grouped by operator and reason, and caveats of supported ones."""

    def __init__(self, target: TargetProfile) -> None:
        self.target = target
        self.unsupported: dict[tuple[str, str, int | None, str], dict[str, Any]] = {}
        self.caveats: dict[tuple[str, str], dict[str, Any]] = {}

    def add_unsupported(
        self,
        *,
        node: onnx.NodeProto,
        node_name: str,
        verdict: tuple[str, int | None, int | None, Any, str | None],
        reason: str,
        kind: str,
    ) -> None:
        domain, opset, since, _entry, _ = verdict
        # A reason naming a tensor would split one operator into many rows; group by kind.
        key_reason = reason if kind == fixing.UNSUPPORTED_OPERATOR else kind
        item = self.unsupported.setdefault(
            (domain, node.op_type, since, key_reason),
            {
                "operator": operator_label(domain, node.op_type),
                "domain": domain,
                "op_type": node.op_type,
                "opset": opset,
                "since_version": since,
                "reason": reason,
                "kind": kind,
                "node_count": 0,
                "node_names": [],
            },
        )
        item["node_count"] += 1
        if len(item["node_names"]) < _MAX_NODE_NAMES:
            item["node_names"].append(node_name)

    def add_supported(self, *, node: onnx.NodeProto, entry: Any, domain: str) -> None:
        conditions = entry.conditions if entry is not None else ""
        if conditions:
            caveat = self.caveats.setdefault(
                (domain, node.op_type),
                {"operator": operator_label(domain, node.op_type), "note": conditions, "nodes": 0},
            )
            caveat["nodes"] += 1

    def unsupported_rows(self) -> list[dict[str, Any]]:
        return sorted(self.unsupported.values(), key=lambda item: (item["operator"], item["kind"]))

    def caveat_rows(self) -> list[dict[str, Any]]:
        return sorted(self.caveats.values(), key=lambda item: item["operator"])


def _analyse_optimised_graph(
    model: onnx.ModelProto,
    target: TargetProfile,
    values: Mapping[str, tuple[int, tuple[int | str | None, ...] | None]],
) -> tuple[dict[str, Any], _Findings, list[str]]:
    """Today's analysis for targets that take dynamic shapes (CPU): the list, and the rank limit.

    Partitions are runs of consecutive supported main-graph nodes in graph order.
    """
    opsets = _opsets_of(model)
    findings = _Findings(target)

    def verdict_of(node: onnx.NodeProto) -> tuple[Any, str | None]:
        verdict = _operator_verdict(node, target, opsets)
        reason = verdict[4]
        if reason is None and target.max_tensor_rank is not None:
            ranks = [len(dims) for dims in _node_dims(node, values) if dims is not None]
            if ranks and max(ranks) > target.max_tensor_rank:
                reason = f"a tensor of rank {max(ranks)} > {target.max_tensor_rank}"
        return verdict, reason

    node_total = 0
    dynamic_nodes: list[str] = []
    for node_name, node in iter_nodes(model.graph):
        node_total += 1
        verdict, reason = verdict_of(node)
        if any(
            dims is not None and not all(isinstance(d, int) for d in dims)
            for dims in _node_dims(node, values)
        ):
            dynamic_nodes.append(node_name)
        if reason is not None:
            kind = fixing.UNSUPPORTED_OPERATOR if verdict[4] else fixing.UNSUPPORTED_RANK
            findings.add_unsupported(
                node=node, node_name=node_name, verdict=verdict, reason=reason, kind=kind
            )
        else:
            findings.add_supported(node=node, entry=verdict[3], domain=verdict[0])
    supported_flags = [verdict_of(node)[1] is None for node in model.graph.node]
    partitions = sum(
        1
        for index, ok in enumerate(supported_flags)
        if ok and (index == 0 or not supported_flags[index - 1])
    )
    unsupported_nodes = sum(item["node_count"] for item in findings.unsupported.values())
    figures = {
        "node_count": node_total,
        "supported_node_count": node_total - unsupported_nodes,
        "unsupported_node_count": unsupported_nodes,
        "partitions": partitions,
        "partitions_note": "contiguous runs of supported main-graph nodes in graph order; "
        "unsupported nodes fall back to the CPU EP, each switch costs a copy",
    }
    return figures, findings, dynamic_nodes


def _analyse_as_checker(
    model: onnx.ModelProto, target: TargetProfile, *, label: str, optimise: bool = True
) -> tuple[fixing.FixedGraphAnalysis, _Findings, list[str], dict[str, Any] | None]:
    """onnxruntime's usability checker's partitioning of one graph, with our reasons per node.

    The fourth value is the checker's literal reading where it differs
    (:func:`_checker_literal_reading`).
    """
    opsets = _opsets_of(model)
    analysis = fixing.analyse_fixed_model(
        model,
        label=label,
        is_op_supported=lambda node: _operator_verdict(node, target, opsets)[4] is None,
        max_rank=target.max_tensor_rank,
        optimise=optimise,
    )
    findings = _Findings(target)
    initializers = {tensor.name for tensor in analysis.model.graph.initializer}
    dynamic_nodes: list[str] = []
    for node_name, node in iter_nodes(analysis.model.graph):
        verdict = _operator_verdict(node, target, opsets)
        if id(node) in analysis.supported_node_ids:
            findings.add_supported(node=node, entry=verdict[3], domain=verdict[0])
            continue
        if verdict[4] is not None:
            kind, reason = fixing.UNSUPPORTED_OPERATOR, verdict[4]
        else:
            kind, reason = fixing.why_not_partitioned(
                node, analysis=analysis, initializers=initializers, max_rank=target.max_tensor_rank
            )
            if kind == fixing.UNSUPPORTED_DYNAMIC_INPUT:
                dynamic_nodes.append(node_name)
        findings.add_unsupported(
            node=node, node_name=node_name, verdict=verdict, reason=reason, kind=kind
        )
    return analysis, findings, dynamic_nodes, _checker_literal_reading(analysis, target, opsets)


def _checker_literal_reading(
    analysis: fixing.FixedGraphAnalysis, target: TargetProfile, opsets: Mapping[str, int]
) -> dict[str, Any] | None:
    """The checker's own figures when it would read the operator table differently from us.

    onnxruntime's checker matches the table's spelling literally, so an operator the table
    misspells (``ai.onnx:Argmax``) counts as unsupported there although the target runs it.
    Our figures keep the corrected reading; this says, with the checker's exact figures, where
    and why they differ. ``None`` when the graph holds no such operator.
    """

    def entry_of(node: onnx.NodeProto) -> Any:
        return _operator_verdict(node, target, opsets)[3]

    respelt = sorted(
        {
            operator_label(entry.domain, entry.op_type)
            for _, node in iter_nodes(analysis.model.graph)
            if (entry := entry_of(node)) is not None and entry.spelt_differently_in_file
        }
    )
    if not respelt:
        return None
    literal = fixing.analyse_fixed_model(
        analysis.model,
        label=analysis.label,
        is_op_supported=lambda node: (
            _operator_verdict(node, target, opsets)[4] is None
            and not entry_of(node).spelt_differently_in_file
        ),
        max_rank=target.max_tensor_rank,
        optimise=False,
    )
    return {
        **literal.figures(),
        "respelt_operators": respelt,
        "note": f"onnxruntime's usability checker reads the operator table literally and does not "
        f"find {', '.join(respelt)} (spelt otherwise in the table), so it counts "
        f"{literal.unsupported_node_count} unsupported node(s) and {literal.partitions} "
        "partition(s) where these figures count the operator as supported",
    }


def _static_plan(
    metadata: ModelMetadata, inputs: RepresentativeInputs | None, model: onnx.ModelProto
) -> list[tuple[str, Mapping[str, Sequence[int]] | None]]:
    """(label, shapes to fix or None) per graph a static-shape target would get."""
    dynamic = any(spec.dynamic_axes for spec in metadata.inputs)
    if not dynamic:
        return [(f"{GRAPH_OPTIMISED} (inputs already static)", None)]
    if inputs is None or not inputs.buckets:
        # What the checker says of the model as uploaded: dynamic values count as unsupported.
        return [(f"{GRAPH_OPTIMISED} (inputs dynamic: no shape bucket to fix them to)", None)]
    names = {value.name for value in model_inputs(model.graph)}
    plan: list[tuple[str, Mapping[str, Sequence[int]] | None]] = []
    for bucket in inputs.buckets:
        shapes = {name: tuple(shape) for name, shape in bucket.shapes.items() if name in names}
        plan.append((fixing.fixed_label(shapes), shapes))
    return plan


def check_compatibility(
    *,
    model_path: str | os.PathLike[str],
    target: TargetProfile,
    inputs: RepresentativeInputs | None = None,
    max_bytes: int = DEFAULT_MAX_MODEL_BYTES,
    max_tensor_elements: int = DEFAULT_MAX_TENSOR_ELEMENTS,
    external_root: str | os.PathLike[str] | None = None,
) -> StepResult:
    """Every node against the target's operator list, on the graph the target really gets.

    Targets that take static shapes only (NNAPI, Core ML) get one graph per shape bucket: the
    inputs fixed to the bucket with onnxruntime's ``make_input_shape_fixed``, then optimised and
    partitioned exactly as onnxruntime's mobile usability checker does
    (:mod:`onnxcheck.fixing`); node and partition figures equal that checker's on the same
    fixed model. The headline figures are the worst bucket's. Other targets (CPU) are analysed
    on the optimised dynamic graph: a node is supported when an entry for its (domain, op_type)
    covers the schema version its opset resolves to, and its tensors are within any rank limit.

    Every figure names its graph (``original``, ``optimised`` or ``fixed to <bucket>``).
    Constraints: static shapes, quantized-only, model size, the documented opset range, and
    memory budget against :func:`estimate_peak_memory` at the largest bucket. ``external_root`` is
    the unpacked bundle a model with external data came in (see
    :func:`onnxcheck.inspection.load_checked_model`). A documentary target's findings start by
    naming the document its operator support comes from.
    """
    timer = StepTimer()
    try:
        model, metadata = load_checked_model(
            path=model_path,
            max_bytes=max_bytes,
            max_tensor_elements=max_tensor_elements,
            external_root=external_root,
        )
    except ModelRejected as exc:
        return StepResult(
            "compatibility", FAILED, timer.ms(), [exc.message], {"rejection": exc.to_dict()}
        )
    fixed = _largest_bucket(inputs)
    fixed_graphs: list[dict[str, Any]] = []
    fixing_errors: list[str] = []
    headline: tuple[dict[str, Any], _Findings, list[str]] | None = None
    memory_model: onnx.ModelProto | None = None  # the largest bucket's analysed graph
    memory_size = 0
    if target.static_shapes_only:
        from onnxcheck.quantize import normalize_for_conversion

        # The safety checks have passed, so the weights (external data too) may be read now.
        # Initializer-backed inputs (IR < 4) would block constant folding, as on the CPU path.
        normalized = normalize_for_conversion(onnx.load_model(os.fspath(model_path)))
        worst: tuple[tuple[int, int], dict[str, Any], _Findings] | None = None
        all_dynamic: list[str] = []
        for label, shapes in _static_plan(metadata, inputs, normalized):
            try:
                graph = (
                    normalized if shapes is None else fixing.fix_input_shapes(normalized, shapes)
                )
                analysis, graph_findings, dynamic_nodes, literal = _analyse_as_checker(
                    graph, target, label=label
                )
            except Exception as exc:  # noqa: BLE001 - onnxruntime's load errors are untyped
                fixing_errors.append(f"{label}: {first_line(exc)}")
                fixed_graphs.append({"graph": label, "error": first_line(exc)})
                continue
            figures = {
                **analysis.figures(),
                "partitions_note": _CHECKER_PARTITIONS_NOTE,
                "unsupported": graph_findings.unsupported_rows(),
            }
            if literal is not None:
                figures["checker_literal"] = literal
            fixed_graphs.append(figures)
            all_dynamic.extend(f"{label}: {name}" for name in dynamic_nodes)
            rank = (analysis.unsupported_node_count, analysis.partitions)
            if worst is None or rank > worst[0]:
                worst = (rank, figures, graph_findings)
            size = sum(math.prod(shape) for shape in (shapes or {}).values())
            if memory_model is None or size > memory_size:
                memory_model, memory_size = analysis.model, size
        if worst is not None:
            headline = (
                {k: v for k, v in worst[1].items() if k != "unsupported"},
                worst[2],
                all_dynamic,
            )
            analysed = (
                f"{worst[1]['graph']}, after onnxruntime basic optimisation (constant folding, "
                "Conv fusions, Dropout/Identity/Cast elimination) and ONNX shape inference: the "
                "graph onnxruntime's mobile usability checker judges"
            )
    if headline is None:
        model, analysed = graph_as_partitioned(model_path=model_path, model=model)
        graph_kind = GRAPH_OPTIMISED if analysed.startswith("after") else GRAPH_ORIGINAL
        values = _infer_value_shapes(model, fixed)
        cpu_figures, cpu_findings, dynamic_nodes = _analyse_optimised_graph(model, target, values)
        cpu_figures["graph"] = graph_kind
        headline = (cpu_figures, cpu_findings, dynamic_nodes)
        memory_values = values
        memory_model = model
    else:
        assert memory_model is not None  # set with the headline
        model = memory_model
        memory_values = _infer_value_shapes(model, None)
    figures, found, dynamic_nodes = headline
    constraints = _target_constraints(target, metadata, inputs, model, memory_values, dynamic_nodes)
    if fixing_errors:
        constraints.append(
            {
                "name": "shape_fixing",
                "ok": False,
                "detail": "onnxruntime could not fix or analyse the graph for "
                + "; ".join(fixing_errors),
            }
        )
    unsupported_rows = found.unsupported_rows()
    caveat_rows = found.caveat_rows()
    findings = [
        f"{item['operator']} (opset {item['opset']}): {item['node_count']} node(s) unsupported "
        f"on {target.name} ({figures['graph']}) — {item['reason']}: "
        f"{', '.join(item['node_names'][:5])}" + (" …" if item["node_count"] > 5 else "")
        for item in unsupported_rows
    ]
    findings += [
        f"{entry['graph']}: {entry['supported_node_count']} of {entry['node_count']} nodes "
        f"supported, {entry['partitions']} partition(s)"
        for entry in fixed_graphs
        if "error" not in entry
        and any(
            entry[key] != figures[key]
            for key in ("node_count", "supported_node_count", "partitions")
        )
    ]
    if figures.get("checker_literal"):
        findings.append(f"{figures['graph']}: {figures['checker_literal']['note']}")
    findings += [c["detail"] for c in constraints if not c["ok"]]
    findings += [c["detail"] for c in constraints if c["ok"] and c.get("warning")]
    findings += [
        f"{c['operator']}: conditions not checked statically — {c['note']}" for c in caveat_rows
    ]
    if target.documentary:
        findings.insert(0, documentary_finding(target))
    node_total = figures["node_count"]
    unsupported_nodes = figures["unsupported_node_count"]
    data = {
        "target": target.to_dict(include_operators=False),
        "documentary": target.documentary,
        "graph": figures["graph"],
        "graph_analysed": analysed,
        "uploaded_node_count": metadata.node_count,
        "node_count": node_total,
        "node_count_note": _node_count_note(metadata.node_count, node_total, figures["graph"]),
        "supported_node_count": figures["supported_node_count"],
        "unsupported_node_count": unsupported_nodes,
        "supported_share": (node_total - unsupported_nodes) / node_total if node_total else 1.0,
        "unsupported": unsupported_rows,
        "caveats": caveat_rows,
        "partitions": figures["partitions"],
        "partitions_note": figures["partitions_note"],
        "checker_literal": figures.get("checker_literal"),
        "fixed_graphs": fixed_graphs,
        "constraints": constraints,
        "memory_estimate": next(c["estimate"] for c in constraints if c["name"] == "memory"),
        "inputs_fixed_to": {k: list(v) for k, v in fixed.items()} if fixed else None,
    }
    failed = bool(unsupported_rows) or any(not c["ok"] for c in constraints)
    warn = bool(caveat_rows) or any(c.get("warning") for c in constraints)
    return StepResult("compatibility", step_status(failed, warn), timer.ms(), findings, data)


def documentary_finding(target: TargetProfile) -> str:
    """What every result on a documentary target says first: where support comes from."""
    basis = target.source.split("; ", 1)[0].removeprefix("documentary: ")
    return (
        f"documentary profile: operator support from {basis}; not run on this hardware "
        f"({target.execution_provider} is not installed)"
    )


_CHECKER_PARTITIONS_NOTE = (
    "partitions and supported nodes as onnxruntime's mobile usability checker counts them "
    "(usability_checker.check_partitioning, fixed input sizes required): unsupported nodes fall "
    "back to the CPU EP, each switch costs a copy"
)


def _node_count_note(uploaded: int, analysed: int, graph: str) -> str:
    """How the inventory's node count and the analysed graph's count reconcile."""
    if graph.startswith(GRAPH_ORIGINAL):
        return f"the uploaded graph ({uploaded} nodes) is analysed as it is"
    if analysed == uploaded:
        return f"the uploaded graph has {uploaded} nodes; the analysed graph ({graph}) as many"
    change = uploaded - analysed
    verb = "remove" if change > 0 else "add"
    return (
        f"the uploaded graph has {uploaded} nodes; the analysed graph ({graph}) has {analysed}: "
        f"onnxruntime's constant folding and fusions {verb} {abs(change)}"
    )


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
                "per bucket (onnxruntime.tools.onnx_model_utils.make_input_shape_fixed by input "
                "name and full shape; analysed per bucket)"
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
                "fall back to the CPU EP"
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
    if target.onnx_opset_range is not None:
        low, high = target.onnx_opset_range
        opset = metadata.opset_imports.get("")
        ok = opset is not None and low <= opset <= high
        constraints.append(
            {
                "name": "onnx_opset",
                "ok": ok,
                "detail": (
                    f"the model imports ai.onnx opset {opset}; {target.name} documents opsets "
                    f"{low} to {high}"
                    if opset is not None
                    else f"the model imports no ai.onnx opset; {target.name} documents opsets "
                    f"{low} to {high}"
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
