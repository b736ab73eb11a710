"""Steps in child processes: a step over its time limit, or whose process dies, fails alone."""

from __future__ import annotations

from onnxcheck.gates import GateThresholds
from onnxcheck.inspection import sha256_file
from onnxcheck.latency import LatencyRule
from onnxcheck.operators import builtin_profile
from onnxcheck.pipeline import InputsSpec, run_validation
from onnxcheck.runner import StepLimits
from tests import onnx_models
from tests.onnxcheck.rules import VARIANT_QUICK


def test_a_step_over_its_time_limit_is_stopped_and_reported(tmp_path):
    path = onnx_models.write_model(onnx_models.tiny_model(), tmp_path / "tiny.onnx")
    endless = LatencyRule(min_runs=10**9, min_seconds=600, max_runs=10**9, max_seconds=600)
    report = run_validation(
        model_path=path,
        expected_sha256=sha256_file(path),
        target=builtin_profile("cpu"),
        inputs=InputsSpec(),
        gates=GateThresholds(),
        workdir=tmp_path / "run",
        latency_rule=endless,
        variant_latency_rule=VARIANT_QUICK,
        limits=StepLimits(latency_s=3.0),
    )
    latency = report.step("latency")
    assert latency.status == "failed" and latency.data["timed_out"] is True
    assert any("time limit" in reason for reason in report.reasons)
    assert report.step("quantization_int8").status != "skipped"  # the run went on


def test_a_worker_that_dies_is_a_failed_step_not_a_crash(tmp_path, digits):
    # 64 MiB of address space is not enough to even import numpy in the child.
    report = run_validation(
        model_path=digits.model_path,
        expected_sha256=sha256_file(digits.model_path),
        target=builtin_profile("cpu"),
        inputs=InputsSpec(npz_path=digits.inputs_path),
        gates=GateThresholds(),
        workdir=tmp_path / "run",
        limits=StepLimits(address_space_bytes=64 * 2**20),
    )
    integrity = report.step("integrity")
    assert integrity.status == "failed" and "worker process died" in integrity.findings[0]
    assert report.passed is False
