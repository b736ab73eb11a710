"""The demo's rollout seed and the live demo fleet's keys.

``seed_demo`` leaves the digits classifier 1.0.0 validated (the real pipeline), signed and on
the demo gateways, its INT8 variant 1.1.0 signed, and a rollout of 1.1.0 that demo-approver
planned waiting for demo-approver2; ``manage.py demo_fleet`` gives each demo gateway a key it
holds, in a fleet file the simulator reads.
"""

from __future__ import annotations

import io
import json
import stat

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from fleet import demo as fleet_demo
from fleet.models import DeviceCredential
from gateway.loadgen import FleetFile
from modelregistry.models import DeviceAssignment, ModelVersion
from opshero import demo as platform_demo
from opshero.actors import Actor
from opshero.errors import Forbidden
from opshero.models import AuditEvent, Organization
from opshero.roles import Role
from protocol import device_auth
from rollouts import demo, demo_fleet, services
from rollouts.models import Rollout

pytestmark = pytest.mark.django_db


def test_seed_demo_leaves_a_signed_fleet_and_a_rollout_for_the_second_approver():
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())  # idempotent: nothing is added

    org = Organization.objects.get(slug=platform_demo.DEMO_ORG[1])
    gateways = demo.demo_gateways(org)
    assert [g.name for g in gateways] == ["ham3-gateway", "northside-triage-box", "rdm7-gateway"]
    baseline = ModelVersion.objects.get(model__organization=org, version="1.0.0")
    candidate = ModelVersion.objects.get(model__organization=org, version="1.1.0")
    for version in (baseline, candidate):
        assert version.status == ModelVersion.Status.SIGNED
        (run,) = version.validation_runs.all()  # one real run each, not repeated by re-seeding
        assert run.status == "passed" and run.target.builtin_key == "cpu"
        assert [s["name"] for s in run.report["steps"]][:2] == ["integrity", "inputs"]
        (signature,) = version.signatures.all()
        assert signature.signed_by.username == "demo-approver2"  # not the uploader
    assert candidate.derived_from == baseline and candidate.variant_kind == "int8"
    assert candidate.sha256 != baseline.sha256
    assigned = DeviceAssignment.objects.filter(model=baseline.model)
    assert sorted(assigned.values_list("device_id", flat=True)) == sorted(g.pk for g in gateways)
    assert set(assigned.values_list("version_id", flat=True)) == {baseline.pk}

    (rollout,) = Rollout.objects.filter(organization=org)
    assert rollout.status == Rollout.Status.PENDING_APPROVAL
    assert rollout.version == candidate and rollout.created_by.username == "demo-approver"
    waves = list(rollout.waves.order_by("number"))
    assert [(w.name, w.soak_minutes) for w in waves] == [("Canary", 5), ("All gateways", 0)]
    assert rollout.analysis_settings["device_soak_minutes"] == 1
    assert rollout.actions.count() == len(gateways)  # every gateway is in the plan
    policies = {g.site.operating_policy.desired_poll_interval_s for g in gateways}
    assert policies == {demo.DEMO_POLL_INTERVAL_S}

    users = get_user_model().objects
    with pytest.raises(Forbidden):  # four-eyes: the planner cannot approve
        services.approve_rollout(
            rollout=rollout,
            actor=Actor.for_user(users.get(username="demo-approver")),
            role=Role.APPROVER,
        )
    services.approve_rollout(
        rollout=rollout,
        actor=Actor.for_user(users.get(username="demo-approver2")),
        role=Role.APPROVER,
    )
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.APPROVED


def _seed_fleet():
    context = platform_demo.seed()
    fleet_demo.seed(context)
    return context["org"]


def _me(client: Client, device_id: str, key) -> int:
    headers = device_auth.sign_request(
        private_key=key, device_id=device_id, method="GET", path="/api/v1/device/me", body=b""
    )
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    return client.get("/api/v1/device/me", **extra).status_code


def test_the_fleet_file_holds_keys_the_server_accepts_and_keeps_them_across_restarts(tmp_path):
    org = _seed_fleet()
    path = tmp_path / "demo-fleet" / "fleet.json"
    devices = demo_fleet.write_fleet_file(
        organization=org, path=path, server="http://127.0.0.1:8131"
    )
    assert len(devices) == 3
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # private keys: owner only
    fleet = FleetFile.load(path)
    assert fleet.server == "http://127.0.0.1:8131"
    assert [d.device_id for d in fleet.devices] == [str(d.uid) for d in devices]
    client = Client()
    for entry in fleet.devices:
        assert _me(client, entry.device_id, entry.private_key()) == 200
    other = device_auth.generate_device_key()
    assert _me(client, fleet.devices[0].device_id, other) == 401  # only the held key signs

    first = path.read_text()
    demo_fleet.write_fleet_file(organization=org, path=path, server="http://127.0.0.1:8131")
    assert json.loads(path.read_text()) == json.loads(first)  # a restart reuses the keys
    events = AuditEvent.objects.filter(verb="device.demo_key_set")
    assert events.count() == 3
    # The seeded (thrown-away) keys are kept as rotated, one active key per device.
    for device in devices:
        active = DeviceCredential.objects.filter(device=device, revoked_at__isnull=True)
        assert active.count() == 1
        assert device.credentials.filter(revoked_reason="rotated").count() == 1


def test_a_key_missing_from_the_file_is_made_again(tmp_path):
    org = _seed_fleet()
    path = tmp_path / "fleet.json"
    demo_fleet.write_fleet_file(organization=org, path=path, server="http://s")
    data = json.loads(path.read_text())
    dropped = data["devices"].pop(0)
    path.write_text(json.dumps(data))
    demo_fleet.write_fleet_file(organization=org, path=path, server="http://s")
    again = {d["device_id"]: d["private_key_pem"] for d in json.loads(path.read_text())["devices"]}
    assert again[dropped["device_id"]] != dropped["private_key_pem"]  # a new key, registered
    assert len(again) == 3
    (entry,) = [d for d in FleetFile.load(path).devices if d.device_id == dropped["device_id"]]
    assert _me(Client(), entry.device_id, entry.private_key()) == 200


def test_the_demo_fleet_runs_only_when_asked_outside_production_with_demo_gateways(settings):
    assert demo_fleet.decide(environ={}).run is False  # nothing seeded yet
    _seed_fleet()
    assert demo_fleet.decide(environ={}).run is True
    assert demo_fleet.decide(environ={"DEMO_FLEET": "1"}).run is True
    off = demo_fleet.decide(environ={"DEMO_FLEET": "0"})
    assert off.run is False and "DEMO_FLEET=0" in off.reason
    settings.PRODUCTION = True
    assert demo_fleet.decide(environ={}).run is False
