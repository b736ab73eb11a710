"""One rollout end to end in the production shape: gunicorn, a Celery worker on the rollouts
queue and beat evaluating every second, with two gateways talking HTTP. They poll their
desired state, verify the signed manifest against the pinned keys and the downloaded
artifact, report install and health; beat completes the rollout; a rollback then reaches them
as a re-issued manifest that passes their anti-rollback check, and beat measures how long it
took until both were back."""

from __future__ import annotations

import shutil
import urllib.request

import pytest
from django.db import transaction
from django.utils import timezone

from gateway.client import DeviceClient
from modelregistry import assignment_services
from opshero.actors import Actor
from opshero.roles import Role
from protocol import device_auth, manifest
from rollouts import services
from rollouts.models import Rollout
from rollouts.planning import AnalysisSettings, WaveSpec
from tests.factories import enroll_device
from tests.rollouts.fleet import RUNTIME, build
from tests.telemetry.stack import (
    Processes,
    beat_command,
    free_port,
    gunicorn_command,
    listening,
    redis_command,
    redis_up,
    stack_env,
    step,
    wait_for,
    worker_command,
)

pytestmark = [pytest.mark.django_db(transaction=True)]


class Gateway:
    """Just enough of a gateway: what a real agent does with the desired state."""

    def __init__(self, server: str, device, key):
        self.device, self.key, self.server = device, key, server
        self.client = DeviceClient(server=server, device_id=str(device.uid), private_key=key)
        self.installed_counter = 0

    def desired(self) -> dict:
        return self.client.request("GET", "/api/v1/device/desired")

    def download(self, url: str) -> bytes:
        headers = device_auth.sign_request(
            private_key=self.key,
            device_id=str(self.device.uid),
            method="GET",
            path=url,
            query="",
            body=b"",
        )
        request = urllib.request.Request(self.server + url, headers=headers)  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.read()

    def install(self, entry: dict, trusted: dict) -> manifest.VerifiedManifest:
        verified = manifest.verify_artifact(
            envelope_bytes=entry["envelope"].encode(),
            artifact_bytes=self.download(entry["artifact_url"]),
            trusted_keys=trusted,
            now=timezone.now(),
            min_release_counter=self.installed_counter,
        )
        self.installed_counter = verified.manifest.release_counter
        return verified

    def report(self, action_id: int, status: str, **extra) -> dict:
        return self.client.request(
            "POST", f"/api/v1/device/deployments/{action_id}/status", {"status": status, **extra}
        )


def _healthy(server: str) -> bool:
    try:
        with urllib.request.urlopen(server + "/healthz", timeout=5) as response:  # noqa: S310
            return response.status == 200
    except OSError:
        return False


def _trusted(payload: dict) -> dict:
    return {
        key["key_id"]: manifest.TrustedKey(key["public_pem"].encode(), "active")
        for key in payload["trusted_keys"]
    }


def test_a_rollout_reaches_gateways_over_http_and_rolls_back(world, tmp_path, settings):
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is needed (Debian's redis-server package)")
    settings.MEDIA_ROOT = tmp_path / "var" / "media"  # where the web process reads artifacts
    with transaction.atomic():
        w = build(world, sites=1, per_site=0)
        enrolled = [enroll_device(w.org, site=w.sites[0]) for _ in range(2)]
        for device, _ in enrolled:
            device.hardware_target = w.target
            device.runtime_version = RUNTIME
            device.save()
        assignment_services.assign_version(
            organization=w.org,
            model=w.model,
            version=w.baseline,
            device_ids=[device.pk for device, _ in enrolled],
            actor=Actor.system("tests"),
        )
    redis_port, web_port = free_port(), free_port()
    env = stack_env(tmp_path, redis_port, ROLLOUT_EVALUATE_SECONDS="1")
    procs = Processes(tmp_path, env)
    server = f"http://127.0.0.1:{web_port}"
    try:
        procs.start("redis", redis_command(redis_port, tmp_path))
        wait_for(lambda: redis_up(redis_port), 10, "redis")
        procs.start("web", gunicorn_command(web_port))
        procs.start("worker", worker_command(queues="rollouts,default"))
        procs.start("beat", beat_command(tmp_path / "beat-schedule"))
        wait_for(lambda: listening(web_port), 30, "gunicorn")
        wait_for(lambda: _healthy(server), 60, "the web app to answer", 0.5)
        gateways = [Gateway(server, device, key) for device, key in enrolled]

        step("the baseline is installed from the desired state")
        for gateway in gateways:
            payload = gateway.desired()
            (entry,) = payload["models"]
            assert entry["version"] == "1.0.0" and entry["action_id"] is None
            gateway.install(entry, _trusted(payload))

        step("plan, approve as a second approver; beat starts it")
        rollout = services.create_rollout(
            organization=w.org,
            actor=w.planner,
            role=Role.APPROVER,
            version=w.candidate,
            site_ids=[w.sites[0].pk],
            waves=[WaveSpec(name="all", share_percent=100.0, soak_minutes=0)],
            analysis=AnalysisSettings(device_soak_minutes=0),
        )
        services.submit_rollout(rollout=rollout, actor=w.planner, role=Role.APPROVER)
        services.approve_rollout(rollout=rollout, actor=w.approver, role=Role.APPROVER)

        def offered(version):
            entries = [g.desired()["models"][0] for g in gateways]
            return entries if all(e["version"] == version for e in entries) else None

        entries = wait_for(lambda: offered("1.1.0"), 30, "beat to notify both gateways", 0.5)
        step("the gateways verify, install and confirm")
        for gateway, entry in zip(gateways, entries, strict=True):
            trusted = _trusted(gateway.desired())
            verified = gateway.install(entry, trusted)
            assert verified.manifest.version == "1.1.0"
            gateway.report(entry["action_id"], "downloading")
            gateway.report(entry["action_id"], "installed")
            answer = gateway.report(entry["action_id"], "healthy", inferences_served=12)
            assert answer["changed"] is True

        def finished():
            rollout.refresh_from_db()
            return rollout.status == Rollout.Status.COMPLETED

        wait_for(finished, 30, "beat to complete the rollout", 0.5)
        assert rollout.actions.filter(status="healthy").count() == 2

        step("roll back: a re-issued baseline manifest above the candidate's counter")
        services.roll_back(rollout=rollout, actor=w.approver, role=Role.APPROVER, reason="e2e")
        entries = wait_for(lambda: offered("1.0.0"), 10, "the rollback in the desired state")
        for gateway, entry in zip(gateways, entries, strict=True):
            assert entry["purpose"] == "rollback"
            before = gateway.installed_counter
            verified = gateway.install(entry, _trusted(gateway.desired()))
            assert verified.manifest.release_counter > before
            gateway.report(entry["action_id"], "rolled_back")

        def back():
            rollout.refresh_from_db()
            return rollout.rollback_finished_at is not None

        wait_for(back, 30, "beat to see both gateways back", 0.5)
        assert rollout.status == Rollout.Status.ROLLED_BACK
        assert rollout.rollback_finished_at > rollout.rollback_started_at
    except BaseException:
        for name in ("web", "worker", "beat"):
            print(f"--- {name} ---\n{procs.log(name)}")
        raise
    finally:
        procs.stop_all()
