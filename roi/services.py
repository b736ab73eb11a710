"""Planning writes: assessments, scorecards, ROI scenarios and 90-day plans.

Every function takes keyword-only arguments, runs in one transaction and records its audit
event inside it. Input is parsed by the pure modules (``WizardAnswers.from_dict``,
``Scorecard.from_dict``, ``RoiInputs.from_dict``, ``MetricTargets.from_dict``), so the API,
the pages and the demo seeder accept exactly the same things; their ``PlanningInputError`` is
turned into ``InvalidInput`` (422) with the same per-field reasons.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from typing import Any

from django.db import transaction
from django.utils import timezone

from opshero.actors import Actor
from opshero.errors import Conflict, InvalidInput
from opshero.models import Organization
from opshero.services import record_audit_event

from . import selectors
from .audit import RoiVerb
from .engine import RoiInputs, analyse
from .models import Assessment, Plan, RoiScenario, Scorecard
from .models import Workflow as WorkflowChoice
from .plan import MetricTargets, NinetyDayPlan, TaskStatus, generate_plan
from .reports import scenario_summary
from .rules import PlanningInputError, WizardAnswers, decide
from .scorecard import Scorecard as PureScorecard

NAME_MAX = 120
MAX_CANDIDATES = 8


@contextmanager
def planning_input() -> Iterator[None]:
    """Re-raise the pure modules' field errors as the platform's 422."""
    try:
        yield
    except PlanningInputError as exc:
        raise InvalidInput(exc.message, fields=exc.fields) from exc


def _name(value: str | None, *, default: str) -> str:
    name = (value or "").strip() or default
    if len(name) > NAME_MAX:
        raise InvalidInput(
            "The name is too long.", fields={"name": [f"At most {NAME_MAX} characters."]}
        )
    return name


def _check_revision(current: int, expected: int | None, what: str) -> None:
    if expected is not None and int(expected) != current:
        raise Conflict(
            f"This {what} was changed by someone else since you opened it (revision {current}, "
            f"you edited revision {expected}). Reload it and apply your change again.",
            code="stale_revision",
            fields={"revision": [f"Current revision is {current}."]},
        )


def _same_org(obj: Any, organization: Organization, field: str) -> None:
    if obj is not None and obj.organization_id != organization.pk:
        # Views resolve ids through org-scoped selectors; this guards direct callers.
        raise InvalidInput("Not found in this organisation.", fields={field: ["Not found."]})


# --- Assessments ----------------------------------------------------------------------------


def _default_assessment_name(answers: WizardAnswers) -> str:
    label = WorkflowChoice(answers.workflow.value).label
    return f"{label} · {timezone.localdate():%d %b %Y}"


@transaction.atomic
def create_assessment(
    *, organization: Organization, actor: Actor, answers: Mapping[str, Any], name: str = ""
) -> Assessment:
    """Decide the placement for the wizard answers and save answers and result together."""
    with planning_input():
        parsed = WizardAnswers.from_dict(answers)
        result = decide(answers=parsed)
    now = timezone.now()
    assessment = Assessment.objects.create(
        organization=organization,
        name=_name(name, default=_default_assessment_name(parsed)),
        workflow=parsed.workflow.value,
        answers=parsed.to_dict(),
        result=result.to_dict(),
        placement=result.placement.value,
        ruleset_version=result.ruleset_version,
        created_by=actor.user,
        created_at=now,
        updated_at=now,
    )
    record_audit_event(
        organization=organization,
        actor=actor,
        verb=RoiVerb.ASSESSMENT_CREATED,
        target=assessment,
        data={
            "placement": assessment.placement,
            "inference_tiers": result.to_dict()["inference_tiers"],
            "ruleset_version": assessment.ruleset_version,
        },
    )
    return assessment


@transaction.atomic
def rename_assessment(*, assessment: Assessment, actor: Actor, name: str) -> Assessment:
    """Rename only: answers and result stay as decided, so shared links stay truthful."""
    old = assessment.name
    assessment.name = _name(name, default=old)
    assessment.updated_at = timezone.now()
    assessment.save(update_fields=["name", "updated_at"])
    record_audit_event(
        organization=assessment.organization,
        actor=actor,
        verb=RoiVerb.ASSESSMENT_RENAMED,
        target=assessment,
        data={"from": old, "to": assessment.name},
    )
    return assessment


@transaction.atomic
def delete_assessment(*, assessment: Assessment, actor: Actor) -> None:
    """Delete an assessment no plan depends on (a plan keeps its assessment as evidence)."""
    plans = list(
        selectors.plans_for_assessment(assessment=assessment).values_list("name", flat=True)
    )
    if plans:
        raise Conflict(
            f"{len(plans)} plan(s) were generated from this assessment "
            f"({', '.join(plans[:3])}); delete them first.",
            code="assessment_in_use",
        )
    record_audit_event(
        organization=assessment.organization,
        actor=actor,
        verb=RoiVerb.ASSESSMENT_DELETED,
        target=assessment,
        data={"placement": assessment.placement},
    )
    assessment.delete()


# --- Scorecards -----------------------------------------------------------------------------


def _parse_scorecard(
    candidates: Any, weights: Any, red_flags_rank_last: bool = True
) -> PureScorecard:
    if not isinstance(candidates, list) or not candidates:
        raise InvalidInput(
            "Add at least one candidate stack.",
            fields={"candidates": ["Add at least one candidate stack."]},
        )
    if len(candidates) > MAX_CANDIDATES:
        raise InvalidInput(
            "Too many candidates.",
            fields={"candidates": [f"Compare at most {MAX_CANDIDATES} stacks at a time."]},
        )
    if weights is not None and not isinstance(weights, Mapping):
        raise InvalidInput("Weights must map categories to numbers.", fields={"weights": ["?"]})
    # Duplicate names are checked here too, so they are reported together with missing
    # scores instead of only after those are fixed.
    duplicates: dict[str, list[str]] = {}
    seen: dict[str, int] = {}
    for index, raw in enumerate(candidates):
        name = str(raw.get("name") or "").strip().lower() if isinstance(raw, Mapping) else ""
        if name and name in seen:
            duplicates[f"candidates[{index}].name"] = [
                f"Same name as candidate {seen[name] + 1}; names must be unique."
            ]
        seen.setdefault(name, index)
    try:
        card = PureScorecard.from_dict(
            {
                "candidates": candidates,
                "weights": weights or {},
                "red_flags_rank_last": red_flags_rank_last,
            }
        )
        card.rank()  # every category scored, weights usable
    except PlanningInputError as exc:
        raise InvalidInput(exc.message, fields={**duplicates, **exc.fields}) from exc
    if duplicates:
        raise InvalidInput("Scorecard: candidate names must be unique.", fields=duplicates)
    return card


@transaction.atomic
def create_scorecard(
    *,
    organization: Organization,
    actor: Actor,
    name: str,
    candidates: list[Mapping[str, Any]],
    weights: Mapping[str, Any] | None = None,
    red_flags_rank_last: bool = True,
    assessment: Assessment | None = None,
) -> Scorecard:
    """Save candidate stacks and weights after checking every score is a whole 1-5."""
    _same_org(assessment, organization, "assessment")
    card = _parse_scorecard(candidates, weights, bool(red_flags_rank_last))
    data = card.to_dict()
    now = timezone.now()
    scorecard = Scorecard.objects.create(
        organization=organization,
        name=_name(name, default="Stack scorecard"),
        assessment=assessment,
        candidates=data["candidates"],
        weights=data["weights"],
        red_flags_rank_last=card.red_flags_rank_last,
        created_by=actor.user,
        created_at=now,
        updated_at=now,
    )
    leader = card.rank()[0]
    record_audit_event(
        organization=organization,
        actor=actor,
        verb=RoiVerb.SCORECARD_CREATED,
        target=scorecard,
        data={"candidates": len(card.candidates), "leader": leader.candidate.name},
    )
    return scorecard


@transaction.atomic
def update_scorecard(
    *,
    scorecard: Scorecard,
    actor: Actor,
    name: str | None = None,
    candidates: list[Mapping[str, Any]] | None = None,
    weights: Mapping[str, Any] | None = None,
    red_flags_rank_last: bool | None = None,
    expected_revision: int | None = None,
) -> Scorecard:
    """Replace candidates and/or weights; refuses an edit made on an older revision (409)."""
    scorecard = Scorecard.objects.select_for_update().get(pk=scorecard.pk)
    _check_revision(scorecard.revision, expected_revision, "scorecard")
    card = _parse_scorecard(
        scorecard.candidates if candidates is None else candidates,
        scorecard.weights if weights is None else weights,
        scorecard.red_flags_rank_last if red_flags_rank_last is None else bool(red_flags_rank_last),
    )
    data = card.to_dict()
    scorecard.name = _name(name, default=scorecard.name)
    scorecard.candidates = data["candidates"]
    scorecard.weights = data["weights"]
    scorecard.red_flags_rank_last = card.red_flags_rank_last
    scorecard.revision += 1
    scorecard.updated_at = timezone.now()
    scorecard.save()
    record_audit_event(
        organization=scorecard.organization,
        actor=actor,
        verb=RoiVerb.SCORECARD_UPDATED,
        target=scorecard,
        data={"revision": scorecard.revision, "leader": card.rank()[0].candidate.name},
    )
    return scorecard


@transaction.atomic
def delete_scorecard(*, scorecard: Scorecard, actor: Actor) -> None:
    """Delete a scorecard; nothing else refers to it."""
    record_audit_event(
        organization=scorecard.organization,
        actor=actor,
        verb=RoiVerb.SCORECARD_DELETED,
        target=scorecard,
    )
    scorecard.delete()


# --- ROI scenarios --------------------------------------------------------------------------


def parse_inputs(data: Mapping[str, Any]) -> RoiInputs:
    """Parse and validate scenario inputs (every problem per field, as a 422)."""
    if not isinstance(data, Mapping):
        raise InvalidInput("The inputs must be an object.", fields={"inputs": ["Not an object."]})
    with planning_input():
        return RoiInputs.from_dict(data)


def _summarise(inputs: RoiInputs) -> dict[str, Any]:
    with planning_input():
        return scenario_summary(analyse(inputs=inputs))


@transaction.atomic
def create_scenario(
    *,
    organization: Organization,
    actor: Actor,
    name: str,
    inputs: Mapping[str, Any],
    assessment: Assessment | None = None,
    workflow: str = "",
    cloned_from: RoiScenario | None = None,
) -> RoiScenario:
    """Save a scenario and cache its headline figures (one Monte Carlo at save time)."""
    _same_org(assessment, organization, "assessment")
    _same_org(cloned_from, organization, "cloned_from")
    if workflow and workflow not in WorkflowChoice.values:
        raise InvalidInput("Unknown workflow.", fields={"workflow": ["Unknown workflow."]})
    parsed = parse_inputs(inputs)
    summary = _summarise(parsed)
    now = timezone.now()
    scenario = RoiScenario.objects.create(
        organization=organization,
        name=_name(name or parsed.name, default="ROI scenario"),
        workflow=workflow or (assessment.workflow if assessment else ""),
        inputs=parsed.to_dict(),
        summary=summary,
        best_placement=summary["best_placement"],
        assessment=assessment,
        cloned_from=cloned_from,
        created_by=actor.user,
        created_at=now,
        updated_at=now,
    )
    record_audit_event(
        organization=organization,
        actor=actor,
        verb=RoiVerb.SCENARIO_CLONED if cloned_from else RoiVerb.SCENARIO_CREATED,
        target=scenario,
        data={
            "best_placement": scenario.best_placement,
            "cloned_from": cloned_from.pk if cloned_from else None,
        },
    )
    return scenario


@transaction.atomic
def update_scenario(
    *,
    scenario: RoiScenario,
    actor: Actor,
    name: str | None = None,
    inputs: Mapping[str, Any] | None = None,
    expected_revision: int | None = None,
) -> RoiScenario:
    """Save edited inputs (and refresh the cached figures); 409 on a stale revision."""
    scenario = RoiScenario.objects.select_for_update().get(pk=scenario.pk)
    _check_revision(scenario.revision, expected_revision, "scenario")
    changed: list[str] = []
    if inputs is not None:
        parsed = parse_inputs(inputs)
        summary = _summarise(parsed)
        changed = [
            key
            for key, value in parsed.to_dict()["estimates"].items()
            if scenario.inputs.get("estimates", {}).get(key) != value
        ]
        scenario.inputs = parsed.to_dict()
        scenario.summary = summary
        scenario.best_placement = summary["best_placement"]
    scenario.name = _name(name, default=scenario.name)
    scenario.revision += 1
    scenario.updated_at = timezone.now()
    scenario.save()
    record_audit_event(
        organization=scenario.organization,
        actor=actor,
        verb=RoiVerb.SCENARIO_UPDATED,
        target=scenario,
        data={"revision": scenario.revision, "changed_inputs": changed[:50]},
    )
    return scenario


def clone_scenario(*, scenario: RoiScenario, actor: Actor, name: str = "") -> RoiScenario:
    """A copy to try other assumptions on, remembering where it came from."""
    return create_scenario(
        organization=scenario.organization,
        actor=actor,
        name=name or f"{scenario.name} (copy)"[:NAME_MAX],
        inputs=scenario.inputs,
        assessment=scenario.assessment,
        workflow=scenario.workflow,
        cloned_from=scenario,
    )


@transaction.atomic
def delete_scenario(*, scenario: RoiScenario, actor: Actor) -> None:
    """Delete a scenario; plans and clones that referred to it keep going without it."""
    record_audit_event(
        organization=scenario.organization,
        actor=actor,
        verb=RoiVerb.SCENARIO_DELETED,
        target=scenario,
    )
    scenario.delete()


# --- 90-day plans ---------------------------------------------------------------------------


# Targets left empty are derived from the assessment's answers (see roi.plan.MetricTargets).
DERIVED_TARGETS = frozenset(
    {"latency_p95_ms", "offline_coverage", "rollout_hours", "rollback_minutes"}
)


def _parse_targets(targets: Mapping[str, Any] | None) -> MetricTargets:
    if targets is not None and not isinstance(targets, Mapping):
        raise InvalidInput("Targets must be an object.", fields={"targets": ["Not an object."]})
    errors: dict[str, list[str]] = {}
    known = MetricTargets.__dataclass_fields__
    for key, value in (targets or {}).items():
        if key not in known:
            errors[str(key)] = ["Unknown target."]
        elif value is None and key not in DERIVED_TARGETS:
            errors[key] = ["Enter a number."]
    if errors:
        raise InvalidInput("Success metric targets: some fields need attention.", fields=errors)
    with planning_input():
        return MetricTargets.from_dict(dict(targets or {}))


@transaction.atomic
def create_plan(
    *,
    organization: Organization,
    actor: Actor,
    assessment: Assessment,
    scenario: RoiScenario | None = None,
    name: str = "",
    targets: Mapping[str, Any] | None = None,
) -> Plan:
    """Generate the 90-day plan of an assessment (optionally tied to an ROI scenario).

    The plan is generated from the assessment's stored answers under today's rules. If the
    rules have changed so that they no longer give the stored answer, generating a plan for it
    would silently plan something else: that is refused (409) and the planner reruns the wizard.
    """
    _same_org(assessment, organization, "assessment")
    _same_org(scenario, organization, "scenario")
    metric_targets = _parse_targets(targets)
    with planning_input():
        result = decide(answers=WizardAnswers.from_dict(assessment.answers))
    if (
        result.ruleset_version != assessment.ruleset_version
        or result.placement.value != assessment.placement
    ):
        raise Conflict(
            f"This assessment was decided under ruleset {assessment.ruleset_version}; today's "
            f"ruleset {result.ruleset_version} answers {result.placement.value}. Rerun the "
            "wizard with these answers and generate the plan from the new assessment.",
            code="ruleset_changed",
        )
    generated = generate_plan(result=result, targets=metric_targets)
    now = timezone.now()
    plan = Plan.objects.create(
        organization=organization,
        name=_name(name, default=f"90-day plan · {assessment.name}"),
        assessment=assessment,
        scenario=scenario,
        placement=generated.placement.value,
        data=generated.to_dict(),
        targets=metric_targets.to_dict(),
        created_by=actor.user,
        created_at=now,
        updated_at=now,
    )
    record_audit_event(
        organization=organization,
        actor=actor,
        verb=RoiVerb.PLAN_CREATED,
        target=plan,
        data={
            "assessment": assessment.pk,
            "scenario": scenario.pk if scenario else None,
            "tasks": len(generated.tasks),
            "metrics": len(generated.metrics),
        },
    )
    return plan


def _locked_plan(plan: Plan) -> Plan:
    # Task edits rewrite the plan's JSON: lock the row so two people changing two different
    # tasks at the same moment do not overwrite each other.
    return Plan.objects.select_for_update().get(pk=plan.pk)


@transaction.atomic
def set_task_status(*, plan: Plan, actor: Actor, task_id: str, status: str) -> Plan:
    """Move one task to todo / doing / done / blocked."""
    if status not in TaskStatus.__members__.values():
        choices = ", ".join(item.value for item in TaskStatus)
        raise InvalidInput("Unknown status.", fields={"status": [f"Choose one of: {choices}."]})
    plan = _locked_plan(plan)
    with planning_input():
        pure = NinetyDayPlan.from_dict(plan.data)
        before = next((task.status for task in pure.tasks if task.id == task_id), None)
        pure = pure.with_status(task_id=task_id, status=TaskStatus(status))
    if before == status:
        return plan
    plan.data = pure.to_dict()
    plan.updated_at = timezone.now()
    plan.save(update_fields=["data", "updated_at"])
    record_audit_event(
        organization=plan.organization,
        actor=actor,
        verb=RoiVerb.PLAN_TASK_STATUS_CHANGED,
        target=plan,
        data={"task": task_id, "from": str(before), "to": status},
    )
    return plan


@transaction.atomic
def assign_task(*, plan: Plan, actor: Actor, task_id: str, assignee: Any | None) -> Plan:
    """Give a task an owner among the organisation's members (``None`` clears it)."""
    plan = _locked_plan(plan)
    if not any(task["id"] == task_id for task in plan.tasks):
        raise InvalidInput("Unknown task.", fields={"task_id": [f"No task {task_id!r}."]})
    if assignee is not None and (
        selectors.member_of_org(org=plan.organization, user_id=assignee.pk) is None
    ):
        raise InvalidInput(
            "The owner must be a member of the organisation.",
            fields={"assignee": ["Not a member of this organisation."]},
        )
    assignees = dict(plan.assignees)
    before = assignees.get(task_id)
    if assignee is None:
        assignees.pop(task_id, None)
    else:
        assignees[task_id] = assignee.pk
    if assignees.get(task_id) == before:
        return plan
    plan.assignees = assignees
    plan.updated_at = timezone.now()
    plan.save(update_fields=["assignees", "updated_at"])
    record_audit_event(
        organization=plan.organization,
        actor=actor,
        verb=RoiVerb.PLAN_TASK_ASSIGNED,
        target=plan,
        data={"task": task_id, "assignee": assignee.get_username() if assignee else None},
    )
    return plan


# The target each MetricTargets field sets, by the metric key generate_plan gives it.
TARGET_FIELD_FOR_METRIC = {
    "latency_p95": "latency_p95_ms",
    "offline_coverage": "offline_coverage",
    "accuracy": "accuracy",
    "int8_accuracy_drop": "int8_accuracy_drop_points",
    "operator_coverage": "operator_coverage",
    "calibration_ece": "ece",
    "rollout_time": "rollout_hours",
    "rollback_time": "rollback_minutes",
    "time_to_diagnose": "time_to_diagnose_hours",
}

_UNSET: Any = object()


@transaction.atomic
def update_plan(
    *,
    plan: Plan,
    actor: Actor,
    name: str | None = None,
    targets: Mapping[str, Any] | None = None,
    scenario: RoiScenario | None = _UNSET,
    model: Any = _UNSET,
    start_date: date | None = None,
) -> Plan:
    """Rename, set success-metric targets, (un)link the ROI scenario or the measured model,
    move the start date (every task's dates follow it).

    Targets are changed in place on the plan's metrics (tasks and statuses are untouched);
    a target left out keeps its current value.
    """
    plan = _locked_plan(plan)
    changes: dict[str, Any] = {}
    if name is not None:
        plan.name = _name(name, default=plan.name)
        changes["name"] = plan.name
    if targets is not None:
        if not isinstance(targets, Mapping):
            raise InvalidInput("Targets must be an object.", fields={"targets": ["Not an object."]})
        merged = {**plan.targets, **targets}
        parsed = _parse_targets(merged)
        values = parsed.to_dict()
        data = dict(plan.data)
        metrics = []
        for metric in data.get("metrics", []):
            field = TARGET_FIELD_FOR_METRIC.get(metric["key"])
            if field and values.get(field) is not None:
                metric = {**metric, "target": float(values[field])}
            metrics.append(metric)
        data["metrics"] = metrics
        plan.data = data
        plan.targets = values
        changes["targets"] = dict(targets)
    if scenario is not _UNSET:
        _same_org(scenario, plan.organization, "scenario")
        plan.scenario = scenario
        changes["scenario"] = scenario.pk if scenario else None
    if model is not _UNSET:
        _same_org(model, plan.organization, "model")
        plan.model = model
        changes["model"] = model.name if model else None
    if start_date is not None:
        plan.start_date = start_date
        changes["start_date"] = start_date.isoformat()
    plan.updated_at = timezone.now()
    plan.save()
    record_audit_event(
        organization=plan.organization,
        actor=actor,
        verb=RoiVerb.PLAN_UPDATED,
        target=plan,
        data=changes,
    )
    return plan


@transaction.atomic
def delete_plan(*, plan: Plan, actor: Actor) -> None:
    """Delete a plan with its task progress and owners."""
    record_audit_event(
        organization=plan.organization, actor=actor, verb=RoiVerb.PLAN_DELETED, target=plan
    )
    plan.delete()
