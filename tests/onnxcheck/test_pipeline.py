"""The full validation run: step order, the report, its digest, and runs that stop early."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from onnxcheck.gates import GateThresholds
from onnxcheck.inputs import SYNTHETIC_NOTE
from onnxcheck.inspection import sha256_file
from onnxcheck.operators import builtin_profile
from onnxcheck.pipeline import STEP_ORDER, InputsSpec, run_validation
from onnxcheck.results import canonical_json
from tests import onnx_models
from tests.onnxcheck.rules import QUICK, VARIANT_QUICK


def _save(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def test_run_validation_digits_on_nnapi(tmp_path, digits):
    seen: list[str] = []
    report = run_validation(
        model_path=digits.model_path,
        expected_sha256=sha256_file(digits.model_path),
        target=builtin_profile("nnapi"),
        inputs=InputsSpec(npz_path=digits.inputs_path, shape_buckets={"X[0]": [1, 8]}),
        gates=GateThresholds(latency_budget_ms=1000.0),
        workdir=tmp_path / "run",
        on_step=lambda step: seen.append(step.name),
        latency_rule=QUICK,
        variant_latency_rule=VARIANT_QUICK,
        intra_op_num_threads=1,
    )
    assert seen == list(STEP_ORDER)
    assert [step.name for step in report.steps] == list(STEP_ORDER)
    assert report.passed is False
    assert any("ai.onnx.ml:ArrayFeatureExtractor" in reason for reason in report.reasons)
    assert report.step("calibration").data["accuracy"] == pytest.approx(
        digits.test_accuracy, abs=0.01
    )
    assert report.step("quantization_int8").status == "passed"
    assert all(Path(v["path"]).is_file() for v in report.variants)
    assert {v["kind"] for v in report.variants} == {"int8", "fp16"}
    # Measured on uploaded inputs and faithful: both may be registered; dynamic INT8 and FP16
    # need no calibration data.
    assert [(v["registrable"], v["refusals"], v["calibration"]) for v in report.variants] == [
        (True, [], "none"),
        (True, [], "none"),
    ]
    assert report.registrable_variants == report.variants
    assert report.step("parent_agreement").status == "skipped"
    gates = report.step("gates").data
    assert not any(g["name"].startswith("variant_") for g in gates["not_evaluated"])
    # Labelled inputs and a budget: every gate that applies ran, except the one switched off.
    assert gates["not_evaluated"] == [{"name": "min_accuracy", "reason": "gate disabled"}]
    assert gates["accuracy_measured"] is True  # the INT8 drop was measured on labels
    as_dict = report.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    digest = hashlib.sha256(canonical_json(as_dict)).hexdigest()
    assert report.report_digest() == digest == report.report_digest()
    report.reasons.append("tampered")
    assert report.report_digest() != digest


def test_run_validation_synthetic_light_model_is_latency_and_compatibility_only(tmp_path):
    path = onnx_models.light_model_path("squeezenet")
    report = run_validation(
        model_path=path,
        expected_sha256=sha256_file(path),
        target=builtin_profile("cpu"),
        inputs=InputsSpec(),
        gates=GateThresholds(),
        workdir=tmp_path / "run",
        latency_rule=QUICK,
        variant_latency_rule=VARIANT_QUICK,
        intra_op_num_threads=1,
    )
    assert report.inputs["synthetic"] is True and report.inputs["note"] == SYNTHETIC_NOTE
    assert report.step("calibration").status == "skipped"
    assert report.step("compatibility").status == "passed"
    int8 = report.step("quantization_int8")
    assert int8.data["variant"]["method"] == "static-qdq"
    assert int8.data["fidelity"]["top1_agreement"] is None
    assert any(SYNTHETIC_NOTE in finding for finding in int8.findings)
    gates = {g["name"]: g["status"] for g in report.step("gates").data["gates"]}
    assert gates["int8_accuracy_drop"] == gates["ece"] == "not_evaluated"
    assert report.passed is True, report.reasons
    # Honest gates: what did not run is listed, and the findings never say just "passed".
    gate_step = report.step("gates")
    not_evaluated = {item["name"]: item["reason"] for item in gate_step.data["not_evaluated"]}
    assert {"ece", "min_accuracy", "int8_accuracy_drop"} <= set(not_evaluated)
    assert not_evaluated["ece"] == "no labelled inputs"
    assert not_evaluated["min_accuracy"].startswith("no labelled inputs")
    assert gate_step.data["accuracy_measured"] is False
    assert gate_step.findings[0].startswith("passed; not evaluated: ")
    assert "ece (no labelled inputs)" in gate_step.findings[0]
    assert "accuracy was not measured" in gate_step.findings[0]
    # The produced INT8 variant was calibrated on random tensors: never registrable, and the
    # report says so without failing the run.
    variant = int8.data["variant"]
    assert variant["calibration"] == "synthetic"
    assert variant["registrable"] is False
    assert any("synthetic" in refusal for refusal in variant["refusals"])
    assert variant not in report.registrable_variants
    assert any("not registrable" in finding for finding in gate_step.findings)


def test_run_validation_stops_on_a_digest_mismatch(tmp_path, digits):
    report = run_validation(
        model_path=digits.model_path,
        expected_sha256="f" * 64,
        target=builtin_profile("cpu"),
        inputs=InputsSpec(npz_path=digits.inputs_path),
        gates=GateThresholds(),
        workdir=tmp_path / "run",
    )
    skipped = len(STEP_ORDER) - 2
    assert [s.status for s in report.steps] == ["failed"] + ["skipped"] * skipped + ["failed"]
    assert any("SHA-256 mismatch" in reason for reason in report.reasons)


def test_run_validation_reports_a_refused_upload(tmp_path):
    path = onnx_models.write_truncated(
        onnx_models.light_model_path("squeezenet"), tmp_path / "cut.onnx"
    )
    report = run_validation(
        model_path=path,
        expected_sha256=sha256_file(path),
        target=builtin_profile("cpu"),
        inputs=InputsSpec(),
        gates=GateThresholds(),
        workdir=tmp_path / "run",
    )
    assert report.step("integrity").data["rejection"]["code"] == "truncated"
    assert report.passed is False and report.metadata is None


def test_run_validation_with_bad_inputs_skips_what_needs_them(tmp_path, digits):
    bad = _save(tmp_path / "bad.npz", X=np.zeros((4, 64), np.float64))
    report = run_validation(
        model_path=digits.model_path,
        expected_sha256=sha256_file(digits.model_path),
        target=builtin_profile("cpu"),
        inputs=InputsSpec(npz_path=bad),
        gates=GateThresholds(),
        workdir=tmp_path / "run",
    )
    assert report.step("inputs").data["error"]["code"] == "inputs_wrong_dtype"
    assert report.step("compatibility").status == "passed"
    assert report.step("latency").status == "skipped"
    assert any("inputs_wrong_dtype" in reason for reason in report.reasons)


def _straddling(step: str, kwargs, **_ignored):
    """A latency step whose P95 interval [8, 14] ms contains the 10 ms budget."""
    from onnxcheck.results import StepResult

    bucket = {
        "label": "X[0]=1",
        "runs": 300,
        "p95_ms": 9.6,
        "p95_ci_low_ms": 8.0,
        "p95_ci_high_ms": 14.0,
        "other_cpu_cores": 0.0,
    }
    return StepResult("latency", "passed", 5.0, ["measured"], {"buckets": [bucket]})


def test_an_inconclusive_latency_gate_is_measured_once_more(tmp_path, digits, monkeypatch):
    import onnxcheck.pipeline as pipeline

    real = pipeline.run_isolated
    latency_calls: list[dict] = []

    def run_isolated(step, kwargs, **options):
        if step == "latency":
            latency_calls.append(dict(kwargs))
            return _straddling(step, kwargs)
        return real(step, kwargs, **options)

    monkeypatch.setattr(pipeline, "run_isolated", run_isolated)
    report = run_validation(
        model_path=digits.model_path,
        expected_sha256=sha256_file(digits.model_path),
        target=builtin_profile("cpu"),
        inputs=InputsSpec(shape_buckets={"X[0]": [1]}),
        gates=GateThresholds(latency_budget_ms=10.0),
        workdir=tmp_path / "run",
        latency_rule=QUICK,
        variant_latency_rule=VARIANT_QUICK,
        intra_op_num_threads=1,
        host_shared=True,
    )
    assert len(latency_calls) == 2  # measured, then re-measured once, never more
    assert latency_calls[0]["host_shared"] is True
    assert [s.name for s in report.steps].count("latency") == 1
    latency = report.step("latency")
    assert latency.data["remeasure"]["first"]["buckets"][0]["p95_ci_high_ms"] == 14.0
    assert any(f.startswith("Measured twice") for f in latency.findings)
    assert report.verdict == "inconclusive" and report.passed is False
    assert report.to_dict()["verdict"] == "inconclusive"
    assert report.environment["host_shared"] is True
    gate = next(g for g in report.step("gates").data["gates"] if g["name"] == "latency_p95")
    assert gate["status"] == "inconclusive"


def test_the_worker_applies_the_registry_budgets_not_only_the_defaults(tmp_path):
    """A budget tighter than the default refuses a bucket on the worker too."""
    from onnxcheck.inputs import InputsRejected
    from onnxcheck.inspection import inspect_model
    from onnxcheck.pipeline import InputsSpec, prepare_inputs
    from tests import onnx_models

    path = tmp_path / "tiny.onnx"
    onnx.save(onnx_models.tiny_model(input_shape=["n", 4]), path)
    metadata = inspect_model(path=path)
    inputs, _ = prepare_inputs(metadata=metadata, spec=InputsSpec(shape_buckets={"n": [8]}))
    assert inputs.buckets[0].shapes["X"] == (8, 4)
    with pytest.raises(InputsRejected) as refused:
        prepare_inputs(
            metadata=metadata, spec=InputsSpec(shape_buckets={"n": [8]}, max_axis_size=4)
        )
    assert refused.value.code == "shape_bucket_too_large"
