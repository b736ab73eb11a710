"""Planned vs measured: the live figures a plan's success metrics are checked against.

A *measurement source* is one small function, registered under a measure key and a provenance
with ``roi.plan.register_source(key, provenance=...)``, that receives the context built by
:func:`measurement_context` and returns a ``roi.plan.Measurement`` or ``None`` ("nothing
measured yet"). The plan board and the ROI recompute only ever call :func:`planned_vs_measured`;
they never know which sources exist, so a new source plugs in without touching the plan, the
metrics or the calculator.

Every measurement carries its provenance. *Lab* figures come from the validation worker (today:
:mod:`roi.sources.validation`, the model registry's validation runs: P95 on the worst shape
bucket, operator coverage, INT8 drop, accuracy and ECE on the uploaded set) and name the target
profile and bucket. *Field* figures come from the fleet (telemetry, reviewed cases, rollouts)
and name the sites, the device count and the window (today: :mod:`roi.sources.telemetry`, the
gateways' telemetry rollups and acknowledged alerts since the plan started: P95 time-to-action,
offline coverage, accuracy on labelled inferences, time-to-diagnose, and two figures that are no
plan metric, on-device inference P95 and the throttled share; :mod:`roi.sources.review`, people's
reviews of the cases gateways sampled: accuracy and calibration (ECE) from the minimum number of
reviewed cases on, its accuracy source taking the place of telemetry's and keeping whichever of
labelled inferences and reviewed cases rests on more cases). A metric is decided only by its
deciding provenance (``roi.plan.DECIDING_PROVENANCE``): the field metrics (P95 time-to-action,
offline coverage, real-world accuracy and calibration, rollout and rollback times,
time-to-diagnose) stay "not measured yet" until a field source reports them, with the lab figure
shown beside them as a reference, and the ROI recompute replaces assumptions only with field
figures.

Besides the plan's metrics and the ROI inputs, every other key a source is registered for is
collected too (:data:`roi.plan.MeasureKey` ``field.*``), so the plan board lists every field
figure it has (:attr:`PlanMeasurements.field_measurements`), metric or not.

To add a source, write a module under ``roi/sources/`` that reads the owning app through its
selectors (telemetry and rollouts never import ``roi``), list it in :data:`SOURCE_MODULES`, and
register one function per key, for example::

    @register_source(MeasureKey.ROLLOUT_HOURS, provenance=Provenance.FIELD)
    def rollout_duration(context: MeasureContext) -> Measurement | None:
        rollout = rollout_selectors.latest_finished(org=context["organisation"], ...)
        if rollout is None:
            return None
        return Measurement(
            key=MeasureKey.ROLLOUT_HOURS, value=rollout.hours, unit="h",
            source=f"rollout #{rollout.pk}", measured_at=rollout.finished_at,
            provenance=Provenance.FIELD, sites=rollout.site_names,
            device_count=rollout.device_count,
            window_start=rollout.started_at, window_end=rollout.finished_at,
        )

The stack scorecard takes measured evidence the same way: an *evidence source*
(:func:`register_evidence_source`) receives the organisation and a candidate stack as typed in
the scorecard (name, hardware, runtime, toolchain) and returns a ``roi.scorecard.StackEvidence``
(operator coverage, INT8 drop, P95 against a budget, sustained slowdown, with its provenance and
the hardware it was measured on) or ``None``; the editor then shows the score
``roi.scorecard.suggest_scores`` derives from it, labelled, with its reasoning, next to the
planner's own.

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
    Measurement,
    MetricStatus,
    NinetyDayPlan,
    Provenance,
    Tracking,
    collect,
    evaluate_metrics,
    registry,
    roi_measured_values,
)
from .rules import Placement, Tier, WizardAnswers
from .scorecard import StackEvidence, SuggestedScore, suggest_scores

if TYPE_CHECKING:
    from .models import Plan

#: Modules (dotted paths) that hold ``@register_source`` / ``@register_evidence_source``
#: functions; imported once, by :func:`load_sources`.
SOURCE_MODULES: tuple[str, ...] = (
    "roi.sources.validation",
    "roi.sources.telemetry",
    "roi.sources.rollouts",
    "roi.sources.review",
)

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


# --- Planned vs measured ------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanMeasurements:
    """What the plan board shows: each metric's state, and the ROI with measured values."""

    statuses: tuple[MetricStatus, ...]
    measurements: dict[str, tuple[Measurement, ...]]  # by key: at most one per provenance
    connected: tuple[tuple[str, Provenance], ...]  # (key, provenance) with a registered source
    roi: PlannedVsMeasured | None = None
    roi_placement: str = ""
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def measured_any(self) -> bool:
        return any(status.state is not Tracking.NOT_MEASURED for status in self.statuses)

    def measurement(self, key: str, provenance: Provenance) -> Measurement | None:
        """The ``provenance`` measurement of ``key``, if a source reported one."""
        return next((m for m in self.measurements.get(key, ()) if m.provenance is provenance), None)

    @property
    def field_measurements(self) -> tuple[Measurement, ...]:
        """Every field measurement collected for the plan, metric or not, in key order."""
        return tuple(
            m
            for key in self.measurements
            for m in self.measurements[key]
            if m.provenance is Provenance.FIELD
        )


def planned_vs_measured(plan: Plan) -> PlanMeasurements:
    """Collect the plan's measurements once and compare them with targets and the ROI case."""
    load_sources()
    pure = NinetyDayPlan.from_dict(plan.data)
    # Every registered key, not only the plan's: a field figure that is no metric of this plan
    # (inference P95, throttling) is still shown on the board.
    keys = tuple(dict.fromkeys([*pure.measure_keys, *ROI_INPUT_FOR_MEASURE, *registry.keys()]))
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
    registered = set(registry.slots())
    connected = tuple(
        (key, provenance)
        for key in keys
        for provenance in Provenance
        if (key, provenance) in registered
    )
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
