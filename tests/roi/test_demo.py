"""The demo seeder builds the planning story once, through the services."""

from __future__ import annotations

import pytest

from opshero import demo as platform_demo
from opshero.models import AuditEvent
from roi import demo
from roi.models import Assessment, Plan, RoiScenario, Scorecard

pytestmark = pytest.mark.django_db


def test_seed_is_idempotent_and_tells_the_dock_story():
    context = platform_demo.seed()
    demo.seed(context)
    demo.seed(context)
    org = context["org"]
    assessment = Assessment.objects.get(organization=org)
    assert assessment.placement == "near_edge"
    assert Scorecard.objects.get(organization=org).candidates[0]["name"] == "Jetson Orin gateway"
    scenario = RoiScenario.objects.get(organization=org)
    assert scenario.assessment == assessment and scenario.workflow == "logistics_dock_vision"
    plan = Plan.objects.get(organization=org)
    assert plan.scenario == scenario
    statuses = {task["id"]: task["status"] for task in plan.tasks}
    assert statuses["device_identity"] == "done" and statuses["select_runtime"] == "doing"
    assert AuditEvent.objects.filter(organization=org, verb="plan.created").count() == 1
