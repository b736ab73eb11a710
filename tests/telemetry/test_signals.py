"""The signal evaluator: windows judged in order, alerts after two breaches, resolved on clear."""

import uuid
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from modelregistry.models import MlModel, ModelVersion, ValidationRun
from onnxcheck.scoring import confidence_histogram, distribution
from protocol import telemetry as wire
from telemetry import alerts, rollups, services, signals
from telemetry.models import Alert, Level, SignalEvaluation, SignalKind, SignalPolicy
from tests.factories import enroll_device, make_target

from .builders import batch_body, health, inference, post_batch

pytestmark = pytest.mark.django_db

LABELS = ["dent", "scratch", "ok"]
START = rollups.hour_of(timezone.now()) - timedelta(hours=3)
WINDOW = timedelta(minutes=10)


def registered_model(org, *, baseline=True, budget=200.0):
    model = MlModel.objects.create(
        organization=org, name=f"m-{uuid.uuid4().hex[:6]}", latency_budget_ms=budget
    )
    version = ModelVersion.objects.create(
        model=model,
        version="1.0.0",
        artifact="artifacts/none.onnx",
        file_name="none.onnx",
        sha256=uuid.uuid4().hex * 2,
        size_bytes=1,
        io_contract={"labels": LABELS, "score_output": "probabilities"},
    )
    SignalPolicy.objects.create(model=model, window_minutes=10)
    if baseline:
        rng = np.random.default_rng(0)
        confidences = rng.uniform(0.5, 1.0, 5000)
        predictions = rng.integers(0, 3, 5000)
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
                                "predicted_class_mix": distribution(predictions, num_classes=3),
                            }
                        },
                    }
                ]
            },
        )
    return version


def window_events(version, window, *, drifted=False, slow=False, seq0=0, per_window=600):
    rng = np.random.default_rng(window + 10_000)
    ref = wire.ModelRef(name=version.model.name, version=version.version, sha256=version.sha256)
    events = []
    for n in range(per_window):
        at = START + window * WINDOW + timedelta(seconds=n * 600 / per_window)
        if drifted:
            cls = "dent" if rng.random() < 0.8 else str(rng.choice(LABELS))
        else:
            cls = str(rng.choice(LABELS))
        events.append(
            inference(
                seq0 + n,
                at=at,
                model=ref,
                predicted_class=cls,
                confidence=float(rng.uniform(0.5, 1.0)),
                latency_ms=float(rng.uniform(300, 400) if slow else rng.uniform(20, 40)),
            )
        )
    return events


def deliver(client, gateway, events):
    device, key = gateway
    for start in range(0, len(events), 2000):
        response = post_batch(client, device, key, batch_body(events[start : start + 2000]))
        assert response.status_code == 200, response.content
        services.ingest_landed_batch(batch_id=response.json()["batch"])


def run_evaluator():
    rollups.roll_up_marked()
    return signals.evaluate_signals()


def device_evaluations(kind, device):
    return list(
        SignalEvaluation.objects.filter(
            kind=kind, level=Level.DEVICE, device_id=device.pk
        ).order_by("window_start")
    )


def test_class_drift_opens_after_two_breaches_and_resolves_when_it_stops(client, world, queued):
    version = registered_model(world.a.org)
    gateway = enroll_device(world.a.org)
    device, _ = gateway
    pattern = [False, False, True, True, False, False]
    events = []
    for window, drifted in enumerate(pattern):
        events += window_events(version, window, drifted=drifted, seq0=window * 1000)
    # One event after the last window closes it.
    events += window_events(version, len(pattern), seq0=9000, per_window=1)
    deliver(client, gateway, events)

    # Delivered in one go, judged window by window.
    assert run_evaluator() > 0
    judged = device_evaluations(SignalKind.CLASS_DRIFT, device)
    assert [j.breached for j in judged] == pattern
    assert all(j.evaluated and j.baseline == "validation" and j.events == 600 for j in judged)
    assert judged[2].statistic in {"jensen_shannon", "psi"} and judged[2].value >= 0.1
    (alert,) = Alert.objects.filter(kind=SignalKind.CLASS_DRIFT, device=device)
    assert alert.status == Alert.Status.RESOLVED and alert.resolved_by is None
    assert alert.first_breach_at == START + 4 * WINDOW  # the second breached window's end
    assert alert.model_id == version.model_id and alert.site_id == device.site_id
    assert alert.resolved_at is not None and "cleared" in alert.resolution
    # The site scope judged the same windows (its only device).
    site_judged = SignalEvaluation.objects.filter(
        kind=SignalKind.CLASS_DRIFT, level=Level.SITE, site_id=device.site_id
    ).order_by("window_start")
    assert [j.breached for j in site_judged] == pattern
    # Latency stayed within the 200 ms budget.
    assert not any(j.breached for j in device_evaluations(SignalKind.LATENCY_BUDGET, device))
    # Confidence did not move: a test at p < 0.05 may still reject one window in twenty by
    # chance, which is why one breach alone opens nothing.
    confidence = device_evaluations(SignalKind.CONFIDENCE_DRIFT, device)
    assert len(confidence) == 6 and all(j.statistic == "chi2_p" for j in confidence)
    assert sum(j.breached for j in confidence) <= 1
    assert not Alert.objects.filter(kind=SignalKind.CONFIDENCE_DRIFT).exists()
    # Running again judges nothing twice.
    assert run_evaluator() == 0


def test_a_window_with_too_few_events_is_not_evaluated_and_keeps_the_streak(client, world, queued):
    version = registered_model(world.a.org)
    gateway = enroll_device(world.a.org)
    device, _ = gateway
    events = window_events(version, 0, seq0=0)
    events += window_events(version, 1, drifted=True, seq0=1000)
    events += window_events(version, 2, seq0=2000, per_window=100)  # under 500: not judged
    events += window_events(version, 3, drifted=True, seq0=3000)
    events += window_events(version, 4, seq0=4000, per_window=1)
    deliver(client, gateway, events)
    run_evaluator()
    judged = device_evaluations(SignalKind.CLASS_DRIFT, device)
    assert [(j.evaluated, j.breached) for j in judged] == [
        (True, False),
        (True, True),
        (False, False),
        (True, True),
    ]
    assert "not evaluated" in judged[2].reason
    # breach, (not evaluated), breach: the streak survives a window it could not judge.
    (alert,) = Alert.objects.filter(kind=SignalKind.CLASS_DRIFT, level=Level.DEVICE)
    assert alert.status == Alert.Status.OPEN and alert.breaches == 2
    assert alert.first_breach_at == START + 4 * WINDOW


def test_latency_budget_breaches_per_window(client, world, queued):
    version = registered_model(world.a.org, budget=100.0)
    gateway = enroll_device(world.a.org)
    device, _ = gateway
    events = window_events(version, 0, slow=True, seq0=0)
    events += window_events(version, 1, slow=True, seq0=1000)
    events += window_events(version, 2, seq0=2000, per_window=1)
    deliver(client, gateway, events)
    run_evaluator()
    judged = device_evaluations(SignalKind.LATENCY_BUDGET, device)
    assert [j.breached for j in judged] == [True, True]
    assert 300 <= judged[0].value <= 400 * 1.01 and judged[0].threshold == 100.0
    alert = Alert.objects.get(kind=SignalKind.LATENCY_BUDGET, level=Level.DEVICE)
    assert alert.status == Alert.Status.OPEN


def test_without_a_validation_baseline_the_first_day_is_the_reference(client, world, queued):
    version = registered_model(world.a.org, baseline=False)
    gateway = enroll_device(world.a.org)
    device, _ = gateway
    # Three windows a day before START are the device's first day: its own baseline.
    events = []
    for window in range(-24 * 6, -24 * 6 + 3):
        events += window_events(version, window, seq0=(window + 200) * 1000)
    for window, drifted in enumerate([False, False, True, True]):
        events += window_events(version, window, drifted=drifted, seq0=500_000 + window * 1000)
    events += window_events(version, 4, seq0=900_000, per_window=1)
    deliver(client, gateway, events)
    run_evaluator()
    judged = [j for j in device_evaluations(SignalKind.CLASS_DRIFT, device) if j.evaluated]
    assert judged[0].window_start == START  # nothing inside the baseline day is judged
    assert all(j.baseline == "first days" for j in judged)
    assert [j.breached for j in judged] == [False, False, True, True]


def test_throttling_after_twenty_minutes_opens_and_clears(client, world, queued):
    gateway = enroll_device(world.a.org)
    device, _ = gateway
    events = []
    for n in range(0, 60 * 2 + 1):  # every 30 s for an hour
        minute = n / 2
        events.append(
            health(
                n,
                at=START + timedelta(seconds=30 * n),
                throttled=20 <= minute < 40,
                temperature_c=50.0,
                online=True,
            )
        )
    deliver(client, gateway, events)
    run_evaluator()
    judged = device_evaluations(SignalKind.THROTTLING, device)
    assert [j.breached for j in judged] == [False, False, True, True, False, False]
    assert judged[2].value == pytest.approx(1.0)
    alert = Alert.objects.get(kind=SignalKind.THROTTLING, device=device)
    assert alert.model is None and alert.status == Alert.Status.RESOLVED
    assert alert.time_to_resolve is not None


def test_people_acknowledge_and_resolve_through_the_transition_table(world):
    from opshero.actors import Actor
    from opshero.errors import Conflict

    device, _ = enroll_device(world.a.org)
    alert, opened = alerts.raise_alert(
        organization_id=world.a.org.pk,
        kind=SignalKind.THROTTLING,
        level=Level.DEVICE,
        site_id=device.site_id,
        device_id=device.pk,
        model_id=None,
        summary="hot",
        detail={},
        breach_at=timezone.now(),
        breaches=2,
    )
    assert opened
    again, opened = alerts.raise_alert(
        organization_id=world.a.org.pk,
        kind=SignalKind.THROTTLING,
        level=Level.DEVICE,
        site_id=device.site_id,
        device_id=device.pk,
        model_id=None,
        summary="hotter",
        detail={},
        breach_at=timezone.now(),
        breaches=3,
    )
    assert not opened and again.pk == alert.pk and again.breaches == 3
    actor = Actor.for_user(world.a.user("admin"))
    alerts.acknowledge_alert(alert=alert, actor=actor)
    alert.refresh_from_db()
    assert alert.status == Alert.Status.ACKNOWLEDGED and alert.acknowledged_by == world.a.user(
        "admin"
    )
    with pytest.raises(Conflict):
        alerts.acknowledge_alert(alert=alert, actor=actor)
    alerts.resolve_alert(alert=alert, actor=actor, resolution="fan replaced")
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED and alert.resolved_by == world.a.user("admin")
    assert alert.time_to_acknowledge <= alert.time_to_resolve
    with pytest.raises(Conflict):
        alerts.resolve_alert(alert=alert, actor=actor)


def test_a_policy_the_evaluator_would_refuse_is_refused_when_saved(world):
    from django.core.exceptions import ValidationError

    version = registered_model(world.a.org)
    policy = version.model.signal_policy
    policy.psi_warn, policy.psi_alert = 0.3, 0.2
    with pytest.raises(ValidationError):
        policy.full_clean()
    policy.save()  # written around clean(): the evaluator falls back to the defaults
    profile = signals.artifact_profiles(organization_id=world.a.org.pk, shas=[version.sha256])[
        version.sha256
    ]
    assert profile.policy == signals.DEFAULT_POLICY


def test_a_drifting_version_keeps_its_alert_while_another_version_is_clear(client, world, queued):
    # A canary: v2 drifts on the same device where v1 stays clear. Alerts are per version, so
    # v1's clear windows do not resolve v2's alert (they used to, every window).
    first = registered_model(world.a.org)
    second = ModelVersion.objects.create(
        model=first.model,
        version="2.0.0",
        artifact="artifacts/none.onnx",
        file_name="none.onnx",
        sha256=uuid.uuid4().hex * 2,
        size_bytes=1,
        io_contract=first.io_contract,
    )
    ValidationRun.objects.create(
        version=second,
        target=make_target(world.a.org),
        number=1,
        status=ValidationRun.Status.PASSED,
        report=first.validation_runs.get().report,
    )
    gateway = enroll_device(world.a.org)
    events = []
    for window in range(4):
        events += window_events(first, window, seq0=window * 1000)
        events += window_events(second, window, drifted=window >= 1, seq0=50_000 + window * 1000)
    events += window_events(first, 4, seq0=90_000, per_window=1)
    events += window_events(second, 4, seq0=91_000, per_window=1)
    deliver(client, gateway, events)
    run_evaluator()
    live = Alert.objects.filter(
        kind=SignalKind.CLASS_DRIFT, level=Level.DEVICE, status=Alert.Status.OPEN
    )
    assert [a.model_sha256 for a in live] == [second.sha256]
    assert live[0].breaches == 3
    assert Alert.objects.filter(kind=SignalKind.CLASS_DRIFT, level=Level.DEVICE).count() == 1


def test_a_device_moved_to_another_site_is_counted_once(client, world, queued):
    from fleet.models import Device
    from telemetry.models import InferenceRollup, Resolution
    from tests.factories import make_site

    version = registered_model(world.a.org)
    gateway = enroll_device(world.a.org)
    device, _ = gateway
    deliver(client, gateway, window_events(version, 0, seq0=0))
    rollups.roll_up_marked()
    Device.objects.filter(pk=device.pk).update(site=make_site(world.a.org))
    # A late event of the same hour arrives after the move.
    deliver(client, gateway, window_events(version, 1, seq0=5000, per_window=1))
    rollups.roll_up_marked()
    hour = rollups.hour_of(START)
    org_row = InferenceRollup.objects.get(
        level=Level.ORGANIZATION, resolution=Resolution.HOUR, bucket_start=hour
    )
    assert org_row.count == 601
    sites = InferenceRollup.objects.filter(
        level=Level.SITE, resolution=Resolution.HOUR, bucket_start=hour
    )
    assert sum(s.count for s in sites) == 601
