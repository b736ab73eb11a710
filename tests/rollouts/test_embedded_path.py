"""The rollout loop on the embedded defaults `make run` uses (SQLite, the file cache): the same
services and engine, in a subprocess with no PostgreSQL or Redis in its environment. The
PostgreSQL-only statements (DISTINCT ON, one-statement upserts, SKIP LOCKED) have portable
paths, and this proves they work there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICE_VARS = {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"}

SCRIPT = r"""
import json
from datetime import timedelta

import django

django.setup()
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

call_command("migrate", verbosity=0)
from modelregistry.models import DeviceAssignment
from opshero.actors import Actor
from opshero.roles import Role
from rollouts import engine, services
from rollouts.api.device_views import desired_payload, read_desired_state
from rollouts.models import DeploymentAction
from rollouts.planning import WaveSpec
from tests.factories import make_world
from tests.rollouts.fleet import build

with transaction.atomic():
    w = build(make_world(), sites=1, per_site=3)
rollout = services.create_rollout(
    organization=w.org, actor=w.planner, role=Role.APPROVER, version=w.candidate,
    site_ids=[w.sites[0].pk], waves=[WaveSpec(name="all", share_percent=100.0, soak_minutes=0)],
)
services.submit_rollout(rollout=rollout, actor=w.planner, role=Role.APPROVER)
services.approve_rollout(rollout=rollout, actor=w.approver, role=Role.APPROVER)
engine.evaluate_rollouts()
device = Actor.system("gateway")
actions = list(DeploymentAction.objects.filter(rollout=rollout))
for action in actions:
    services.report_action_status(
        device=action.device, action_id=action.pk, status="installed", actor=device
    )
DeploymentAction.objects.update(installed_at=timezone.now() - timedelta(minutes=6))
for action in actions:
    services.report_action_status(
        device=action.device, action_id=action.pk, status="healthy", inferences_served=3,
        actor=device,
    )
engine.evaluate_rollouts(now=timezone.now() + timedelta(minutes=1))
rollout.refresh_from_db()
completed = rollout.status
services.roll_back(rollout=rollout, actor=w.approver, role=Role.APPROVER, reason="embedded")
payload = desired_payload(read_desired_state(actions[0].device))
print(json.dumps({
    "vendor": connection.vendor,
    "completed": completed,
    "after": services.Rollout.objects.get(pk=rollout.pk).status,
    "versions": sorted(set(DeviceAssignment.objects.values_list("version__version", flat=True))),
    "purpose": payload["models"][0]["purpose"],
    "counter": payload["models"][0]["release_counter"],
    "candidate_counter": max(w.candidate.signatures.values_list("release_counter", flat=True)),
}))
"""


def test_the_rollout_loop_runs_on_sqlite_and_the_file_cache(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "opshero.settings",
            "OPSHERO_VAR_DIR": str(tmp_path / "var"),
            "PYTHONPATH": str(ROOT),
        }
    )
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["vendor"] == "sqlite"
    assert outcome["completed"] == "completed"
    assert outcome["after"] == "rolled_back"
    assert outcome["versions"] == ["1.0.0"]
    assert outcome["purpose"] == "rollback"
    assert outcome["counter"] > outcome["candidate_counter"]
