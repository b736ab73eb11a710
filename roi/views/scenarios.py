"""The ROI/TCO calculator: presets, live recompute, save, clone, compare, CSV, printable report.

Live recompute posts the whole form to one stateless endpoint (debounced by htmx). A valid
form swaps the results; an invalid one leaves the last good results on screen, marks them as
stale and puts each reason next to its input through out-of-band swaps, so the inputs being
typed into are never re-rendered (no lost focus, nothing typed lost).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap

from opshero.form_flow import handle_form_post
from opshero.roles import Action
from opshero.tenancy import org_view

from .. import charts, selectors, services
from ..engine import (
    BENEFIT_LABELS,
    COST_LABELS,
    DEFAULT_DRAWS,
    PLACEMENTS,
    RESIDUAL_LABELS,
    RoiInputs,
    analyse,
)
from ..forms import CalculatorForm
from ..models import Workflow
from ..presets import PRESET_WORKFLOWS, starting_inputs
from ..reports import (
    PLACEMENT_LABELS,
    current_currency,
    format_money,
    input_differences,
    kpi_rows,
    placement_order,
    ruled_out_placements,
    scenario_csv,
    scenario_summary,
)
from ..rules import TIER_LABELS, Placement, PlanningInputError, WizardAnswers
from .common import actor, can_edit, optional, require_edit, scenario_or_404

PAGE_SIZE = 25
MAX_COMPARE = 4


def _focus(form: CalculatorForm) -> Placement | None:
    try:
        return Placement(form.focus) if form.focus else None
    except ValueError:
        return None


def results_context(form: CalculatorForm, assessment=None) -> dict[str, Any]:
    """Everything the results pane shows, computed once from valid inputs.

    With an assessment, its placement comes first and the placements its rules ruled out are
    flagged (and never marked best), each with the rule.
    """
    if not form.is_valid() or form.inputs is None:
        return {"analysis": None, "form": form}
    try:
        analysis = analyse(inputs=form.inputs, placement=_focus(form), draws=DEFAULT_DRAWS)
    except PlanningInputError as exc:  # defensive: validated above
        form.errors.update(exc.fields)
        return {"analysis": None, "form": form}
    summary = scenario_summary(analysis)
    det = analysis.deterministic
    focus = str(_focus(form) or det.best_placement)
    bars = analysis.tornado.bars
    drivers = [
        {
            "label": bar.label,
            "low": bar.low,
            "high": bar.high,
            "at_low": format_money(bar.output_at_low, signed=True),
            "at_high": format_money(bar.output_at_high, signed=True),
            "swing": format_money(bar.swing),
        }
        for bar in bars[:3]
    ]
    econ = det[Placement(focus)]
    assessed = assessment.placement if assessment else None
    ruled_out = ruled_out_placements(assessment.result if assessment else None)
    allowed = [p for p in PLACEMENTS if str(p) not in ruled_out]
    best_allowed = (
        max(allowed, key=lambda p: (det[p].npv, -PLACEMENTS.index(p))) if allowed else None
    )
    order = placement_order(assessed)
    fixed_keys = ("rollouts", "monitoring", "tooling", "support")
    all_negative = all(det[p].npv < 0 for p in PLACEMENTS)
    return {
        "all_negative": all_negative,
        "focus_fixed_monthly": sum(econ.costs.get(key, 0.0) for key in fixed_keys),
        "devices": form.inputs.scenario.sites * form.inputs.scenario.devices_per_site,
        "form": form,
        "analysis": analysis,
        "summary": summary,
        "rows": kpi_rows(summary, first=assessed, ruled_out=ruled_out),
        "assessment": assessment,
        "assessed": assessed,
        "assessed_label": PLACEMENT_LABELS.get(assessed or "", ""),
        "assessed_economics": det[Placement(assessed)] if assessed else None,
        "ruled_out": ruled_out,
        "ruled_out_rows": [
            {"placement": p, "label": PLACEMENT_LABELS[p], "reason": ruled_out[p]}
            for p in order
            if p in ruled_out
        ],
        "best_allowed": str(best_allowed) if best_allowed else "",
        "best_allowed_label": PLACEMENT_LABELS[str(best_allowed)] if best_allowed else "",
        "cohorts": det.cohorts,
        "ramp": form.inputs.scenario.has_ramp,
        "residual_label": RESIDUAL_LABELS[det.residual_value],
        "correlations": analysis.monte_carlo.correlations,
        "tiers": _tier_text(form.inputs.scenario),
        "currency": current_currency(),
        "focus": focus,
        "focus_label": PLACEMENT_LABELS[focus],
        "best": str(det.best_placement),
        "best_label": PLACEMENT_LABELS[str(det.best_placement)],
        "focus_economics": econ,
        "breakdown": _breakdown(econ),
        "drivers": drivers,
        "tornado_figure": charts.tornado_figure(analysis.tornado),
        "cashflow_figure": charts.cashflow_figure(det, focus=focus),
        "placement_labels": PLACEMENT_LABELS,
        "draws": analysis.monte_carlo.draws,
    }


def _influence(context: dict[str, Any]) -> dict[str, float]:
    """Input name -> NPV swing from the tornado of the placement in focus (a paired group's
    swing counts for each of its members)."""
    analysis = context.get("analysis")
    if analysis is None:
        return {}
    swings: dict[str, float] = {}
    for bar in analysis.tornado.bars:
        for name in bar.members or (bar.name,):
            swings[name] = max(swings.get(name, 0.0), bar.swing)
    return swings


def _tier_text(scenario) -> str:
    shares = scenario.hybrid_shares
    return ", ".join(f"{TIER_LABELS[tier]} {shares[tier]:.0%}" for tier in scenario.hybrid_tiers)


def _breakdown(econ) -> list[dict[str, Any]]:
    names = {**BENEFIT_LABELS, **COST_LABELS}
    rows = [
        {"kind": "benefit", "label": names.get(k, k), "value": format_money(v, signed=True)}
        for k, v in econ.benefits.items()
    ]
    rows += [
        {"kind": "cost", "label": names.get(k, k), "value": format_money(-v, signed=True)}
        for k, v in econ.costs.items()
    ]
    return rows


def _page_context(
    request: HttpRequest, form: CalculatorForm, *, scenario=None, **extra: Any
) -> dict[str, Any]:
    context = results_context(form, extra.get("assessment"))
    context.update(
        {
            "scenario": scenario,
            "can_edit": can_edit(request),
            "placement_choices": CalculatorForm.placement_choices(),
            "sections": form.sections(influence=_influence(context)),
            "scenario_fields": form.scenario_fields(),
            "scenario_groups": form.scenario_groups(),
            "error_slots": form.error_slots(),
            "shown_errors": form.shown_errors,
            "error_summary": form.error_summary(),
            "tab": "scenarios",
            **extra,
        }
    )
    return context


@require_GET
@org_view()
def scenario_list(request: HttpRequest) -> HttpResponse:
    scenarios = selectors.scenarios_for_org(org=request.org)
    page = Paginator(scenarios, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "roi/scenario_list.html",
        {
            "page": page,
            "can_edit": can_edit(request),
            "presets": [(w.value, Workflow(w.value).label) for w in PRESET_WORKFLOWS],
            "placement_labels": PLACEMENT_LABELS,
            "tab": "scenarios",
        },
    )


@org_view()
def scenario_new(request: HttpRequest) -> HttpResponse:
    """Start from a preset (or an assessment's answers); anyone may explore, planners save."""
    params = request.POST if request.method == "POST" else request.GET
    assessment = optional(
        selectors.assessment_for_org, request, params.get("assessment"), "assessment"
    )
    workflow = params.get("workflow") or (assessment.workflow if assessment else "")

    def page(form: CalculatorForm, status: int = 200, note: str = "") -> HttpResponse:
        context = _page_context(
            request,
            form,
            assessment=assessment,
            workflow=workflow,
            preset_note=note,
            presets=[(w.value, Workflow(w.value).label) for w in PRESET_WORKFLOWS],
        )
        return render(request, "roi/calculator.html", context, status=status)

    if request.method == "POST":
        require_edit(request)
        form = CalculatorForm(request.POST)
        return handle_form_post(
            request,
            form=form,
            perform=lambda: services.create_scenario(
                organization=request.org,
                actor=actor(request),
                name=form.name,
                inputs=form.inputs.to_dict(),
                assessment=assessment,
                workflow=workflow if workflow in Workflow.values else "",
            ),
            apply_error=CalculatorForm.add_domain_error,
            success_message=lambda scenario: f"Scenario \u201c{scenario.name}\u201d saved.",
            redirect_to=lambda scenario: _scenario_url(request, scenario),
            render_invalid=lambda status: page(form, status),
        )
    answers = WizardAnswers.from_dict(assessment.answers) if assessment else None
    inputs, note = starting_inputs(
        workflow=workflow,
        answers=answers,
        assessment_name=assessment.name if assessment else "",
        inference_tiers=assessment.result.get("inference_tiers") if assessment else None,
    )
    name = f"{assessment.name} · ROI" if assessment else inputs.name
    form = CalculatorForm(
        inputs=inputs, name=name[:120], focus=assessment.placement if assessment else ""
    )
    return page(form, note=note)


@org_view()
def scenario_detail(request: HttpRequest, scenario_id: int) -> HttpResponse:
    scenario = scenario_or_404(request, scenario_id)

    def page(form: CalculatorForm, status: int = 200) -> HttpResponse:
        context = _page_context(
            request,
            form,
            scenario=scenario,
            assessment=scenario.assessment,
            workflow=scenario.workflow,
        )
        return render(request, "roi/calculator.html", context, status=status)

    if request.method == "POST":
        require_edit(request)
        form = CalculatorForm(request.POST)
        return handle_form_post(
            request,
            form=form,
            perform=lambda: services.update_scenario(
                scenario=scenario,
                actor=actor(request),
                name=form.name,
                inputs=form.inputs.to_dict(),
                expected_revision=_int(request.POST.get("revision")),
            ),
            apply_error=CalculatorForm.add_domain_error,
            status_from_error=True,  # an edit of an older revision is a 409
            success_message="Scenario saved.",
            redirect_to=lambda saved: _scenario_url(request, saved),
            render_invalid=lambda status: page(form, status),
        )
    focus = scenario.assessment.placement if scenario.assessment else ""
    form = CalculatorForm(
        inputs=RoiInputs.from_dict(scenario.inputs), name=scenario.name, focus=focus
    )
    return page(form)


def _scenario_url(request: HttpRequest, scenario) -> str:
    return resolve_url("roi:scenario", org=request.org.slug, scenario_id=scenario.pk)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@require_POST
@org_view()
def scenario_compute(request: HttpRequest) -> HttpResponse:
    """Stateless recompute for the live calculator (changes nothing, so every role may)."""
    form = CalculatorForm(request.POST)
    assessment = optional(
        selectors.assessment_for_org, request, request.POST.get("assessment"), "assessment"
    )
    context = results_context(form, assessment)
    context["error_slots"] = form.error_slots(
        shown=request.POST.get(CalculatorForm.SHOWN_ERRORS, "")
    )
    context["shown_errors"] = form.shown_errors
    context["error_summary"] = form.error_summary()
    context["oob"] = True
    if context["analysis"] is None:
        # 200 with no main swap: the last valid results stay, the reasons land out of band.
        response = render(request, "roi/partials/calculator_invalid.html", context)
        return reswap(response, "none")
    return render(request, "roi/partials/calculator_results.html", context)


@require_POST
@org_view(Action.EDIT_PLANS)
def scenario_clone(request: HttpRequest, scenario_id: int) -> HttpResponse:
    scenario = scenario_or_404(request, scenario_id)
    clone = services.clone_scenario(
        scenario=scenario, actor=actor(request), name=request.POST.get("name", "")
    )
    messages.success(request, f"Cloned as \u201c{clone.name}\u201d: change the assumptions here.")
    return redirect("roi:scenario", org=request.org.slug, scenario_id=clone.pk)


@require_POST
@org_view(Action.EDIT_PLANS)
def scenario_delete(request: HttpRequest, scenario_id: int) -> HttpResponse:
    scenario = scenario_or_404(request, scenario_id)
    services.delete_scenario(scenario=scenario, actor=actor(request))
    messages.success(request, f"Scenario \u201c{scenario.name}\u201d deleted.")
    return redirect("roi:scenarios", org=request.org.slug)


@require_GET
@org_view()
def scenario_export(request: HttpRequest, scenario_id: int) -> HttpResponse:
    scenario = scenario_or_404(request, scenario_id)
    inputs = RoiInputs.from_dict(scenario.inputs)
    analysis = analyse(inputs=inputs)
    body = scenario_csv(name=scenario.name, inputs=inputs, analysis=analysis)
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{request.org.slug}-scenario-{scenario.pk}.csv"'
    )
    return response


@require_GET
@org_view()
def scenario_report(request: HttpRequest, scenario_id: int) -> HttpResponse:
    """A read-only report laid out for print (the browser's print to PDF makes the PDF)."""
    scenario = scenario_or_404(request, scenario_id)
    inputs = RoiInputs.from_dict(scenario.inputs)
    focus = scenario.assessment.placement if scenario.assessment else ""
    form = CalculatorForm(inputs=inputs, name=scenario.name, focus=focus)
    context = results_context(form, scenario.assessment)
    context.update(
        {
            "scenario": scenario,
            "inputs": inputs,
            "sections": form.sections(),
            "scenario_fields": form.scenario_fields(),
            "scenario_groups": form.scenario_groups(),
        }
    )
    return render(request, "roi/scenario_report.html", context)


@require_GET
@org_view()
def scenario_compare(request: HttpRequest) -> HttpResponse:
    """Scenarios side by side from their saved figures, plus the inputs that differ."""
    scenarios = selectors.scenarios_by_ids(org=request.org, ids=request.GET.getlist("ids"))
    scenarios = scenarios[:MAX_COMPARE]
    inputs = [RoiInputs.from_dict(s.inputs) for s in scenarios]
    rows = []
    metrics = (
        ("npv", "NPV", True),
        ("npv_p10", "NPV P10", True),
        ("npv_p90", "NPV P90", True),
        ("tco", "TCO", False),
        ("cost_per_site_month", "Cost per site / month", False),
        ("payback_month", "Payback month", False),
    )
    for placement, label in PLACEMENT_LABELS.items():
        for key, metric_label, _higher in metrics:
            values = []
            for scenario in scenarios:
                figure = scenario.summary.get("placements", {}).get(placement, {}).get(key)
                if key == "payback_month":
                    values.append("—" if figure is None else f"month {figure}")
                else:
                    values.append(format_money(figure, signed=key.startswith("npv")))
            rows.append({"placement": label, "metric": metric_label, "values": values})
    return render(
        request,
        "roi/scenario_compare.html",
        {
            "scenarios": scenarios,
            "rows": rows,
            "differences": input_differences(inputs),
            "placement_labels": PLACEMENT_LABELS,
            "all_scenarios": list(selectors.scenarios_for_org(org=request.org)[:50]),
            "selected": {s.pk for s in scenarios},
            "max_compare": MAX_COMPARE,
            "tab": "scenarios",
        },
    )
