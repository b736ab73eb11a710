"""The 90-day plan board: phases and tasks, success metrics, planned vs measured.

Task status and owner change in place (HTMX): the task card is swapped and the phase and plan
progress counters are refreshed out of band in the same response.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.views.decorators.http import require_GET, require_POST

from modelregistry.selectors import model_for_org, models_for_org
from opshero.errors import DomainError
from opshero.form_flow import handle_form_post
from opshero.htmx import wants_fragment
from opshero.roles import Action
from opshero.tenancy import org_view

from .. import selectors, services
from ..forms import PlanTargetsForm
from ..measurements import planned_vs_measured
from ..plan import MeasureKey, TaskStatus, Tracking
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
# What the "Field measurements" card calls a figure that is no metric of the plan.
FIELD_MEASURE_LABELS = {
    MeasureKey.LATENCY_P95_MS.value: "P95 time-to-action",
    MeasureKey.OFFLINE_COVERAGE.value: "Share of the workflow completing offline",
    MeasureKey.ACCURACY.value: "Accuracy on labelled inferences",
    MeasureKey.TIME_TO_DIAGNOSE_HOURS.value: "Time to diagnose (alert to acknowledgement)",
    MeasureKey.FIELD_INFERENCE_P95_MS.value: "P95 on-device inference latency",
    MeasureKey.FIELD_THROTTLED_SHARE.value: "Share of health samples throttled",
}


def _members(request: HttpRequest) -> dict[int, Any]:
    return {user.pk: user for user in selectors.members_for_org(org=request.org)}


def _task_view(task: dict[str, Any], plan, members: dict[int, Any]) -> dict[str, Any]:
    assignee_id = plan.assignees.get(task["id"])
    return {
        **task,
        "status_label": STATUS_LABELS.get(task["status"], task["status"]),
        "assignee": members.get(assignee_id) if assignee_id else None,
        "tailored": task.get("source", "").startswith("tailored"),
    }


def _phases(plan, members: dict[int, Any]) -> list[dict[str, Any]]:
    phases = []
    for phase in plan.data.get("phases", []):
        tasks = [_task_view(task, plan, members) for task in phase["tasks"]]
        phases.append(
            {
                **phase,
                "tasks": tasks,
                "done": sum(task["status"] == TaskStatus.DONE.value for task in tasks),
                "total": len(tasks),
            }
        )
    return phases


def _metrics_context(plan, form: PlanTargetsForm | None = None) -> dict[str, Any]:
    measured = planned_vs_measured(plan)
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
                "reason": status.reason,
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


def _detail_context(
    request: HttpRequest, plan, targets_form: PlanTargetsForm | None = None
) -> dict[str, Any]:
    members = _members(request)
    done, total = plan.progress
    return {
        "plan": plan,
        "phases": _phases(plan, members),
        "members": list(members.values()),
        "status_choices": list(STATUS_LABELS.items()),
        "done": done,
        "total": total,
        "can_edit": can_edit(request),
        "placement_label": PLACEMENT_LABELS.get(plan.placement, plan.placement),
        "scenarios": list(selectors.scenarios_for_org(org=request.org)[:50]),
        "models": list(models_for_org(org=request.org)[:100]),
        "tab": "plans",
        **_metrics_context(plan, targets_form),
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
    phases = _phases(plan, members)
    task = next(t for phase in phases for t in phase["tasks"] if t["id"] == task_id)
    phase = next(p for p in phases if any(t["id"] == task_id for t in p["tasks"]))
    done, total = plan.progress
    context = {
        "plan": plan,
        "task": task,
        "phase": phase,
        "members": list(members.values()),
        "status_choices": list(STATUS_LABELS.items()),
        "can_edit": True,
        "done": done,
        "total": total,
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
