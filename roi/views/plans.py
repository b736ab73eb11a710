"""The 90-day plan board: phases and tasks with their dates, success metrics, planned vs measured.

Task status and owner change in place (HTMX): the task card is swapped and the phase and plan
progress counters are refreshed out of band in the same response. A task whose evidence exists
(``roi.plan.TaskEvidence``: a scorecard, a scenario, a passed validation, a rollout, field
telemetry) shows done by that evidence, with a link to it; the board reads the evidence through
``roi.selectors.plan_records`` and the measurements already collected for the metrics.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from modelregistry.selectors import model_for_org, models_for_org
from opshero.errors import DomainError
from opshero.form_flow import handle_form_post
from opshero.htmx import wants_fragment
from opshero.roles import Action
from opshero.tenancy import org_view

from .. import selectors, services
from ..forms import PlanTargetsForm
from ..forms.plans import PlanStartForm
from ..measurements import load_sources, measurement_context, planned_vs_measured
from ..plan import (
    PHASES,
    ROI_INPUT_FOR_MEASURE,
    EvidenceFound,
    MeasureKey,
    Measurement,
    NinetyDayPlan,
    Provenance,
    TaskEvidence,
    TaskState,
    TaskStatus,
    Timing,
    Tracking,
    collect,
    day_date,
    task_states,
)
from ..reports import PLACEMENT_LABELS, format_money, format_payback
from .common import actor, can_edit, invalid_status, plan_or_404

PAGE_SIZE = 25
STATUS_LABELS = {
    TaskStatus.TODO.value: "To do",
    TaskStatus.DOING.value: "In progress",
    TaskStatus.DONE.value: "Done",
    TaskStatus.BLOCKED.value: "Blocked",
}
TRACKING_LABELS = {
    Tracking.ON_TRACK.value: "On track",
    Tracking.OFF_TRACK.value: "Off track",
    Tracking.NOT_MEASURED.value: "Not measured yet",
}
TIMING_LABELS = {
    Timing.DONE.value: "Done",
    Timing.OVERDUE.value: "Overdue",
    Timing.CURRENT.value: "Due now",
    Timing.UPCOMING.value: "Upcoming",
}
# What the "Field measurements" card calls a figure that is no metric of the plan.
FIELD_MEASURE_LABELS = {
    MeasureKey.LATENCY_P95_MS.value: "P95 time-to-action",
    MeasureKey.OFFLINE_COVERAGE.value: "Share of the workflow completing offline",
    MeasureKey.ACCURACY.value: "Accuracy on labelled inferences",
    MeasureKey.TIME_TO_DIAGNOSE_HOURS.value: "Time to diagnose (alert to acknowledgement)",
    MeasureKey.FIELD_INFERENCE_P95_MS.value: "P95 on-device inference latency",
    MeasureKey.FIELD_THROTTLED_SHARE.value: "Share of health samples throttled",
}
# Every measure key in plain words, for the sentences that would otherwise name a raw key.
MEASURE_LABELS = {
    **FIELD_MEASURE_LABELS,
    MeasureKey.ACCURACY.value: "Accuracy on real-world data",
    MeasureKey.INT8_ACCURACY_DROP.value: "INT8 accuracy drop",
    MeasureKey.ECE.value: "Calibration error (ECE)",
    MeasureKey.OPERATOR_COVERAGE.value: "Operator coverage on the target",
    MeasureKey.ROLLOUT_HOURS.value: "Model rollout time",
    MeasureKey.ROLLBACK_MINUTES.value: "Model rollback time",
    MeasureKey.STAFF_HOURS_PER_ROLLOUT.value: "Staff hours per rollout",
    MeasureKey.STAFF_HOURS_PER_ROLLBACK.value: "Staff hours per rollback",
}
PROVENANCE_LABELS = {Provenance.LAB.value: "lab", Provenance.FIELD.value: "field"}
# Field figures that show a field-like test was run, by the evidence they are.
EVIDENCE_MEASURES: dict[TaskEvidence, tuple[str, ...]] = {
    TaskEvidence.FIELD_TELEMETRY: (MeasureKey.LATENCY_P95_MS, MeasureKey.FIELD_INFERENCE_P95_MS),
    TaskEvidence.FIELD_OFFLINE: (MeasureKey.OFFLINE_COVERAGE,),
    TaskEvidence.FIELD_THERMAL: (MeasureKey.FIELD_THROTTLED_SHARE,),
}
# "<summary>. (ruleset 2026.1)." on the placement task: the version and its full stop.
_RULESET = re.compile(r"(?<=\.) \(ruleset [^)]*\)\.| \(ruleset [^)]*\)")


def _plain(text: str, keys: Mapping[str, str]) -> str:
    """``text`` with every raw measure key replaced by its label."""
    for key in sorted(keys, key=len, reverse=True):
        text = text.replace(key, keys[key])
    return text


def _members(request: HttpRequest) -> dict[int, Any]:
    return {user.pk: user for user in selectors.members_for_org(org=request.org)}


def _url(name: str, **kwargs: Any) -> str:
    try:
        return reverse(name, kwargs=kwargs)
    except NoReverseMatch:  # an app not mounted in this deployment: no link, same words
        return ""


def _field(measurements: Mapping[str, Any], key: str) -> Measurement | None:
    return next((m for m in measurements.get(key, ()) if m.provenance is Provenance.FIELD), None)


def task_evidence(
    request: HttpRequest, plan, measurements: Mapping[str, Any]
) -> dict[TaskEvidence, EvidenceFound]:
    """What the organisation's records show done for this plan, in plain words with links.

    ``measurements`` are those collected for the plan (by key); the rest is read through
    :func:`roi.selectors.plan_records` in a fixed number of queries.
    """
    org = request.org.slug
    records = selectors.plan_records(plan=plan)
    found: dict[TaskEvidence, EvidenceFound] = {}
    if records.scorecard is not None:
        found[TaskEvidence.SCORED_STACKS] = EvidenceFound(
            TaskEvidence.SCORED_STACKS,
            f"Scorecard \u201c{records.scorecard.name}\u201d scores "
            f"{records.scored_stacks} candidate stacks.",
            _url("roi:scorecard", org=org, scorecard_id=records.scorecard.pk),
        )
    # "Recompute with measured values" is done only when a field measurement replaces one of
    # the linked scenario's assumptions, not merely because a scenario exists.
    measured_inputs = [
        key for key in ROI_INPUT_FOR_MEASURE if _field(measurements, key) is not None
    ]
    if records.scenario is not None and plan.scenario_id == records.scenario.pk and measured_inputs:
        labels = ", ".join(MEASURE_LABELS.get(key, key) for key in measured_inputs)
        found[TaskEvidence.ROI_SCENARIO] = EvidenceFound(
            TaskEvidence.ROI_SCENARIO,
            f"ROI scenario \u201c{records.scenario.name}\u201d recomputed with measured {labels}.",
            _url("roi:scenario", org=org, scenario_id=records.scenario.pk),
        )
    run = records.validated_run
    if run is not None:
        version = run.version
        found[TaskEvidence.VALIDATED_MODEL] = EvidenceFound(
            TaskEvidence.VALIDATED_MODEL,
            f"{version.model.name} {version.version} passed validation"
            f"{f' on {run.target.name}' if run.target else ''} "
            f"({run.finished_at:%-d %b %Y}).",
            _url("modelregistry:version", org=org, version_id=version.pk),
        )
    rollout = records.rollout
    if rollout is not None:
        found[TaskEvidence.ROLLOUT] = EvidenceFound(
            TaskEvidence.ROLLOUT,
            f"Staged rollout of {rollout.model.name} {rollout.version.version}: "
            f"{rollout.get_status_display().lower()}.",
            _url("rollouts:detail", org=org, rollout_id=rollout.pk),
        )
    for kind, keys in EVIDENCE_MEASURES.items():
        measurement = next((m for key in keys if (m := _field(measurements, key))), None)
        if measurement is not None:
            found[kind] = EvidenceFound(
                kind,
                f"Fleet telemetry: {MEASURE_LABELS.get(measurement.key, measurement.key)} "
                f"{_target_text(measurement.value, measurement.unit)} "
                f"({measurement.where.removeprefix('field: ')}).",
                _url("telemetry:health", org=org),
            )
    return found


def _task_view(state: TaskState, plan, members: dict[int, Any]) -> dict[str, Any]:
    task = state.task.to_dict()
    assignee_id = plan.assignees.get(task["id"])
    status = state.status.value
    return {
        **task,
        # The ruleset's version is jargon on a task card; it is behind the card's "details".
        "detail": _RULESET.sub("", task["detail"]),
        "ruleset": plan.data.get("ruleset_version", "") if _RULESET.search(task["detail"]) else "",
        "set_status": task["status"],
        "status": status,
        "status_label": STATUS_LABELS.get(status, status),
        "evidence": state.evidence,
        "first_date": state.first_date,
        "last_date": state.last_date,
        "first_day": state.first_day,
        "last_day": state.last_day,
        "timing": state.timing.value,
        "timing_label": TIMING_LABELS[state.timing.value],
        "assignee": members.get(assignee_id) if assignee_id else None,
        "tailored": task.get("source", "").startswith("tailored"),
    }


def _board(
    plan, members: dict[int, Any], evidence: Mapping[TaskEvidence, EvidenceFound]
) -> list[dict[str, Any]]:
    """The phases with their dates and their tasks as the board shows them."""
    pure = NinetyDayPlan.from_dict(plan.data)
    states = {
        state.task.id: state
        for state in task_states(
            tasks=pure.tasks, evidence=evidence, start=plan.start_date, today=_today()
        )
    }
    phases = []
    for phase in plan.data.get("phases", []):
        tasks = [_task_view(states[task["id"]], plan, members) for task in phase["tasks"]]
        phases.append(
            {
                **phase,
                "first_date": day_date(plan.start_date, phase["first_day"]),
                "last_date": day_date(plan.start_date, phase["last_day"]),
                "tasks": tasks,
                "done": sum(task["status"] == TaskStatus.DONE.value for task in tasks),
                "overdue": sum(task["timing"] == Timing.OVERDUE.value for task in tasks),
                "total": len(tasks),
            }
        )
    return phases


def _today():
    return timezone.localdate()


def _schedule_note(start, today) -> str:
    """Where today falls in the plan, in words."""
    day = (today - start).days + 1
    last = PHASES[-1].last_day
    if day < 1:
        return f"Starts in {1 - day} day{'s' if day != 0 else ''}."
    if day > last:
        return f"Day {last} was {day_date(start, last):%-d %b %Y}."
    return f"Today is day {day} of {last}."


def _progress(phases: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "done": sum(phase["done"] for phase in phases),
        "total": sum(phase["total"] for phase in phases),
        "overdue": sum(phase["overdue"] for phase in phases),
    }


def _metrics_context(plan, form: PlanTargetsForm | None = None, measured=None) -> dict[str, Any]:
    measured = measured or planned_vs_measured(plan)
    labels = {key: f"\u201c{label}\u201d" for key, label in MEASURE_LABELS.items()}
    metrics = []
    for status in measured.statuses:
        metric = status.metric
        metrics.append(
            {
                "metric": metric,
                "state": status.state.value,
                "state_label": TRACKING_LABELS[status.state.value],
                "measurement": status.measurement,
                "reference": status.reference,
                "decided_by": str(metric.decided_by),
                "reason": _plain(status.reason, labels),
                "target": _target_text(metric.target, metric.unit),
                "direction": "≤" if metric.direction.value == "at_most" else "≥",
            }
        )
    roi = None
    if measured.roi is not None:
        placement = measured.roi_placement
        planned = measured.roi.planned.placements
        after = measured.roi.measured.placements
        key = next(p for p in planned if str(p) == placement)
        roi = {
            "placement_label": PLACEMENT_LABELS[placement],
            "replaced": measured.roi.replaced,
            "rows": [
                (
                    "NPV",
                    format_money(planned[key].npv, signed=True),
                    format_money(after[key].npv, signed=True),
                ),
                ("TCO", format_money(planned[key].tco), format_money(after[key].tco)),
                (
                    "Cost per site / month",
                    format_money(planned[key].cost_per_site_month),
                    format_money(after[key].cost_per_site_month),
                ),
                (
                    "Payback",
                    format_payback(planned[key].payback_month, measured.roi.planned.horizon_months),
                    format_payback(after[key].payback_month, measured.roi.measured.horizon_months),
                ),
            ],
        }
    metric_keys = {status.metric.measure_key for status in measured.statuses}
    field_measurements = [
        {
            "measurement": measurement,
            "label": FIELD_MEASURE_LABELS.get(measurement.key, measurement.key),
            "value": _target_text(measurement.value, measurement.unit),
            "is_metric": measurement.key in metric_keys,
        }
        for measurement in measured.field_measurements
    ]
    form = form or PlanTargetsForm(initial=PlanTargetsForm.initial_from(plan.targets))
    form.show_current(plan.data.get("metrics", []))
    return {
        "plan": plan,
        "metrics": metrics,
        "counts": measured.counts,
        "connected": measured.connected,
        "connected_labels": [
            (MEASURE_LABELS.get(key, key), PROVENANCE_LABELS.get(str(provenance), provenance))
            for key, provenance in measured.connected
        ],
        "field_measurements": field_measurements,
        "roi": roi,
        "targets_form": form,
    }


def _plan_url(request: HttpRequest, plan) -> str:
    return resolve_url("roi:plan", org=request.org.slug, plan_id=plan.pk)


def _target_text(value: float, unit: str) -> str:
    if unit == "share":
        return f"{value * 100:.4g} %"
    return f"{value:.4g} {unit}"


@require_GET
@org_view()
def plan_list(request: HttpRequest) -> HttpResponse:
    plans = selectors.plans_for_org(org=request.org)
    page = Paginator(plans, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "roi/plan_list.html",
        {
            "page": page,
            "can_edit": can_edit(request),
            "placement_labels": PLACEMENT_LABELS,
            "tab": "plans",
        },
    )


def _start_url(request: HttpRequest, plan) -> str:
    """Where the start date is posted ("" until the route exists: the date is shown only)."""
    return _url("roi:plan-start", org=request.org.slug, plan_id=plan.pk)


def _detail_context(
    request: HttpRequest,
    plan,
    targets_form: PlanTargetsForm | None = None,
    start_form: PlanStartForm | None = None,
) -> dict[str, Any]:
    members = _members(request)
    measured = planned_vs_measured(plan)
    phases = _board(plan, members, task_evidence(request, plan, measured.measurements))
    today = _today()
    return {
        "plan": plan,
        "phases": phases,
        "members": list(members.values()),
        "status_choices": list(STATUS_LABELS.items()),
        **_progress(phases),
        "today": today,
        "end_date": day_date(plan.start_date, PHASES[-1].last_day),
        "schedule_note": _schedule_note(plan.start_date, today),
        "start_form": start_form or PlanStartForm(initial={"start_date": plan.start_date}),
        "start_url": _start_url(request, plan),
        "ruleset_version": plan.data.get("ruleset_version", ""),
        "can_edit": can_edit(request),
        "placement_label": PLACEMENT_LABELS.get(plan.placement, plan.placement),
        "scenarios": list(selectors.scenarios_for_org(org=request.org)[:50]),
        "models": list(models_for_org(org=request.org)[:100]),
        "tab": "plans",
        **_metrics_context(plan, targets_form, measured),
    }


@require_GET
@org_view()
def plan_detail(request: HttpRequest, plan_id: int) -> HttpResponse:
    plan = plan_or_404(request, plan_id)
    return render(request, "roi/plan_detail.html", _detail_context(request, plan))


@require_POST
@org_view(Action.EDIT_PLANS)
def plan_task(request: HttpRequest, plan_id: int, task_id: str) -> HttpResponse:
    """Change a task's status and/or owner; answers the task card (HTMX) or redirects."""
    plan = plan_or_404(request, plan_id)
    if not any(task["id"] == task_id for task in plan.tasks):
        raise Http404("No such task.")
    error = ""
    try:
        if "status" in request.POST:
            plan = services.set_task_status(
                plan=plan, actor=actor(request), task_id=task_id, status=request.POST["status"]
            )
        if "assignee" in request.POST:
            raw = request.POST["assignee"]
            assignee = selectors.member_of_org(org=request.org, user_id=raw) if raw else None
            if raw and assignee is None:
                raise DomainError(
                    "The owner must be a member of the organisation.",
                    fields={"assignee": ["Not a member."]},
                )
            plan = services.assign_task(
                plan=plan, actor=actor(request), task_id=task_id, assignee=assignee
            )
    except DomainError as exc:
        error = exc.message
        plan = plan_or_404(request, plan_id)
    if not wants_fragment(request):
        if error:
            messages.error(request, error)
        return redirect("roi:plan", org=request.org.slug, plan_id=plan.pk)
    members = _members(request)
    # Only the telemetry figures that tick tasks, not every metric's: the counters must agree
    # with the board without re-measuring the whole plan on each change.
    load_sources()
    keys = [key for keys in EVIDENCE_MEASURES.values() for key in keys]
    measurements = collect(keys=keys, context=measurement_context(plan))
    phases = _board(plan, members, task_evidence(request, plan, measurements))
    task = next(t for phase in phases for t in phase["tasks"] if t["id"] == task_id)
    phase = next(p for p in phases if any(t["id"] == task_id for t in p["tasks"]))
    context = {
        "plan": plan,
        "task": task,
        "phase": phase,
        "members": list(members.values()),
        "status_choices": list(STATUS_LABELS.items()),
        "can_edit": True,
        **_progress(phases),
        "task_error": error,
        "oob": True,
    }
    return render(request, "roi/partials/plan_task.html", context)


@require_POST
@org_view(Action.EDIT_PLANS)
def plan_targets(request: HttpRequest, plan_id: int) -> HttpResponse:
    plan = plan_or_404(request, plan_id)
    form = PlanTargetsForm(request.POST)
    fragment = wants_fragment(request)

    def metrics(plan, form: PlanTargetsForm | None, status: int) -> HttpResponse:
        """The page, or on HTMX the metrics card (``form=None``: saved, a fresh form)."""
        if not fragment:
            context = _detail_context(request, plan, form)
            return render(request, "roi/plan_detail.html", context, status=status)
        context = {
            **_metrics_context(plan, form),
            "can_edit": True,
            "saved": form is None,
            "plan": plan,
            "models": list(models_for_org(org=request.org)[:100]),
        }
        return render(request, "roi/partials/plan_metrics.html", context, status=status)

    return handle_form_post(
        request,
        form=form,
        perform=lambda: services.update_plan(
            plan=plan, actor=actor(request), targets=form.targets()
        ),
        apply_error=PlanTargetsForm.apply_error,
        invalid_status=invalid_status(request),
        # HTMX swaps the saved card in place (its "saved" badge says so); a page redirects.
        success_message=None if fragment else "Targets saved.",
        redirect_to=lambda saved: (
            metrics(saved, None, 200) if fragment else _plan_url(request, saved)
        ),
        render_invalid=lambda status: metrics(plan, form, status),
    )


@require_POST
@org_view(Action.EDIT_PLANS)
def plan_start(request: HttpRequest, plan_id: int) -> HttpResponse:
    """Move the plan's day 1; every task and phase date follows."""
    plan = plan_or_404(request, plan_id)
    form = PlanStartForm(request.POST)
    return handle_form_post(
        request,
        form=form,
        perform=lambda: services.update_plan(
            plan=plan, actor=actor(request), start_date=form.cleaned_data["start_date"]
        ),
        invalid_status=invalid_status(request),
        success_message="Start date saved: task dates follow it.",
        redirect_to=lambda saved: _plan_url(request, saved),
        render_invalid=lambda status: render(
            request,
            "roi/plan_detail.html",
            _detail_context(request, plan, start_form=form),
            status=status,
        ),
    )


@require_POST
@org_view(Action.EDIT_PLANS)
def plan_scenario(request: HttpRequest, plan_id: int) -> HttpResponse:
    """Link the ROI scenario whose assumptions planned-vs-measured recomputes."""
    plan = plan_or_404(request, plan_id)
    raw = request.POST.get("scenario", "")
    scenario = selectors.scenario_for_org(org=request.org, pk=raw) if raw else None
    if raw and scenario is None:
        raise Http404("No such scenario.")
    services.update_plan(plan=plan, actor=actor(request), scenario=scenario)
    messages.success(
        request, "ROI scenario linked." if scenario else "ROI scenario unlinked from the plan."
    )
    return redirect("roi:plan", org=request.org.slug, plan_id=plan.pk)


@require_POST
@org_view(Action.EDIT_PLANS)
def plan_model(request: HttpRequest, plan_id: int) -> HttpResponse:
    """Choose the model whose validation reports measure this plan's success metrics."""
    plan = plan_or_404(request, plan_id)
    raw = request.POST.get("model", "")
    model = model_for_org(org=request.org, pk=int(raw)) if raw.isdigit() else None
    if raw and model is None:
        raise Http404("No such model.")
    services.update_plan(plan=plan, actor=actor(request), model=model)
    messages.success(
        request,
        f"Metrics are now measured on {model.name}." if model else "Measured model unlinked.",
    )
    return redirect("roi:plan", org=request.org.slug, plan_id=plan.pk)


@require_POST
@org_view(Action.EDIT_PLANS)
def plan_delete(request: HttpRequest, plan_id: int) -> HttpResponse:
    plan = plan_or_404(request, plan_id)
    services.delete_plan(plan=plan, actor=actor(request))
    messages.success(request, f"Plan \u201c{plan.name}\u201d deleted.")
    return redirect("roi:plans", org=request.org.slug)
