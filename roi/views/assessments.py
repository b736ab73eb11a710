"""The planning landing page and saved assessments (the wizard's shareable, printable result)."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from opshero.errors import DomainError
from opshero.roles import Action
from opshero.tenancy import org_view

from .. import selectors, services
from ..rules import RULESET_VERSION
from .common import actor, assessment_or_404, can_edit

PAGE_SIZE = 25


@require_GET
@org_view()
def home(request: HttpRequest) -> HttpResponse:
    """The journey: assess -> score stacks -> build the ROI case -> follow the 90-day plan."""
    org = request.org
    context = {
        "counts": selectors.planning_counts(org=org),
        "assessments": list(selectors.assessments_for_org(org=org)[:5]),
        "scorecards": list(selectors.scorecards_for_org(org=org)[:5]),
        "scenarios": list(selectors.scenarios_for_org(org=org)[:5]),
        "plans": list(selectors.plans_for_org(org=org)[:5]),
        "can_edit": can_edit(request),
        "ruleset_version": RULESET_VERSION,
    }
    return render(request, "roi/home.html", context)


@require_GET
@org_view()
def assessment_list(request: HttpRequest) -> HttpResponse:
    assessments = selectors.assessments_for_org(org=request.org)
    page = Paginator(assessments, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "roi/assessment_list.html",
        {"page": page, "can_edit": can_edit(request), "tab": "assessments"},
    )


@require_GET
@org_view()
def assessment_detail(request: HttpRequest, assessment_id: int) -> HttpResponse:
    """The decision as it was taken: stable URL, readable by every member, printable."""
    assessment = assessment_or_404(request, assessment_id)
    plans = list(selectors.plans_for_assessment(assessment=assessment))
    scenarios = list(
        selectors.scenarios_for_org(org=request.org).filter(assessment=assessment)[:10]
    )
    context = {
        "assessment": assessment,
        "result": assessment.result,
        "plans": plans,
        "scenarios": scenarios,
        "can_edit": can_edit(request),
        "current_ruleset": RULESET_VERSION,
        "share_url": request.build_absolute_uri(),
    }
    return render(request, "roi/assessment_detail.html", context)


@require_POST
@org_view(Action.EDIT_PLANS)
def assessment_delete(request: HttpRequest, assessment_id: int) -> HttpResponse:
    assessment = assessment_or_404(request, assessment_id)
    try:
        services.delete_assessment(assessment=assessment, actor=actor(request))
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("roi:assessment", org=request.org.slug, assessment_id=assessment.pk)
    messages.success(request, f"Assessment \u201c{assessment.name}\u201d deleted.")
    return redirect("roi:assessments", org=request.org.slug)


@require_POST
@org_view(Action.EDIT_PLANS)
def assessment_plan(request: HttpRequest, assessment_id: int) -> HttpResponse:
    """Generate the 90-day plan of this assessment (linked to a scenario if one is chosen)."""
    assessment = assessment_or_404(request, assessment_id)
    scenario = None
    scenario_id = request.POST.get("scenario")
    if scenario_id:
        scenario = selectors.scenario_for_org(org=request.org, pk=scenario_id)
        if scenario is None:
            messages.error(request, "That ROI scenario does not exist in this organisation.")
            return redirect("roi:assessment", org=request.org.slug, assessment_id=assessment.pk)
    try:
        plan = services.create_plan(
            organization=request.org,
            actor=actor(request),
            assessment=assessment,
            scenario=scenario,
            name=request.POST.get("name", ""),
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("roi:assessment", org=request.org.slug, assessment_id=assessment.pk)
    messages.success(request, "90-day plan generated from the assessment.")
    return redirect("roi:plan", org=request.org.slug, plan_id=plan.pk)
