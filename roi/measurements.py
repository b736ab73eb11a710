"""Planned vs measured: the live figures a plan's success metrics are checked against.

A *measurement source* is one small function, registered under a measure key with
``roi.plan.register_source``, that receives the context built by :func:`measurement_context`
and returns a ``roi.plan.Measurement`` or ``None`` ("nothing measured yet"). The plan board and
the ROI recompute only ever call :func:`planned_vs_measured`; they never know which sources
exist, so a new source plugs in without touching the plan, the metrics or the calculator.

Today the sources are the model registry's validation figures (P95 on a target profile,
accuracy, INT8 accuracy drop, operator coverage, ECE; see *Sources* below). Fleet telemetry
(P95 at the edge, offline coverage, throttling) and rollout times have no source yet, so those
metrics honestly show "not measured yet" and the ROI recompute replaces nothing. To add one,
write it in the *Sources* section below (or in a module listed in :data:`SOURCE_MODULES`),
reading through the owning app's selectors, for example::

    @register_source(MeasureKey.ECE)
    def validation_ece(context: MeasureContext) -> Measurement | None:
        run = fleet_selectors.latest_validation(org=context["organisation"], ...)
        if run is None or run.ece is None:
            return None
        return Measurement(
            key=MeasureKey.ECE, value=run.ece, unit="ratio",
            source=f"validation run #{run.pk}", measured_at=run.finished_at,
        )

The stack scorecard takes measured evidence the same way: an *evidence source*
(:func:`register_evidence_source`) receives the organisation and a candidate stack as typed in
the scorecard (name, hardware, runtime, toolchain) and returns a ``roi.scorecard.StackEvidence``
(operator coverage, INT8 drop, P95 against a budget, sustained slowdown) or ``None``; the
editor then shows the score ``roi.scorecard.suggest_scores`` derives from it, with its reasoning,
next to the planner's own.

The unit must be the metric's (``ms``, ``share``, ``points``, ``ratio``, ``h``, ``min``);
a measurement in another unit is shown as "not comparable" rather than guessed at. A source
that raises is a bug to fix, so its exception is not swallowed here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any

from .engine import PlannedVsMeasured, RoiInputs, recompute_with_measurements
from .plan import (
    ROI_INPUT_FOR_MEASURE,
    MeasureContext,
    MeasureKey,
    Measurement,
    MetricStatus,
    NinetyDayPlan,
    Tracking,
    collect,
    evaluate_metrics,
    register_source,
    registry,
    roi_measured_values,
)
from .rules import Placement, Tier, WizardAnswers
from .scorecard import StackEvidence, SuggestedScore, suggest_scores

if TYPE_CHECKING:
    from .models import Plan

#: Modules (dotted paths) that hold more ``@register_source`` functions; imported once.
SOURCE_MODULES: tuple[str, ...] = ()

_loaded = False


def load_sources() -> None:
    """Import the modules listed in :data:`SOURCE_MODULES` so their sources register."""
    global _loaded
    if _loaded:
        return
    for name in SOURCE_MODULES:
        import_module(name)
    _loaded = True


def measurement_context(plan: Plan) -> dict[str, Any]:
    """Everything a source may need to find the measurement that belongs to this plan.

    ``organisation`` scopes every read (a source must never look at another tenant's data);
    ``latency_budget_ms`` is the wizard's latency tolerance (what "P95 on the target profile"
    is judged against); ``since`` is when the plan started, for sources that only count
    evidence gathered during the plan.
    """
    answers = WizardAnswers.from_dict(plan.assessment.answers)
    result = plan.assessment.result
    return {
        "organisation": plan.organization,
        "plan": plan,
        "assessment": plan.assessment,
        "scenario": plan.scenario,
        "answers": answers,
        "placement": Placement(plan.placement),
        "inference_tiers": tuple(Tier(tier) for tier in result.get("inference_tiers", [])),
        "latency_budget_ms": float(answers.latency_tolerance_ms),
        "since": plan.created_at,
        "model": plan.model,
    }


# --- Sources ------------------------------------------------------------------------------------
# Today: the model registry's validation reports, for the model the plan names (Plan.model).
# Each figure comes from that model's most recent finished validation run that has it
# (accuracy, INT8 drop and ECE need labelled inputs), and the measurement names the run, model
# version and target, so nobody mistakes a reference measurement on the validation worker for
# a figure measured at the edge.


def _validation_figure(
    context: MeasureContext, key: str, unit: str, extract: Callable[[dict], float | None]
) -> Measurement | None:
    from modelregistry.selectors import finished_runs_for_org

    model = context.get("model")
    if model is None:  # a plan measures the model it names, never whatever ran last
        return None
    runs = finished_runs_for_org(org=context["organisation"]).filter(version__model=model)
    for run in runs[:50]:
        steps = {step.get("name"): step for step in (run.report or {}).get("steps", [])}
        try:
            value = extract(steps)
        except (KeyError, IndexError, TypeError):
            value = None
        if value is None:
            continue
        version = run.version
        return Measurement(
            key=key,
            value=float(value),
            unit=unit,
            source=(
                f"validation run #{run.number} of {version.model.name} {version.version} on "
                f"{run.target.name}"
            ),
            measured_at=run.finished_at,
            detail="reference measurement on the validation worker's CPU"
            if key == MeasureKey.LATENCY_P95_MS
            else "",
        )
    return None


def _data(steps: dict, name: str) -> dict:
    step = steps.get(name) or {}
    return step.get("data") or {} if step.get("status") in {"passed", "failed"} else {}


@register_source(MeasureKey.LATENCY_P95_MS)
def validation_p95(context: MeasureContext) -> Measurement | None:
    return _validation_figure(
        context,
        MeasureKey.LATENCY_P95_MS,
        "ms",
        lambda steps: _data(steps, "latency")["buckets"][0]["p95_ms"],
    )


@register_source(MeasureKey.OPERATOR_COVERAGE)
def validation_operator_coverage(context: MeasureContext) -> Measurement | None:
    return _validation_figure(
        context,
        MeasureKey.OPERATOR_COVERAGE,
        "share",
        lambda steps: _data(steps, "compatibility")["supported_share"],
    )


@register_source(MeasureKey.ACCURACY)
def validation_accuracy(context: MeasureContext) -> Measurement | None:
    return _validation_figure(
        context,
        MeasureKey.ACCURACY,
        "share",
        lambda steps: _data(steps, "calibration").get("accuracy"),
    )


@register_source(MeasureKey.INT8_ACCURACY_DROP)
def validation_int8_drop(context: MeasureContext) -> Measurement | None:
    return _validation_figure(
        context,
        MeasureKey.INT8_ACCURACY_DROP,
        "points",
        lambda steps: _data(steps, "quantization_int8")["fidelity"].get("accuracy_drop_points"),
    )


@register_source(MeasureKey.ECE)
def validation_ece(context: MeasureContext) -> Measurement | None:
    return _validation_figure(
        context,
        MeasureKey.ECE,
        "ratio",
        lambda steps: _data(steps, "calibration").get("ece"),
    )


# --- Planned vs measured ------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanMeasurements:
    """What the plan board shows: each metric's state, and the ROI with measured values."""

    statuses: tuple[MetricStatus, ...]
    measurements: dict[str, Measurement | None]
    connected: tuple[str, ...]  # measure keys that have a registered source
    roi: PlannedVsMeasured | None = None
    roi_placement: str = ""
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def measured_any(self) -> bool:
        return any(status.state is not Tracking.NOT_MEASURED for status in self.statuses)


def planned_vs_measured(plan: Plan) -> PlanMeasurements:
    """Collect the plan's measurements once and compare them with targets and the ROI case."""
    load_sources()
    pure = NinetyDayPlan.from_dict(plan.data)
    keys = tuple(dict.fromkeys([*pure.measure_keys, *ROI_INPUT_FOR_MEASURE]))
    measurements = collect(keys=keys, context=measurement_context(plan))
    statuses = evaluate_metrics(metrics=pure.metrics, measurements=measurements)
    counts = {state.value: 0 for state in Tracking}
    for status in statuses:
        counts[status.state.value] += 1
    roi = None
    if plan.scenario is not None:
        inputs = RoiInputs.from_dict(plan.scenario.inputs)
        measured = roi_measured_values(
            placement=Placement(plan.placement), measurements=measurements
        )
        roi = recompute_with_measurements(inputs=inputs, measured=measured, source="measured")
    connected = tuple(key for key in keys if key in set(registry.keys()))
    return PlanMeasurements(
        statuses=statuses,
        measurements=measurements,
        connected=connected,
        roi=roi,
        roi_placement=plan.placement,
        counts=counts,
    )


# --- Measured evidence for the stack scorecard ---------------------------------------------------

EvidenceSource = Callable[[Any, Mapping[str, Any]], StackEvidence | None]
_evidence_sources: list[EvidenceSource] = []


def register_evidence_source(source: EvidenceSource) -> EvidenceSource:
    """Decorator: ``source(organisation, candidate) -> StackEvidence | None``."""
    if source not in _evidence_sources:
        _evidence_sources.append(source)
    return source


def unregister_evidence_source(source: EvidenceSource) -> None:
    if source in _evidence_sources:
        _evidence_sources.remove(source)


def suggested_scores(
    *, organisation: Any, candidates: Sequence[Mapping[str, Any]]
) -> dict[int, dict[str, SuggestedScore]]:
    """Scores measured evidence suggests, by candidate position and category (empty today)."""
    load_sources()
    found: dict[int, dict[str, SuggestedScore]] = {}
    for index, candidate in enumerate(candidates):
        merged: dict[str, SuggestedScore] = {}
        for source in _evidence_sources:
            evidence = source(organisation, candidate)
            if evidence is not None:
                merged.update(
                    {str(cat): item for cat, item in suggest_scores(evidence=evidence).items()}
                )
        if merged:
            found[index] = merged
    return found


# Execution providers as people write them in a stack's runtime or hardware description.
_PROVIDER_WORDS = {
    "NNAPI": ("nnapi", "android"),
    "CoreML": ("coreml", "core ml", "apple", "ios", "ipad", "iphone"),
    "CPU": ("cpu", "x86", "arm64", "onnxruntime cpu"),
    "TensorRT": ("tensorrt", "jetson"),
    "CUDA": ("cuda",),
    "OpenVINO": ("openvino",),
    "DirectML": ("directml", "windows"),
    "QNN": ("qnn", "qualcomm", "snapdragon"),
}


@register_evidence_source
def validation_evidence(organisation: Any, candidate: Mapping[str, Any]) -> StackEvidence | None:
    """Measured evidence for a stack: the latest validation run on a hardware target whose
    name or execution provider the candidate's description mentions."""
    from modelregistry.selectors import finished_runs_for_org

    text = " ".join(
        str(candidate.get(key) or "") for key in ("name", "hardware", "runtime", "toolchain")
    ).lower()
    if not text.strip():
        return None
    for run in finished_runs_for_org(org=organisation)[:50]:
        target = run.target
        words = (target.name.lower(), *_PROVIDER_WORDS.get(target.execution_provider, ()))
        if not any(word and word in text for word in words):
            continue
        steps = {step.get("name"): step for step in (run.report or {}).get("steps", [])}
        compatibility = _data(steps, "compatibility")
        latency = _data(steps, "latency")
        int8 = _data(steps, "quantization_int8").get("fidelity") or {}
        buckets = latency.get("buckets") or []
        budget = (run.gates or {}).get("latency_budget_ms")
        p95 = buckets[0].get("p95_ms") if buckets and budget else None  # judged only vs a budget
        return StackEvidence(
            operator_coverage=compatibility.get("supported_share"),
            int8_accuracy_drop_points=int8.get("accuracy_drop_points"),
            p95_latency_ms=p95,
            latency_budget_ms=budget if p95 is not None else None,
            source=(
                f"validation run #{run.number} of {run.version.model.name} "
                f"{run.version.version} on {target.name}"
            ),
        )
    return None
