"""Platform reads, each starting from an organisation or a user."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import QuerySet

from .models import AuditEvent, Membership, Organization

if TYPE_CHECKING:  # filters.py builds on this app's models; selectors only apply it
    from .filters import AuditEventFilterSet


def memberships_for_user(*, user) -> QuerySet[Membership]:
    """The user's memberships with their organisations, for the switcher and the API."""
    if not user.is_authenticated:
        return Membership.objects.none()
    return Membership.objects.filter(user=user).select_related("organization")


def membership_for(*, user, org_slug: str) -> Membership | None:
    """The user's membership in the organisation with this slug, or None."""
    if not user.is_authenticated:
        return None
    return (
        Membership.objects.select_related("organization")
        .filter(user=user, organization__slug=org_slug)
        .first()
    )


def members_for_org(*, org: Organization) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(organization=org)
        .select_related("user")
        .order_by("user__username")
    )


def audit_events_for_org(
    *, org: Organization, filters: AuditEventFilterSet | None = None
) -> QuerySet[AuditEvent]:
    """Audit events of one organisation, newest first, narrowed by the filters' valid values."""
    qs = AuditEvent.objects.filter(organization=org).order_by("-at", "-id")
    return filters.apply(qs) if filters is not None else qs


def audit_facets_for_org(*, org: Organization) -> dict[str, list[str]]:
    """Distinct verbs and target types, for the filter drop-downs."""
    base = AuditEvent.objects.filter(organization=org)
    return {
        "verbs": list(base.order_by("verb").values_list("verb", flat=True).distinct()),
        "target_types": list(
            base.exclude(target_type="")
            .order_by("target_type")
            .values_list("target_type", flat=True)
            .distinct()
        ),
    }
