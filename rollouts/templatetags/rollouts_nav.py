"""The navigation's rollouts badge: how many rollouts wait for an approver (one indexed
count per page)."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

from rollouts.models import Rollout

register = template.Library()


@register.simple_tag
def rollouts_pending_badge(org) -> str:
    if not org:
        return ""
    waiting = Rollout.objects.filter(
        organization=org, status=Rollout.Status.PENDING_APPROVAL
    ).count()
    if not waiting:
        return ""
    return format_html(
        '<span class="badge badge-sm bg-yellow text-yellow-fg ms-auto" '
        'title="{} waiting for approval" data-testid="nav-rollouts-pending">{}</span>',
        f"{waiting} rollout{'s' if waiting != 1 else ''}",
        waiting,
    )
