"""Rollups rebuilt from stored events: exact counts, mergeable sketches, late data, replays."""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from protocol import telemetry as wire
from telemetry import rollups, services
from telemetry.models import HealthRollup, InferenceRollup, Level, Resolution, RollupMark
from telemetry.sketch import LatencySketch
from tests.factories import enroll_device, make_site

from .builders import batch_body, health, inference, post_batch

pytestmark = pytest.mark.django_db

HOUR = rollups.hour_of(timezone.now()) - timedelta(hours=3)


def send(client, gateway, events, *, epoch="epoch-0001-aaaa"):
    device, key = gateway
    response = post_batch(client, device, key, batch_body(events, epoch=epoch))
    assert response.status_code == 200, response.content
    body = response.json()
    services.ingest_landed_batch(batch_id=body["batch"])
    return body


def two_hours_of_inference(seed=0, start_seq=0, classes=("dent", "scratch", "ok")):
    rng = np.random.default_rng(seed)
    events = []
    for n in range(240):
        at = HOUR + timedelta(seconds=30 * n + 1)
        events.append(
            inference(
                start_seq + n,
                at=at,
                latency_ms=float(rng.lognormal(3, 0.5)),
                confidence=float(rng.uniform(0.3, 1.0)),
                predicted_class=str(rng.choice(classes)),
                label="dent" if n % 10 == 0 else None,
                time_to_action_ms=float(rng.uniform(100, 300)) if n % 2 else None,
            )
        )
    return events


def rows(model, **filters):
    return list(model.objects.filter(**filters).order_by("bucket_start"))


def test_device_rows_match_the_events_and_hours_equal_merged_minutes(client, world, queued):
    gateway = enroll_device(world.a.org)
    device, _ = gateway
    events = two_hours_of_inference()
    send(client, gateway, events)
    assert RollupMark.objects.count() >= 2  # both hours (and the hour it was received)
    rollups.roll_up_marked()
    assert RollupMark.objects.count() == 0

    hours = rows(InferenceRollup, level=Level.DEVICE, resolution=Resolution.HOUR)
    assert [h.bucket_start for h in hours] == [HOUR, HOUR + timedelta(hours=1)]
    first_hour = [e for e in events if e.timestamp < HOUR + timedelta(hours=1)]
    hour = hours[0]
    assert hour.count == len(first_hour) == 120
    assert (hour.device_id, hour.site_id) == (device.pk, device.site_id)
    expected = LatencySketch()
    expected.add_many([e.latency_ms for e in first_hour])
    assert LatencySketch.from_dict(hour.latency) == expected
    conf = [e.confidence for e in first_hour]
    assert hour.confidence_bins == np.histogram(conf, bins=20, range=(0, 1))[0].tolist()
    assert hour.confidence_sum == pytest.approx(sum(conf))
    names = [e.predicted_class for e in first_hour]
    assert hour.class_counts == {name: names.count(name) for name in sorted(set(names))}
    labelled = [e for e in first_hour if e.label is not None]
    assert hour.labelled == len(labelled)
    assert hour.correct == sum(e.label == e.predicted_class for e in labelled)
    tta = [e.time_to_action_ms for e in first_hour if e.time_to_action_ms is not None]
    assert LatencySketch.from_dict(hour.time_to_action).count == len(tta)

    minutes = rows(
        InferenceRollup,
        level=Level.DEVICE,
        resolution=Resolution.MINUTE,
        bucket_start__lt=HOUR + timedelta(hours=1),
    )
    assert len(minutes) == 60 and sum(m.count for m in minutes) == 120
    merged = rollups.merge_inference(minutes)
    assert merged["latency"] == LatencySketch.from_dict(hour.latency)
    assert merged["confidence_bins"] == hour.confidence_bins
    assert merged["class_counts"] == hour.class_counts


def test_site_and_organisation_rows_merge_their_devices(client, world, queued):
    site = make_site(world.a.org)
    first = enroll_device(world.a.org, site=site)
    second = enroll_device(world.a.org, site=site)
    other_site = enroll_device(world.a.org)
    send(client, first, two_hours_of_inference(seed=1))
    send(client, second, two_hours_of_inference(seed=2))
    send(client, other_site, two_hours_of_inference(seed=3))
    rollups.roll_up_marked()

    def hour_rows(**filters):
        return rows(InferenceRollup, resolution=Resolution.HOUR, bucket_start=HOUR, **filters)

    devices = hour_rows(level=Level.DEVICE, site_id=site.pk)
    (site_row,) = hour_rows(level=Level.SITE, site_id=site.pk)
    assert len(devices) == 2 and site_row.devices == 2
    assert site_row.count == sum(d.count for d in devices) == 240
    assert LatencySketch.from_dict(site_row.latency) == LatencySketch.merged(
        *(LatencySketch.from_dict(d.latency) for d in devices)
    )
    (org_row,) = hour_rows(level=Level.ORGANIZATION)
    assert org_row.count == 360 and org_row.devices == 3
    assert org_row.site_id == 0 and org_row.device_id == 0
    # Another organisation's rollups are its own.
    assert not InferenceRollup.objects.exclude(organization_id=world.a.org.pk).exists()


def test_a_replay_changes_nothing_and_late_data_updates_its_bucket(client, world, queued):
    gateway = enroll_device(world.a.org)
    events = two_hours_of_inference(seed=4)
    send(client, gateway, events)
    rollups.roll_up_marked()
    before = {
        (r.level, r.resolution, r.bucket_start): (r.count, r.latency, r.class_counts)
        for r in InferenceRollup.objects.all()
    }
    send(client, gateway, events[:50])  # a replay: all duplicates
    rollups.roll_up_marked()
    after = {
        (r.level, r.resolution, r.bucket_start): (r.count, r.latency, r.class_counts)
        for r in InferenceRollup.objects.all()
    }
    assert after == before
    duplicates = sum(
        h.duplicates
        for h in HealthRollup.objects.filter(level=Level.DEVICE, resolution=Resolution.HOUR)
    )
    assert duplicates == 50

    late = inference(10_000, at=HOUR + timedelta(minutes=5, seconds=7), latency_ms=999.0)
    send(client, gateway, [late])
    rollups.roll_up_marked()
    minute = InferenceRollup.objects.get(
        level=Level.DEVICE, resolution=Resolution.MINUTE, bucket_start=HOUR + timedelta(minutes=5)
    )
    assert minute.count == 3
    assert LatencySketch.from_dict(minute.latency).max == 999.0
    hour = InferenceRollup.objects.get(
        level=Level.ORGANIZATION, resolution=Resolution.HOUR, bucket_start=HOUR
    )
    assert hour.count == 121


def test_online_seconds_offline_inferences_and_health_figures(client, world, queued):
    gateway = enroll_device(world.a.org)
    events = []
    # Samples every minute for 20 minutes: online for the first 10, offline for the next 10.
    for n in range(20):
        events.append(
            health(
                n,
                at=HOUR + timedelta(minutes=n),
                online=n < 10,
                throttled=n >= 15,
                temperature_c=40.0 + n,
                power_w=5.0,
                evicted=n // 5,
                buffered=n,
            )
        )
    events.append(inference(100, at=HOUR + timedelta(minutes=3, seconds=5)))
    events.append(inference(101, at=HOUR + timedelta(minutes=12, seconds=5)))
    send(client, gateway, events)
    rollups.roll_up_marked()
    hour = HealthRollup.objects.get(level=Level.DEVICE, resolution=Resolution.HOUR)
    assert hour.samples == 20 and hour.throttled_samples == 5
    assert hour.online_seconds == pytest.approx(600.0)
    # The last sample speaks for the sample gap (300 s) since nothing follows it.
    assert hour.offline_seconds == pytest.approx(540.0 + 300.0)
    assert hour.temperature_max == 59.0 and hour.temperature_min == 40.0
    assert hour.temperature_sum / hour.temperature_count == pytest.approx(49.5)
    assert hour.power_max == 5.0 and hour.evicted_max == 3 and hour.buffered_max == 19
    assert hour.delivered == 22
    inference_hour = InferenceRollup.objects.get(level=Level.DEVICE, resolution=Resolution.HOUR)
    assert inference_hour.offline == 1
    org_minute = HealthRollup.objects.get(
        level=Level.ORGANIZATION,
        resolution=Resolution.MINUTE,
        bucket_start=HOUR + timedelta(minutes=16),
    )
    assert (org_minute.devices, org_minute.throttled_devices) == (1, 1)


def test_a_rebuild_that_fails_keeps_its_marks(client, world, queued, monkeypatch):
    gateway = enroll_device(world.a.org)
    send(client, gateway, two_hours_of_inference(seed=5))
    marks = RollupMark.objects.count()

    def broken(**kwargs):
        raise RuntimeError("worker died")

    monkeypatch.setattr(rollups, "touch_cursors", broken)
    with pytest.raises(RuntimeError):
        rollups.roll_up_marked()
    assert RollupMark.objects.count() == marks
    assert not InferenceRollup.objects.exists()
    monkeypatch.undo()
    rollups.roll_up_marked()
    assert InferenceRollup.objects.filter(level=Level.ORGANIZATION).exists()


def test_wire_model_ref_is_what_rows_name(client, world, queued):
    gateway = enroll_device(world.a.org)
    model = wire.ModelRef(name="parcel-damage", version="v9", sha256="b" * 64)
    send(client, gateway, [inference(1, at=HOUR + timedelta(seconds=3), model=model)])
    rollups.roll_up_marked()
    row = InferenceRollup.objects.get(level=Level.DEVICE, resolution=Resolution.HOUR)
    assert (row.model_name, row.model_version, row.model_sha256) == (
        "parcel-damage",
        "v9",
        "b" * 64,
    )


def test_minute_rollups_go_after_their_days_and_hour_rollups_with_the_retention(
    client, world, queued, settings
):
    from telemetry.retention import maintain_storage

    gateway = enroll_device(world.a.org)
    send(client, gateway, two_hours_of_inference(seed=6))
    rollups.roll_up_marked()
    hours = InferenceRollup.objects.filter(resolution=Resolution.HOUR).count()
    settings.TELEMETRY_MINUTE_ROLLUP_DAYS = 1
    report = maintain_storage(now=timezone.now() + timedelta(days=1, hours=1))
    assert not InferenceRollup.objects.filter(resolution=Resolution.MINUTE).exists()
    assert not HealthRollup.objects.filter(resolution=Resolution.MINUTE).exists()
    assert InferenceRollup.objects.filter(resolution=Resolution.HOUR).count() == hours
    assert report["deleted_rollup_rows"] > 0
    days = world.a.org.telemetry_retention_days
    maintain_storage(now=timezone.now() + timedelta(days=days, hours=4))
    assert not InferenceRollup.objects.filter(organization_id=world.a.org.pk).exists()
