"""The gates: every failing reason listed; what cannot be judged is not evaluated."""

from __future__ import annotations

from onnxcheck.gates import GateThresholds, evaluate_gates
from onnxcheck.results import StepResult


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
                    {"label": "batch=1", "p95_ms": p95},
                    {"label": "batch=8", "p95_ms": p95 * 4},
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
