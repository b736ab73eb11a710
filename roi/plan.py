"""The 90-day plan, its success metrics, and how they meet live measurements.

:func:`generate_plan` turns a wizard result into the seed's four phases (Days 1-15, 16-45,
46-70, 71-90) with the seed's tasks, plus tasks tailored to the answer: gateway provisioning
for near-edge, model packaging for on-device, data-minimisation work when privacy is high,
an escalation contract for hybrid, and so on. Each task has a stable ``id`` (so saved statuses
survive regeneration), an owner role and a status.

The tasks are data: :data:`TASK_ROWS` holds one :class:`TaskRow` per task (phase, title,
detail, owner, its days, the plans it applies to as a declarative :class:`When` on the
:class:`PlanFacts` of the wizard result, and the :class:`TaskEvidence` that ticks it), and
``_tasks`` only interprets the table. On the board (:func:`task_states`) day N of a task falls
on ``start + N - 1``; a task whose evidence exists is done by it, every other task keeps the
status a person set, and an unfinished task past its last day is overdue.

Success metrics carry a target, a direction, a ``measure_key`` (the name of the live
measurement they are checked against) and ``decided_by``: the :class:`Provenance` whose
measurements decide whether the metric is on track. Measurements come from *sources*: small
functions registered by key and provenance (:func:`register_source`) and called by
:func:`collect`; every :class:`Measurement` says where it came from. *Lab* figures come from the
validation worker (which target profile, which shape bucket); *field* figures come from the fleet
(telemetry, reviewed cases, rollouts: which sites, how many devices, over which window).

The rule (:func:`evaluate_metrics`): a metric's state is decided only by a measurement of its
deciding provenance. A field metric with only a lab figure stays "not measured yet", and the lab
figure is shown beside it, labelled, as a reference (:attr:`MetricStatus.reference`). A key or
provenance nobody has registered yet is reported honestly as "not measured yet".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from roi.rules import (
    LOCAL_TIERS,
    Placement,
    PlanningInputError,
    PrivacyRisk,
    Tier,
    WizardResult,
    Workflow,
    raise_for_field_errors,
)


class OwnerRole(StrEnum):
    """Who does it; the same names as the platform's organisation roles."""

    PLANNER = "planner"
    APPROVER = "approver"
    ADMIN = "admin"


class TaskStatus(StrEnum):
    TODO = "todo"
    DOING = "doing"
    DONE = "done"
    BLOCKED = "blocked"


@dataclass(frozen=True)
class Phase:
    key: str
    first_day: int
    last_day: int
    title: str


PHASES: tuple[Phase, ...] = (
    Phase("days_1_15", 1, 15, "Choose the architecture and success metrics"),
    Phase("days_16_45", 16, 45, "Build a reference deployment"),
    Phase("days_46_70", 46, 70, "Run field-like tests"),
    Phase("days_71_90", 71, 90, "Ship a staged rollout"),
)
PHASE_KEYS = tuple(phase.key for phase in PHASES)


@dataclass(frozen=True)
class PlanTask:
    """One task of the plan; ``source`` says whether it is the seed's or tailored, and why."""

    id: str
    phase: str
    title: str
    detail: str
    owner: OwnerRole
    status: TaskStatus
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "phase": self.phase,
            "title": self.title,
            "detail": self.detail,
            "owner": str(self.owner),
            "status": str(self.status),
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanTask:
        return cls(
            id=str(data["id"]),
            phase=str(data["phase"]),
            title=str(data["title"]),
            detail=str(data.get("detail", "")),
            owner=OwnerRole(data["owner"]),
            status=TaskStatus(data["status"]),
            source=str(data.get("source", "")),
        )


class Direction(StrEnum):
    AT_MOST = "at_most"  # on track when the measured value <= target
    AT_LEAST = "at_least"  # on track when the measured value >= target


class Provenance(StrEnum):
    """Where a measurement was taken."""

    LAB = "lab"  # the validation worker: a reference measurement of the model on a target profile
    FIELD = "field"  # the fleet: telemetry, reviewed cases, rollouts, support tickets


class MeasureKey(StrEnum):
    """Names of live measurements; a source registers under one of these (or a new one).

    The names are stored in plans, so they stay as they are even where the prefix reads oddly
    (``validation.accuracy`` is the accuracy metric, decided in the field, see
    :data:`DECIDING_PROVENANCE`).
    """

    LATENCY_P95_MS = "latency.p95_ms"
    OFFLINE_COVERAGE = "offline.coverage_share"
    ACCURACY = "validation.accuracy"
    INT8_ACCURACY_DROP = "validation.int8_accuracy_drop_points"
    ECE = "validation.ece"
    OPERATOR_COVERAGE = "validation.operator_coverage"
    ROLLOUT_HOURS = "rollout.duration_hours"
    ROLLBACK_MINUTES = "rollout.rollback_minutes"
    TIME_TO_DIAGNOSE_HOURS = "support.time_to_diagnose_hours"
    # ROI inputs, not plan metrics: the staff time a rollout or rollback costs (not how long it
    # took end to end). No source measures them yet; the planner's figures stand until one does.
    STAFF_HOURS_PER_ROLLOUT = "support.staff_hours_per_rollout"
    STAFF_HOURS_PER_ROLLBACK = "support.staff_hours_per_rollback"
    # Fleet figures shown on the plan board beside the metrics, not plan metrics themselves:
    # on-device inference time (a part of time-to-action, not the metric) and the share of
    # health samples that reported thermal throttling.
    FIELD_INFERENCE_P95_MS = "field.inference_p95_ms"
    FIELD_THROTTLED_SHARE = "field.throttled_share"


#: Which provenance decides each measure key, and why. A key not listed is decided in the field:
#: a lab figure can never make an unknown metric look on track.
DECIDING_PROVENANCE: dict[str, Provenance] = {
    # Time-to-action is capture to UI update on the real device or gateway; the worker's CPU
    # inference time is a reference, not the edge.
    MeasureKey.LATENCY_P95_MS: Provenance.FIELD,
    MeasureKey.OFFLINE_COVERAGE: Provenance.FIELD,
    # "Accuracy on real-world data" and calibration that gates human review are properties of
    # the inputs the sites see, not of the uploaded validation set.
    MeasureKey.ACCURACY: Provenance.FIELD,
    MeasureKey.ECE: Provenance.FIELD,
    # Properties of the model on the target profile: the validation run measures them.
    MeasureKey.INT8_ACCURACY_DROP: Provenance.LAB,
    MeasureKey.OPERATOR_COVERAGE: Provenance.LAB,
    MeasureKey.ROLLOUT_HOURS: Provenance.FIELD,
    MeasureKey.ROLLBACK_MINUTES: Provenance.FIELD,
    MeasureKey.TIME_TO_DIAGNOSE_HOURS: Provenance.FIELD,
    MeasureKey.STAFF_HOURS_PER_ROLLOUT: Provenance.FIELD,
    MeasureKey.STAFF_HOURS_PER_ROLLBACK: Provenance.FIELD,
    MeasureKey.FIELD_INFERENCE_P95_MS: Provenance.FIELD,
    MeasureKey.FIELD_THROTTLED_SHARE: Provenance.FIELD,
}


def deciding_provenance(measure_key: str) -> Provenance:
    """The provenance whose measurements decide a metric on ``measure_key``."""
    return DECIDING_PROVENANCE.get(measure_key, Provenance.FIELD)


@dataclass(frozen=True)
class SuccessMetric:
    """A target the plan checks; only measurements of ``decided_by`` make it on or off track."""

    key: str
    label: str
    target: float
    unit: str
    direction: Direction
    measure_key: str
    rationale: str
    decided_by: Provenance | None = None  # None: the measure key's rule (DECIDING_PROVENANCE)

    def __post_init__(self) -> None:
        decided_by = self.decided_by or deciding_provenance(self.measure_key)
        object.__setattr__(self, "decided_by", Provenance(decided_by))

    def is_met_by(self, value: float) -> bool:
        """Boundary inclusive: hitting the target exactly is on track."""
        if self.direction is Direction.AT_MOST:
            return value <= self.target
        return value >= self.target

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "target": self.target,
            "unit": self.unit,
            "direction": str(self.direction),
            "measure_key": self.measure_key,
            "rationale": self.rationale,
            "decided_by": str(self.decided_by),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SuccessMetric:
        # Plans stored before provenance existed have no "decided_by": the key's rule applies.
        return cls(
            key=str(data["key"]),
            label=str(data["label"]),
            target=float(data["target"]),
            unit=str(data["unit"]),
            direction=Direction(data["direction"]),
            measure_key=str(data["measure_key"]),
            rationale=str(data.get("rationale", "")),
            decided_by=Provenance(data["decided_by"]) if data.get("decided_by") else None,
        )


@dataclass(frozen=True, kw_only=True)
class MetricTargets:
    """Targets the planner may override; ``None`` derives the target from the wizard answer.

    Defaults and why: INT8 drop 1 point (MLPerf edge accepts 99 % of FP32, about 1 point);
    ECE 0.05 with 15 bins and accuracy 0.90 are OpsHero assumptions to be set from the
    baseline on real data; operator coverage 98 % matches a 4/5 on the scorecard; support
    KPIs (rollout, rollback, time-to-diagnose) are assumptions for an SMB team.
    """

    latency_p95_ms: float | None = None
    offline_coverage: float | None = None
    accuracy: float = 0.90
    int8_accuracy_drop_points: float = 1.0
    ece: float = 0.05
    operator_coverage: float = 0.98
    rollout_hours: float | None = None
    rollback_minutes: float | None = None
    time_to_diagnose_hours: float = 4.0

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricTargets:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        targets = cls(**known)
        validate_targets(targets=targets)
        return targets


_TARGET_RANGES: dict[str, tuple[float, float]] = {
    "latency_p95_ms": (0.0, 86_400_000.0),
    "offline_coverage": (0.0, 1.0),
    "accuracy": (0.0, 1.0),
    "int8_accuracy_drop_points": (0.0, 100.0),
    "ece": (0.0, 1.0),
    "operator_coverage": (0.0, 1.0),
    "rollout_hours": (0.0, 8_760.0),
    "rollback_minutes": (0.0, 525_600.0),
    "time_to_diagnose_hours": (0.0, 8_760.0),
}


def validate_targets(*, targets: MetricTargets) -> None:
    errors: dict[str, list[str]] = {}
    for name, (low, high) in _TARGET_RANGES.items():
        value = getattr(targets, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors[name] = ["Enter a number."]
        elif not math.isfinite(value) or not low <= value <= high:
            errors[name] = [f"Expected a value between {low:g} and {high:g}."]
    raise_for_field_errors(errors, what="Success metric targets")


@dataclass(frozen=True)
class NinetyDayPlan:
    """The plan generated from one wizard result; statuses change, the structure does not."""

    ruleset_version: str
    workflow: Workflow
    placement: Placement
    inference_tiers: tuple[Tier, ...]
    tasks: tuple[PlanTask, ...]
    metrics: tuple[SuccessMetric, ...]

    @property
    def measure_keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(metric.measure_key for metric in self.metrics))

    def tasks_in(self, phase: str) -> tuple[PlanTask, ...]:
        return tuple(task for task in self.tasks if task.phase == phase)

    def with_status(self, *, task_id: str, status: TaskStatus) -> NinetyDayPlan:
        """A copy with one task's status changed; unknown ids raise a field error."""
        if not any(task.id == task_id for task in self.tasks):
            raise PlanningInputError("Unknown task.", fields={"task_id": [f"No task {task_id!r}."]})
        tasks = tuple(
            replace(task, status=TaskStatus(status)) if task.id == task_id else task
            for task in self.tasks
        )
        return replace(self, tasks=tasks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ruleset_version": self.ruleset_version,
            "workflow": str(self.workflow),
            "placement": str(self.placement),
            "inference_tiers": [str(tier) for tier in self.inference_tiers],
            "phases": [
                {
                    "key": phase.key,
                    "first_day": phase.first_day,
                    "last_day": phase.last_day,
                    "title": phase.title,
                    "tasks": [task.to_dict() for task in self.tasks_in(phase.key)],
                }
                for phase in PHASES
            ],
            "metrics": [metric.to_dict() for metric in self.metrics],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NinetyDayPlan:
        tasks = tuple(
            PlanTask.from_dict(task) for phase in data["phases"] for task in phase["tasks"]
        )
        return cls(
            ruleset_version=str(data["ruleset_version"]),
            workflow=Workflow(data["workflow"]),
            placement=Placement(data["placement"]),
            inference_tiers=tuple(Tier(tier) for tier in data["inference_tiers"]),
            tasks=tasks,
            metrics=tuple(SuccessMetric.from_dict(metric) for metric in data["metrics"]),
        )


# --- Plan generation --------------------------------------------------------------------------


_SEED = "playbook: 90-day plan"


class TaskEvidence(StrEnum):
    """Kinds of evidence that show a task is done without anyone ticking it.

    A task row names at most one; the plan board asks the organisation's records whether such
    evidence exists for the plan (see ``roi.selectors.task_evidence_for_plan``).
    """

    SCORED_STACKS = "scorecard.scored_stacks"  # a scorecard with >= 2 fully scored candidates
    ROI_SCENARIO = "roi.scenario"  # an ROI scenario for the plan's assessment
    VALIDATED_MODEL = "model.validation_passed"  # a model version passed validation
    ROLLOUT = "rollout.exists"  # a staged rollout was created
    FIELD_TELEMETRY = "telemetry.latency"  # the fleet reported latency since the plan started
    FIELD_OFFLINE = "telemetry.offline"  # the fleet reported offline coverage
    FIELD_THERMAL = "telemetry.throttling"  # the fleet reported thermal throttling samples


@dataclass(frozen=True)
class PlanFacts:
    """What the task conditions read from a wizard result, computed once per plan."""

    local: bool  # a local tier (on-device or near-edge) runs inference
    cloud_inference: bool
    private: bool  # high privacy risk or PHI
    phi: bool
    has_hardware: bool
    tiers: frozenset[Tier]  # every tier the placement uses, helpers included
    optional_tiers: frozenset[Tier]  # helper tiers the rules marked optional
    workflow: Workflow
    model_changes_per_year: float
    sites: int
    has_outage: bool
    has_payload: bool
    text: Mapping[str, Any]  # the values task details are formatted with

    @classmethod
    def of(cls, result: WizardResult) -> PlanFacts:
        answers = result.answers
        inference = set(result.inference_tiers)
        return cls(
            local=bool(inference & set(LOCAL_TIERS)),
            cloud_inference=Tier.CLOUD in inference,
            private=answers.privacy_risk is PrivacyRisk.HIGH or answers.phi_involved,
            phi=answers.phi_involved,
            has_hardware=bool(answers.hardware),
            tiers=frozenset(result.all_tiers),
            optional_tiers=frozenset(part.tier for part in result.parts if part.optional)
            - inference,
            workflow=answers.workflow,
            model_changes_per_year=answers.model_changes_per_year,
            sites=answers.sites,
            has_outage=bool(answers.longest_outage_hours),
            has_payload=bool(answers.payload_kb),
            text={
                "summary": result.summary,
                "ruleset_version": result.ruleset_version,
                "workflow_name": answers.workflow.value.replace("_", " "),
                "payload_kb": answers.payload_kb,
                "rate": answers.inferences_per_device_per_minute,
                "devices_per_site": answers.devices_per_site,
                "model_changes_per_year": answers.model_changes_per_year,
                "longest_outage_hours": answers.longest_outage_hours,
                "latency_tolerance_ms": answers.latency_tolerance_ms,
                "sites": answers.sites,
                "sites_after_pilot": answers.sites - 2,
            },
        )


@dataclass(frozen=True, kw_only=True)
class When:
    """A declarative condition on :class:`PlanFacts`: every field given must hold.

    ``tier``: the placement uses that tier (as inference or as a helper); a task conditioned on
    a helper tier the rules marked optional is titled "Optional: ...".
    """

    local: bool | None = None
    cloud_inference: bool | None = None
    private: bool | None = None
    phi: bool | None = None
    has_hardware: bool | None = None
    has_outage: bool | None = None
    has_payload: bool | None = None
    tier: Tier | None = None
    workflow: Workflow | None = None
    min_model_changes_per_year: float | None = None
    min_sites: int | None = None

    def holds(self, facts: PlanFacts) -> bool:
        flags = (
            "local",
            "cloud_inference",
            "private",
            "phi",
            "has_hardware",
            "has_outage",
            "has_payload",
        )
        for name in flags:
            wanted = getattr(self, name)
            if wanted is not None and getattr(facts, name) is not wanted:
                return False
        return (
            (self.tier is None or self.tier in facts.tiers)
            and (self.workflow is None or facts.workflow is self.workflow)
            and (
                self.min_model_changes_per_year is None
                or facts.model_changes_per_year >= self.min_model_changes_per_year
            )
            and (self.min_sites is None or facts.sites >= self.min_sites)
        )


ALWAYS = When()


@dataclass(frozen=True, kw_only=True)
class TaskRow:
    """One row of the task table: a task and the plans it belongs to.

    ``detail`` is a text formatted with :attr:`PlanFacts.text`, or ``(condition, text)`` pairs of
    which the first that holds is used (the last is usually :data:`ALWAYS`). ``days`` is the
    task's window (``None``: its phase's days). ``evidence``: what ticks it done by itself.
    """

    id: str
    phase: str
    title: str
    detail: str | tuple[tuple[When, str], ...]
    owner: OwnerRole
    when: When = ALWAYS
    days: tuple[int, int] | None = None
    source: str = _SEED
    status: TaskStatus = TaskStatus.TODO
    evidence: TaskEvidence | None = None

    def applies_to(self, facts: PlanFacts) -> bool:
        return self.when.holds(facts)

    def task(self, facts: PlanFacts) -> PlanTask:
        if isinstance(self.detail, str):
            detail = self.detail
        else:
            detail = next(text for condition, text in self.detail if condition.holds(facts))
        title = self.title
        if self.when.tier is not None and self.when.tier in facts.optional_tiers:
            title = f"Optional: {title[0].lower()}{title[1:]}"
        return PlanTask(
            self.id,
            self.phase,
            title,
            detail.format(**facts.text),
            self.owner,
            self.status,
            self.source,
        )


_P1, _P2, _P3, _P4 = PHASE_KEYS
_LOCAL = When(local=True)
_PRIVATE = "tailored: high privacy risk or PHI"
_PHI = "tailored: PHI"
_NEAR_EDGE = "tailored: near-edge"
_ON_DEVICE = "tailored: on-device"
_CLOUD = "tailored: cloud inference"

#: The plan's tasks in board order: the seed's steps and the tasks tailored to the answers.
TASK_ROWS: tuple[TaskRow, ...] = (
    # Days 1-15: the assessment already did two of the seed's three steps.
    TaskRow(
        id="pick_workflow",
        phase=_P1,
        title="Pick one workflow with clear operational impact",
        detail="Assessed workflow: {workflow_name}.",
        owner=OwnerRole.PLANNER,
        status=TaskStatus.DONE,
        days=(1, 5),
    ),
    TaskRow(
        id="decide_placement",
        phase=_P1,
        title="Decide inference placement using the decision rules",
        detail="{summary} (ruleset {ruleset_version}).",
        owner=OwnerRole.PLANNER,
        status=TaskStatus.DONE,
        days=(1, 5),
    ),
    TaskRow(
        id="define_success_metrics",
        phase=_P1,
        title="Define success metrics: latency targets, offline coverage, accuracy threshold, "
        "and support KPIs",
        detail="Draft targets are generated below; confirm or adjust them before building.",
        owner=OwnerRole.PLANNER,
        status=TaskStatus.DOING,
    ),
    TaskRow(
        id="score_stacks_before_buying",
        phase=_P1,
        title="Score two or three candidate stacks before buying hardware",
        detail="Use the stack scorecard; \u201cwe picked the hardware first\u201d is the "
        "playbook's first failure mode.",
        owner=OwnerRole.PLANNER,
        when=When(local=True, has_hardware=False),
        source="tailored: no existing hardware",
        evidence=TaskEvidence.SCORED_STACKS,
    ),
    TaskRow(
        id="design_data_minimisation",
        phase=_P1,
        title="Design data minimisation: what leaves the device or gateway",
        detail="Send predictions and events, not raw sensitive media; decide what is stored "
        "locally and when it is deleted.",
        owner=OwnerRole.PLANNER,
        when=When(private=True),
        source=_PRIVATE,
    ),
    TaskRow(
        id="label_ai_assistance",
        phase=_P1,
        title="Agree user-facing labelling: AI assistance vs clinical decision",
        detail="Seed healthcare control; agree it with clinical leads before the prototype.",
        owner=OwnerRole.PLANNER,
        when=When(phi=True),
        source=_PHI,
    ),
    TaskRow(
        id="confirm_cloud_governance",
        phase=_P1,
        title="Confirm data governance allows sending these inputs to the cloud",
        detail="Cloud inference fits only when \u201cdata governance allows sending inputs to "
        "the cloud\u201d.",
        owner=OwnerRole.PLANNER,
        when=When(cloud_inference=True),
        source=_CLOUD,
    ),
    # Days 16-45: build a reference deployment.
    TaskRow(
        id="select_runtime",
        phase=_P2,
        title="Select a runtime stack and validate model conversion",
        detail=(
            (
                _LOCAL,
                "Run an early conversion spike that covers your exact operators and data "
                "shapes; record operator coverage, INT8/FP16 accuracy drop and P95 on the "
                "target.",
            ),
            (ALWAYS, "Select the serving runtime and confirm the model loads unchanged."),
        ),
        owner=OwnerRole.APPROVER,
        days=(16, 30),
        evidence=TaskEvidence.VALIDATED_MODEL,
    ),
    TaskRow(
        id="prototype_real_payloads",
        phase=_P2,
        title="Prototype with real payloads",
        detail=(
            (
                When(has_payload=True),
                "Use {payload_kb:g} KB at {rate:g} per device per minute; measure the latency "
                "distribution, not just averages.",
            ),
            (
                ALWAYS,
                "Use the payload sizes and rates seen in the field; measure the latency "
                "distribution, not just averages.",
            ),
        ),
        owner=OwnerRole.APPROVER,
    ),
    TaskRow(
        id="device_identity",
        phase=_P2,
        title="Implement device identity",
        detail="Enroll each device or gateway with a one-time token and its own key.",
        owner=OwnerRole.ADMIN,
    ),
    TaskRow(
        id="signed_model_loading",
        phase=_P2,
        title="Implement signed model loading",
        detail="Devices load only models whose signature verifies against the organisation's key.",
        owner=OwnerRole.ADMIN,
    ),
    TaskRow(
        id="structured_events",
        phase=_P2,
        title="Implement structured event output",
        detail="Emit predictions, confidence and model version as events; sync only what you need.",
        owner=OwnerRole.APPROVER,
    ),
    TaskRow(
        id="provision_gateways",
        phase=_P2,
        title="Provision site gateways: hardware, power, network and enrollment",
        detail="One gateway serves the {devices_per_site} device(s) at each site; plan power, "
        "cooling and local log retention.",
        owner=OwnerRole.ADMIN,
        when=When(tier=Tier.NEAR_EDGE),
        source=_NEAR_EDGE,
    ),
    TaskRow(
        id="package_model_for_devices",
        phase=_P2,
        title="Package the model for the device runtime and ship it in the app",
        detail="Quantised model within the app's size budget; offline-first UX so the "
        "workflow completes without a network.",
        owner=OwnerRole.APPROVER,
        when=When(tier=Tier.ON_DEVICE),
        source=_ON_DEVICE,
    ),
    TaskRow(
        id="show_model_version",
        phase=_P2,
        title="Show the model version in the app for support",
        detail="Seed field-service control: support needs to know which model answered.",
        owner=OwnerRole.APPROVER,
        when=When(tier=Tier.ON_DEVICE),
        source=_ON_DEVICE,
    ),
    TaskRow(
        id="define_escalation_contract",
        phase=_P2,
        title="Define which cases go to which tier and what syncs",
        detail="Which cases escalate to the cloud, and whether features, embeddings, "
        "predictions or aggregated metrics are synced.",
        owner=OwnerRole.PLANNER,
        when=When(local=True, cloud_inference=True),
        source="tailored: hybrid",
    ),
    TaskRow(
        id="encrypt_and_retain",
        phase=_P2,
        title="Encrypt at rest and in transit; delete raw inputs on schedule",
        detail="Store raw inputs securely only as long as needed.",
        owner=OwnerRole.ADMIN,
        when=When(private=True),
        source=_PRIVATE,
    ),
    TaskRow(
        id="audit_and_access",
        phase=_P2,
        title="Audit logs and least-privilege access for PHI",
        detail="Seed healthcare control: signed artifacts, audit logs, access controls.",
        owner=OwnerRole.ADMIN,
        when=When(phi=True),
        source=_PHI,
    ),
    TaskRow(
        id="automate_rollout",
        phase=_P2,
        title="Automate staged rollout and rollback before the first site",
        detail="{model_changes_per_year:g} model changes a year must reach every device "
        "without manual work.",
        owner=OwnerRole.APPROVER,
        when=When(local=True, min_model_changes_per_year=12),
        source="tailored: frequent model changes at the edge",
    ),
    # Days 46-70: field-like tests.
    TaskRow(
        id="test_offline",
        phase=_P3,
        title="Test offline scenarios",
        detail=(
            (
                When(local=True, has_outage=True),
                "Cut connectivity for {longest_outage_hours:g} h (the longest outage answered) "
                "and confirm the workflow completes; check what happens to logs and telemetry.",
            ),
            (
                _LOCAL,
                "Cut connectivity and confirm the workflow completes; check what happens to "
                "logs and telemetry.",
            ),
            (ALWAYS, "Confirm the workflow degrades safely when the cloud is unreachable."),
        ),
        owner=OwnerRole.APPROVER,
        evidence=TaskEvidence.FIELD_OFFLINE,
    ),
    TaskRow(
        id="validate_power_thermal",
        phase=_P3,
        title="Validate power/thermal behavior",
        detail="Run continuously and measure the slowdown after 10 and 20 minutes.",
        owner=OwnerRole.APPROVER,
        when=_LOCAL,
        evidence=TaskEvidence.FIELD_THERMAL,
    ),
    TaskRow(
        id="capture_observability",
        phase=_P3,
        title="Capture observability data: latency, confidence, failure modes",
        detail="Check drift can be measured without streaming everything.",
        owner=OwnerRole.APPROVER,
        evidence=TaskEvidence.FIELD_TELEMETRY,
    ),
    TaskRow(
        id="gateway_failure_test",
        phase=_P3,
        title="Test the site when the gateway restarts or loses the WAN",
        detail="Devices keep working against the gateway; local logs are kept and synced later.",
        owner=OwnerRole.APPROVER,
        when=When(tier=Tier.NEAR_EDGE),
        source=_NEAR_EDGE,
    ),
    TaskRow(
        id="full_shift_device_test",
        phase=_P3,
        title="Run a full shift on the devices",
        detail="Battery, heat and latency at the end of the shift, not only at the start.",
        owner=OwnerRole.APPROVER,
        when=When(tier=Tier.ON_DEVICE),
        source=_ON_DEVICE,
    ),
    TaskRow(
        id="cloud_latency_from_site",
        phase=_P3,
        title="Measure end-to-end P95 time-to-action from a real site",
        detail="Capture to UI update against the {latency_tolerance_ms:g} ms tolerance.",
        owner=OwnerRole.APPROVER,
        when=When(cloud_inference=True),
        source=_CLOUD,
    ),
    TaskRow(
        id="tune_confidence_thresholds",
        phase=_P3,
        title="Tune confidence thresholds per lane/site; route low-confidence cases to a human",
        detail="Seed dock-vision controls: human-in-the-loop for low-confidence cases.",
        owner=OwnerRole.PLANNER,
        when=When(workflow=Workflow.LOGISTICS_DOCK_VISION),
        source="tailored: logistics dock vision",
    ),
    # Days 71-90: staged rollout.
    TaskRow(
        id="start_with_pilot_sites",
        phase=_P4,
        title="Start with 1-2 sites",
        detail="Pick the pilot sites out of {sites}.",
        owner=OwnerRole.PLANNER,
        days=(71, 75),
    ),
    TaskRow(
        id="staged_releases",
        phase=_P4,
        title="Use staged model releases and rollback",
        detail="Canary site first, then waves; rehearse a rollback before it is needed.",
        owner=OwnerRole.APPROVER,
        evidence=TaskEvidence.ROLLOUT,
    ),
    TaskRow(
        id="operator_feedback_loop",
        phase=_P4,
        title="Build a feedback loop from operators to model improvement",
        detail=(
            (
                When(workflow=Workflow.FIELD_SERVICE_TRIAGE),
                "Post-job feedback in the app: thumbs up/down + reason.",
            ),
            (ALWAYS, "Operators flag wrong predictions; reviewed cases feed retraining."),
        ),
        owner=OwnerRole.PLANNER,
    ),
    TaskRow(
        id="compliant_retraining",
        phase=_P4,
        title="Agree the compliance-approved retraining pipeline",
        detail="Seed healthcare pattern: the cloud retrains on de-identified data only.",
        owner=OwnerRole.PLANNER,
        when=When(phi=True),
        source=_PHI,
    ),
    TaskRow(
        id="plan_remaining_waves",
        phase=_P4,
        title="Plan the waves for the remaining sites",
        detail="{sites_after_pilot} more site(s) after the pilot; gates on measured metrics.",
        owner=OwnerRole.APPROVER,
        when=When(local=True, min_sites=3),
        source="tailored: multi-site local inference",
    ),
    TaskRow(
        id="recompute_roi_with_measurements",
        phase=_P4,
        title="Recompute the ROI scenario with measured values",
        detail="Replace assumptions with what the pilot measured and compare planned vs measured.",
        owner=OwnerRole.PLANNER,
        source="OpsHero: planned vs measured",
        days=(81, 90),
        evidence=TaskEvidence.ROI_SCENARIO,
    ),
)

_ROWS_BY_ID: dict[str, TaskRow] = {row.id: row for row in TASK_ROWS}


def _tasks(result: WizardResult) -> list[PlanTask]:
    """The rows of :data:`TASK_ROWS` whose condition holds for the result, in table order."""
    facts = PlanFacts.of(result)
    return [row.task(facts) for row in TASK_ROWS if row.applies_to(facts)]


def task_row(task_id: str) -> TaskRow | None:
    """The table row of a task id (``None`` for an id no longer in the table)."""
    return _ROWS_BY_ID.get(task_id)


def _metrics(result: WizardResult, targets: MetricTargets) -> tuple[SuccessMetric, ...]:
    answers = result.answers
    local_primary = result.primary_tier in LOCAL_TIERS
    local = result.local_tier is not None
    metrics = [
        SuccessMetric(
            "latency_p95",
            "P95 time-to-action",
            targets.latency_p95_ms
            if targets.latency_p95_ms is not None
            else float(answers.latency_tolerance_ms),
            "ms",
            Direction.AT_MOST,
            MeasureKey.LATENCY_P95_MS,
            "The latency tolerance answered in the wizard, at P95 (the playbook: measure the "
            "distribution, not the average).",
        )
    ]
    if local:
        default_offline = 0.95 if local_primary else 0.80
        metrics.append(
            SuccessMetric(
                "offline_coverage",
                "Share of the workflow completing offline",
                targets.offline_coverage
                if targets.offline_coverage is not None
                else default_offline,
                "share",
                Direction.AT_LEAST,
                MeasureKey.OFFLINE_COVERAGE,
                "Assumption: local-primary placements should complete 95 % of the workflow "
                "offline, a cloud-primary hybrid 80 % through its local fallback.",
            )
        )
    metrics.append(
        SuccessMetric(
            "accuracy",
            "Accuracy on real-world data",
            targets.accuracy,
            "share",
            Direction.AT_LEAST,
            MeasureKey.ACCURACY,
            "Assumption until set from the baseline accuracy on real-world data.",
        )
    )
    if local:
        metrics.append(
            SuccessMetric(
                "int8_accuracy_drop",
                "INT8 accuracy drop vs FP32",
                targets.int8_accuracy_drop_points,
                "points",
                Direction.AT_MOST,
                MeasureKey.INT8_ACCURACY_DROP,
                "MLPerf edge accepts 99 % of FP32 accuracy, about 1 point.",
            )
        )
        metrics.append(
            SuccessMetric(
                "operator_coverage",
                "Operators running natively on the target",
                targets.operator_coverage,
                "share",
                Direction.AT_LEAST,
                MeasureKey.OPERATOR_COVERAGE,
                "The conversion spike must cover your exact operators (a 4/5 on the scorecard).",
            )
        )
    metrics.append(
        SuccessMetric(
            "calibration_ece",
            "Expected calibration error (15 bins)",
            targets.ece,
            "ratio",
            Direction.AT_MOST,
            MeasureKey.ECE,
            "Assumption: confidence scores must be meaningful to gate human review.",
        )
    )
    metrics.append(
        SuccessMetric(
            "rollout_time",
            "Model rollout time",
            targets.rollout_hours
            if targets.rollout_hours is not None
            else (24.0 if local else 2.0),
            "h",
            Direction.AT_MOST,
            MeasureKey.ROLLOUT_HOURS,
            "Assumption: a staged edge rollout completes within a day, a cloud one in hours.",
        )
    )
    metrics.append(
        SuccessMetric(
            "rollback_time",
            "Model rollback time",
            targets.rollback_minutes
            if targets.rollback_minutes is not None
            else (30.0 if local else 10.0),
            "min",
            Direction.AT_MOST,
            MeasureKey.ROLLBACK_MINUTES,
            "Assumption: a bad model must be off the fleet within half an hour.",
        )
    )
    metrics.append(
        SuccessMetric(
            "time_to_diagnose",
            "Average time-to-diagnose inference issues in the field",
            targets.time_to_diagnose_hours,
            "h",
            Direction.AT_MOST,
            MeasureKey.TIME_TO_DIAGNOSE_HOURS,
            "Assumption: a support KPI within half a working day.",
        )
    )
    return tuple(metrics)


def generate_plan(*, result: WizardResult, targets: MetricTargets | None = None) -> NinetyDayPlan:
    """The 90-day plan for a wizard result, with draft success metrics."""
    targets = targets or MetricTargets()
    validate_targets(targets=targets)
    return NinetyDayPlan(
        ruleset_version=result.ruleset_version,
        workflow=result.answers.workflow,
        placement=result.placement,
        inference_tiers=result.inference_tiers,
        tasks=tuple(_tasks(result)),
        metrics=_metrics(result, targets),
    )


# --- The board: dates, evidence and where each task stands -----------------------------------


@dataclass(frozen=True)
class EvidenceFound:
    """Something in the organisation's records that shows a task is done, in plain words.

    ``url`` is the page that shows it ("" when it has no page).
    """

    kind: TaskEvidence
    summary: str
    url: str = ""


class Timing(StrEnum):
    """Where a task stands against its dates."""

    DONE = "done"
    OVERDUE = "overdue"  # its last day has passed and it is not done
    CURRENT = "current"  # today is within its days
    UPCOMING = "upcoming"


def day_date(start: date, day: int) -> date:
    """The calendar date of plan day ``day``: day 1 is the start date."""
    return start + timedelta(days=day - 1)


@dataclass(frozen=True)
class TaskState:
    """A task as the board shows it: its status (done by evidence or as set), dates, timing."""

    task: PlanTask
    status: TaskStatus
    evidence: EvidenceFound | None
    first_day: int
    last_day: int
    first_date: date
    last_date: date
    timing: Timing

    @property
    def done_by_evidence(self) -> bool:
        return self.evidence is not None


def _phase(key: str) -> Phase | None:
    return next((phase for phase in PHASES if phase.key == key), None)


def task_days(task: PlanTask) -> tuple[int, int]:
    """The task's days: its table row's, else its phase's (a task no longer in the table)."""
    row = task_row(task.id)
    if row is not None and row.days is not None:
        return row.days
    phase = _phase(task.phase)
    return (phase.first_day, phase.last_day) if phase else (1, 90)


def timing_of(*, status: TaskStatus, first: date, last: date, today: date) -> Timing:
    if status is TaskStatus.DONE:
        return Timing.DONE
    if today > last:
        return Timing.OVERDUE
    if today >= first:
        return Timing.CURRENT
    return Timing.UPCOMING


def task_states(
    *,
    tasks: Iterable[PlanTask],
    evidence: Mapping[TaskEvidence, EvidenceFound],
    start: date,
    today: date,
) -> tuple[TaskState, ...]:
    """Each task with its dates and timing; a task whose evidence exists is done by it.

    The status a person set is kept for tasks without evidence (or whose evidence is not there
    yet); evidence never makes a task less done.
    """
    states = []
    for task in tasks:
        row = task_row(task.id)
        found = evidence.get(row.evidence) if row is not None and row.evidence else None
        status = TaskStatus.DONE if found is not None else task.status
        first_day, last_day = task_days(task)
        first, last = day_date(start, first_day), day_date(start, last_day)
        states.append(
            TaskState(
                task=task,
                status=status,
                evidence=found,
                first_day=first_day,
                last_day=last_day,
                first_date=first,
                last_date=last,
                timing=timing_of(status=status, first=first, last=last, today=today),
            )
        )
    return tuple(states)


# --- Measurements and their sources ----------------------------------------------------------


def _date(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d}" if value is not None else "?"


@dataclass(frozen=True)
class Measurement:
    """A live figure: what it measures, its value and unit, where and when it came from.

    ``provenance`` says whether it was taken in the lab or in the field, and the fields after it
    say where: a lab figure names the target profile it was measured against and, for latency,
    the shape bucket (the worst one, as the validation gate uses); a field figure names the
    sites, how many devices reported and the window it covers.
    """

    key: str
    value: float
    unit: str
    source: str
    measured_at: datetime
    provenance: Provenance
    detail: str = ""
    # lab
    target: str = ""
    bucket: str = ""
    # field
    sites: tuple[str, ...] = ()
    device_count: int | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "provenance", Provenance(self.provenance))
        object.__setattr__(self, "sites", tuple(str(site) for site in self.sites))
        if self.provenance is Provenance.LAB and not self.target:
            raise ValueError(f"A lab measurement of {self.key!r} must name its target profile.")
        if self.provenance is Provenance.FIELD:
            if self.window_start is None or self.window_end is None:
                raise ValueError(f"A field measurement of {self.key!r} must give its window.")
            if self.window_start > self.window_end:
                raise ValueError(f"The window of {self.key!r} ends before it starts.")

    @property
    def where(self) -> str:
        """Where it came from, in words: "lab: <target>, bucket <b>" or "field: ..."."""
        if self.provenance is Provenance.LAB:
            bucket = f", bucket {self.bucket}" if self.bucket else ""
            return f"lab: {self.target}{bucket}"
        parts = []
        if self.device_count is not None:
            parts.append(f"{self.device_count} device{'s' if self.device_count != 1 else ''}")
        if self.sites:
            parts.append(f"at {', '.join(self.sites)}")
        parts.append(f"{_date(self.window_start)} to {_date(self.window_end)}")
        return "field: " + " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "value": self.value,
            "unit": self.unit,
            "source": self.source,
            "measured_at": self.measured_at.isoformat(),
            "provenance": str(self.provenance),
            "detail": self.detail,
            "target": self.target,
            "bucket": self.bucket,
            "sites": list(self.sites),
            "device_count": self.device_count,
            "window_start": self.window_start.isoformat() if self.window_start else None,
            "window_end": self.window_end.isoformat() if self.window_end else None,
            "where": self.where,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Measurement:
        def when(name: str) -> datetime | None:
            value = data.get(name)
            return datetime.fromisoformat(str(value)) if value else None

        device_count = data.get("device_count")
        return cls(
            key=str(data["key"]),
            value=float(data["value"]),
            unit=str(data["unit"]),
            source=str(data["source"]),
            measured_at=datetime.fromisoformat(str(data["measured_at"])),
            provenance=Provenance(data["provenance"]),
            detail=str(data.get("detail", "")),
            target=str(data.get("target", "")),
            bucket=str(data.get("bucket", "")),
            sites=tuple(str(site) for site in data.get("sites") or ()),
            device_count=int(device_count) if device_count is not None else None,
            window_start=when("window_start"),
            window_end=when("window_end"),
        )


class Tracking(StrEnum):
    ON_TRACK = "on_track"
    OFF_TRACK = "off_track"
    NOT_MEASURED = "not_measured"


@dataclass(frozen=True)
class MetricStatus:
    """A metric's state, the measurement that decided it (of the metric's deciding provenance),
    and ``reference``: a figure of the other provenance, shown beside it, that decides nothing."""

    metric: SuccessMetric
    state: Tracking
    measurement: Measurement | None
    reason: str
    reference: Measurement | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric.to_dict(),
            "state": str(self.state),
            "decided_by": str(self.metric.decided_by),
            "measurement": self.measurement.to_dict() if self.measurement else None,
            "reference": self.reference.to_dict() if self.reference else None,
            "reason": self.reason,
        }


def _shown(value: float, unit: str) -> str:
    if unit == "share":
        return f"{value * 100:.4g} %"
    return f"{value:.4g} {unit}"


#: What a source reports for a key: at most one measurement per provenance.
MeasurementsByKey = Mapping[str, Iterable[Measurement]]


def _by_provenance(found: Iterable[Measurement] | None) -> dict[Provenance, Measurement]:
    return {measurement.provenance: measurement for measurement in found or ()}


def evaluate_metrics(
    *, metrics: Iterable[SuccessMetric], measurements: MeasurementsByKey
) -> tuple[MetricStatus, ...]:
    """Each metric against its live measurement: on track, off track, or not measured yet.

    Only a measurement of the metric's deciding provenance decides its state; a measurement of
    the other provenance is returned as the status's ``reference`` and named in the reason.
    """
    statuses = []
    for metric in metrics:
        decided_by = metric.decided_by
        found = _by_provenance(measurements.get(metric.measure_key))
        measurement = found.pop(decided_by, None)
        reference = next(iter(found.values()), None)
        beside = ""
        if reference is not None:
            shown = (
                _shown(reference.value, metric.unit)
                if reference.unit.strip().lower() == metric.unit.lower()
                else f"{reference.value:.4g} {reference.unit}"
            )
            beside = (
                f" The {reference.provenance} figure, {shown} ({reference.where}), is shown for "
                f"reference and does not decide it."
            )
        if measurement is None:
            statuses.append(
                MetricStatus(
                    metric,
                    Tracking.NOT_MEASURED,
                    None,
                    f"Not measured yet: no {decided_by} source has reported "
                    f"{metric.measure_key}.{beside}",
                    reference,
                )
            )
            continue
        if not math.isfinite(measurement.value):
            statuses.append(
                MetricStatus(
                    metric,
                    Tracking.NOT_MEASURED,
                    measurement,
                    f"{measurement.source} reported a value that is not a number.{beside}",
                    reference,
                )
            )
            continue
        if measurement.unit.strip().lower() != metric.unit.lower():
            statuses.append(
                MetricStatus(
                    metric,
                    Tracking.NOT_MEASURED,
                    measurement,
                    f"{measurement.source} reports {measurement.unit!r}, the target is in "
                    f"{metric.unit!r}: not comparable.{beside}",
                    reference,
                )
            )
            continue
        on_track = metric.is_met_by(measurement.value)
        comparison = "<=" if metric.direction is Direction.AT_MOST else ">="
        verdict = "meets" if on_track else "misses"
        statuses.append(
            MetricStatus(
                metric,
                Tracking.ON_TRACK if on_track else Tracking.OFF_TRACK,
                measurement,
                f"{_shown(measurement.value, metric.unit)} {verdict} the target "
                f"{comparison} {_shown(metric.target, metric.unit)} ({measurement.source}, "
                f"{measurement.measured_at:%Y-%m-%d}; {measurement.where}).{beside}",
                reference,
            )
        )
    return tuple(statuses)


MeasureContext = Mapping[str, Any]
MeasureSource = Callable[[MeasureContext], Measurement | None]


class MeasureRegistry:
    """Measurement sources by key and provenance: at most one small function for each
    ``(key, provenance)``, called with the caller's context (e.g. ``{"organisation": org,
    "plan": plan}``). A source returns ``None`` when it has nothing yet; an exception in a source
    propagates, because a broken source must be fixed rather than shown as "not measured"."""

    def __init__(self) -> None:
        self._sources: dict[tuple[str, Provenance], MeasureSource] = {}

    def register(
        self, key: str, *, provenance: Provenance, overwrite: bool = False
    ) -> Callable[[MeasureSource], MeasureSource]:
        """Decorator: ``@register_source("latency.p95_ms", provenance=Provenance.FIELD)``."""
        slot = (str(key), Provenance(provenance))

        def decorator(source: MeasureSource) -> MeasureSource:
            if slot in self._sources and not overwrite:
                raise ValueError(
                    f"A {slot[1]} measurement source is already registered for {key!r}."
                )
            self._sources[slot] = source
            return source

        return decorator

    def unregister(self, key: str, *, provenance: Provenance) -> None:
        self._sources.pop((str(key), Provenance(provenance)), None)

    def source(self, key: str, *, provenance: Provenance) -> MeasureSource | None:
        return self._sources.get((str(key), Provenance(provenance)))

    def keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(key for key, _ in self._sources))

    def slots(self) -> tuple[tuple[str, Provenance], ...]:
        """Every registered ``(key, provenance)``."""
        return tuple(self._sources)

    def collect(
        self, *, keys: Iterable[str], context: MeasureContext
    ) -> dict[str, tuple[Measurement, ...]]:
        """The latest measurement per key and provenance (lab first, then field); an empty tuple
        for keys without a source or a value."""
        found: dict[str, tuple[Measurement, ...]] = {}
        for key in keys:
            measured = []
            for provenance in Provenance:
                source = self._sources.get((str(key), provenance))
                measurement = source(context) if source is not None else None
                if measurement is None:
                    continue
                if measurement.key != key or measurement.provenance is not provenance:
                    raise ValueError(
                        f"The {provenance} source registered for {key!r} returned a "
                        f"{measurement.provenance} measurement of {measurement.key!r}."
                    )
                measured.append(measurement)
            found[key] = tuple(measured)
        return found


registry = MeasureRegistry()


def register_source(
    key: str, *, provenance: Provenance, overwrite: bool = False
) -> Callable[[MeasureSource], MeasureSource]:
    """Register a measurement source in the default registry (see :class:`MeasureRegistry`)."""
    return registry.register(key, provenance=provenance, overwrite=overwrite)


def collect(*, keys: Iterable[str], context: MeasureContext) -> dict[str, tuple[Measurement, ...]]:
    """Collect measurements from the default registry."""
    return registry.collect(keys=keys, context=context)


# Measurements that replace ROI assumptions for planned-vs-measured: measure key -> the ROI
# input (per placement), the unit the measurement must be in, and the factor converting it to
# the input's unit. Only a measurement of the key's deciding provenance (field, for all of them)
# replaces an assumption. Staff hours are staff hours: how long a rollout or rollback took end to
# end (rollout.duration_hours, rollout.rollback_minutes) says nothing about the staff time it
# cost, so the durations feed only their plan metrics.
ROI_INPUT_FOR_MEASURE: dict[str, tuple[str, str, float]] = {
    MeasureKey.OFFLINE_COVERAGE: ("offline.completes_offline", "share", 1.0),
    MeasureKey.STAFF_HOURS_PER_ROLLOUT: ("maintenance.rollout_hours", "h", 1.0),
    MeasureKey.STAFF_HOURS_PER_ROLLBACK: ("maintenance.rollback_hours", "h", 1.0),
}


def roi_measured_values(
    *, placement: Placement, measurements: MeasurementsByKey
) -> dict[str, float]:
    """ROI inputs that measurements can replace, named for ``recompute_with_measurements``.

    Only measurements of the key's deciding provenance count; measurements in another unit than
    expected, or not a number, are skipped.
    """
    values: dict[str, float] = {}
    for key, (input_key, unit, factor) in ROI_INPUT_FOR_MEASURE.items():
        measurement = _by_provenance(measurements.get(key)).get(deciding_provenance(key))
        if (
            measurement is not None
            and measurement.unit.strip().lower() == unit
            and math.isfinite(measurement.value)
        ):
            values[f"{input_key}.{placement}"] = measurement.value * factor
    return values


__all__ = [
    "DECIDING_PROVENANCE",
    "PHASES",
    "ROI_INPUT_FOR_MEASURE",
    "TASK_ROWS",
    "Direction",
    "EvidenceFound",
    "MeasureContext",
    "MeasureKey",
    "MeasureRegistry",
    "MeasureSource",
    "Measurement",
    "MeasurementsByKey",
    "MetricStatus",
    "MetricTargets",
    "NinetyDayPlan",
    "OwnerRole",
    "Phase",
    "PlanTask",
    "Provenance",
    "SuccessMetric",
    "TaskEvidence",
    "TaskRow",
    "TaskState",
    "TaskStatus",
    "Timing",
    "Tracking",
    "When",
    "collect",
    "day_date",
    "deciding_provenance",
    "evaluate_metrics",
    "generate_plan",
    "register_source",
    "registry",
    "roi_measured_values",
    "task_days",
    "task_row",
    "task_states",
]
