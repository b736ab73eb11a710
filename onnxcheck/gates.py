"""Step (f), ``gates``: the pass/fail decision, from the evidence the other steps recorded.

Pure Python over the steps' ``data`` (no model is loaded); :class:`GateThresholds` sets each
threshold and ``None`` disables a gate. Every failing reason is listed, and a step that failed
outside any gate still fails the run, because its evidence is missing.

The latency gate has three outcomes (:func:`latency_verdict`), decided on the P95's confidence
bounds rather than on the point estimate: *passed* when the upper bound is under the budget in
every bucket, *failed* when some bucket's lower bound is over it, *inconclusive* otherwise (the
interval straddles the budget, or is not available because the time cap stopped the bucket
below 59 runs). A slow result measured while other processes took more than
``max_other_cpu_cores`` of the CPU is inconclusive too, not failed: it may be the host, not the
model. One run's interval describes only the runs it saw: on a quiet 2-core host the same model's
P95 moved 3.84 to 5.66 ms from one validation to the next (docs/benchmarks.md), far more than any
one run's interval. So the bounds are compared with the budget widened by
``latency_noise_margin`` (10 % by default) either way: *passed* needs the upper bound under
``budget * (1 - margin)``, *failed* the lower bound over ``budget * (1 + margin)``; a result
inside that band is *inconclusive*. An inconclusive gate fails nothing; the run's ``verdict``
is then ``inconclusive`` and the registry asks an approver to decide.

A registered INT8/FP16 variant is judged against its parent (step ``parent_agreement``) by
``variant_agreement`` and ``variant_sqnr``, with or without labels. The same thresholds decide
whether a variant the run *produces* may be registered (:func:`variant_refusals`); a poor
produced variant never fails the run, the gates step only reports it.

A gate that did not run is never presented as passed: ``data["not_evaluated"]`` lists each with
its reason, the findings say "passed; not evaluated: ..." and ``data["accuracy_measured"]`` is
true only when an accuracy gate was evaluated on labelled inputs. On a documentary target (one
whose hardware the worker is not) latency is measured on the worker's CPU and labelled so; the
``latency_p95`` gate is not evaluated, because that figure says nothing about the target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from onnxcheck.latency import format_ms, interval_text
from onnxcheck.results import FAILED, PASSED, SKIPPED, WARNING, StepResult, StepTimer

INCONCLUSIVE = "inconclusive"
ACCURACY_GATES = {"min_accuracy", "int8_accuracy_drop"}
"""Gates whose evaluation means accuracy was measured on labelled inputs."""


DOCUMENTARY_LATENCY_LABEL = "lab CPU, not this hardware"


@dataclass(frozen=True)
class GateThresholds:
    """Pass/fail thresholds; ``None`` disables a gate. Defaults follow the issue and MLPerf.

    The variant thresholds: ``min_variant_top1_agreement`` 0.99 is the usual post-training
    quantization target, the per-sample form of MLPerf Inference's rule that a quantized
    submission keep 99 % of the FP32 reference accuracy; ``min_variant_sqnr_db`` 20 dB (noise
    power at most 1 % of the output's power) is the level commonly used to flag a badly
    quantized tensor when SQNR is compared layer by layer (e.g. in PyTorch's Numeric Suite). An
    FP16 conversion normally gives 40 dB or more; a few dB means the outputs are plainly wrong.
    """

    max_unsupported_nodes: int = 0
    require_target_constraints: bool = True
    latency_budget_ms: float | None = None
    max_other_cpu_cores: float = 0.5
    latency_noise_margin: float = 0.10  # run-to-run spread not covered by one run's interval
    max_int8_accuracy_drop_points: float | None = 1.0
    max_ece: float | None = 0.05
    min_accuracy: float | None = None
    min_variant_top1_agreement: float | None = 0.99
    min_variant_sqnr_db: float | None = 20.0
    require_all_steps: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.__dataclass_fields__}


def latency_verdict(
    *,
    buckets: Sequence[dict[str, Any]],
    budget_ms: float,
    max_other_cpu_cores: float = 0.5,
    noise_margin: float = 0.10,
) -> tuple[str, list[str], list[str]]:
    """The P95 gate: ``(passed | failed | inconclusive, one sentence per bucket, each bucket's
    own verdict)``. ``noise_margin`` widens the budget both ways (see the module docstring)."""
    verdicts: list[str] = []
    sentences: list[str] = []
    pass_below, fail_above = budget_ms * (1 - noise_margin), budget_ms * (1 + noise_margin)
    for bucket in buckets:
        low, high = bucket.get("p95_ci_low_ms"), bucket.get("p95_ci_high_ms")
        others = bucket.get("other_cpu_cores")
        busy = others is not None and others > max_other_cpu_cores
        why = ""
        if high is not None and high < pass_below:
            verdict = PASSED
        elif low is not None and low > fail_above and not busy:
            verdict = FAILED
        else:
            verdict = INCONCLUSIVE
            if high is None:
                capped = " (the time cap stopped it)" if bucket.get("capped") else ""
                why = f"; only {bucket.get('runs')} runs{capped}, the P95's upper bound needs 59"
            elif low is not None and low > fail_above:
                why = (
                    f"; other processes used {others:.2f} CPU cores while it was measured, "
                    "so a slow result may be the host's"
                )
            elif noise_margin and (high < budget_ms or (low is not None and low > budget_ms)):
                why = (
                    f"; within {noise_margin:.0%} of the budget, closer than validations of "
                    "one model vary from run to run"
                )
            else:
                why = "; the interval contains the budget"
        verdicts.append(verdict)
        sentences.append(
            f"P95 {format_ms(bucket.get('p95_ms'))} ms {interval_text(low, high)}, "
            f"budget {budget_ms:g} ms: {verdict}{why} (bucket {bucket.get('label')}, "
            f"{bucket.get('runs')} runs)"
        )
    if FAILED in verdicts:
        return FAILED, sentences, verdicts
    if INCONCLUSIVE in verdicts or not verdicts:
        return INCONCLUSIVE, sentences, verdicts
    return PASSED, sentences, verdicts


def variant_refusals(
    *,
    fidelity: dict[str, Any],
    measured: bool,
    calibration: str,
    min_top1_agreement: float | None,
    min_sqnr_db: float | None,
) -> list[str]:
    """Why a produced variant must not be registered (empty: it may be).

    ``fidelity`` holds ``top1_agreement``, ``sqnr_db`` and ``max_abs_difference`` against the
    model it was built from; ``measured`` says whether they were measured at all (not on
    synthetic inputs). A variant calibrated on synthetic inputs is refused whatever its figures.
    """
    refusals: list[str] = []
    if not measured:
        refusals.append(
            "its fidelity could not be measured (synthetic inputs): no agreement or SQNR"
        )
    if calibration == "synthetic":
        refusals.append("calibrated on synthetic inputs: recalibrate on real data first")
    if measured:
        refusals.extend(
            _fidelity_failures(
                fidelity, min_top1_agreement=min_top1_agreement, min_sqnr_db=min_sqnr_db
            )
        )
    return refusals


def _fidelity_failures(
    fidelity: dict[str, Any], *, min_top1_agreement: float | None, min_sqnr_db: float | None
) -> list[str]:
    failures: list[str] = []
    agreement = fidelity.get("top1_agreement")
    if min_top1_agreement is not None and agreement is not None and agreement < min_top1_agreement:
        failures.append(f"top-1 agreement {agreement:.4f} < {min_top1_agreement:g}")
    sqnr, difference = fidelity.get("sqnr_db"), fidelity.get("max_abs_difference")
    if min_sqnr_db is not None:
        if sqnr is not None and sqnr < min_sqnr_db:
            failures.append(f"SQNR {sqnr:.1f} dB < {min_sqnr_db:g} dB")
        elif sqnr is None and difference:
            failures.append("SQNR undefined: the reference output is all zeros, the variant's not")
    return failures


def evaluate_gates(
    *,
    steps: Sequence[StepResult],
    thresholds: GateThresholds,
    documentary_target: bool = False,
) -> StepResult:
    """Decide pass/fail from the steps' data, listing every failing reason.

    A gate whose evidence is absent for a legitimate reason (no labels, no budget, not a
    variant, a documentary target) is ``not_evaluated``; one whose evidence is missing because
    its step failed or was skipped for a fault fails.
    """
    timer = StepTimer()
    by_name = {step.name: step for step in steps}
    gates: list[dict[str, Any]] = []

    def gate(name: str, status: str, reasons: Sequence[str], **extra: Any) -> None:
        gates.append({"name": name, "status": status, "reasons": list(reasons), **extra})

    def unlabelled(limit: float | None) -> list[str]:
        return ["no labelled inputs", *(["gate disabled"] if limit is None else [])]

    def step_failure(name: str) -> list[str] | None:
        step = by_name.get(name)
        if step is None:
            return [f"step {name} did not run"]
        if step.status == FAILED:
            return [f"{name} failed: {finding}" for finding in step.findings] or [f"{name} failed"]
        return None

    for name in ("integrity", "inputs"):
        failure = step_failure(name)
        gate(name, FAILED if failure else PASSED, failure or [])

    compat = by_name.get("compatibility")
    if compat is None or "unsupported" not in compat.data:
        gate("operators_supported", FAILED, step_failure("compatibility") or ["not checked"])
        gate("target_constraints", FAILED, ["compatibility was not checked"])
    else:
        count = compat.data["unsupported_node_count"]
        reasons = [
            f"{item['operator']} unsupported on {compat.data['target']['name']} "
            f"({item['reason']}): {item['node_count']} node(s): "
            f"{', '.join(item['node_names'][:10])}"
            for item in compat.data["unsupported"]
        ]
        ok = count <= thresholds.max_unsupported_nodes
        gate(
            "operators_supported",
            PASSED if ok else FAILED,
            [] if ok else reasons,
            observed=count,
            threshold=thresholds.max_unsupported_nodes,
        )
        violated = [c["detail"] for c in compat.data["constraints"] if not c["ok"]]
        if thresholds.require_target_constraints:
            gate("target_constraints", FAILED if violated else PASSED, violated)
        else:
            gate("target_constraints", "not_evaluated", violated)

    latency = by_name.get("latency")
    if thresholds.latency_budget_ms is None:
        gate("latency_p95", "not_evaluated", ["no latency budget set"])
    elif documentary_target:
        gate("latency_p95", "not_evaluated", [f"measured on the {DOCUMENTARY_LATENCY_LABEL}"])
    elif latency is None or latency.status != PASSED:
        gate("latency_p95", FAILED, step_failure("latency") or ["latency was not measured"])
    else:
        verdict, sentences, per_bucket = latency_verdict(
            buckets=latency.data["buckets"],
            budget_ms=thresholds.latency_budget_ms,
            max_other_cpu_cores=thresholds.max_other_cpu_cores,
            noise_margin=thresholds.latency_noise_margin,
        )
        highs = [b.get("p95_ci_high_ms") for b in latency.data["buckets"]]
        # The reasons are the buckets that decided the verdict; every bucket's sentence is kept.
        deciding = [s for s, v in zip(sentences, per_bucket, strict=True) if v == verdict]
        gate(
            "latency_p95",
            verdict,
            deciding,
            sentences=sentences,
            observed=max(bucket["p95_ms"] for bucket in latency.data["buckets"]),
            observed_high=max((h for h in highs if h is not None), default=None),
            threshold=thresholds.latency_budget_ms,
            unit="ms",
        )

    int8 = by_name.get("quantization_int8")
    agreement = by_name.get("parent_agreement")
    has_labels = bool(by_name.get("inputs") and by_name["inputs"].data.get("has_labels"))
    int8_not_applicable = bool(int8 and int8.status != PASSED and int8.data.get("not_applicable"))
    # A registered INT8 variant's drop is measured against its parent, not by re-quantizing.
    int8_variant_drop = (
        agreement.data.get("accuracy_drop_points")
        if agreement is not None
        and agreement.status == PASSED
        and agreement.data.get("variant_kind") == "int8"
        else None
    )
    if not has_labels:
        gate(
            "int8_accuracy_drop",
            "not_evaluated",
            unlabelled(thresholds.max_int8_accuracy_drop_points),
        )
    elif thresholds.max_int8_accuracy_drop_points is None:
        gate("int8_accuracy_drop", "not_evaluated", ["gate disabled"])
    elif int8_not_applicable and int8_variant_drop is None:
        gate("int8_accuracy_drop", "not_evaluated", list(int8.findings) or ["not applicable"])
    elif int8_variant_drop is None and (int8 is None or int8.status != PASSED):
        failure = step_failure("quantization_int8") or ["no INT8 evidence"]
        gate("int8_accuracy_drop", FAILED, failure)
    else:
        drop = (
            int8_variant_drop
            if int8_variant_drop is not None
            else int8.data["fidelity"]["accuracy_drop_points"]
        )
        if drop is None:
            gate("int8_accuracy_drop", FAILED, ["no class-score output to measure accuracy on"])
        else:
            ok = drop <= thresholds.max_int8_accuracy_drop_points
            gate(
                "int8_accuracy_drop",
                PASSED if ok else FAILED,
                []
                if ok
                else [
                    f"INT8 accuracy drop {drop:.2f} points > "
                    f"{thresholds.max_int8_accuracy_drop_points:.2f}"
                ],
                observed=drop,
                threshold=thresholds.max_int8_accuracy_drop_points,
                source="parent_agreement" if int8_variant_drop is not None else "quantization_int8",
            )

    # A registered variant against its parent: judged with or without labels.
    for gate_name, key, limit, unit in (
        ("variant_agreement", "top1_agreement", thresholds.min_variant_top1_agreement, None),
        ("variant_sqnr", "sqnr_db", thresholds.min_variant_sqnr_db, "dB"),
    ):
        extra = {"unit": unit} if unit else {}
        if agreement is None or (
            agreement.status == SKIPPED and agreement.data.get("not_a_variant")
        ):
            # Not applicable (this is not a variant), which is not the same as "did not run":
            # listing them would make every clean run read "2 not evaluated".
            continue
        elif agreement.status == SKIPPED:
            gate(gate_name, "not_evaluated", list(agreement.findings) or ["not measured"])
        elif limit is None:
            gate(gate_name, "not_evaluated", ["gate disabled"])
        elif agreement.status != PASSED:
            gate(gate_name, FAILED, step_failure("parent_agreement") or ["not measured"])
        elif key == "top1_agreement" and agreement.data.get(key) is None:
            gate(gate_name, "not_evaluated", ["no class-score output: top-1 is undefined"])
        else:
            options = {
                "min_top1_agreement": limit if key == "top1_agreement" else None,
                "min_sqnr_db": limit if key == "sqnr_db" else None,
            }
            failures = _fidelity_failures(agreement.data, **options)
            gate(
                gate_name,
                FAILED if failures else PASSED,
                [f"against the parent: {failure}" for failure in failures],
                observed=agreement.data.get(key),
                threshold=limit,
                **extra,
            )

    calibration = by_name.get("calibration")
    for gate_name, key, limit, worse in (
        ("ece", "ece", thresholds.max_ece, lambda v, t: v > t),
        ("min_accuracy", "accuracy", thresholds.min_accuracy, lambda v, t: v < t),
    ):
        if not has_labels:
            gate(gate_name, "not_evaluated", unlabelled(limit))
        elif limit is None:
            gate(gate_name, "not_evaluated", ["gate disabled"])
        elif calibration is None or calibration.status != PASSED:
            reasons = step_failure("calibration") or [
                f"calibration did not run: {'; '.join(calibration.findings)}"
                if calibration
                else "calibration did not run"
            ]
            gate(gate_name, FAILED, reasons)
        else:
            value = calibration.data[key]
            bad = worse(value, limit)
            relation = ">" if gate_name == "ece" else "<"
            gate(
                gate_name,
                FAILED if bad else PASSED,
                [f"{key} {value:.4f} {relation} {limit}"] if bad else [],
                observed=value,
                threshold=limit,
            )

    # A step that failed outside any gate above (e.g. latency crashed while no budget was set,
    # INT8 quantization failed without labels) still fails the run: evidence is missing.
    gated = {g["name"] for g in gates if g["status"] == FAILED}
    covered_by = {
        "integrity": {"integrity"},
        "inputs": {"inputs"},
        "compatibility": {"operators_supported", "target_constraints"},
        "latency": {"latency_p95"},
        "quantization_int8": {"int8_accuracy_drop"},
        "quantization_fp16": set(),
        "calibration": {"ece", "min_accuracy"},
        "parent_agreement": {"variant_agreement", "variant_sqnr"},
    }
    uncovered = [
        reason
        for step in steps
        if step.status == FAILED
        and not covered_by.get(step.name, set()) & gated
        and step.name not in {"integrity", "inputs", "compatibility"}
        for reason in (step_failure(step.name) or [])
    ]
    if thresholds.require_all_steps:
        gate("steps_completed", FAILED if uncovered else PASSED, uncovered)
    else:
        gate("steps_completed", "not_evaluated", uncovered)

    reasons = [reason for g in gates if g["status"] == FAILED for reason in g["reasons"]]
    undecided = [reason for g in gates if g["status"] == INCONCLUSIVE for reason in g["reasons"]]
    passed = not reasons and not undecided
    verdict = FAILED if reasons else (INCONCLUSIVE if undecided else PASSED)
    not_evaluated = [
        {"name": g["name"], "reason": "; ".join(g["reasons"]) or "not evaluated"}
        for g in gates
        if g["status"] == "not_evaluated"
    ]
    # Accuracy was measured when labelled inputs produced a figure: the calibration step's
    # accuracy, an accuracy gate's observation, or a variant's accuracy against its parent
    # (whether or not a gate on it is enabled).
    accuracy_measured = has_labels and (
        any(
            g["name"] in ACCURACY_GATES and g["status"] in {PASSED, FAILED} and "observed" in g
            for g in gates
        )
        or (
            calibration is not None
            and calibration.status == PASSED
            and calibration.data.get("accuracy") is not None
        )
        or (
            agreement is not None
            and agreement.status == PASSED
            and agreement.data.get("variant_accuracy") is not None
        )
    )
    produced = [
        {
            "step": step.name,
            "kind": step.data["variant"].get("kind"),
            "registrable": step.data["variant"].get("registrable"),
            "refusals": step.data["variant"].get("refusals", []),
        }
        for step in steps
        if step.status == PASSED and "variant" in step.data
    ]
    data = {
        "passed": passed,
        # passed | failed | inconclusive: a failed gate decides; an inconclusive one awaits review.
        "verdict": verdict,
        "gates": gates,
        "reasons": reasons or undecided,
        "not_evaluated": not_evaluated,
        "accuracy_measured": accuracy_measured,
        "produced_variants": produced,
        "thresholds": thresholds.to_dict(),
    }
    findings = list(data["reasons"])
    summary = verdict
    if not_evaluated:
        summary += "; not evaluated: " + ", ".join(
            f"{item['name']} ({item['reason']})" for item in not_evaluated
        )
    if not accuracy_measured:
        summary += "; accuracy was not measured"
    findings.insert(0, summary)
    for item in produced:
        if not item["registrable"]:
            findings.append(
                f"the produced {item['kind']} variant is not registrable (the run's verdict does "
                "not depend on it): " + "; ".join(item["refusals"])
            )
    status = {PASSED: PASSED, FAILED: FAILED, INCONCLUSIVE: WARNING}[verdict]
    return StepResult("gates", status, timer.ms(), findings, data)
