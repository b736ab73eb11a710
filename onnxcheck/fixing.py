"""The graph a static-shape target gets: inputs fixed to a shape bucket, as onnxruntime does.

NNAPI and Core ML take fixed input shapes only. A model exported with dynamic axes reaches them
through onnxruntime's own tools: ``make_input_shape_fixed`` (what
``python -m onnxruntime.tools.make_dynamic_shape_fixed`` runs), then, when the session is
created, onnxruntime's *basic* optimisations (constant folding removes the ``Shape`` → ``Gather``
→ ``Range``/``ConstantOfShape``/``Expand`` arithmetic that only existed to handle the dynamic
sizes). Judging operator support on the dynamic graph reports those nodes as unsupported although
the device never sees them.

This module fixes and analyses the graph with onnxruntime's functions rather than copies of them,
so its figures equal ``python -m onnxruntime.tools.check_onnx_model_mobile_usability`` on the
same fixed model:

- :func:`fix_input_shapes`: ``onnx_model_utils.make_input_shape_fixed`` per input (by input name
  and full shape), then ``fix_output_shapes``.
- :func:`analyse_fixed_model`: ``onnx_model_utils.optimize_model`` (basic level, external
  initializers, as the checker's ``analyze_model``), ``ModelProtoWithShapeInfo`` (strict shape
  inference), then ``usability_checker.check_partitioning`` with fixed input sizes required and
  the target's rank limit: the checker's own partition and supported-node counts.

The only departure is which operators count as supported: the target's :class:`TargetProfile`
decides (the same table the checker reads, with its misspellings corrected, see
:mod:`onnxcheck.operators`), so a registry target with its own list is judged by that list.

No Django import.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

# A dim_param that carries no meaning: exporters write "?" (or nothing) for every unknown axis,
# so two such axes are independent even though they share the spelling. A real name ("batch")
# written on several axes ties them, and fixing one fixes all (onnxruntime's behaviour).
MEANINGLESS_DIM_PARAMS = frozenset({"", "?"})

UNSUPPORTED_OPERATOR = "operator"
UNSUPPORTED_DYNAMIC_INPUT = "dynamic_input"
UNSUPPORTED_RANK = "rank"


class ShapeFixingError(ValueError):
    """onnxruntime refused to fix an input to the bucket's shape (rank or fixed-size mismatch)."""


def fixed_label(shapes: Mapping[str, Sequence[int]]) -> str:
    """How reports name a fixed graph: ``fixed to x=1x3x224x224, mask=1x224``."""
    parts = [f"{name}={'x'.join(str(int(d)) for d in shape)}" for name, shape in shapes.items()]
    return "fixed to " + ", ".join(parts)


def _untie_meaningless_dims(graph: onnx.GraphProto, input_names: set[str]) -> None:
    """Clear ``?``/empty dim_params so ``make_input_shape_fixed`` fixes each axis on its own.

    ``make_input_shape_fixed`` replaces a dim_param through the whole graph, so
    ``[1, 3, '?', '?']`` fixed to ``[1, 3, 48, 192]`` first sets both axes to 48 and then refuses
    192. Cleared, each axis is an unknown dim that it sets by position. Intermediate value_info
    carrying such a param is dropped: shape inference recomputes it from the fixed inputs.
    """

    def meaningless(dim: onnx.TensorShapeProto.Dimension) -> bool:
        return dim.WhichOneof("value") == "dim_param" and dim.dim_param in MEANINGLESS_DIM_PARAMS

    for value in graph.input:
        if value.name in input_names and value.type.HasField("tensor_type"):
            for dim in value.type.tensor_type.shape.dim:
                if meaningless(dim):
                    dim.Clear()
    keep = [
        value
        for value in graph.value_info
        if not (
            value.type.HasField("tensor_type")
            and any(meaningless(dim) for dim in value.type.tensor_type.shape.dim)
        )
    ]
    if len(keep) != len(graph.value_info):
        del graph.value_info[:]
        graph.value_info.extend(keep)


def fix_input_shapes(
    model: onnx.ModelProto, shapes: Mapping[str, Sequence[int]]
) -> onnx.ModelProto:
    """A copy of ``model`` whose inputs have the bucket's shapes, fixed by onnxruntime's tool.

    Each input is fixed by name and full shape (``make_input_shape_fixed``), never by dim_param
    alone: ``make_dim_param_fixed`` would give every ``?`` axis the same size. Output shapes are
    then fixed where inference allows (``fix_output_shapes``), as ``make_dynamic_shape_fixed``
    does; a model the ONNX checker rejects keeps its declared output shapes.
    """
    from onnxruntime.tools.onnx_model_utils import fix_output_shapes, make_input_shape_fixed

    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    _untie_meaningless_dims(fixed.graph, set(shapes))
    for name, shape in shapes.items():
        try:
            make_input_shape_fixed(fixed.graph, name, [int(d) for d in shape])
        except ValueError as exc:
            raise ShapeFixingError(f"input {name!r}: {exc}") from exc
    # On failure the outputs' declared shapes stay; partitioning looks only at node inputs.
    with contextlib.suppress(
        onnx.checker.ValidationError, onnx.shape_inference.InferenceError, ValueError
    ):
        fix_output_shapes(fixed)
    return fixed


class ProfileOpsChecker:
    """Duck-typed stand-in for the usability checker's ``_SupportedOpsChecker``.

    ``check_partitioning`` asks only ``is_op_supported(node)`` (and ``get_caveats()`` when it
    prints); the answer comes from the target profile instead of a literal read of the Markdown.
    """

    def __init__(self, is_supported: Callable[[onnx.NodeProto], bool]) -> None:
        self._is_supported = is_supported

    def is_op_supported(self, node: onnx.NodeProto) -> bool:
        return self._is_supported(node)

    def get_caveats(self) -> list[str]:
        return []


@dataclass
class FixedGraphAnalysis:
    """onnxruntime's partitioning of one fixed, optimised graph, with the graph it judged."""

    label: str
    model: onnx.ModelProto
    node_count: int
    supported_node_count: int
    partitions: int
    partition_sizes: list[int]
    unsupported_due_to_operator: int
    unsupported_due_to_dynamic_input: int
    unsupported_due_to_rank: int
    supported_node_ids: set[int] = field(repr=False)
    value_info: dict[str, onnx.ValueInfoProto] = field(repr=False)
    # Keeps the node objects alive so ``supported_node_ids`` (ids) stay meaningful.
    _groups: list[Any] = field(repr=False, default_factory=list)

    @property
    def unsupported_node_count(self) -> int:
        return self.node_count - self.supported_node_count

    def figures(self) -> dict[str, Any]:
        return {
            "graph": self.label,
            "node_count": self.node_count,
            "supported_node_count": self.supported_node_count,
            "unsupported_node_count": self.unsupported_node_count,
            "partitions": self.partitions,
            "partition_sizes": self.partition_sizes,
            "unsupported_due_to_operator": self.unsupported_due_to_operator,
            "unsupported_due_to_dynamic_input": self.unsupported_due_to_dynamic_input,
            "unsupported_due_to_rank": self.unsupported_due_to_rank,
        }


def optimised_with_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model after onnxruntime's basic optimisation and strict ONNX shape inference.

    Exactly the graph the usability checker's ``analyze_model`` judges: ``optimize_model`` at
    the basic level writing initializers externally, then ``ModelProtoWithShapeInfo``.
    """
    from onnxruntime.tools.onnx_model_utils import ModelProtoWithShapeInfo, optimize_model

    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "fixed.onnx"
        target = Path(scratch) / "optimised" / "fixed.onnx"
        target.parent.mkdir()
        onnx.save_model(model, os.fspath(source))
        optimize_model(source, target, use_external_initializers=True)
        return ModelProtoWithShapeInfo(target).model_with_shape_info


def analyse_fixed_model(
    model: onnx.ModelProto,
    *,
    label: str,
    is_op_supported: Callable[[onnx.NodeProto], bool],
    max_rank: int | None,
    optimise: bool = True,
) -> FixedGraphAnalysis:
    """Partition a fixed model as onnxruntime's usability checker does, for one target.

    ``optimise=False`` takes ``model`` as already optimised and shape-inferred.
    """
    from onnxruntime.tools.mobile_helpers.usability_checker import check_partitioning

    analysed = optimised_with_shapes(model) if optimise else model
    info = check_partitioning(
        analysed.graph,
        ProfileOpsChecker(is_op_supported),
        require_fixed_input_sizes=True,
        max_rank=999 if max_rank is None else max_rank,  # the checker's "no limit"
    )
    value_info: dict[str, onnx.ValueInfoProto] = {}
    for value in [*analysed.graph.input, *analysed.graph.output, *analysed.graph.value_info]:
        value_info[value.name] = value
    return FixedGraphAnalysis(
        label=label,
        model=analysed,
        node_count=info.num_nodes,
        supported_node_count=info.num_supported_nodes,
        partitions=info.num_partitions,
        partition_sizes=[len(group) for group in info.supported_groups],
        unsupported_due_to_operator=info.nodes_unsupported_due_to_op,
        unsupported_due_to_dynamic_input=info.nodes_unsupported_due_to_dynamic_input,
        unsupported_due_to_rank=info.num_unsupported_nodes_due_to_rank,
        supported_node_ids={id(node) for group in info.supported_groups for node in group},
        value_info=value_info,
        _groups=info.supported_groups,
    )


def why_not_partitioned(
    node: onnx.NodeProto,
    *,
    analysis: FixedGraphAnalysis,
    initializers: set[str],
    max_rank: int | None,
) -> tuple[str, str]:
    """(kind, detail) for a node the checker left out, when its operator itself is supported.

    Mirrors the checker's two shape conditions for the explanation only; the counts come from
    the checker. Kind is :data:`UNSUPPORTED_RANK` or :data:`UNSUPPORTED_DYNAMIC_INPUT`.
    """
    from onnxruntime.tools.onnx_model_utils import is_fixed_size_tensor

    if max_rank is not None:
        for name in node.input:
            value = analysis.value_info.get(name)
            if value is not None and value.type.HasField("tensor_type"):
                rank = len(value.type.tensor_type.shape.dim)
                if rank > max_rank:
                    return UNSUPPORTED_RANK, f"input {name} has rank {rank} > {max_rank}"
        if (
            node.op_type == "Transpose"
            and node.attribute
            and len(node.attribute[0].ints) > max_rank
        ):
            return UNSUPPORTED_RANK, f"a rank-{len(node.attribute[0].ints)} Transpose > {max_rank}"
    # The checker also counts an omitted optional input ("") as not of fixed size.
    dynamic = [
        name or "(an omitted optional input)"
        for name in node.input
        if not (
            is_fixed_size_tensor(analysis.value_info[name])
            if name in analysis.value_info
            else name in initializers
        )
    ]
    return UNSUPPORTED_DYNAMIC_INPUT, (
        "input(s) of dynamic or unknown shape after fixing: " + ", ".join(dynamic[:3])
    )
