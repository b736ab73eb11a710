"""The stack scorecard editor: candidates x eight categories, weights, ranking, radar.

Changing a score re-ranks live (the ranking, red flags and radar are swapped; inputs are not
re-rendered); adding or removing a candidate re-renders the matrix with what was typed.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.views.decorators.http import require_GET, require_POST

from opshero.errors import DomainError
from opshero.form_flow import handle_form_post
from opshero.htmx import wants_fragment
from opshero.roles import Action
from opshero.tenancy import org_view

from .. import charts, selectors, services
from ..forms import ScorecardForm
from ..measurements import suggested_scores
from ..scorecard import CATEGORY_LABELS, PlanningInputError, Scorecard
from .common import actor, can_edit, optional, require_edit, scorecard_or_404

PAGE_SIZE = 25
SCORE_OPTIONS = (
    ("1", "1 · poor"),
    ("2", "2 · weak"),
    ("3", "3 · adequate"),
    ("4", "4 · good"),
    ("5", "5 · excellent"),
)


def ranking_context(form: ScorecardForm) -> dict[str, Any]:
    """Rank what is on the form; reasons go to the form when it cannot be ranked yet."""
    data = form.cleaned()
    ranked = None
    if not form.errors:
        try:
            card = Scorecard.from_dict(data)
            if not card.candidates:
                form.errors["candidates"] = ["Add at least one candidate stack."]
            else:
                ranked = card.rank()
        except PlanningInputError as exc:
            form.add_domain_error(DomainError(exc.message, fields=exc.fields))
    return {
        "form": form,
        "ranked": ranked,
        "radar_figure": charts.radar_figure(ranked) if ranked else None,
        "category_labels": {str(k): v for k, v in CATEGORY_LABELS.items()},
        "error_slots": form.error_slots(),
        "error_summary": form.error_summary(),
        "score_options": SCORE_OPTIONS,
    }


def _apply_op(form: ScorecardForm, op: str) -> bool:
    """Add or remove a candidate column; True when the matrix changed."""
    if op == "add":
        form.add_candidate()
        return True
    if op.startswith("remove-") and op[len("remove-") :].isdigit():
        form.remove_candidate(int(op[len("remove-") :]))
        return True
    return False


def _suggestions(request: HttpRequest, form: ScorecardForm) -> dict:
    return suggested_scores(organisation=request.org, candidates=form.candidates)


def _page(request: HttpRequest, form: ScorecardForm, *, status: int = 200, **extra: Any):
    context = ranking_context(form)
    context.update(
        {
            "can_edit": can_edit(request),
            "tab": "scorecards",
            "suggestions": _suggestions(request, form),
            **extra,
        }
    )
    return render(request, "roi/scorecard.html", context, status=status)


@require_GET
@org_view()
def scorecard_list(request: HttpRequest) -> HttpResponse:
    scorecards = selectors.scorecards_for_org(org=request.org)
    page = Paginator(scorecards, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = []
    for scorecard in page:
        try:
            ranked = Scorecard.from_dict(scorecard.as_dict()).rank()
        except PlanningInputError:
            ranked = []
        rows.append({"scorecard": scorecard, "leader": ranked[0] if ranked else None})
    return render(
        request,
        "roi/scorecard_list.html",
        {"page": page, "rows": rows, "can_edit": can_edit(request), "tab": "scorecards"},
    )


@org_view()
def scorecard_new(request: HttpRequest) -> HttpResponse:
    params = request.POST if request.method == "POST" else request.GET
    assessment = optional(
        selectors.assessment_for_org, request, params.get("assessment"), "assessment"
    )
    if request.method == "POST":
        require_edit(request)
        form = ScorecardForm(request.POST)
        if _apply_op(form, request.POST.get("op", "")):
            return _page(request, form, assessment=assessment)
        return handle_form_post(
            request,
            form=form,
            perform=lambda: services.create_scorecard(
                organization=request.org,
                actor=actor(request),
                name=form.cleaned_data["name"],
                candidates=form.cleaned_data["candidates"],
                weights=form.cleaned_data["weights"],
                red_flags_rank_last=form.cleaned_data["red_flags_rank_last"],
                assessment=assessment,
            ),
            apply_error=ScorecardForm.add_domain_error,
            success_message=lambda scorecard: f"Scorecard \u201c{scorecard.name}\u201d saved.",
            redirect_to=lambda scorecard: _scorecard_url(request, scorecard),
            render_invalid=lambda status: _page(
                request, form, status=status, assessment=assessment
            ),
        )
    name = f"Stacks for {assessment.name}" if assessment else "Stack scorecard"
    form = ScorecardForm(initial={"candidates": []}, name=name[:120])
    form.add_candidate()
    form.add_candidate()
    return _page(request, form, assessment=assessment)


@org_view()
def scorecard_detail(request: HttpRequest, scorecard_id: int) -> HttpResponse:
    scorecard = scorecard_or_404(request, scorecard_id)
    if request.method == "POST":
        require_edit(request)
        form = ScorecardForm(request.POST)
        if _apply_op(form, request.POST.get("op", "")):
            return _page(request, form, scorecard=scorecard, assessment=scorecard.assessment)
        return handle_form_post(
            request,
            form=form,
            perform=lambda: services.update_scorecard(
                scorecard=scorecard,
                actor=actor(request),
                name=form.cleaned_data["name"],
                candidates=form.cleaned_data["candidates"],
                weights=form.cleaned_data["weights"],
                red_flags_rank_last=form.cleaned_data["red_flags_rank_last"],
                expected_revision=_int(request.POST.get("revision")),
            ),
            apply_error=ScorecardForm.add_domain_error,
            status_from_error=True,  # an edit of an older revision is a 409
            success_message="Scorecard saved.",
            redirect_to=lambda _: _scorecard_url(request, scorecard),
            render_invalid=lambda status: _page(
                request, form, status=status, scorecard=scorecard, assessment=scorecard.assessment
            ),
        )
    form = ScorecardForm(initial=scorecard.as_dict(), name=scorecard.name)
    return _page(request, form, scorecard=scorecard, assessment=scorecard.assessment)


def _scorecard_url(request: HttpRequest, scorecard) -> str:
    return resolve_url("roi:scorecard", org=request.org.slug, scorecard_id=scorecard.pk)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@require_POST
@org_view()
def scorecard_preview(request: HttpRequest) -> HttpResponse:
    """Re-rank what is on the form (stateless); add/remove re-renders the matrix too."""
    form = ScorecardForm(request.POST)
    matrix_changed = _apply_op(form, request.POST.get("op", ""))
    context = ranking_context(form)
    context["can_edit"] = can_edit(request)
    if matrix_changed or not wants_fragment(request):
        context["oob_results"] = True
        context["suggestions"] = _suggestions(request, form)
        return render(request, "roi/partials/scorecard_matrix.html", context)
    context["oob"] = True
    return render(request, "roi/partials/scorecard_results.html", context)


@require_POST
@org_view(Action.EDIT_PLANS)
def scorecard_delete(request: HttpRequest, scorecard_id: int) -> HttpResponse:
    scorecard = scorecard_or_404(request, scorecard_id)
    services.delete_scorecard(scorecard=scorecard, actor=actor(request))
    messages.success(request, f"Scorecard \u201c{scorecard.name}\u201d deleted.")
    return redirect("roi:scorecards", org=request.org.slug)
