"""Operator lists come from the installed onnxruntime, say where from, and parse its quirks."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import itertools
import json
import re

import pytest
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from onnxcheck.operators import (
    COREML_MLPROGRAM_OPS_FILE,
    COREML_NEURALNETWORK_OPS_FILE,
    NNAPI_OPS_FILE,
    OPENVINO_OPS_FILE,
    QNN_OPS_FILE,
    TENSORRT_OPS_FILE,
    OperatorSupport,
    TargetProfile,
    builtin_profile,
    builtin_profiles,
    documentary_table_text,
    load_documentary_table,
    mobile_ops_file_text,
    normalize_domain,
    parse_documentary_table,
    parse_mobile_ops_table,
    resolve_since_version,
)

ORT_VERSION = importlib.metadata.version("onnxruntime")


def _rows(file_name: str) -> list[str]:
    """Operator cells of a shipped table, read independently of the parser under test."""
    pattern = r"^\|([A-Za-z][\w.]*[:.][A-Za-z]\w*)\|"
    return re.findall(pattern, mobile_ops_file_text(file_name), re.M)


def test_builtin_profiles_name_their_source_file_and_onnxruntime_version():
    profiles = {profile.name: profile for profile in builtin_profiles()}
    assert set(profiles) >= {"cpu", "nnapi", "coreml-mlprogram", "coreml-neuralnetwork"}
    expected_files = {
        "nnapi": NNAPI_OPS_FILE,
        "coreml-mlprogram": COREML_MLPROGRAM_OPS_FILE,
        "coreml-neuralnetwork": COREML_NEURALNETWORK_OPS_FILE,
    }
    for name, file_name in expected_files.items():
        assert file_name in profiles[name].source
        assert f"onnxruntime {ORT_VERSION}" in profiles[name].source
        assert profiles[name].static_shapes_only is True
        assert len(profiles[name].operators) == len(set(_rows(file_name)))
    assert "get_all_opkernel_def" in profiles["cpu"].source
    assert f"onnxruntime {ORT_VERSION}" in profiles["cpu"].source
    assert profiles["cpu"].static_shapes_only is False
    assert profiles["coreml-mlprogram"].max_tensor_rank == 5


def test_nnapi_list_matches_the_shipped_file_for_argmax_and_ml_domain():
    text = mobile_ops_file_text(NNAPI_OPS_FILE)
    nnapi = builtin_profile("nnapi")
    argmax_listed = re.search(r"^\|ai\.onnx[:.]ArgMax\|", text, re.M | re.I) is not None
    assert (nnapi.find(domain="", op_type="ArgMax", since_version=13) is not None) is argmax_listed
    ml_listed = "|ai.onnx.ml:" in text
    assert any(op.domain == "ai.onnx.ml" for op in nnapi.operators) is ml_listed
    conv = nnapi.find(domain="ai.onnx", op_type="Conv", since_version=11)
    assert conv is not None and "Only 2D Conv is supported" in conv.note
    pad = nnapi.find(domain="", op_type="Pad", since_version=18)
    assert pad is not None and pad.note.count(";") == 2  # three <br/>-separated conditions


def test_mlprogram_argmax_typo_is_matched_to_the_real_operator_with_a_note():
    text = mobile_ops_file_text(COREML_MLPROGRAM_OPS_FILE)
    assert "|ai.onnx:Argmax|" in text  # the file's own spelling
    entry = builtin_profile("coreml-mlprogram").find(domain="", op_type="ArgMax", since_version=13)
    assert entry is not None and "Argmax" in entry.note


def test_neuralnetwork_dot_separated_reducesum_is_parsed():
    assert "|ai.onnx.ReduceSum|" in mobile_ops_file_text(COREML_NEURALNETWORK_OPS_FILE)
    entry = builtin_profile("coreml-neuralnetwork").find(
        domain="", op_type="ReduceSum", since_version=13
    )
    assert entry is not None and "ai.onnx.ReduceSum" in entry.note


def test_cpu_list_is_the_kernel_registry_with_opset_ranges():
    cpu = builtin_profile("cpu")
    registry = {
        (normalize_domain(kernel.domain), kernel.op_name)
        for kernel in ort_state.get_all_opkernel_def()
        if kernel.provider == "CPUExecutionProvider"
    }
    assert {(op.domain, op.op_type) for op in cpu.operators} == registry
    argmax = sorted(cpu.entries_for(domain="", op_type="ArgMax"), key=lambda op: op.min_opset)
    assert argmax[0].min_opset == 1 and argmax[-1].max_opset is None
    for previous, following in itertools.pairwise(argmax):
        assert previous.max_opset is not None and following.min_opset == previous.max_opset + 1
    assert cpu.find(domain="ai.onnx.ml", op_type="ArrayFeatureExtractor", since_version=1)
    assert "float" in argmax[-1].note


def test_since_version_resolution_follows_onnxruntime_schemas():
    assert resolve_since_version(domain="", op_type="ArgMax", opset=12) == 12
    assert resolve_since_version(domain="", op_type="ArgMax", opset=21) == 13
    assert resolve_since_version(domain="ai.onnx", op_type="Conv", opset=9) == 1
    assert resolve_since_version(domain="", op_type="NoSuchOp", opset=17) is None
    assert resolve_since_version(domain="", op_type="ArgMax", opset=None) is None


def test_operator_support_ranges():
    entry = OperatorSupport(domain="", op_type="Conv", min_opset=11, max_opset=21)
    assert entry.covers(11) and entry.covers(21) and not entry.covers(10)
    assert not entry.covers(22)
    assert OperatorSupport(domain="", op_type="Relu").covers(None)


def test_parse_mobile_table_handles_header_breaks_and_unknown_names():
    table = "\n".join(
        [
            "|Operator|Note|",
            "|--------|------|",
            "|ai.onnx:Conv|Only 2D.<br/>Weights constant.|",
            "|ai.onnx.Relu||",
            "|com.microsoft:QLinearAdd|Scales constant.|",
            "|ai.onnx:Frobnicate||",
        ]
    )
    parsed = {(op.domain, op.op_type): op for op in parse_mobile_ops_table(table)}
    assert set(parsed) == {
        ("", "Conv"),
        ("", "Relu"),
        ("com.microsoft", "QLinearAdd"),
        ("", "Frobnicate"),
    }
    assert parsed[("", "Conv")].note == "Only 2D; Weights constant"
    assert "not an operator name" in parsed[("", "Frobnicate")].note


def test_profile_round_trips_through_json_dict():
    profile = dataclasses.replace(builtin_profile("nnapi"), memory_budget_bytes=512 * 2**20)
    copy = TargetProfile.from_dict(profile.to_dict())
    assert copy == profile
    assert copy.find(domain="", op_type="Conv", since_version=11) is not None


def test_unknown_profile_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="nnapi"):
        builtin_profile("edgetpu")


# -- documentary profiles: TensorRT, OpenVINO, QNN from published tables -------------------------

DOCUMENTARY_FILES = {
    "tensorrt": (TENSORRT_OPS_FILE, "TensorrtExecutionProvider"),
    "openvino": (OPENVINO_OPS_FILE, "OpenVINOExecutionProvider"),
    "qnn": (QNN_OPS_FILE, "QNNExecutionProvider"),
}


def _data_rows(file_name: str) -> list[tuple[str, str]]:
    """(domain, op) of every operator row, read without the parser under test."""
    rows = []
    for line in documentary_table_text(file_name).splitlines():
        if line.strip() and not line.startswith("#"):
            domain, op_type = (cell.strip() for cell in line.split("|")[:2])
            rows.append((normalize_domain(domain), op_type))
    return rows


def test_builtin_profiles_keep_the_onnxruntime_four_first_then_the_documentary_ones():
    profiles = builtin_profiles()
    assert [p.name for p in profiles[:4]] == [
        "cpu",
        "nnapi",
        "coreml-mlprogram",
        "coreml-neuralnetwork",
    ]
    assert [p.name for p in profiles[4:]] == ["tensorrt", "openvino", "qnn"]
    assert [p.documentary for p in profiles] == [False] * 4 + [True] * 3


@pytest.mark.parametrize("name", sorted(DOCUMENTARY_FILES))
def test_documentary_profile_is_the_shipped_table_with_its_provenance(name):
    file_name, provider = DOCUMENTARY_FILES[name]
    profile = builtin_profile(name)
    table = load_documentary_table(file_name)
    rows = _data_rows(file_name)
    assert len(rows) == len(set(rows)) == len(profile.operators)
    assert {(op.domain, op.op_type) for op in profile.operators} == set(rows)
    assert profile.execution_provider == provider
    assert profile.documentary is True
    # The registry stores it in HardwareTarget.runtime (80 characters).
    assert "documentary" in profile.runtime and len(profile.runtime) <= 80
    for key in ("title", "url", "version", "commit", "completeness"):
        assert table.header[key] and table.header[key] in profile.source
    assert profile.source.startswith("documentary: ")
    assert "not run on this hardware" in profile.source
    assert f"onnxcheck/data/{file_name} ({len(rows)} operators)" in profile.source
    # Nothing the table marks unsupported is an operator of the profile.
    for domain, names in table.unsupported.items():
        for op_type in names:
            assert not profile.entries_for(domain=domain, op_type=op_type), op_type


def test_tensorrt_table_facts():
    trt = builtin_profile("tensorrt")
    assert "TensorRT 10.15" in trt.source and trt.onnx_opset_range == (9, 24)
    assert trt.static_shapes_only is False and trt.quantized_only is False
    conv = trt.find(domain="", op_type="Conv", since_version=22)
    assert conv is not None and conv.conditions == ""  # only the types column
    topk = trt.find(domain="", op_type="TopK", since_version=11)
    assert topk.conditions == "`sorted` must be 1. `K` input must be less than 3840"
    assert "types: FP32, FP16, BF16, INT32, INT64" in topk.note
    unsupported = load_documentary_table(TENSORRT_OPS_FILE).unsupported[""]
    assert {"ConvInteger", "QLinearConv", "MatMulInteger", "Unique"} <= set(unsupported)
    assert trt.find(domain="", op_type="QLinearConv", since_version=10) is None
    assert trt.find(domain="ai.onnx.ml", op_type="ArrayFeatureExtractor", since_version=1) is None


def test_openvino_table_facts():
    ov = builtin_profile("openvino")
    assert "0ae60f0ffec990b581cf29cae47563090e5deca0" in ov.source
    acos = ov.entries_for(domain="", op_type="Acos")
    assert [(e.min_opset, e.max_opset) for e in acos] == [(7, None)]
    assert ov.find(domain="", op_type="Acos", since_version=22) is not None
    assert ov.find(domain="", op_type="DequantizeLinear", since_version=9) is None
    assert ov.find(domain="", op_type="LpPool", since_version=18) is None  # no supported version
    assert ov.find(domain="com.microsoft", op_type="QLinearAdd", since_version=1) is not None
    assert ov.find(domain="com.microsoft", op_type="QLinearConv", since_version=1) is None
    sequence = ov.find(domain="", op_type="SequenceAt", since_version=11)
    assert sequence.conditions == "Supported only in certain patterns"
    assert ov.find(domain="", op_type="Relu", since_version=14).conditions == ""


def test_qnn_table_facts_and_shape_and_quantization_constraints():
    qnn = builtin_profile("qnn")
    assert "QNN EP v2.5.0" in qnn.source and "QAIRT SDK v2.49.40" in qnn.source
    # "QNN EP does not support models with dynamic shapes": static shapes are a constraint.
    assert qnn.static_shapes_only is True
    # Not required: this version documents float models on HTP; the source says so.
    assert qnn.quantized_only is False
    assert "only supports quantized models" in qnn.source
    assert qnn.find(domain="", op_type="Loop", since_version=21) is None
    assert "HTP backend" in qnn.find(domain="", op_type="MatMul", since_version=13).note
    assert qnn.find(domain="com.microsoft", op_type="QuantizeLinear", since_version=1)
    assert qnn.onnx_opset_range is None


def test_documentary_profile_round_trips_and_old_dicts_still_load():
    profile = builtin_profile("tensorrt")
    data = profile.to_dict()
    assert data["documentary"] is True and data["onnx_opset_range"] == [9, 24]
    assert TargetProfile.from_dict(json.loads(json.dumps(data))) == profile
    assert TargetProfile.from_dict(data) != dataclasses.replace(profile, documentary=False)
    legacy = {
        k: v
        for k, v in builtin_profile("nnapi").to_dict().items()
        if k not in {"documentary", "onnx_opset_range"}
    }
    assert TargetProfile.from_dict(legacy) == builtin_profile("nnapi")
    assert builtin_profile("cpu").to_dict(include_operators=False)["documentary"] is False


def test_parse_documentary_table_keeps_headers_pipes_in_notes_and_refuses_typos():
    text = (
        "# title: A table\n"
        "# version: 1.0\n"
        "# unsupported: Foo, Bar\n"
        "# unsupported: com.microsoft: Baz\n"
        "# a comment without key\n"
        "ai.onnx | Conv | 11 | 13 | types: FP32; weights `W` | must be constant\n"
        "com.microsoft | FusedConv | | |\n"
    )
    table = parse_documentary_table(text)
    assert table.header == {"title": "A table", "version": "1.0"}
    assert table.unsupported == {"": ("Foo", "Bar"), "com.microsoft": ("Baz",)}
    conv = next(op for op in table.operators if op.op_type == "Conv")
    assert (conv.domain, conv.min_opset, conv.max_opset) == ("", 11, 13)
    assert conv.note == "types: FP32; weights `W` | must be constant"
    assert conv.conditions == "weights `W` | must be constant"
    with pytest.raises(ValueError, match="not a whole number"):
        parse_documentary_table("ai.onnx | Conv | eleven | |\n")
    with pytest.raises(ValueError, match="listed twice"):
        parse_documentary_table("ai.onnx | Conv | | |\n | Conv | | |\n")
    with pytest.raises(ValueError, match="expected"):
        parse_documentary_table("ai.onnx Conv\n")


def test_note_conditions_leave_out_provenance_only():
    cpu_conv = builtin_profile("cpu").entries_for(domain="", op_type="Conv")[0]
    assert cpu_conv.note.startswith("kernel types") and cpu_conv.conditions == ""
    nnapi_conv = builtin_profile("nnapi").find(domain="", op_type="Conv", since_version=11)
    assert nnapi_conv.conditions == nnapi_conv.note != ""


def test_data_files_ship_inside_the_package():
    from importlib.resources import files

    data = files("onnxcheck").joinpath("data")
    shipped = {entry.name for entry in data.iterdir() if entry.name.endswith(".txt")}
    assert shipped == {file_name for file_name, _ in DOCUMENTARY_FILES.values()}
