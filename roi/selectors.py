"""Reads of planning objects, always starting from the organisation.

An id that belongs to another organisation simply is not found (the views turn that into a
404), so no query here can leak another tenant's plan. List selectors fetch everything a list
row shows in a fixed number of queries, whatever the number of rows.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from opshero.models import Membership, Organization

from .models import Assessment, Plan, RoiScenario, Scorecard


def assessments_for_org(*, org: Organization) -> QuerySet[Assessment]:
    return Assessment.objects.filter(organization=org).select_related("created_by")


def assessment_for_org(*, org: Organization, pk: int | str | None) -> Assessment | None:
    if not _is_id(pk):
        return None
    return assessments_for_org(org=org).filter(pk=pk).first()


def scorecards_for_org(*, org: Organization) -> QuerySet[Scorecard]:
    return Scorecard.objects.filter(organization=org).select_related("assessment", "created_by")


def scorecard_for_org(*, org: Organization, pk: int | str | None) -> Scorecard | None:
    if not _is_id(pk):
        return None
    return scorecards_for_org(org=org).filter(pk=pk).first()


def scenarios_for_org(*, org: Organization) -> QuerySet[RoiScenario]:
    return RoiScenario.objects.filter(organization=org).select_related(
        "assessment", "cloned_from", "created_by"
    )


def scenario_for_org(*, org: Organization, pk: int | str | None) -> RoiScenario | None:
    if not _is_id(pk):
        return None
    return scenarios_for_org(org=org).filter(pk=pk).first()


def scenarios_by_ids(*, org: Organization, ids: Iterable[int | str]) -> list[RoiScenario]:
    """The organisation's scenarios among ``ids``, in the order asked (unknown ids dropped)."""
    wanted = [int(pk) for pk in ids if _is_id(pk)]
    found = {s.pk: s for s in scenarios_for_org(org=org).filter(pk__in=wanted)}
    return [found[pk] for pk in dict.fromkeys(wanted) if pk in found]


def plans_for_org(*, org: Organization) -> QuerySet[Plan]:
    return Plan.objects.filter(organization=org).select_related(
        "assessment", "scenario", "created_by"
    )


def plan_for_org(*, org: Organization, pk: int | str | None) -> Plan | None:
    if not _is_id(pk):
        return None
    return plans_for_org(org=org).filter(pk=pk).first()


def plans_for_assessment(*, assessment: Assessment) -> QuerySet[Plan]:
    return Plan.objects.filter(
        organization_id=assessment.organization_id, assessment=assessment
    ).order_by("-created_at")


def planning_counts(*, org: Organization) -> dict[str, int]:
    """How much planning work exists, for the landing page (four cheap counts)."""
    return {
        "assessments": Assessment.objects.filter(organization=org).count(),
        "scorecards": Scorecard.objects.filter(organization=org).count(),
        "scenarios": RoiScenario.objects.filter(organization=org).count(),
        "plans": Plan.objects.filter(organization=org).count(),
    }


def members_for_org(*, org: Organization) -> list:
    """Users who can own a plan task: the organisation's members, by name."""
    user_model = get_user_model()
    ids = Membership.objects.filter(organization=org).values("user_id")
    return list(user_model.objects.filter(pk__in=ids).order_by("first_name", "username"))


def member_of_org(*, org: Organization, user_id: int | str | None):
    if not _is_id(user_id):
        return None
    membership = (
        Membership.objects.filter(organization=org, user_id=user_id).select_related("user").first()
    )
    return membership.user if membership else None


def _is_id(value: int | str | None) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int):
        return value > 0
    return str(value).isdigit() and int(value) > 0
