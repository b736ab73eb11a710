"""Compatibility on the fixed graph equals onnxruntime's own mobile usability checker.

Each graph is built here with ``onnx.helper``. Our figures come from the compatibility step with
a shape bucket; onnxruntime's come from ``usability_checker.analyze_model`` (what
``python -m onnxruntime.tools.check_onnx_model_mobile_usability`` runs) on the fixed model the
step analysed, read from the checker's own log lines.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxcheck import fixing
from onnxcheck.compatibility import check_compatibility
from onnxcheck.inputs import RepresentativeInputs, ShapeBucket
from onnxcheck.operators import builtin_profile
from onnxcheck.quantize import normalize_for_conversion
from tests import onnx_models

# The checker's names for the three mobile targets, in the order it checks them.
CHECKER_EP_NAMES = {
    "NNAPI": "nnapi",
    "CoreML NeuralNetwork": "coreml-neuralnetwork",
    "CoreML MLProgram": "coreml-mlprogram",
}
STATIC_TARGETS = sorted(CHECKER_EP_NAMES.values())


def _model(nodes, inputs, outputs, initializers=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _const(name: str, values, dtype=np.int64) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)


def shape_arithmetic_model() -> onnx.ModelProto:
    """(a) Shape → Gather → Range / ConstantOfShape / Expand: all constant once ``n`` is fixed."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "one"], ["n"], name="gather", axis=0),
        helper.make_node("Range", ["zero", "n", "step"], ["positions"], name="range"),
        helper.make_node("Cast", ["positions"], ["positions_f"], name="cast", to=TensorProto.FLOAT),
        helper.make_node(
            "ConstantOfShape",
            ["shape"],
            ["ones"],
            name="constant_of_shape",
            value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0]),
        ),
        helper.make_node("Expand", ["positions_f", "shape"], ["grid"], name="expand"),
        helper.make_node("Mul", ["grid", "ones"], ["scaled"], name="mul"),
        helper.make_node("Add", ["x", "scaled"], ["y"], name="add"),
        helper.make_node("Relu", ["y"], ["out"], name="relu"),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "n"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, "n"])],
        [_const("one", 1), _const("zero", 0), _const("step", 1)],
    )


def unsupported_in_the_middle_model() -> onnx.ModelProto:
    """(b) Relu → Erf → Relu: NNAPI and Core ML NeuralNetwork lack Erf, so two partitions."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu_in"),
        helper.make_node("Mul", ["a", "half"], ["b"], name="mul_in"),
        helper.make_node("Erf", ["b"], ["c"], name="erf"),
        helper.make_node("Add", ["c", "half"], ["d"], name="add_out"),
        helper.make_node("Relu", ["d"], ["out"], name="relu_out"),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 16])],
        [_const("half", [0.5], np.float32)],
    )


def plain_supported_model() -> onnx.ModelProto:
    """(c) MatMul → Add → Relu with a dynamic batch: every target runs all of it."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="matmul"),
        helper.make_node("Add", ["h", "b"], ["z"], name="add"),
        helper.make_node("Relu", ["z"], ["out"], name="relu"),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [-1, 4])],
        [
            numpy_helper.from_array(rng.standard_normal((8, 4)).astype(np.float32), "w"),
            numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b"),
        ],
    )


def two_question_mark_axes_model() -> onnx.ModelProto:
    """(d) ``[1, 3, '?', '?']``: height and width are independent although both are spelt ``?``.

    The flattened size feeds a MatMul whose weight fits only 3 x 48 x 192, so the graph is valid
    only if the two axes get their own sizes; ``Shape``/``Slice``/``Concat`` build its shape.
    """
    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu"),
        helper.make_node("Shape", ["a"], ["shape"], name="shape"),
        helper.make_node("Slice", ["shape", "s0", "s1"], ["batch"], name="slice"),
        helper.make_node("Concat", ["batch", "minus_one"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["a", "target"], ["flat"], name="reshape"),
        helper.make_node("MatMul", ["flat", "w"], ["out"], name="matmul"),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "?", "?"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 2])],
        [
            _const("s0", [0]),
            _const("s1", [1]),
            _const("minus_one", [-1]),
            numpy_helper.from_array(rng.standard_normal((3 * 48 * 192, 2)).astype(np.float32), "w"),
        ],
    )


def data_dependent_shape_model() -> onnx.ModelProto:
    """TopK with ``k`` fed at run time: its outputs stay of unknown size even once fixed."""
    nodes = [
        helper.make_node("TopK", ["x", "k"], ["values", "indices"], name="topk"),
        helper.make_node("Relu", ["values"], ["out"], name="relu"),
    ]
    return _model(
        nodes,
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"]),
            helper.make_tensor_value_info("k", TensorProto.INT64, [1]),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None])],
    )


def rank_six_model() -> onnx.ModelProto:
    """Rank-6 tensors: beyond Core ML's rank limit of 5, fine for NNAPI."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu"),
        helper.make_node("Add", ["a", "x"], ["out"], name="add"),
    ]
    shape = [1, 2, 1, 2, "n", 2]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, shape)],
    )


def argmax_model() -> onnx.ModelProto:
    """ArgMax, which Core ML MLProgram's table spells ``Argmax``: the checker misses it."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu"),
        helper.make_node("ArgMax", ["a"], ["index"], name="argmax", axis=1, keepdims=1),
        helper.make_node("Cast", ["index"], ["out"], name="cast", to=TensorProto.FLOAT),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 10])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 1])],
    )


CASES = {
    "argmax_respelt": (argmax_model, {"x": (1, 10)}),
    "shape_arithmetic": (shape_arithmetic_model, {"x": (1, 8)}),
    "data_dependent_shape": (data_dependent_shape_model, {"x": (8,), "k": (1,)}),
    "rank_six": (rank_six_model, {"x": (1, 2, 1, 2, 3, 2)}),
    "unsupported_in_the_middle": (unsupported_in_the_middle_model, {"x": (2, 16)}),
    "plain_supported": (plain_supported_model, {"x": (4, 8)}),
    "two_question_mark_axes": (two_question_mark_axes_model, {"x": (1, 3, 48, 192)}),
}


def _inputs(shapes) -> RepresentativeInputs:
    bucket = ShapeBucket(label="bucket", shapes=shapes, batch_size=next(iter(shapes.values()))[0])
    return RepresentativeInputs(
        source="synthetic",
        file_name=None,
        buckets=(bucket,),
        bucket_feeds=(),
        samples=None,
        labels=None,
        static_batch=None,
    )


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def onnxruntime_checker_figures(model_path: Path) -> dict[str, dict[str, int]]:
    """Per target: nodes, supported, partitions, unsupported by operator, from the checker's log."""
    from onnxruntime.tools.mobile_helpers.usability_checker import analyze_model

    logger = logging.getLogger(f"usability_checker_test.{model_path.stem}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = _Lines()
    logger.addHandler(handler)
    try:
        analyze_model(model_path, logger=logger)
    finally:
        logger.removeHandler(handler)
    figures: dict[str, dict[str, int]] = {}
    current = None
    for line in handler.lines:
        if line.startswith("Checking ") and line[len("Checking ") :] in CHECKER_EP_NAMES:
            current = figures.setdefault(CHECKER_EP_NAMES[line[len("Checking ") :]], {})
        elif line.startswith("Checking if model will perform better"):
            current = None  # the checker's what-if pass for dynamic models: not the fixed model
        elif current is not None and (
            match := re.match(r"(\d+) partitions with a total of (\d+)/(\d+) nodes", line)
        ):
            current["partitions"] = int(match.group(1))
            current["supported"] = int(match.group(2))
            current["nodes"] = int(match.group(3))
        elif current is not None and (match := _COUNT_LINE.match(line)):
            current[_COUNT_KEYS[match.group(1)]] = int(match.group(2))
    return figures


# The checker logs the dynamic-input and rank counts only when they are not zero.
_COUNT_LINE = re.compile(
    r"Unsupported nodes due to (operator|input having a dynamic shape|rank of input data)=(\d+)"
)
_COUNT_KEYS = {
    "operator": "unsupported_due_to_operator",
    "input having a dynamic shape": "unsupported_due_to_dynamic_input",
    "rank of input data": "unsupported_due_to_rank",
}


@pytest.fixture(scope="module")
def checker_runs(tmp_path_factory) -> dict[str, tuple[dict, dict]]:
    """Per case: (our step results per target, the checker's figures on the fixed model)."""
    runs = {}
    for case, (build, shapes) in CASES.items():
        folder = tmp_path_factory.mktemp(case)
        model = build()
        model_path = folder / "model.onnx"
        onnx.save_model(model, model_path)
        fixed_path = folder / "fixed.onnx"
        onnx.save_model(
            fixing.fix_input_shapes(normalize_for_conversion(model), shapes), fixed_path
        )
        ours = {
            name: check_compatibility(
                model_path=model_path, target=builtin_profile(name), inputs=_inputs(shapes)
            )
            for name in STATIC_TARGETS
        }
        runs[case] = (ours, onnxruntime_checker_figures(fixed_path))
    return runs


@pytest.mark.parametrize("target", STATIC_TARGETS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_fixed_graph_figures_equal_onnxruntime_checker(checker_runs, case, target):
    """Equal wherever the checker reads the table as we do; else its figures are ours too."""
    ours, theirs = checker_runs[case]
    data = ours[target].data
    checker = theirs[target]
    assert data["graph"] == fixing.fixed_label(CASES[case][1])
    (entry,) = data["fixed_graphs"]
    if data["checker_literal"] is None:
        assert data["node_count"] == checker["nodes"]
        assert data["supported_node_count"] == checker["supported"]
        assert data["partitions"] == checker["partitions"]
        by_operator = sum(
            item["node_count"] for item in data["unsupported"] if item["kind"] == "operator"
        )
        assert by_operator == checker["unsupported_due_to_operator"]
    else:
        entry = data["checker_literal"]
        assert entry == data["fixed_graphs"][0]["checker_literal"]
    assert entry["node_count"] == checker["nodes"]
    assert entry["supported_node_count"] == checker["supported"]
    assert entry["partitions"] == checker["partitions"]
    for key in ("unsupported_due_to_operator", "unsupported_due_to_dynamic_input"):
        assert entry[key] == checker.get(key, 0), key
    assert entry["unsupported_due_to_rank"] == checker.get("unsupported_due_to_rank", 0)


def test_a_misspelt_table_entry_is_reported_with_the_checkers_literal_figures(checker_runs):
    """MLProgram's table writes ``Argmax``: we count ArgMax as supported and say the checker
    (literal) does not, giving its figures; NNAPI lacks ArgMax either way."""
    ours, theirs = checker_runs["argmax_respelt"]
    data = ours["coreml-mlprogram"].data
    assert (data["node_count"], data["unsupported_node_count"], data["partitions"]) == (3, 0, 1)
    literal = data["checker_literal"]
    assert literal["respelt_operators"] == ["ai.onnx:ArgMax"]
    assert (literal["unsupported_node_count"], literal["partitions"]) == (1, 2)
    assert theirs["coreml-mlprogram"]["partitions"] == 2
    assert any("reads the operator table literally" in f for f in ours["coreml-mlprogram"].findings)
    assert ours["nnapi"].data["checker_literal"] is None
    assert ours["nnapi"].data["unsupported_node_count"] == 1


def test_shape_arithmetic_vanishes_once_fixed(checker_runs):
    """(a) On the dynamic graph NNAPI would see Shape, Range, ... ; fixed, one supported run."""
    ours, theirs = checker_runs["shape_arithmetic"]
    data = ours["nnapi"].data
    assert data["uploaded_node_count"] == 9
    assert (data["node_count"], data["unsupported_node_count"], data["partitions"]) == (2, 0, 1)
    assert theirs["nnapi"] == {
        "nodes": 2,
        "supported": 2,
        "partitions": 1,
        "unsupported_due_to_operator": 0,
    }
    assert "9 nodes" in data["node_count_note"] and "remove 7" in data["node_count_note"]
    assert ours["nnapi"].status != "failed", ours["nnapi"].findings


def test_unsupported_operator_in_the_middle_splits_the_graph(checker_runs):
    """(b) Erf is missing from NNAPI's list: two partitions around it; MLProgram has Erf."""
    ours, _ = checker_runs["unsupported_in_the_middle"]
    nnapi = ours["nnapi"].data
    assert (nnapi["node_count"], nnapi["unsupported_node_count"], nnapi["partitions"]) == (5, 1, 2)
    (erf,) = nnapi["unsupported"]
    assert erf["operator"] == "ai.onnx:Erf" and erf["node_names"] == ["erf"]
    assert ours["nnapi"].status == "failed"
    assert any("fixed to x=2x16" in finding for finding in ours["nnapi"].findings)
    mlprogram = ours["coreml-mlprogram"].data
    assert (mlprogram["unsupported_node_count"], mlprogram["partitions"]) == (0, 1)


def test_plain_graph_is_one_partition_everywhere(checker_runs):
    """MatMul + Add become one Gemm at the basic level: 3 uploaded nodes, 2 analysed."""
    ours, _ = checker_runs["plain_supported"]
    for target in STATIC_TARGETS:
        data = ours[target].data
        assert data["uploaded_node_count"] == 3
        assert (data["node_count"], data["unsupported_node_count"], data["partitions"]) == (2, 0, 1)


def test_values_of_unknown_size_stay_unsupported_once_fixed(checker_runs):
    ours, _ = checker_runs["data_dependent_shape"]
    rows = {row["op_type"]: row for row in ours["nnapi"].data["unsupported"]}
    assert rows["Relu"]["kind"] == "dynamic_input" and "values" in rows["Relu"]["reason"]
    static = next(c for c in ours["nnapi"].data["constraints"] if c["name"] == "static_shapes")
    assert static["ok"] is False


def test_rank_limit_is_core_ml_only(checker_runs):
    ours, _ = checker_runs["rank_six"]
    coreml = ours["coreml-mlprogram"].data
    assert {row["kind"] for row in coreml["unsupported"]} == {"rank"}
    assert coreml["unsupported_node_count"] == 2 and coreml["partitions"] == 0
    assert ours["nnapi"].data["unsupported_node_count"] == 0


def test_two_question_mark_axes_are_fixed_independently(checker_runs):
    """(d) onnxruntime's tool alone ties the two ``?`` axes and refuses; ours fixes both."""
    from onnxruntime.tools.onnx_model_utils import make_input_shape_fixed

    model = two_question_mark_axes_model()
    with pytest.raises(ValueError, match="Can't replace existing fixed size of 48 with 192"):
        make_input_shape_fixed(model.graph, "x", [1, 3, 48, 192])
    fixed = fixing.fix_input_shapes(two_question_mark_axes_model(), {"x": (1, 3, 48, 192)})
    dims = [d.dim_value for d in fixed.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 48, 192]
    assert [d.dim_value for d in fixed.graph.output[0].type.tensor_type.shape.dim] == [1, 2]
    ours, _ = checker_runs["two_question_mark_axes"]
    data = ours["nnapi"].data
    assert data["unsupported_node_count"] == 0 and data["partitions"] == 1
    assert data["node_count"] == 3  # Relu, Reshape (to a folded constant shape), MatMul


def test_a_named_axis_still_ties_its_uses():
    """A real dim_param written on two inputs is one size: different sizes are refused."""
    nodes = [helper.make_node("Add", ["a", "b"], ["c"], name="add")]
    model = _model(
        nodes,
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n", 4]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["n", 4]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, ["n", 4])],
    )
    with pytest.raises(fixing.ShapeFixingError, match="input 'b'"):
        fixing.fix_input_shapes(model, {"a": (2, 4), "b": (3, 4)})
    fixed = fixing.fix_input_shapes(model, {"a": (2, 4), "b": (2, 4)})
    assert [d.dim_value for d in fixed.graph.output[0].type.tensor_type.shape.dim] == [2, 4]


def test_every_bucket_is_a_graph_and_the_worst_is_the_headline(tmp_path):
    model_path = tmp_path / "model.onnx"
    onnx.save_model(plain_supported_model(), model_path)
    buckets = (
        ShapeBucket(label="b1", shapes={"x": (1, 8)}, batch_size=1),
        ShapeBucket(label="b4", shapes={"x": (4, 8)}, batch_size=4),
    )
    inputs = RepresentativeInputs(
        source="synthetic",
        file_name=None,
        buckets=buckets,
        bucket_feeds=(),
        samples=None,
        labels=None,
        static_batch=None,
    )
    result = check_compatibility(
        model_path=model_path, target=builtin_profile("nnapi"), inputs=inputs
    )
    graphs = [entry["graph"] for entry in result.data["fixed_graphs"]]
    assert graphs == ["fixed to x=1x8", "fixed to x=4x8"]
    assert result.data["graph"] in graphs
    assert result.data["memory_estimate"]["peak_activation_bytes"] >= 4 * 4 * 8


def test_cpu_keeps_the_optimised_dynamic_graph(tmp_path):
    model_path = tmp_path / "model.onnx"
    onnx.save_model(shape_arithmetic_model(), model_path)
    result = check_compatibility(
        model_path=model_path, target=builtin_profile("cpu"), inputs=_inputs({"x": (1, 8)})
    )
    assert result.data["graph"] == "optimised"
    assert result.data["fixed_graphs"] == []
    assert result.data["unsupported_node_count"] == 0


def test_static_target_without_bucket_says_the_graph_is_dynamic(tmp_path):
    model_path = tmp_path / "model.onnx"
    onnx.save_model(shape_arithmetic_model(), model_path)
    result = check_compatibility(model_path=model_path, target=builtin_profile("nnapi"))
    assert result.data["graph"].startswith("optimised (inputs dynamic")
    assert result.status == "failed"


def test_dynamic_model_without_bucket_equals_the_checker_as_uploaded(tmp_path):
    """No bucket: the checker's own pass on the dynamic model (dynamic values unsupported)."""
    model = shape_arithmetic_model()
    model_path = tmp_path / "model.onnx"
    onnx.save_model(model, model_path)
    theirs = onnxruntime_checker_figures(model_path)["nnapi"]
    data = check_compatibility(model_path=model_path, target=builtin_profile("nnapi")).data
    assert (data["node_count"], data["supported_node_count"], data["partitions"]) == (
        theirs["nodes"],
        theirs["supported"],
        theirs["partitions"],
    )
    assert data["unsupported_node_count"] > 0


@pytest.mark.parametrize("target", STATIC_TARGETS)
def test_light_resnet50_equals_the_checker(target):
    """A real architecture (static input, weights from ConstantOfShape) from the onnx wheel."""
    path = Path(onnx_models.light_model_path("resnet50"))
    theirs = onnxruntime_checker_figures(path)[target]
    data = check_compatibility(model_path=path, target=builtin_profile(target)).data
    assert data["graph"] == "optimised (inputs already static)"
    assert data["node_count"] == theirs["nodes"] < data["uploaded_node_count"]
    assert data["supported_node_count"] == theirs["supported"]
    assert data["partitions"] == theirs["partitions"]
