"""What every planning view shares: the actor, permission checks, org-scoped lookups."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from opshero.actors import Actor
from opshero.htmx import wants_fragment
from opshero.roles import Action

from .. import selectors


def actor(request: HttpRequest) -> Actor:
    return Actor.from_request(request)


def can_edit(request: HttpRequest) -> bool:
    return request.membership.can(Action.EDIT_PLANS)


def require_edit(request: HttpRequest) -> None:
    """For views that show a page to everyone but save only for planners and admins."""
    if not can_edit(request):
        raise PermissionDenied(
            f"Your role ({request.membership.get_role_display()}) can read plans but not "
            "change them."
        )


def get_or_404(finder: Callable[..., Any], request: HttpRequest, pk: Any, what: str) -> Any:
    found = finder(org=request.org, pk=pk)
    if found is None:
        raise Http404(f"No such {what}.")
    return found


def assessment_or_404(request: HttpRequest, pk: Any):
    return get_or_404(selectors.assessment_for_org, request, pk, "assessment")


def scorecard_or_404(request: HttpRequest, pk: Any):
    return get_or_404(selectors.scorecard_for_org, request, pk, "scorecard")


def scenario_or_404(request: HttpRequest, pk: Any):
    return get_or_404(selectors.scenario_for_org, request, pk, "scenario")


def plan_or_404(request: HttpRequest, pk: Any):
    return get_or_404(selectors.plan_for_org, request, pk, "plan")


def optional(finder: Callable[..., Any], request: HttpRequest, pk: Any, what: str) -> Any:
    """An optional reference (``?assessment=``): absent is None, unknown is a 404."""
    if pk in (None, ""):
        return None
    return get_or_404(finder, request, pk, what)


def invalid_status(request: HttpRequest) -> int:
    """The status of an answer that shows a form again with its reasons.

    A full page answers 422. An HTMX fragment that re-renders a form with its reasons is the
    successful outcome of that request and answers 200: browsers log every 4xx XHR as a
    console error, and htmx does not swap 4xx answers by default.
    """
    return 200 if wants_fragment(request) else 422
