"""Fleet health's "done means": the load generator injects a drift and a throttling episode.

Everything runs as in production, each part its own process: gunicorn, a Celery worker (the
ingest queue: ingest, rollups, signals, notifications), Celery beat (rollups every second,
signals every two) and a Redis server owned by this test. Three gateways post the last 90-odd
minutes of their life through ``gateway.loadgen`` (signed gzip batches over HTTP), with the
first class five times as common and confidence 0.15 lower from minute 30 to 50, and thermal
throttling from minute 60 to 80. Then, with nothing but the beat driving it:

* the rollups fill (every stored event is counted once, in device, site and fleet rows);
* class-mix and confidence drift alerts open at the second breached window and resolve in the
  first clear one after the injection, and so do the throttling alerts; no other alert opens;
* a signed webhook receives each opening and resolution;
* the plan's P95 time-to-action metric is decided by the field figure, which equals the P95 of
  the stored readings.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import shutil
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from gateway import loadgen, simulation
from modelregistry.models import MlModel, ModelVersion, ValidationRun
from onnxcheck.scoring import confidence_histogram, distribution
from opshero.actors import Actor
from roi.measurements import planned_vs_measured
from roi.models import Plan
from roi.plan import MeasureKey, Provenance, Tracking
from telemetry import notifications
from telemetry.models import (
    Alert,
    AlertNotification,
    InferenceEvent,
    InferenceRollup,
    LandedBatch,
    Level,
    Resolution,
    RollupMark,
    SignalEvaluation,
    SignalKind,
    SignalPolicy,
)
from tests.factories import enroll_device, make_site, make_target
from tests.roi.builders import SYSTEM, make_plan

from .stack import (
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

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the production shape runs on PostgreSQL"
    ),
]

HISTORY_MINUTES = 90
DRIFT = (30, 50)
THROTTLE = (60, 80)


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict, bytes]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def validated_model(org, model: simulation.SimModel):
    """The registry's model with a validation baseline drawn from the simulator's own model
    (what it does when nothing is injected), as a validation run over representative data."""
    registered = MlModel.objects.create(organization=org, name=model.name, latency_budget_ms=200)
    version = ModelVersion.objects.create(
        model=registered,
        version=model.version,
        artifact="artifacts/none.onnx",
        file_name="none.onnx",
        sha256=model.sha256,
        size_bytes=1,
        io_contract={"labels": list(model.classes), "score_output": "probabilities"},
    )
    SignalPolicy.objects.create(model=registered, window_minutes=10)
    rng = random.Random(7)
    weights = model.weights()
    predicted = [model.classes.index(rng.choices(model.classes, weights)[0]) for _ in range(20_000)]
    confidences = np.array([model.draw_confidence(rng) for _ in range(20_000)])
    ValidationRun.objects.create(
        version=version,
        target=make_target(org),
        number=1,
        status=ValidationRun.Status.PASSED,
        report={
            "steps": [
                {
                    "name": "calibration",
                    "status": "passed",
                    "data": {
                        "drift_baseline": {
                            "confidence_histogram": confidence_histogram(confidences),
                            "predicted_class_mix": distribution(
                                np.array(predicted), num_classes=len(model.classes)
                            ),
                        }
                    },
                }
            ]
        },
    )
    return version


def test_injected_drift_and_throttling_open_alerts_that_resolve_and_fill_the_plan(
    world, tmp_path, settings, client
):
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is needed (Debian's redis-server package)")
    redis_port, web_port = free_port(), free_port()
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    Receiver.received = []
    env = stack_env(
        tmp_path,
        redis_port,
        TELEMETRY_ROLLUP_SECONDS="1",
        TELEMETRY_SIGNALS_SECONDS="2",
        ALERT_WEBHOOK_ALLOW_PRIVATE="true",
        # The worker opens the webhook secret this process sealed: the same master key.
        SIGNING_MASTER_KEY=base64.b64encode(settings.SIGNING_MASTER_KEY).decode(),
    )
    procs = Processes(tmp_path, env)

    org = world.a.org
    sim_model = simulation.default_model(name="parcel-damage", version="v7")
    version = validated_model(org, sim_model)
    site = make_site(org)
    enrolled = [enroll_device(org, site=site) for _ in range(3)]
    fleet = loadgen.FleetFile(
        server=f"http://127.0.0.1:{web_port}",
        devices=tuple(
            loadgen.FleetDevice(
                device_id=str(device.uid),
                private_key_pem=key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ).decode(),
                models=(sim_model,),
            )
            for device, key in enrolled
        ),
    )
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    created = notifications.create_channel(
        organization=org,
        actor=Actor.system("tests"),
        kind="webhook",
        name="on-call",
        url=f"http://127.0.0.1:{receiver.server_address[1]}/hook",
    )
    plan = make_plan(org)
    Plan.objects.filter(pk=plan.pk).update(created_at=timezone.now() - timedelta(hours=3))
    from roi import services as roi_services

    plan.refresh_from_db()
    plan = roi_services.update_plan(plan=plan, actor=SYSTEM, model=version.model)
    before = planned_vs_measured(plan)
    assert before.measurement(MeasureKey.LATENCY_P95_MS, Provenance.FIELD) is None

    try:
        procs.start("redis", redis_command(redis_port, tmp_path))
        wait_for(lambda: redis_up(redis_port), 10, "redis")
        procs.start("web", gunicorn_command(web_port))
        procs.start("worker", worker_command(concurrency=2))
        procs.start("beat", beat_command(tmp_path / "beat-schedule"))
        wait_for(lambda: listening(web_port), 30, "gunicorn")

        step("the load generator posts the history, drift and throttling injected")
        options = loadgen.RunOptions(
            batch_size=1000,
            history_minutes=HISTORY_MINUTES,
            inferences_per_minute=120,
            health_interval_s=10,
            drift=DRIFT,
            throttling=THROTTLE,
        )
        summary = loadgen.run_fleet(fleet, processes=1, options=options)
        assert summary["failed"] == 0 and summary["unsent"] == 0, summary
        assert summary["held"] == summary["events_generated"] > 30_000

        step("beat rolls up and judges")
        wait_for(
            lambda: not LandedBatch.objects.exists() and not RollupMark.objects.exists(),
            120,
            "ingest and rollups",
            interval=1,
        )

        def all_resolved():
            # Three kinds on each of three devices, and both drifts on the site.
            resolved = Alert.objects.filter(status=Alert.Status.RESOLVED).count()
            live = Alert.objects.exclude(status=Alert.Status.RESOLVED).count()
            return resolved >= 3 * 3 + 2 and live == 0

        wait_for(all_resolved, 120, "the alerts to open and resolve", interval=1)
        wait_for(
            lambda: (
                AlertNotification.objects.exists()
                and not AlertNotification.objects.exclude(
                    status=AlertNotification.Status.SENT
                ).exists()
            ),
            60,
            "the webhook deliveries",
            interval=1,
        )
    except AssertionError:
        print(
            list(
                AlertNotification.objects.values_list(
                    "status", "attempts", "last_error", "response_status", "event"
                )
            )
        )
        raise
    finally:
        procs.stop_all()
        receiver.shutdown()
        print("\n".join(procs.log(name) for name in ("worker",)))

    # Rollups: every stored inference is counted once in the fleet rows.
    stored = InferenceEvent.objects.filter(organization_id=org.pk).count()
    assert stored == sum(
        InferenceRollup.objects.filter(
            level=Level.ORGANIZATION, resolution=Resolution.HOUR
        ).values_list("count", flat=True)
    )

    minutes = timedelta(minutes=1)
    first = InferenceEvent.objects.order_by("timestamp").values_list("timestamp", flat=True)[0]
    start = first.replace(minute=first.minute - first.minute % 10, second=0, microsecond=0)
    for device, _ in enrolled:
        for kind, (begin, end) in (
            (SignalKind.CLASS_DRIFT, DRIFT),
            (SignalKind.CONFIDENCE_DRIFT, DRIFT),
            (SignalKind.THROTTLING, THROTTLE),
        ):
            alerts = list(Alert.objects.filter(device=device, kind=kind))
            assert len(alerts) == 1, [(a.status, a.first_breach_at, a.detail) for a in alerts]
            (alert,) = alerts
            # Opened at the end of the second breached window, resolved in the first clear one.
            assert alert.first_breach_at == start + (begin + 20) * minutes, (kind, alert.detail)
            assert alert.status == Alert.Status.RESOLVED and alert.resolved_by is None
            assert f"{(start + (end + 10) * minutes):%Y-%m-%d %H:%M}" in alert.resolution
            judged = SignalEvaluation.objects.filter(
                device_id=device.pk, kind=kind, level=Level.DEVICE
            ).order_by("window_start")
            breached = [int((j.window_start - start) / minutes) for j in judged if j.breached]
            assert breached == list(range(begin, end, 10)), (kind, breached)
    # Nothing else raised an alert at device level (latency stayed within budget).
    assert not Alert.objects.filter(level=Level.DEVICE, kind=SignalKind.LATENCY_BUDGET).exists()

    # The dashboards fill, from the rollups: the device page shows its figures and its
    # resolved alerts, the fleet page the site's P95.
    client.force_login(world.a.user("viewer"))
    device = enrolled[0][0]
    page = client.get(
        reverse("telemetry:device-health", kwargs={"org": org.slug, "device_id": device.pk})
        + "?hours=3"
    )
    assert page.status_code == 200
    body = page.content.decode()
    assert sim_model.version in body and "Thermal throttling" in body
    assert "not measured" not in body.lower()
    fleet_page = client.get(reverse("telemetry:health", kwargs={"org": org.slug}))
    assert fleet_page.status_code == 200 and site.name in fleet_page.content.decode()

    # Each opening and resolution reached the webhook, signed with the channel's secret.
    events = []
    for headers, body in Receiver.received:
        timestamp = dict(p.split("=", 1) for p in headers["x-opshero-signature"].split(","))
        expected = hmac.new(
            created.secret.encode(), f"{timestamp['t']}.".encode() + body, hashlib.sha256
        ).hexdigest()
        assert hmac.compare_digest(expected, timestamp["v1"])
        events.append(json.loads(body)["event"])
    alerts_total = Alert.objects.count()
    assert events.count("opened") == alerts_total and events.count("resolved") == alerts_total

    # The plan's P95 time-to-action is a field figure, decided by it, and is the stored P95.
    after = planned_vs_measured(plan)
    measured = after.measurement(MeasureKey.LATENCY_P95_MS, Provenance.FIELD)
    assert measured is not None and measured.provenance is Provenance.FIELD
    readings = list(
        InferenceEvent.objects.filter(time_to_action_ms__isnull=False).values_list(
            "time_to_action_ms", flat=True
        )
    )
    assert measured.value == pytest.approx(
        float(np.quantile(readings, 0.95, method="lower")), rel=0.01
    )
    assert measured.device_count == 3 and measured.sites == (site.name,)
    status = next(s for s in after.statuses if s.metric.measure_key == MeasureKey.LATENCY_P95_MS)
    assert status.state in {Tracking.ON_TRACK, Tracking.OFF_TRACK}
