"""Assignments (what a device should run) written in bulk: one statement on PostgreSQL, the ORM
on SQLite; both keep the same fallback rules."""

from __future__ import annotations

import pytest
from django.utils import timezone

from modelregistry import assignment_services
from modelregistry.models import DeviceAssignment
from opshero.actors import Actor
from tests.rollouts.fleet import build

SYSTEM = Actor.system("tests")


@pytest.mark.django_db
@pytest.mark.parametrize("writer", ["_upsert_postgresql", "_upsert_orm"])
def test_fallback_rules_are_the_same_on_both_paths(world, writer):
    w = build(world, sites=1, per_site=3)  # every device assigned the baseline
    ids = [device.pk for device in w.devices]
    write = getattr(assignment_services, writer)

    def assign(version, previous=None, actions=None):
        write(
            organization=w.org,
            model=w.model,
            version=version,
            ids=ids,
            now=timezone.now(),
            purpose="install",
            rollout_id=7,
            action_ids=actions,
            previous=previous,
        )
        return {a.device_id: a for a in DeviceAssignment.objects.filter(device_id__in=ids)}

    rows = assign(w.candidate, actions={ids[0]: 41})
    assert {a.version_id for a in rows.values()} == {w.candidate.pk}
    assert {a.previous_version_id for a in rows.values()} == {w.baseline.pk}
    assert rows[ids[0]].action_id == 41 and rows[ids[1]].action_id is None
    rows = assign(w.candidate)  # the same version again keeps the fallback
    assert {a.previous_version_id for a in rows.values()} == {w.baseline.pk}
    rows = assign(w.baseline, previous=dict.fromkeys(ids))
    assert {a.version_id for a in rows.values()} == {w.baseline.pk}
    assert {a.previous_version_id for a in rows.values()} == {None}
    assert {a.rollout_id for a in rows.values()} == {7}


@pytest.mark.django_db
def test_assign_version_is_one_statement_whatever_the_device_count(world):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    w = build(world, sites=2, per_site=30)
    counts = []
    for version, devices in ((w.candidate, w.devices[:2]), (w.baseline, w.devices)):
        with CaptureQueriesContext(connection) as queries:
            assignment_services.assign_version(
                organization=w.org,
                model=w.model,
                version=version,
                device_ids=[device.pk for device in devices],
                actor=SYSTEM,
            )
        counts.append(len(queries))
        upserts = [q for q in queries if "INSERT INTO modelregistry_deviceassignment" in q["sql"]]
        assert len(upserts) == 1
    assert counts[0] == counts[1]
    assert DeviceAssignment.objects.filter(version=w.baseline).count() == 60
