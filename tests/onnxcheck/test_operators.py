"""Operator lists come from the installed onnxruntime, say where from, and parse its quirks."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import itertools
import re

import pytest
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from onnxcheck.operators import (
    COREML_MLPROGRAM_OPS_FILE,
    COREML_NEURALNETWORK_OPS_FILE,
    NNAPI_OPS_FILE,
    OperatorSupport,
    TargetProfile,
    builtin_profile,
    builtin_profiles,
    mobile_ops_file_text,
    normalize_domain,
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
