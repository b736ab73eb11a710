"""The gates: every failing reason listed; what cannot be judged is not evaluated."""

from __future__ import annotations

import pytest

from onnxcheck.gates import GateThresholds, evaluate_gates, latency_verdict, variant_refusals
from onnxcheck.results import StepResult


def _bucket(p95: float, *, low: float | None, high: float | None, **extra):
    return {
        "label": "batch=1",
        "runs": 300,
        "p95_ms": p95,
        "p95_ci_low_ms": low,
        "p95_ci_high_ms": high,
        **extra,
    }


def _steps(*, unsupported: int, p95: float, drop: float, ece: float, labels: bool = True):
    return [
        StepResult("integrity", "passed", 1.0),
        StepResult("inputs", "passed", 1.0, data={"has_labels": labels}),
        StepResult(
            "compatibility",
            "failed" if unsupported else "passed",
            1.0,
            data={
                "target": {"name": "nnapi"},
                "unsupported_node_count": unsupported,
                "unsupported": [
                    {
                        "operator": "ai.onnx:ArgMax",
                        "reason": "not in the nnapi operator list",
                        "node_count": unsupported,
                        "node_names": ["ArgMax"],
                    }
                ]
                if unsupported
                else [],
                "constraints": [{"name": "memory", "ok": False, "detail": "memory over budget"}],
            },
        ),
        StepResult(
            "latency",
            "passed",
            1.0,
            data={
                "buckets": [
                    {**_bucket(p95, low=p95 * 0.9, high=p95 * 1.1), "label": "batch=1"},
                    {**_bucket(p95 * 4, low=p95 * 3.6, high=p95 * 4.4), "label": "batch=8"},
                ]
            },
        ),
        StepResult(
            "quantization_int8", "passed", 1.0, data={"fidelity": {"accuracy_drop_points": drop}}
        ),
        StepResult("calibration", "passed", 1.0, data={"ece": ece, "accuracy": 0.9}),
    ]


def test_gates_list_every_failing_reason():
    thresholds = GateThresholds(latency_budget_ms=10.0)
    result = evaluate_gates(
        steps=_steps(unsupported=1, p95=5.0, drop=2.5, ece=0.2), thresholds=thresholds
    )
    assert result.status == "failed" and result.data["passed"] is False
    reasons = result.data["reasons"]
    assert any("ai.onnx:ArgMax" in reason and "ArgMax" in reason for reason in reasons)
    assert "memory over budget" in reasons
    assert any("batch=8" in reason for reason in reasons)
    assert not any("batch=1" in reason for reason in reasons)  # 5 ms is within budget
    assert any("2.50 points" in reason for reason in reasons)
    assert any(reason.startswith("ece 0.2000") for reason in reasons)
    assert len(reasons) == 5
    failed = {g["name"] for g in result.data["gates"] if g["status"] == "failed"}
    assert failed == {
        "operators_supported",
        "target_constraints",
        "latency_p95",
        "int8_accuracy_drop",
        "ece",
    }


def test_gates_pass_and_skip_what_cannot_be_judged():
    steps = _steps(unsupported=0, p95=5.0, drop=0.2, ece=0.01, labels=False)
    steps[2].data["constraints"] = [{"name": "memory", "ok": True, "detail": "fine"}]
    result = evaluate_gates(steps=steps, thresholds=GateThresholds())
    assert result.status == "passed" and result.data["reasons"] == []
    statuses = {g["name"]: g["status"] for g in result.data["gates"]}
    assert statuses["latency_p95"] == "not_evaluated"  # no budget
    assert statuses["int8_accuracy_drop"] == statuses["ece"] == "not_evaluated"  # no labels


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0.012, 0.015, "passed"),  # upper bound under the budget
        (0.06, 0.07, "failed"),  # lower bound over it
        (0.04, 0.06, "inconclusive"),  # the interval contains it
        (0.04, None, "inconclusive"),  # too few runs for an upper bound
    ],
)
def test_latency_gate_has_three_outcomes(low, high, expected):
    verdict, sentences, _ = latency_verdict(
        buckets=[_bucket(0.013 if expected == "passed" else 0.05, low=low, high=high)],
        budget_ms=0.05,
    )
    assert verdict == expected
    assert f"budget 0.05 ms: {expected}" in sentences[0]


def test_latency_gate_sentence_has_units_and_interval():
    verdict, (sentence,), _ = latency_verdict(
        buckets=[_bucket(0.0134, low=0.0121, high=0.0152)], budget_ms=50
    )
    assert verdict == "passed"
    assert sentence.startswith("P95 0.0134 ms [0.0121\u20130.0152], budget 50 ms: passed")


def test_slow_result_on_a_busy_host_is_inconclusive_not_failed():
    busy = _bucket(250.0, low=240.0, high=260.0, other_cpu_cores=1.4)
    verdict, (sentence,), _ = latency_verdict(buckets=[busy], budget_ms=200)
    assert verdict == "inconclusive" and "1.40 CPU cores" in sentence
    quiet = _bucket(250.0, low=240.0, high=260.0, other_cpu_cores=0.1)
    assert latency_verdict(buckets=[quiet], budget_ms=200)[0] == "failed"
    fast_anyway = _bucket(20.0, low=18.0, high=25.0, other_cpu_cores=1.4)
    assert latency_verdict(buckets=[fast_anyway], budget_ms=200)[0] == "passed"


def test_inconclusive_latency_makes_the_run_inconclusive_not_failed():
    steps = _steps(unsupported=0, p95=9.5, drop=0.2, ece=0.01)
    steps[2].data["constraints"] = [{"name": "memory", "ok": True, "detail": "fine"}]
    steps[3].data["buckets"] = [_bucket(9.5, low=9.0, high=10.5)]
    result = evaluate_gates(steps=steps, thresholds=GateThresholds(latency_budget_ms=10.0))
    assert result.data["verdict"] == "inconclusive" and result.data["passed"] is False
    assert result.status == "warning"
    statuses = {g["name"]: g["status"] for g in result.data["gates"]}
    assert statuses["latency_p95"] == "inconclusive" and statuses["ece"] == "passed"
    assert result.data["reasons"] == [
        "P95 9.50 ms [9.00\u201310.5], budget 10 ms: inconclusive; the interval contains the "
        "budget (bucket batch=1, 300 runs)"
    ]
    # A failed gate decides the run even when latency is undecided.
    steps[4].data["fidelity"]["accuracy_drop_points"] = 5.0
    failed = evaluate_gates(steps=steps, thresholds=GateThresholds(latency_budget_ms=10.0))
    assert failed.data["verdict"] == "failed" and failed.status == "failed"


def test_results_closer_to_the_budget_than_runs_vary_are_inconclusive_not_a_flip():
    """Five validations of one model on a quiet host (bench_validation_stability.py): P95 and
    its bounds moved more between runs than within one. Without the margin they read passed
    once and failed four times; with it, failed or inconclusive, never both passed and failed."""
    measured = [  # (P95, lower, upper) in ms, budget 4.3 ms
        (4.64, 4.45, 4.91),
        (4.37, 4.31, 4.55),
        (5.66, 5.54, 5.89),
        (4.89, 4.78, 5.09),
        (3.84, 3.83, 4.06),
    ]
    buckets = [[_bucket(p95, low=low, high=high)] for p95, low, high in measured]
    without = [latency_verdict(buckets=b, budget_ms=4.3, noise_margin=0)[0] for b in buckets]
    assert {"passed", "failed"} <= set(without)
    verdicts = [latency_verdict(buckets=b, budget_ms=4.3)[0] for b in buckets]
    assert verdicts == ["inconclusive", "inconclusive", "failed", "failed", "inconclusive"]
    _, (sentence,), _ = latency_verdict(buckets=buckets[4], budget_ms=4.3)
    assert "within 10% of the budget" in sentence


def _clean_steps(*, labels: bool) -> list[StepResult]:
    steps = _steps(unsupported=0, p95=5.0, drop=0.2, ece=0.01, labels=labels)
    steps[2].data["constraints"] = [{"name": "memory", "ok": True, "detail": "fine"}]
    return steps


def _agreement(**figures) -> StepResult:
    data = {
        "variant_kind": "fp16",
        "top1_agreement": 1.0,
        "sqnr_db": 60.0,
        "max_abs_difference": 0.001,
        "accuracy_drop_points": None,
        **figures,
    }
    return StepResult("parent_agreement", "passed", 1.0, data=data)


def _statuses(result: StepResult) -> dict[str, str]:
    return {g["name"]: g["status"] for g in result.data["gates"]}


def test_variant_gates_are_not_applicable_on_a_run_that_is_not_a_variant():
    not_a_variant = StepResult.skipped("parent_agreement", "not a variant (no parent model)")
    not_a_variant.data["not_a_variant"] = True
    for steps in (_clean_steps(labels=True), [*_clean_steps(labels=True), not_a_variant]):
        result = evaluate_gates(steps=steps, thresholds=GateThresholds())
        listed = {item["name"] for item in result.data["not_evaluated"]}
        assert not listed & {"variant_agreement", "variant_sqnr"}
        assert not {"variant_agreement", "variant_sqnr"} & set(_statuses(result))
        assert result.data["verdict"] == "passed"


def test_a_variant_with_wrong_outputs_fails_on_sqnr_and_agreement_without_labels():
    steps = [*_clean_steps(labels=False), _agreement(top1_agreement=0.62, sqnr_db=2.0)]
    result = evaluate_gates(steps=steps, thresholds=GateThresholds())
    assert _statuses(result)["variant_sqnr"] == _statuses(result)["variant_agreement"] == "failed"
    assert result.data["verdict"] == "failed"
    assert "against the parent: SQNR 2.0 dB < 20 dB" in result.data["reasons"]
    assert "against the parent: top-1 agreement 0.6200 < 0.99" in result.data["reasons"]
    good = evaluate_gates(
        steps=[*_clean_steps(labels=False), _agreement()], thresholds=GateThresholds()
    )
    assert _statuses(good)["variant_sqnr"] == _statuses(good)["variant_agreement"] == "passed"
    relaxed = evaluate_gates(
        steps=steps,
        thresholds=GateThresholds(min_variant_sqnr_db=None, min_variant_top1_agreement=0.5),
    )
    assert _statuses(relaxed)["variant_sqnr"] == "not_evaluated"
    assert _statuses(relaxed)["variant_agreement"] == "passed"


def test_a_variant_that_could_not_be_compared_fails_its_gates():
    crashed = StepResult("parent_agreement", "failed", 1.0, ["the variant cannot run"])
    result = evaluate_gates(
        steps=[*_clean_steps(labels=False), crashed], thresholds=GateThresholds()
    )
    assert _statuses(result)["variant_sqnr"] == "failed"
    assert "parent_agreement failed: the variant cannot run" in result.data["reasons"]


def test_gates_that_did_not_run_are_listed_and_never_read_as_passed():
    result = evaluate_gates(steps=_clean_steps(labels=False), thresholds=GateThresholds())
    assert result.data["verdict"] == "passed"
    listed = {item["name"]: item["reason"] for item in result.data["not_evaluated"]}
    assert listed["ece"] == listed["int8_accuracy_drop"] == "no labelled inputs"
    assert listed["min_accuracy"] == "no labelled inputs; gate disabled"
    assert listed["latency_p95"] == "no latency budget set"
    assert result.data["accuracy_measured"] is False
    summary = result.findings[0]
    assert summary.startswith("passed; not evaluated: latency_p95 (no latency budget set), ")
    assert "ece (no labelled inputs)" in summary and summary.endswith("accuracy was not measured")

    labelled = evaluate_gates(
        steps=_clean_steps(labels=True), thresholds=GateThresholds(min_accuracy=0.8)
    )
    assert labelled.data["accuracy_measured"] is True
    assert "min_accuracy" not in {item["name"] for item in labelled.data["not_evaluated"]}
    only_ece = evaluate_gates(
        steps=_clean_steps(labels=True),
        thresholds=GateThresholds(max_int8_accuracy_drop_points=None),
    )
    # No accuracy gate is on, but calibration measured accuracy on the labels: that is evidence
    # (the signing waiver is for accuracy never measured, not for a gate left off).
    assert only_ece.data["accuracy_measured"] is True
    no_calibration = evaluate_gates(
        steps=[s for s in _clean_steps(labels=True) if s.name != "calibration"],
        thresholds=GateThresholds(max_int8_accuracy_drop_points=None, max_ece=None),
    )
    assert no_calibration.data["accuracy_measured"] is False


def test_a_documentary_target_leaves_latency_unjudged():
    steps = _clean_steps(labels=True)
    thresholds = GateThresholds(latency_budget_ms=1.0)  # 5 ms would fail
    assert _statuses(evaluate_gates(steps=steps, thresholds=thresholds))["latency_p95"] == "failed"
    result = evaluate_gates(steps=steps, thresholds=thresholds, documentary_target=True)
    gate = next(g for g in result.data["gates"] if g["name"] == "latency_p95")
    assert gate == {
        "name": "latency_p95",
        "status": "not_evaluated",
        "reasons": ["measured on the lab CPU, not this hardware"],
    }
    assert result.data["verdict"] == "passed"


def test_a_poor_produced_variant_is_reported_but_does_not_fail_the_run():
    steps = _clean_steps(labels=True)
    steps.append(
        StepResult(
            "quantization_fp16",
            "passed",
            1.0,
            data={
                "variant": {
                    "kind": "fp16",
                    "registrable": False,
                    "refusals": ["SQNR 12.0 dB < 20 dB"],
                }
            },
        )
    )
    result = evaluate_gates(steps=steps, thresholds=GateThresholds())
    assert result.data["verdict"] == "passed"
    assert result.data["produced_variants"] == [
        {
            "step": "quantization_fp16",
            "kind": "fp16",
            "registrable": False,
            "refusals": ["SQNR 12.0 dB < 20 dB"],
        }
    ]
    assert any(
        "fp16 variant is not registrable" in f and "SQNR 12.0 dB" in f for f in result.findings
    )


def test_variant_refusals():
    good = {"top1_agreement": 0.999, "sqnr_db": 35.0, "max_abs_difference": 0.01}
    options = {"min_top1_agreement": 0.99, "min_sqnr_db": 20.0}
    assert variant_refusals(fidelity=good, measured=True, calibration="none", **options) == []
    assert variant_refusals(
        fidelity={**good, "sqnr_db": 12.34}, measured=True, calibration="uploaded", **options
    ) == ["SQNR 12.3 dB < 20 dB"]
    assert variant_refusals(
        fidelity={**good, "top1_agreement": 0.9}, measured=True, calibration="none", **options
    ) == ["top-1 agreement 0.9000 < 0.99"]
    unmeasured = variant_refusals(
        fidelity={"top1_agreement": None, "sqnr_db": None},
        measured=False,
        calibration="synthetic",
        **options,
    )
    assert len(unmeasured) == 2
    assert "could not be measured (synthetic inputs)" in unmeasured[0]
    assert "calibrated on synthetic inputs" in unmeasured[1]
