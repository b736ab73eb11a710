"""The whole loop in the production shape (issue 16): gunicorn, Celery workers (validation,
ingest, rollouts) and beat on PostgreSQL and a private Redis; three gateways running the real
agent daemon (`opshero-gateway run`, one process each) with real onnxruntime.

Enroll three gateways with one-time tokens → upload two versions, validate them on a worker,
sign them → roll the first out with a canary wave → the agents verify, install and confirm
healthy while apps on the site post inputs to them → telemetry lands and the health pages show
it → the web server is stopped for a minute (the agents queue) and started again → the second,
slower version rolls out to the canary → the canary analysis fails on latency, pauses and rolls
the wave back → the agents are back on the first version. Then every event each agent numbered
is counted on the server: none lost, none twice.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Count
from django.test import Client
from django.urls import reverse
from onnx import TensorProto, helper, numpy_helper

from fleet import services as fleet_services
from fleet.models import Device, HardwareTarget
from gateway.store import EventQueue
from modelregistry import services as registry
from modelregistry import signing_services
from modelregistry.models import ModelVersion, ValidationRun
from opshero.actors import Actor
from opshero.roles import Role
from rollouts import services
from rollouts.analysis import Thresholds
from rollouts.models import Rollout
from rollouts.planning import AnalysisSettings, WaveSpec
from telemetry.models import HealthEvent, InferenceEvent
from telemetry.routers import telemetry_db
from tests import onnx_models
from tests.factories import make_member, make_site
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
ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
MODEL = "dock damage"
INPUT = [[0.1, 0.2, 0.3, 0.4]]


def _fast_model() -> bytes:
    return onnx_models.tiny_model().SerializeToString()


def _slow_model() -> bytes:
    """The same answers as the fast model (Y = Relu(X + B)) plus a heavy branch whose result
    is multiplied by zero: twenty 384x384 matrix products per inference."""
    import numpy as np

    rng = np.random.default_rng(7)
    initializers = [
        helper.make_tensor("B", TensorProto.FLOAT, [4], [0.5, -0.5, 1.0, -1.0]),
        numpy_helper.from_array(rng.random((4, 384), dtype=np.float32), "W0"),
        numpy_helper.from_array(rng.random((384, 384), dtype=np.float32) / 384, "W"),
        numpy_helper.from_array(np.zeros((1,), dtype=np.float32), "Z"),
    ]
    nodes = [
        helper.make_node("Add", ["X", "B"], ["S"]),
        helper.make_node("Relu", ["S"], ["R"]),
        helper.make_node("MatMul", ["X", "W0"], ["H0"]),
    ]
    for i in range(20):
        nodes.append(helper.make_node("MatMul", [f"H{i}", "W"], [f"H{i + 1}"]))
    nodes += [
        helper.make_node("ReduceSum", ["H20"], ["T"], keepdims=0),
        helper.make_node("Mul", ["T", "Z"], ["T0"]),
        helper.make_node("Add", ["R", "T0"], ["Y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "slow",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 4])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _get(url: str, timeout: float = 3.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


class Traffic(threading.Thread):
    """Apps on the site network: post an input to every gateway, ``rate`` a second each."""

    def __init__(self, ports: list[int], rate: float = 8.0) -> None:
        super().__init__(daemon=True)
        self.ports, self.rate = ports, rate
        self.stop = threading.Event()
        self.answers: dict[int, dict[str, int]] = {port: {} for port in ports}

    def run(self) -> None:
        path = f"/v1/models/{urllib.parse.quote(MODEL)}/predict"
        body = json.dumps({"input": INPUT, "workflow": {"lane": "3"}}).encode()
        while not self.stop.is_set():
            began = time.monotonic()
            for port in self.ports:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}{path}", data=body, method="POST"
                )
                request.add_header("Content-Type", "application/json")
                try:
                    with urllib.request.urlopen(request, timeout=3) as response:  # noqa: S310
                        version = json.loads(response.read())["version"]
                except OSError:
                    version = "unavailable"
                seen = self.answers[port]
                seen[version] = seen.get(version, 0) + 1
            self.stop.wait(max(0.0, 1.0 / self.rate - (time.monotonic() - began)))


def _validate_and_sign(version: ModelVersion, target, uploader: Actor, signer: Actor):
    with transaction.atomic():
        run = registry.start_validation(version=version, target=target, actor=uploader)

    def finished():
        run.refresh_from_db()
        return run.status in ValidationRun.MEASURED

    wait_for(finished, 240, f"the validation of {version.version} on a worker", 1.0)
    assert run.status == ValidationRun.Status.PASSED, run.report
    with transaction.atomic():
        signing_services.sign_version(
            version=version, actor=signer, role=Role.APPROVER, accuracy_waiver="e2e: no labels"
        )
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.SIGNED
    return version


@pytest.mark.timeout(900)
def test_gateways_run_the_whole_loop_and_lose_nothing(world, tmp_path, settings, monkeypatch):
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is needed (Debian's redis-server package)")
    settings.MEDIA_ROOT = tmp_path / "var" / "media"  # the web process reads artifacts here
    org = world.a.org
    admin = Actor.for_user(world.a.user(Role.ADMIN))
    planner = Actor.for_user(world.a.user(Role.APPROVER))
    approver = Actor.for_user(make_member(org, Role.APPROVER).user)
    uploader = Actor.for_user(make_member(org, Role.APPROVER).user)
    with transaction.atomic():
        signing_services.create_signing_key(organization=org, actor=admin)
        target = HardwareTarget.objects.get(builtin_key="cpu")
        site = make_site(org, name="Dock 7")
        fleet_services.set_operating_policy(
            organization=org,
            actor=admin,
            site=site,
            desired_poll_interval_s=15,
            telemetry_interval_s=10,
        )
        model = registry.create_model(organization=org, actor=planner, name=MODEL)
        tokens = [
            fleet_services.create_enrollment_token(organization=org, site=site, actor=admin)[1]
            for _ in range(3)
        ]

    redis_port, web_port = free_port(), free_port()
    env = stack_env(
        tmp_path,
        redis_port,
        ROLLOUT_EVALUATE_SECONDS="1",
        # The workers re-issue signatures (a rollback) with the keys this process created.
        SIGNING_MASTER_KEY=base64.b64encode(settings.SIGNING_MASTER_KEY).decode(),
    )
    procs = Processes(tmp_path, env)
    server = f"http://127.0.0.1:{web_port}"
    agent_ports = [free_port() for _ in range(3)]
    states = [tmp_path / f"gateway-{i}" for i in range(3)]
    agent_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OPSHERO_GATEWAY_")},
        "OPSHERO_GATEWAY_HEALTH_INTERVAL_S": "2",
        "OPSHERO_GATEWAY_MIN_POLL_INTERVAL_S": "1",
        "OPSHERO_GATEWAY_BATCH_SIZE": "200",
        "PYTHONPATH": str(ROOT),
    }
    agents: dict[int, subprocess.Popen] = {}
    # Validations requested from this process go to the stack's broker, for its worker.
    from kombu import Connection

    from modelregistry.tasks import validate_model_version

    def send_to_stack(run_id):
        with Connection(env["REDIS_URL"]) as connection:
            validate_model_version.apply_async(args=[run_id], connection=connection)

    monkeypatch.setattr(validate_model_version, "delay", send_to_stack)
    traffic = Traffic(agent_ports)
    try:
        procs.start("redis", redis_command(redis_port, tmp_path))
        wait_for(lambda: redis_up(redis_port), 10, "redis")
        procs.start("web", gunicorn_command(web_port))
        procs.start("validation", worker_command(queues="validation"))
        procs.start("worker", worker_command(concurrency=2, queues="ingest,rollouts,default"))
        procs.start("beat", beat_command(tmp_path / "beat-schedule"))
        wait_for(lambda: listening(web_port), 30, "gunicorn")
        wait_for(lambda: _get(server + "/healthz"), 60, "the web app to answer", 0.5)

        step("enroll three gateways with their one-time tokens")
        for i, token in enumerate(tokens):
            done = subprocess.run(
                [
                    PYTHON,
                    "-m",
                    "gateway.cli",
                    "enroll",
                    "--server",
                    server,
                    "--token",
                    token,
                    "--serial",
                    f"GW-DOCK7-{i}",
                    "--state-dir",
                    str(states[i]),
                ],
                env=agent_env,
                capture_output=True,
                text=True,
                timeout=60,
                cwd=ROOT,
            )
            assert done.returncode == 0, done.stderr
        devices = list(Device.objects.filter(organization=org).order_by("serial"))
        assert [d.serial for d in devices] == ["GW-DOCK7-0", "GW-DOCK7-1", "GW-DOCK7-2"]
        Device.objects.filter(pk__in=[d.pk for d in devices]).update(hardware_target=target)

        step("start the three agent daemons")
        for i, state in enumerate(states):
            log = open(tmp_path / f"agent-{i}.log", "ab")  # noqa: SIM115 - closed with the test
            agents[i] = subprocess.Popen(
                [PYTHON, "-m", "gateway.cli", "run", "--state-dir", str(state)],
                env={**agent_env, "OPSHERO_GATEWAY_LISTEN": f"127.0.0.1:{agent_ports[i]}"},
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
            )
        for port in agent_ports:
            wait_for(lambda p=port: _get(f"http://127.0.0.1:{p}/healthz"), 30, "an agent")
        traffic.start()

        step("upload, validate on the worker and sign two versions (the second is slower)")
        with transaction.atomic():
            fast = registry.upload_version(
                model=model,
                actor=uploader,
                version="1.0.0",
                artifact=ContentFile(_fast_model(), name="dock-1.0.0.onnx"),
            )
            slow = registry.upload_version(
                model=model,
                actor=uploader,
                version="1.1.0",
                artifact=ContentFile(_slow_model(), name="dock-1.1.0.onnx"),
            )
        fast = _validate_and_sign(fast, target, uploader, planner)
        slow = _validate_and_sign(slow, target, uploader, planner)

        step("roll 1.0.0 out with a canary wave; the agents verify, install and confirm")
        with transaction.atomic():
            first = services.create_rollout(
                organization=org,
                actor=planner,
                role=Role.APPROVER,
                version=fast,
                site_ids=[site.pk],
                canary_site_ids=[site.pk],
                waves=[
                    WaveSpec(name="canary", share_percent=None, soak_minutes=0),
                    WaveSpec(name="rest", share_percent=100.0, soak_minutes=0),
                ],
                analysis=AnalysisSettings(device_soak_minutes=0),
            )
            services.submit_rollout(rollout=first, actor=planner, role=Role.APPROVER)
            services.approve_rollout(rollout=first, actor=approver, role=Role.APPROVER)

        def status_of(rollout):
            rollout.refresh_from_db()
            return rollout.status

        wait_for(
            lambda: status_of(first) == Rollout.Status.COMPLETED,
            180,
            "the first rollout to complete",
            1.0,
        )
        assert first.actions.filter(status="healthy").count() == 3

        def running(version):
            found = [_get(f"http://127.0.0.1:{p}/v1/models") for p in agent_ports]
            return all(f and [m["version"] for m in f["models"]] == [version] for f in found)

        assert running("1.0.0")

        step("telemetry lands and the health pages show it")

        def stored_by_device():
            db = telemetry_db()
            counts = {}
            for table in (InferenceEvent, HealthEvent):
                rows = table.objects.using(db).filter(organization_id=org.pk)
                for row in rows.values("device_id").annotate(n=Count("id")):
                    counts[row["device_id"]] = counts.get(row["device_id"], 0) + row["n"]
            return counts

        wait_for(lambda: len(stored_by_device()) == 3, 60, "telemetry from all three gateways")
        browser = Client()
        browser.force_login(world.a.user(Role.VIEWER))

        def fleet_page():
            page = browser.get(reverse("telemetry:health", kwargs={"org": org.slug}))
            return page.status_code == 200 and site.name in page.content.decode()

        wait_for(fleet_page, 120, "the fleet health page to show the site", 2.0)

        def device_page():
            body = browser.get(
                reverse(
                    "telemetry:device-health", kwargs={"org": org.slug, "device_id": devices[0].pk}
                )
            ).content.decode()
            # Measured from the rollups the beat makes: the version and no "not measured".
            return "1.0.0" in body and "not measured" not in body.lower()

        wait_for(device_page, 120, "the device page to show measured figures", 2.0)

        step("cut the server off for a minute: the agents keep serving and queue")
        procs.kill("web", signal.SIGTERM)
        time.sleep(60)
        depths = [_get(f"http://127.0.0.1:{p}/healthz")["queue"]["depth"] for p in agent_ports]
        assert all(depth > 100 for depth in depths), depths  # ~8 inferences/s were queued
        procs.start("web", gunicorn_command(web_port))
        wait_for(lambda: _get(server + "/healthz"), 60, "the web app to come back", 0.5)

        step("roll out the slower 1.1.0: the canary analysis fails and rolls the wave back")
        with transaction.atomic():
            second = services.create_rollout(
                organization=org,
                actor=planner,
                role=Role.APPROVER,
                version=slow,
                site_ids=[site.pk],
                canary_site_ids=[site.pk],
                waves=[
                    WaveSpec(name="canary", share_percent=None, soak_minutes=1),
                    WaveSpec(name="rest", share_percent=100.0, soak_minutes=0),
                ],
                analysis=AnalysisSettings(
                    device_soak_minutes=0, thresholds=Thresholds(min_health_samples=5)
                ),
            )
            services.submit_rollout(rollout=second, actor=planner, role=Role.APPROVER)
            services.approve_rollout(rollout=second, actor=approver, role=Role.APPROVER)

        def rolled_back():
            second.refresh_from_db()
            return second.rollback_finished_at is not None

        wait_for(rolled_back, 300, "the analysis to roll the canary back", 2.0)
        verdicts = list(second.waves.get(number=0).verdicts.values_list("check_name", "outcome"))
        assert ("latency_p95", "fail") in verdicts, verdicts
        wait_for(lambda: running("1.0.0"), 60, "every agent back on 1.0.0", 1.0)
        # Every device this rollout owned is rolled back, the peer kept on 1.0.0 included
        # (it gets the re-issued manifest too, and confirms it).
        assert second.actions.filter(status="rolled_back").count() == 3

        step("stop the traffic, stop the agents with SIGTERM: they flush what they hold")
        traffic.stop.set()
        traffic.join(10)
        for proc in agents.values():
            proc.send_signal(signal.SIGTERM)
        for proc in agents.values():
            assert proc.wait(40) == 0

        step("count every event at both ends")
        final = []
        for state in states:
            queue = EventQueue(state / "queue.sqlite3")
            counts = queue.counts()
            final.append({"queue": {"next_sequence": queue.next_sequence}})
            queue.close()
            assert counts.depth == 0 and counts.evicted == 0 and counts.refused == 0
            assert counts.enqueued == counts.sent == final[-1]["queue"]["next_sequence"]

        def all_landed():
            counts = stored_by_device()
            numbered = {
                d.pk: f["queue"]["next_sequence"] for d, f in zip(devices, final, strict=True)
            }
            return counts if all(counts.get(pk, 0) >= n for pk, n in numbered.items()) else None

        wait_for(all_landed, 120, "every event to be ingested", 1.0)
        time.sleep(3)  # anything extra (a duplicate) would land now
        counts = stored_by_device()
        for device, status in zip(devices, final, strict=True):
            numbered = status["queue"]["next_sequence"]
            assert counts[device.pk] == numbered, (device.serial, counts[device.pk], numbered)
            db = telemetry_db()
            distinct = (
                InferenceEvent.objects.using(db)
                .filter(device_id=device.pk)
                .values("epoch_id", "sequence")
                .distinct()
                .count()
                + HealthEvent.objects.using(db)
                .filter(device_id=device.pk)
                .values("epoch_id", "sequence")
                .distinct()
                .count()
            )
            assert distinct == numbered
        served = {port: sum(seen.values()) for port, seen in traffic.answers.items()}
        print(f"answers per gateway: {traffic.answers}; stored: {counts}; served: {served}")
    except BaseException:
        for rollout in Rollout.objects.filter(organization=org).order_by("pk"):
            print(f"--- rollout {rollout.pk} {rollout.status} {rollout.hold_kind}")
            print(f"    {rollout.hold_reason}")
            for verdict in rollout.verdicts.order_by("pk"):
                print(f"    {verdict.wave.name} {verdict.check_name} {verdict.outcome}")
                print(f"      {verdict.summary}")
            for action in rollout.actions.order_by("pk"):
                print(f"    action {action.device_id} {action.status} {action.reason_code}")
        for name in ("web", "worker", "validation", "beat"):
            if name in procs.running:
                print(f"--- {name} ---\n{procs.log(name)}")
        for i in agents:
            print(f"--- agent {i} ---\n{(tmp_path / f'agent-{i}.log').read_text()[-4000:]}")
        raise
    finally:
        traffic.stop.set()
        for proc in agents.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        procs.stop_all()
