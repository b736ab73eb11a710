"""Registered INT8/FP16 variants validated as themselves and against their parent, bundles and
documentary targets: the full run on real onnxruntime sessions."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import onnxcheck.pipeline as pipeline
from onnxcheck.gates import DOCUMENTARY_LATENCY_LABEL, GateThresholds
from onnxcheck.inspection import sha256_file
from onnxcheck.operators import TargetProfile, builtin_profile
from onnxcheck.pipeline import InputsSpec, run_validation
from onnxcheck.results import StepResult
from onnxcheck.variants import EXTERNAL_DATA_REASON
from tests import onnx_models
from tests.onnxcheck.conftest import perturbed_copy
from tests.onnxcheck.rules import QUICK, VARIANT_QUICK


def _validate(model_path: Path, workdir: Path, **options):
    options.setdefault("target", builtin_profile("cpu"))
    options.setdefault("gates", GateThresholds())
    return run_validation(
        model_path=model_path,
        expected_sha256=sha256_file(model_path),
        workdir=workdir,
        latency_rule=QUICK,
        variant_latency_rule=VARIANT_QUICK,
        intra_op_num_threads=1,
        **options,
    )


def _gates(report) -> dict[str, dict]:
    return {g["name"]: g for g in report.step("gates").data["gates"]}


@pytest.mark.parametrize("declared", [None, "int8"])
def test_a_registered_int8_variant_passes_against_its_parent(
    tmp_path, digits, digits_int8_variant, declared
):
    report = _validate(
        digits_int8_variant,
        tmp_path / "run",
        inputs=InputsSpec(npz_path=digits.inputs_path, shape_buckets={"X[0]": [1, 8]}),
        parent_model_path=digits.model_path,
        variant_kind=declared,
    )
    assert report.verdict == "passed", report.reasons
    for name in ("quantization_int8", "quantization_fp16"):
        step = report.step(name)
        assert step.status == "skipped"
        assert step.findings == ["this model is itself an INT8 variant; it is not quantized again"]
    agreement = report.step("parent_agreement")
    assert agreement.status == "passed", agreement.findings
    data = agreement.data
    assert data["variant_kind"] == "int8"
    assert data["parent_sha256"] == sha256_file(digits.model_path)
    assert data["evaluated_samples"] == digits.sample_count
    assert data["score_output"]["name"] == "probabilities"
    assert data["top1_agreement"] >= 0.99
    assert data["sqnr_db"] > 20.0
    assert 0.0 < data["max_abs_difference"] < 0.5
    assert data["parent_accuracy"] == pytest.approx(digits.test_accuracy, abs=0.01)
    assert data["accuracy_drop_points"] == pytest.approx(
        100 * (data["parent_accuracy"] - data["variant_accuracy"])
    )
    gates = _gates(report)
    assert gates["variant_agreement"]["status"] == gates["variant_sqnr"]["status"] == "passed"
    assert gates["variant_sqnr"]["observed"] == data["sqnr_db"]
    # The INT8 drop is judged against the parent instead of re-quantizing the variant.
    assert gates["int8_accuracy_drop"]["status"] == "passed"
    assert gates["int8_accuracy_drop"]["source"] == "parent_agreement"
    assert report.step("gates").data["accuracy_measured"] is True
    assert report.variants == []


def test_a_registered_fp16_variant_with_float16_inputs_gets_the_parents_inputs_cast(
    tmp_path, digits, digits_fp16_variant
):
    report = _validate(
        digits_fp16_variant,
        tmp_path / "run",
        inputs=InputsSpec(npz_path=digits.inputs_path, shape_buckets={"X[0]": [1, 8]}),
        parent_model_path=digits.model_path,
    )
    assert report.verdict == "passed", report.reasons
    assert report.step("quantization_fp16").findings == [
        "this model is itself an FP16 variant; it is not quantized again"
    ]
    assert report.step("latency").status == "passed"  # float16 feeds reached the variant
    data = report.step("parent_agreement").data
    assert data["variant_kind"] == "fp16"
    assert data["cast_inputs"] == ["X"]
    assert data["top1_agreement"] >= 0.99
    assert data["sqnr_db"] > 40.0  # fp16 rounding only
    assert report.step("calibration").status == "passed"


def test_a_broken_fp16_variant_is_refused_by_its_sqnr_even_without_labels(
    tmp_path, digits, digits_fp16_variant
):
    broken = perturbed_copy(digits_fp16_variant, tmp_path / "broken.fp16.onnx", scale=1.5)
    with np.load(digits.inputs_path) as uploaded:
        unlabelled = tmp_path / "unlabelled.npz"
        np.savez(unlabelled, X=uploaded["X"])  # the parent's inputs, no labels
    report = _validate(
        broken,
        tmp_path / "run",
        inputs=InputsSpec(npz_path=unlabelled, shape_buckets={"X[0]": [1]}),
        parent_model_path=digits.model_path,
        variant_kind="fp16",
    )
    data = report.step("parent_agreement").data
    assert data["sqnr_db"] < 20.0
    assert data["parent_accuracy"] is None  # no labels: the gate still judges
    sqnr = _gates(report)["variant_sqnr"]
    assert sqnr["status"] == "failed"
    assert sqnr["reasons"] == [f"against the parent: SQNR {data['sqnr_db']:.1f} dB < 20 dB"]
    assert report.verdict == "failed" and report.passed is False
    assert any("SQNR" in reason for reason in report.reasons)


def test_a_declared_variant_without_its_parent_says_agreement_was_not_measured(
    tmp_path, digits, digits_int8_variant
):
    report = _validate(
        digits_int8_variant,
        tmp_path / "run",
        inputs=InputsSpec(shape_buckets={"X[0]": [1]}),
        variant_kind="int8",
    )
    agreement = report.step("parent_agreement")
    assert agreement.status == "skipped"
    assert "no parent model was given" in agreement.findings[0]
    not_evaluated = {i["name"]: i["reason"] for i in report.step("gates").data["not_evaluated"]}
    assert "no parent model was given" in not_evaluated["variant_agreement"]
    assert report.step("quantization_int8").status == "skipped"


@dataclasses.dataclass(frozen=True)
class _DocumentaryProfile(TargetProfile):
    documentary: bool = True


def test_a_documentary_target_labels_latency_and_does_not_gate_it(tmp_path, digits):
    cpu = builtin_profile("cpu")
    fields = {f.name: getattr(cpu, f.name) for f in dataclasses.fields(cpu) if f.init}
    fields["documentary"] = True
    target = _DocumentaryProfile(**fields)
    report = _validate(
        digits.model_path,
        tmp_path / "run",
        target=target,
        inputs=InputsSpec(shape_buckets={"X[0]": [1]}),
        gates=GateThresholds(latency_budget_ms=0.000001),  # would fail if it were evaluated
    )
    latency = report.step("latency")
    assert latency.status == "passed"
    assert latency.data["label"] == DOCUMENTARY_LATENCY_LABEL == "lab CPU, not this hardware"
    assert report.measurement_label == DOCUMENTARY_LATENCY_LABEL
    assert report.to_dict()["measurement_label"] == DOCUMENTARY_LATENCY_LABEL
    gate = _gates(report)["latency_p95"]
    assert gate["status"] == "not_evaluated"
    assert DOCUMENTARY_LATENCY_LABEL in gate["reasons"][0]
    assert "remeasure" not in latency.data
    assert report.passed is True, report.reasons


def test_a_model_with_external_weights_gets_no_variants(tmp_path):
    bias = numpy_helper.from_array(np.array([0.5, -0.5, 1.0, -1.0], np.float32), "B")
    model = onnx_models.tiny_model(input_shape=["n", 4], initializer=bias)
    folder = tmp_path / "bundle"
    folder.mkdir()
    path = folder / "tiny.onnx"
    onnx.save_model(
        model, path, save_as_external_data=True, location="tiny.weights", size_threshold=0
    )
    assert (folder / "tiny.weights").is_file()
    report = _validate(
        path, tmp_path / "run", inputs=InputsSpec(shape_buckets={"n": [1]}), bundle_root=folder
    )
    assert report.step("integrity").status == "passed", report.step("integrity").findings
    for name in ("quantization_int8", "quantization_fp16"):
        step = report.step(name)
        assert step.status == "skipped"
        assert step.findings == [EXTERNAL_DATA_REASON]
        assert EXTERNAL_DATA_REASON == (
            "weights in external data files: INT8/FP16 variants are not built for bundles"
        )
    assert report.step("gates").data["verdict"] == "passed", report.reasons


@pytest.mark.parametrize("bundle_root", [None, "ROOT"])
def test_bundle_root_reaches_integrity_only_when_given(tmp_path, digits, monkeypatch, bundle_root):
    seen: list[dict] = []

    def run_isolated(step, kwargs, **_options):
        seen.append({"step": step, **kwargs})
        return StepResult(step, "failed", 1.0, ["stopped by the test"], {"fatal": True})

    monkeypatch.setattr(pipeline, "run_isolated", run_isolated)
    root = tmp_path if bundle_root else None
    report = _validate(digits.model_path, tmp_path / "run", inputs=InputsSpec(), bundle_root=root)
    assert [call["step"] for call in seen] == ["integrity"]
    if root is None:
        assert "external_root" not in seen[0]
    else:
        assert seen[0]["external_root"] == str(tmp_path)
    assert report.passed is False
