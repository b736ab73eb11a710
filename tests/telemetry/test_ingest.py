"""Landed batches expanded into events exactly once: replays, overlaps, conflicts, epochs."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from protocol import telemetry as wire
from telemetry import services
from telemetry.models import (
    DeviceEpoch,
    EventKey,
    HealthEvent,
    InferenceEvent,
    IngestedBatch,
    LandedBatch,
)
from telemetry.partitions import existing_partitions, forget_known_partitions

from .builders import BASE, batch_body, health, inference, post_batch

pytestmark = pytest.mark.django_db


def land(client, gateway, events, *, epoch="epoch-0001-aaaa"):
    device, key = gateway
    response = post_batch(client, device, key, batch_body(events, epoch=epoch))
    assert response.status_code == 200, response.content
    return response.json()["batch"]


def ingest(batch_id):
    return services.ingest_landed_batch(batch_id=batch_id)


def stored_sequences(model=InferenceEvent):
    return sorted(model.objects.values_list("sequence", flat=True))


def test_a_landed_batch_becomes_events_and_the_landing_row_goes(client, gateway, queued):
    events = [
        inference(
            1,
            time_to_action_ms=180.0,
            label="dent",
            feedback=wire.Feedback(thumbs="down", reason="a scratch"),
            workflow_fields={"damage_type": "dent", "label_confidence": 0.8, "rework": False},
        ),
        health(2, temperature_c=71.5, throttled=True, online=False, buffered=12, evicted=3),
    ]
    batch_id = land(client, gateway, events)
    outcome = ingest(batch_id)
    assert (outcome.result.stored, outcome.result.duplicates) == (2, 0)
    assert not LandedBatch.objects.exists()
    row = InferenceEvent.objects.get()
    device, _ = gateway
    assert (row.device_id, row.organization_id, row.sequence) == (
        device.pk,
        device.organization_id,
        1,
    )
    assert row.model_sha256 == "a" * 64 and row.time_to_action_ms == 180.0
    assert (row.label, row.feedback_thumbs, row.feedback_reason) == ("dent", "down", "a scratch")
    assert row.workflow_fields == {"damage_type": "dent", "label_confidence": 0.8, "rework": False}
    assert row.timestamp == events[0].timestamp
    sample = HealthEvent.objects.get()
    assert (sample.temperature_c, sample.throttled, sample.online) == (71.5, True, False)
    assert (sample.buffered, sample.evicted, sample.power_w) == (12, 3, None)
    log = IngestedBatch.objects.get()
    assert str(log.batch_id) == batch_id and log.stored == 2 and log.lag_seconds >= 0
    epoch = DeviceEpoch.objects.get()
    assert row.epoch_id == epoch.pk == sample.epoch_id


def test_a_replayed_batch_is_stored_once_and_counted(client, gateway, queued):
    events = [inference(n) for n in range(10)]
    ingest(land(client, gateway, events))
    outcome = ingest(land(client, gateway, events))
    assert (outcome.result.stored, outcome.result.duplicates, outcome.result.conflicts) == (
        0,
        10,
        0,
    )
    assert stored_sequences() == list(range(10))
    assert EventKey.objects.count() == 10
    assert sorted(IngestedBatch.objects.values_list("duplicates", flat=True)) == [0, 10]


def test_overlapping_batches_out_of_order_are_stored_once(client, gateway, queued):
    later = land(client, gateway, [inference(n) for n in range(10, 20)])
    earlier = land(client, gateway, [inference(n) for n in range(0, 15)])
    ingest(later)
    outcome = ingest(earlier)
    assert (outcome.result.stored, outcome.result.duplicates) == (10, 5)
    assert stored_sequences() == list(range(20))


def test_a_reused_sequence_with_other_content_is_refused_and_the_stored_one_kept(
    client, gateway, queued
):
    ingest(land(client, gateway, [inference(1, predicted_class="dent"), inference(2)]))
    outcome = ingest(land(client, gateway, [inference(1, predicted_class="scratch"), inference(3)]))
    assert (outcome.result.stored, outcome.result.conflicts) == (1, 1)
    assert outcome.result.conflicting_sequences == (1,)
    assert InferenceEvent.objects.get(sequence=1).predicted_class == "dent"
    assert IngestedBatch.objects.order_by("ingested_at").last().conflicts == 1


def test_inference_and_health_share_one_sequence_space(client, gateway, queued):
    ingest(land(client, gateway, [inference(1)]))
    outcome = ingest(land(client, gateway, [health(1)]))
    assert outcome.result.conflicts == 1
    assert not HealthEvent.objects.exists()


def test_a_new_epoch_restarts_sequences_without_being_a_replay(client, gateway, queued):
    ingest(land(client, gateway, [inference(0), inference(1)], epoch="epoch-0001-aaaa"))
    reinstall = [inference(0, epoch="epoch-0002-bbbb"), inference(1, epoch="epoch-0002-bbbb")]
    outcome = ingest(land(client, gateway, reinstall, epoch="epoch-0002-bbbb"))
    assert (outcome.result.stored, outcome.result.duplicates) == (2, 0)
    assert InferenceEvent.objects.count() == 4
    assert DeviceEpoch.objects.count() == 2


def test_the_same_epoch_id_on_two_devices_is_two_epochs(client, world, queued):
    from tests.factories import enroll_device

    first, second = enroll_device(world.a.org), enroll_device(world.a.org)
    ingest(land(client, first, [inference(0)]))
    outcome = ingest(land(client, second, [inference(0)]))
    assert outcome.result.stored == 1
    assert InferenceEvent.objects.count() == 2


def test_ingesting_a_batch_twice_does_nothing_the_second_time(client, gateway, queued):
    batch_id = land(client, gateway, [inference(1)])
    assert ingest(batch_id) is not None
    assert ingest(batch_id) is None
    assert InferenceEvent.objects.count() == 1 and IngestedBatch.objects.count() == 1


def test_a_failing_batch_is_kept_and_held_after_the_attempt_limit(
    client, gateway, queued, settings
):
    settings.TELEMETRY_MAX_INGEST_ATTEMPTS = 2
    batch_id = land(client, gateway, [inference(1)])
    LandedBatch.objects.filter(pk=batch_id).update(payload=b"[{not json")
    for _ in range(2):
        with pytest.raises(Exception, match=r"gzip"):
            ingest(batch_id)
    batch = LandedBatch.objects.get()
    assert batch.attempts == 2 and "gzip" in batch.last_error
    assert ingest(batch_id) is None  # held: not tried again, not deleted
    assert services.sweep_landed_batches(now=timezone.now() + timedelta(hours=1)) == 0
    assert LandedBatch.objects.filter(pk=batch_id).exists()


def test_the_sweep_ingests_batches_whose_task_was_lost_and_leaves_recent_ones(
    client, gateway, queued, settings
):
    settings.TELEMETRY_SWEEP_AFTER_SECONDS = 60
    lost = land(client, gateway, [inference(n) for n in range(5)])
    LandedBatch.objects.filter(pk=lost).update(received_at=timezone.now() - timedelta(minutes=5))
    recent = land(client, gateway, [inference(n) for n in range(5, 8)])
    assert services.sweep_landed_batches() == 1
    assert stored_sequences() == list(range(5))
    assert [str(pk) for pk in LandedBatch.objects.values_list("pk", flat=True)] == [recent]


def test_a_broker_that_is_down_makes_enqueue_report_false_inline(monkeypatch, settings):
    from telemetry import tasks

    settings.TELEMETRY_ENQUEUE_IN_BACKGROUND = False

    def refuse(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.ingest_landed_batch_task, "apply_async", refuse)
    assert services.enqueue_ingest("x") is False


def test_the_dispatcher_publishes_in_the_background_and_backs_off_a_failing_broker():
    from telemetry.dispatch import IngestDispatcher

    published, calls = [], []

    def publish(batch_id):
        calls.append(batch_id)
        if batch_id.startswith("down"):
            raise ConnectionError("broker down")
        published.append(batch_id)

    dispatcher = IngestDispatcher(publish)
    assert dispatcher.submit("a") and dispatcher.submit("b")
    dispatcher.drain()
    time_limit = time.monotonic() + 5
    while dispatcher.published < 2 and time.monotonic() < time_limit:
        time.sleep(0.01)
    assert published == ["a", "b"]
    # One failure: the ids handed over in the next seconds are left to the sweep, not tried.
    dispatcher.submit("down-1")
    dispatcher.submit("c")
    dispatcher.drain()
    while dispatcher.skipped < 2 and time.monotonic() < time_limit + 5:
        time.sleep(0.01)
    assert calls == ["a", "b", "down-1"]
    assert dispatcher.skipped == 2 and published == ["a", "b"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions are PostgreSQL's")
def test_an_event_for_a_day_without_a_partition_creates_it(client, gateway, queued):
    forget_known_partitions()
    old_day = (BASE - timedelta(days=12)).date()
    assert old_day not in existing_partitions(using="default")["telemetry_inferenceevent"]
    ingest(land(client, gateway, [inference(1, at=BASE - timedelta(days=12))]))
    assert old_day in existing_partitions(using="default")["telemetry_inferenceevent"]
    assert old_day in existing_partitions(using="default")["telemetry_healthevent"]
    assert InferenceEvent.objects.get().timestamp.date() == old_day


@pytest.mark.django_db(transaction=True)
def test_two_workers_on_overlapping_batches_store_each_event_once(client, world):
    from tests.factories import enroll_device

    gateway = enroll_device(world.a.org)
    batches = [
        land(client, gateway, [inference(n) for n in range(start, start + 300)])
        for start in (0, 100, 200, 0, 150)
    ]
    errors = []

    def work(ids):
        try:
            for batch_id in ids:
                ingest(batch_id)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=work, args=(batches,)),
        threading.Thread(target=work, args=(list(reversed(batches)),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert stored_sequences() == list(range(500))
    assert not LandedBatch.objects.exists()
    assert sum(IngestedBatch.objects.values_list("stored", flat=True)) == 500
