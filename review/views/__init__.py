"""Review pages: the queue (``queue``), field accuracy (``accuracy``), and what left the sites,
labelled exports, the deletion report and retention (``data``)."""

from __future__ import annotations

from django.http import HttpRequest

from opshero.roles import Action


def review_context(request: HttpRequest, tab: str) -> dict:
    """What the review tabs need (``review/partials/tabs.html``) for the current member."""
    membership = request.membership
    return {
        "org": request.org,
        "tab": tab,
        "can_review": membership.can(Action.REVIEW_EVIDENCE),
        "can_export": membership.can(Action.EXPORT_EVIDENCE),
        "can_manage": membership.can(Action.MANAGE_EVIDENCE),
    }
