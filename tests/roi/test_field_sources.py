"""Field sources: a plan's field metrics are decided by the fleet's telemetry, built here through
the real ingest path and rollups, and never by a lab figure or another organisation's fleet."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone

from modelregistry.models import MlModel, ModelVersion
from opshero.actors import Actor
from opshero.roles import Role
from protocol import telemetry as wire
from roi import services as roi_services
from roi.measurements import planned_vs_measured
from roi.models import Plan
from roi.plan import MeasureKey, Provenance, Tracking
from telemetry import alerts, rollups
from telemetry import services as telemetry_services
from telemetry.models import Level, SignalKind
from tests.factories import enroll_device, make_site
from tests.roi.builders import SYSTEM, make_plan
from tests.roi.test_provenance import _run
from tests.telemetry.builders import batch_body, health, inference, post_batch

pytestmark = pytest.mark.django_db

# Events start three hours back, in whole hours, so they fall in the hour rollups after the
# plan's start (set an hour before them).
START = rollups.hour_of(timezone.now()) - timedelta(hours=3)
PLAN_START = START - timedelta(hours=1)
BUDGET_MS = 150.0  # the demo answers' latency tolerance: the P95 time-to-action target


@pytest.fixture
def queued(monkeypatch):
    """The web process queues ingest tasks; the tests run the ingest themselves."""
    monkeypatch.setattr(telemetry_services, "enqueue_ingest", lambda batch_id: True)


def registered_model(org, name=None):
    model = MlModel.objects.create(organization=org, name=name or f"m-{uuid.uuid4().hex[:6]}")
    version = ModelVersion.objects.create(
        model=model,
        version="1.0.0",
        artifact="artifacts/none.onnx",
        file_name="none.onnx",
        sha256=uuid.uuid4().hex * 2,
        size_bytes=1,
        io_contract={"labels": ["dent", "ok"], "score_output": "probabilities"},
    )
    return version


def ref(version) -> wire.ModelRef:
    return wire.ModelRef(name=version.model.name, version=version.version, sha256=version.sha256)


def deliver(client, gateway, events):
    device, key = gateway
    response = post_batch(client, device, key, batch_body(events))
    assert response.status_code == 200, response.content
    telemetry_services.ingest_landed_batch(batch_id=response.json()["batch"])


def started_plan(org, *, model=None):
    """A plan that started before the telemetry below, measuring ``model`` (or all models)."""
    plan = make_plan(org)
    Plan.objects.filter(pk=plan.pk).update(created_at=PLAN_START)
    plan.refresh_from_db()
    if model is not None:
        plan = roi_services.update_plan(plan=plan, actor=SYSTEM, model=model)
    return plan


def status(measured, metric_key):
    return next(s for s in measured.statuses if s.metric.key == metric_key)


def inference_events(version, rng, *, n, tta_low, tta_high, seq0=0, label_every=3):
    events = []
    for i in range(n):
        predicted = "dent" if i % 4 else "ok"
        events.append(
            inference(
                seq0 + i,
                at=START + timedelta(seconds=20 * i + 1),
                model=ref(version),
                predicted_class=predicted,
                latency_ms=float(rng.uniform(5, 25)),
                time_to_action_ms=float(rng.uniform(tta_low, tta_high)),
                label=("dent" if i % 5 else "ok") if i % label_every == 0 else None,
            )
        )
    return events


def test_without_telemetry_field_metrics_are_not_measured_and_lab_latency_never_decides(world):
    # A lab P95 of 42 ms, well inside the 150 ms target, on the plan's model.
    run = _run(world.a.org, buckets=[{"label": "1x64", "p95_ms": 42.0}])
    plan = started_plan(world.a.org, model=run.version.model)
    measured = planned_vs_measured(plan)
    for key in ("latency_p95", "offline_coverage", "accuracy", "time_to_diagnose"):
        assert status(measured, key).state is Tracking.NOT_MEASURED, key
    latency = status(measured, "latency_p95")
    assert latency.measurement is None
    assert latency.reference is not None and latency.reference.provenance is Provenance.LAB
    assert latency.reference.value == 42.0
    assert measured.field_measurements == ()


def test_field_time_to_action_decides_the_p95_metric(client, world, queued):
    version = registered_model(world.a.org, "dock-damage")
    other_model = registered_model(world.a.org)
    dock_north, dock_south = make_site(world.a.org, "Dock North"), make_site(world.a.org, "Dock S")
    gateways = [
        enroll_device(world.a.org, site=dock_north),
        enroll_device(world.a.org, site=dock_north),
        enroll_device(world.a.org, site=dock_south),
    ]
    rng = np.random.default_rng(7)
    tta, latency, labelled = [], [], []
    for gateway in gateways:
        events = inference_events(version, rng, n=300, tta_low=40, tta_high=130)
        tta += [e.time_to_action_ms for e in events]
        latency += [e.latency_ms for e in events]
        labelled += [e for e in events if e.label is not None]
        deliver(client, gateway, events)
    # Another model of the same organisation, far slower: not this plan's model.
    slow = inference_events(other_model, rng, n=100, tta_low=900, tta_high=1000, seq0=1000)
    deliver(client, gateways[0], slow)
    # Another organisation's fleet, slower still, on the same model name and digest.
    outsider = enroll_device(world.b.org, site=make_site(world.b.org, "Elsewhere"))
    deliver(client, outsider, inference_events(version, rng, n=200, tta_low=5000, tta_high=6000))
    rollups.roll_up_marked()

    plan = started_plan(world.a.org, model=version.model)
    measured = planned_vs_measured(plan)
    latency_status = status(measured, "latency_p95")
    m = latency_status.measurement
    assert m is not None and m.provenance is Provenance.FIELD
    expected = float(np.quantile(tta, 0.95, method="lower"))
    assert m.value == pytest.approx(expected, rel=0.01)
    assert m.unit == "ms"
    assert latency_status.state is Tracking.ON_TRACK  # about 125 ms against 150 ms
    assert m.sites == ("Dock North", "Dock S")
    assert m.device_count == 3
    assert m.window_start == START and m.window_end > m.window_start
    assert m.detail == f"P95 of {len(tta)} time-to-action readings"
    assert "field: 3 devices at Dock North, Dock S" in m.where

    # On-device inference P95 is a field figure of its own, not the metric.
    inference_p95 = measured.measurement(MeasureKey.FIELD_INFERENCE_P95_MS, Provenance.FIELD)
    assert inference_p95 is not None
    assert inference_p95.value == pytest.approx(
        float(np.quantile(latency, 0.95, method="lower")), rel=0.01
    )
    keys = {f.key for f in measured.field_measurements}
    assert {MeasureKey.LATENCY_P95_MS, MeasureKey.FIELD_INFERENCE_P95_MS} <= keys

    # Accuracy on the labelled inferences only.
    accuracy = status(measured, "accuracy").measurement
    assert accuracy is not None and accuracy.provenance is Provenance.FIELD
    correct = sum(e.label == e.predicted_class for e in labelled)
    assert accuracy.value == pytest.approx(correct / len(labelled))
    assert accuracy.detail == f"{len(labelled)} labelled inferences"

    # The same figure against a tighter target is off track.
    plan = roi_services.update_plan(plan=plan, actor=SYSTEM, targets={"latency_p95_ms": 100.0})
    tighter = status(planned_vs_measured(plan), "latency_p95")
    assert tighter.state is Tracking.OFF_TRACK
    assert tighter.measurement.value == pytest.approx(expected, rel=0.01)

    # A plan without a model measures all the organisation's models: the slow one too.
    everything = planned_vs_measured(started_plan(world.a.org)).measurement(
        MeasureKey.LATENCY_P95_MS, Provenance.FIELD
    )
    both = tta + [e.time_to_action_ms for e in slow]
    assert everything.value == pytest.approx(
        float(np.quantile(both, 0.95, method="lower")), rel=0.01
    )
    assert everything.value < 1000  # never the other organisation's 5 s


def test_inference_latency_alone_never_stands_in_for_time_to_action(client, world, queued):
    version = registered_model(world.a.org)
    gateway = enroll_device(world.a.org)
    events = [
        inference(i, at=START + timedelta(seconds=i + 1), model=ref(version), latency_ms=20.0)
        for i in range(50)
    ]
    deliver(client, gateway, events)
    rollups.roll_up_marked()
    measured = planned_vs_measured(started_plan(world.a.org, model=version.model))
    assert status(measured, "latency_p95").state is Tracking.NOT_MEASURED
    assert measured.measurement(MeasureKey.FIELD_INFERENCE_P95_MS, Provenance.FIELD) is not None


def test_telemetry_from_before_the_plan_started_never_counts(client, world, queued):
    version = registered_model(world.a.org)
    gateway = enroll_device(world.a.org)
    rng = np.random.default_rng(9)
    before = inference_events(version, rng, n=30, tta_low=40, tta_high=60)  # START + 10 min
    deliver(client, gateway, before)
    rollups.roll_up_marked()
    # Started half an hour into the hour those events fell in: its rollup holds them, so the
    # plan is measured from the next whole hour.
    plan = started_plan(world.a.org, model=version.model)
    Plan.objects.filter(pk=plan.pk).update(created_at=START + timedelta(minutes=30))
    plan.refresh_from_db()
    assert planned_vs_measured(plan).field_measurements == ()
    after = [
        inference(
            500 + i,
            at=START + timedelta(hours=1, seconds=i + 1),
            model=ref(version),
            time_to_action_ms=300.0,
        )
        for i in range(10)
    ]
    deliver(client, gateway, after)
    rollups.roll_up_marked()
    m = planned_vs_measured(plan).measurement(MeasureKey.LATENCY_P95_MS, Provenance.FIELD)
    assert m is not None and m.value == pytest.approx(300.0, rel=0.01)
    assert m.detail == "P95 of 10 time-to-action readings"
    assert m.window_start == START + timedelta(hours=1)


def test_another_organisations_telemetry_never_shows_in_the_plan(client, world, queued):
    version = registered_model(world.b.org)
    outsider = enroll_device(world.b.org)
    rng = np.random.default_rng(3)
    events = inference_events(version, rng, n=120, tta_low=40, tta_high=60)
    hot = [
        health(500 + i, at=START + timedelta(seconds=30 * i), throttled=True, online=True)
        for i in range(20)
    ]
    deliver(client, outsider, events + hot)
    rollups.roll_up_marked()

    mine = planned_vs_measured(started_plan(world.a.org))  # no model: everything of acme
    assert mine.field_measurements == ()
    assert status(mine, "latency_p95").state is Tracking.NOT_MEASURED
    theirs = planned_vs_measured(started_plan(world.b.org))
    assert theirs.measurement(MeasureKey.LATENCY_P95_MS, Provenance.FIELD) is not None
    throttled = theirs.measurement(MeasureKey.FIELD_THROTTLED_SHARE, Provenance.FIELD)
    assert throttled is not None and throttled.value == 1.0 and throttled.device_count == 1


def test_offline_coverage_from_a_device_that_went_offline_and_evicted_events(client, world, queued):
    site = make_site(world.a.org, "Yard")
    gateway = enroll_device(world.a.org, site=site)
    version = registered_model(world.a.org)
    events = []
    # Online for 10 minutes, offline for 20 (with 5 events evicted from the full buffer), back.
    for i in range(60):
        at = START + timedelta(seconds=30 * i)
        offline = 20 <= i < 60 - 20
        events.append(
            health(i, at=at, online=not offline, evicted=5 if i >= 35 else 0, throttled=i < 6)
        )
    made_offline = 0
    for i in range(60):
        at = START + timedelta(seconds=30 * i + 10)
        made_offline += 20 <= i < 40
        events.append(inference(1000 + i, at=at, model=ref(version)))
    deliver(client, gateway, events)
    rollups.roll_up_marked()

    measured = planned_vs_measured(started_plan(world.a.org))
    coverage = status(measured, "offline_coverage")
    m = coverage.measurement
    assert m is not None and m.provenance is Provenance.FIELD
    assert made_offline == 20
    assert m.value == pytest.approx(20 / (20 + 5))
    assert m.unit == "share"
    assert m.sites == ("Yard",) and m.device_count == 1
    assert "20 inferences made offline and delivered, 5 events evicted" in m.detail
    assert coverage.metric.target == 0.95
    assert coverage.state is Tracking.OFF_TRACK  # 80 % against the near-edge plan's 95 %
    plan = roi_services.update_plan(
        plan=started_plan(world.a.org), actor=SYSTEM, targets={"offline_coverage": 0.75}
    )
    assert status(planned_vs_measured(plan), "offline_coverage").state is Tracking.ON_TRACK
    throttled = measured.measurement(MeasureKey.FIELD_THROTTLED_SHARE, Provenance.FIELD)
    assert throttled is not None and throttled.value == pytest.approx(6 / 60)


def test_time_to_diagnose_from_acknowledged_alerts_of_the_plans_model(world):
    from telemetry.models import Alert

    version = registered_model(world.a.org)
    other = registered_model(world.a.org)
    device, _ = enroll_device(world.a.org, site=make_site(world.a.org, "Dock 7"))
    admin = Actor.for_user(world.a.user("admin"))
    now = timezone.now()

    def acknowledged(model, opened_hours_ago, kind):
        alert, _ = alerts.raise_alert(
            organization_id=world.a.org.pk,
            kind=kind,
            level=Level.DEVICE,
            site_id=device.site_id,
            device_id=device.pk,
            model_id=model.pk,
            model_sha256=version.sha256,
            summary="slow",
            detail={},
            breach_at=now,
            breaches=2,
        )
        Alert.objects.filter(pk=alert.pk).update(opened_at=now - timedelta(hours=opened_hours_ago))
        alerts.acknowledge_alert(alert=alert, actor=admin)
        return Alert.objects.get(pk=alert.pk)

    mine = acknowledged(version.model, 2, SignalKind.LATENCY_BUDGET)
    acknowledged(other.model, 3.5, SignalKind.LATENCY_BUDGET)  # another model: not this plan's
    # An open alert has not been diagnosed yet and counts for nothing.
    alerts.raise_alert(
        organization_id=world.a.org.pk,
        kind=SignalKind.THROTTLING,
        level=Level.DEVICE,
        site_id=device.site_id,
        device_id=device.pk,
        model_id=version.model.pk,
        summary="hot",
        detail={},
        breach_at=now,
        breaches=2,
    )

    measured = planned_vs_measured(started_plan(world.a.org, model=version.model))
    diagnose = status(measured, "time_to_diagnose")
    m = diagnose.measurement
    hours = (mine.acknowledged_at - mine.opened_at).total_seconds() / 3600
    assert m is not None and m.provenance is Provenance.FIELD and m.unit == "h"
    assert m.value == pytest.approx(hours) and 2 <= m.value < 2.1
    assert m.sites == ("Dock 7",) and m.device_count == 1
    assert diagnose.state is Tracking.ON_TRACK  # 2 h against 4 h
    plan = roi_services.update_plan(
        plan=started_plan(world.a.org, model=version.model),
        actor=SYSTEM,
        targets={"time_to_diagnose_hours": 1.0},
    )
    assert status(planned_vs_measured(plan), "time_to_diagnose").state is Tracking.OFF_TRACK


def test_the_plan_board_shows_field_figures_with_sites_devices_and_window(client, world, queued):
    version = registered_model(world.a.org)
    dock = make_site(world.a.org, "Dock 1")
    gateways = [enroll_device(world.a.org, site=dock) for _ in "ab"]
    rng = np.random.default_rng(11)
    for gateway in gateways:
        events = inference_events(version, rng, n=120, tta_low=200, tta_high=260)
        events += [
            health(900 + i, at=START + timedelta(seconds=30 * i), throttled=i % 4 == 0)
            for i in range(40)
        ]
        deliver(client, gateway, events)
    rollups.roll_up_marked()
    plan = started_plan(world.a.org, model=version.model)

    client.force_login(world.a.user(Role.VIEWER))
    page = client.get(reverse("roi:plan", kwargs={"org": "acme", "plan_id": plan.pk}))
    assert page.status_code == 200
    html = page.content.decode()
    state = re.search(r'data-testid="metric-state-latency_p95">(.*?)</span>', html)
    assert state is not None and state.group(1) == "Off track"  # over 200 ms against 150 ms
    measured = re.search(r'data-testid="metric-measured-latency_p95">(.*?)</td>', html, re.S)
    assert measured is not None
    cell = measured.group(1)
    assert ">field</span>" in cell
    assert "field: 2 devices at Dock 1" in cell
    assert f"{START:%Y-%m-%d} to" in cell
    assert "P95 of 240 time-to-action readings" in cell

    card = re.search(r'data-testid="field-measurements">(.*?)</table>', html, re.S)
    assert card is not None
    rows = dict(re.findall(r'data-testid="field-([\w.]+)">(.*?)</tr>', card.group(1), re.S))
    assert set(rows) >= {
        "latency.p95_ms",
        "field.inference_p95_ms",
        "field.throttled_share",
    }
    throttled = rows["field.throttled_share"]
    assert "Share of health samples throttled" in throttled and "not a plan metric" in throttled
    assert "25 %" in throttled  # every fourth sample
    assert "Dock 1" in throttled and ">2</td>" in throttled
    assert f"{START:%-d %b %Y %H:%M}" in throttled
    assert "decides the metric above" in rows["latency.p95_ms"]


def test_the_plan_api_lists_the_field_measurements(api_as, client, world, queued):
    version = registered_model(world.a.org)
    gateway = enroll_device(world.a.org, site=make_site(world.a.org, "Dock 9"))
    rng = np.random.default_rng(5)
    deliver(client, gateway, inference_events(version, rng, n=60, tta_low=50, tta_high=70))
    rollups.roll_up_marked()
    plan = started_plan(world.a.org, model=version.model)
    api = api_as(world.a.user(Role.PLANNER))
    body = api.get(reverse("api-roi-plan", kwargs={"org": "acme", "plan_id": plan.pk})).json()
    found = {m["key"]: m for m in body["measured"]["field_measurements"]}
    # 20 labelled inferences are too few for a field accuracy (30 at least).
    assert set(found) == {"latency.p95_ms", "field.inference_p95_ms"}
    latency = found["latency.p95_ms"]
    assert latency["provenance"] == "field" and latency["unit"] == "ms"
    assert latency["sites"] == ["Dock 9"] and latency["device_count"] == 1
    assert latency["window_start"] == START.isoformat()
    states = {m["metric"]["key"]: m["state"] for m in body["measured"]["metrics"]}
    assert states["latency_p95"] == "on_track"


def test_the_plan_board_says_when_there_is_no_field_figure(client, world):
    plan = started_plan(world.a.org)
    client.force_login(world.a.user(Role.VIEWER))
    html = client.get(reverse("roi:plan", kwargs={"org": "acme", "plan_id": plan.pk})).content
    card = re.search(rb'data-testid="field-measurements">(.*?)</div>\s*</div>', html, re.S)
    assert card is not None and b"No field figure yet" in card.group(1)
