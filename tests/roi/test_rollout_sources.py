"""Rollout and rollback durations reach the plan as *field* measurements."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from opshero.roles import Role
from roi.measurements import planned_vs_measured
from roi.models import Plan
from roi.plan import MeasureKey, Provenance
from rollouts import services
from rollouts.models import DeploymentAction, Rollout
from rollouts.planning import WaveSpec
from tests.roi.builders import make_plan
from tests.rollouts.fleet import build


@pytest.mark.django_db
def test_completed_rollout_and_rollback_durations_are_field_measurements(world):
    w = build(world, sites=1, per_site=2)
    plan = make_plan(w.org)
    Plan.objects.filter(pk=plan.pk).update(created_at=timezone.now() - timedelta(days=2))
    plan.refresh_from_db()
    assert planned_vs_measured(plan).measurement(MeasureKey.ROLLOUT_HOURS, Provenance.FIELD) is None
    rollout = services.create_rollout(
        organization=w.org,
        actor=w.planner,
        role=Role.APPROVER,
        version=w.candidate,
        site_ids=[w.sites[0].pk],
        waves=[WaveSpec(name="all", share_percent=100.0)],
    )
    approved = timezone.now() - timedelta(hours=3)
    Rollout.objects.filter(pk=rollout.pk).update(
        status=Rollout.Status.COMPLETED,
        approved_at=approved,
        finished_at=approved + timedelta(hours=2),
        rollback_started_at=approved + timedelta(hours=2, minutes=10),
        rollback_finished_at=approved + timedelta(hours=2, minutes=22),
    )
    DeploymentAction.objects.filter(rollout=rollout).update(
        status="healthy", healthy_at=approved + timedelta(minutes=90)
    )
    measured = planned_vs_measured(plan)
    hours = measured.measurement(MeasureKey.ROLLOUT_HOURS, Provenance.FIELD)
    assert hours.value == pytest.approx(1.5)
    assert hours.device_count == 2
    minutes = measured.measurement(MeasureKey.ROLLBACK_MINUTES, Provenance.FIELD)
    assert minutes.value == pytest.approx(12.0)
