"""Platform reads, each starting from an organisation or a user."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from .models import AuditEvent, Membership, Organization


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


@dataclass(frozen=True)
class AuditFilters:
    """Filters of the audit page and API; empty values mean "any"."""

    q: str = ""
    verb: str = ""
    actor_kind: str = ""
    target_type: str = ""
    since: date | None = None
    until: date | None = None


def audit_events_for_org(
    *, org: Organization, filters: AuditFilters | None = None
) -> QuerySet[AuditEvent]:
    """Audit events of one organisation, newest first."""
    qs = AuditEvent.objects.filter(organization=org)
    f = filters or AuditFilters()
    if f.verb:
        qs = qs.filter(verb=f.verb)
    if f.actor_kind:
        qs = qs.filter(actor_kind=f.actor_kind)
    if f.target_type:
        qs = qs.filter(target_type=f.target_type)
    if f.q:
        qs = qs.filter(
            Q(actor_label__icontains=f.q)
            | Q(target_label__icontains=f.q)
            | Q(verb__icontains=f.q)
            | Q(target_id=f.q)
        )
    tz = timezone.get_current_timezone()
    if f.since:
        qs = qs.filter(at__gte=datetime.combine(f.since, time.min, tzinfo=tz))
    if f.until:
        qs = qs.filter(at__lt=datetime.combine(f.until + timedelta(days=1), time.min, tzinfo=tz))
    return qs.order_by("-at", "-id")


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
