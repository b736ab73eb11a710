"""Reads of planning objects, always starting from the organisation.

An id that belongs to another organisation simply is not found (the views turn that into a
404), so no query here can leak another tenant's plan. List selectors fetch everything a list
row shows in a fixed number of queries, whatever the number of rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from modelregistry import selectors as model_selectors
from opshero.models import Membership, Organization
from rollouts import selectors as rollout_selectors

from .models import Assessment, Plan, RoiScenario, Scorecard
from .scorecard import Category


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
        "organization", "assessment", "cloned_from", "created_by"
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


# --- Evidence that ticks plan tasks -------------------------------------------------------------

#: How many of the newest scorecards are read to find one with enough scored stacks.
SCORECARDS_SEARCHED = 50
#: Rollout states in which a staged release has really started (a draft or a refused one has not).
ROLLOUT_STARTED = ("running", "paused", "completed", "aborted", "rolled_back")


@dataclass(frozen=True)
class PlanRecords:
    """The records that show plan tasks done, each ``None`` when there is none yet.

    ``scorecard`` has at least two fully scored candidate stacks (``scored_stacks`` of them);
    ``scenario`` is the plan's linked scenario, else one built from its assessment;
    ``validated_run`` is the newest passed validation run (of the plan's model, if it names one);
    ``rollout`` is the newest rollout that started (of the plan's model, if it names one).
    """

    scorecard: Scorecard | None
    scored_stacks: int
    scenario: RoiScenario | None
    validated_run: Any
    rollout: Any


def _scored(candidate: Any) -> bool:
    scores = candidate.get("scores") if isinstance(candidate, dict) else None
    return isinstance(scores, dict) and all(category in scores for category in Category)


def plan_records(*, plan: Plan) -> PlanRecords:
    """What the organisation has done for a plan, in at most four queries.

    Scorecards count when they are tied to the plan's assessment or to no assessment (an
    organisation-wide comparison); one tied to another assessment compared stacks for another
    workflow.
    """
    org = plan.organization
    scorecard, scored = None, 0
    scorecards = (
        Scorecard.objects.filter(organization=org)
        .filter(Q(assessment_id=plan.assessment_id) | Q(assessment__isnull=True))
        .order_by("-updated_at", "-pk")
        .only("pk", "name", "candidates", "assessment_id", "updated_at")
    )
    for candidate_card in scorecards[:SCORECARDS_SEARCHED]:
        count = sum(_scored(c) for c in candidate_card.candidates or [])
        if count >= 2:
            scorecard, scored = candidate_card, count
            break
    scenario = plan.scenario
    if scenario is None:
        scenario = (
            RoiScenario.objects.filter(organization=org, assessment_id=plan.assessment_id)
            .order_by("-updated_at", "-pk")
            .first()
        )
    runs = model_selectors.finished_runs_for_org(org=org).filter(status="passed")
    rollouts = rollout_selectors.rollouts_for_org(org=org).filter(status__in=ROLLOUT_STARTED)
    if plan.model_id is not None:
        runs = runs.filter(version__model_id=plan.model_id)
        rollouts = rollouts.filter(model_id=plan.model_id)
    else:
        # Without the plan's model, another model's validation or rollout proves nothing here.
        runs = runs.none()
        rollouts = rollouts.none()
    return PlanRecords(
        scorecard=scorecard,
        scored_stacks=scored,
        scenario=scenario,
        validated_run=runs.first(),
        rollout=rollouts.first(),
    )
