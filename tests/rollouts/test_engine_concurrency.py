"""Two evaluators at once on PostgreSQL never judge the same rollout twice: the second skips the
row the first holds (SELECT ... FOR UPDATE SKIP LOCKED), so a wave starts and its devices are
notified exactly once."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from opshero.models import AuditEvent
from opshero.roles import Role
from rollouts import engine, services
from rollouts.audit import RolloutVerb
from rollouts.models import DeploymentAction, Rollout
from rollouts.planning import WaveSpec
from tests.rollouts.fleet import build


@pytest.mark.django_db(transaction=True)
def test_two_evaluators_at_once_never_double_advance(world):
    if connection.vendor != "postgresql":
        pytest.fail("this test needs PostgreSQL (row locks with SKIP LOCKED)")
    with transaction.atomic():
        w = build(world, sites=2, per_site=3)
    rollout = services.create_rollout(
        organization=w.org,
        actor=w.planner,
        role=Role.APPROVER,
        version=w.candidate,
        site_ids=[s.pk for s in w.sites],
        canary_site_ids=[w.sites[0].pk],
        waves=[
            WaveSpec(name="Canary", share_percent=None),
            WaveSpec(name="all", share_percent=100),
        ],
    )
    services.submit_rollout(rollout=rollout, actor=w.planner, role=Role.APPROVER)
    services.approve_rollout(rollout=rollout, actor=w.approver, role=Role.APPROVER)

    barrier = threading.Barrier(2)
    results, errors = [], []

    def evaluator():
        try:
            barrier.wait(10)
            for _ in range(5):
                results.append(engine.evaluate_rollouts())
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=evaluator) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.RUNNING
    started = AuditEvent.objects.filter(
        verb=RolloutVerb.ROLLOUT_TRANSITIONED, target_id=str(rollout.pk), data__to="running"
    )
    assert started.count() == 1
    wave_started = AuditEvent.objects.filter(
        verb=RolloutVerb.WAVE_TRANSITIONED, target_id=str(rollout.pk), data__to="running"
    )
    assert wave_started.count() == 1
    notified = AuditEvent.objects.filter(
        verb=RolloutVerb.DEPLOYMENT_TRANSITIONED, target_id=str(rollout.pk), data__to="notified"
    )
    assert sum(event.data["devices"] for event in notified) == 2
    assert DeploymentAction.objects.filter(rollout=rollout, status="notified").count() == 2
    assert sum(r["judged"] for r in results) >= 1
