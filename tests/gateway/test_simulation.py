"""gateway.simulation: a deterministic device history that the wire contract accepts whole,
with the scenario (shifts, drift, throttling, outages, reinstalls) visible in its numbers."""

import statistics
from datetime import UTC, datetime, timedelta

import pytest

from gateway.simulation import (
    Drift,
    LatencyShift,
    Outage,
    Reinstall,
    Scenario,
    SimDevice,
    SiteProfile,
    Throttling,
    generate_history,
)
from protocol.telemetry import HealthEvent, InferenceEvent, decode_batch, encode_batch

START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def busy_device(seed: int = 11, **options) -> SimDevice:
    return SimDevice(
        device_id="gw-sim-01",
        seed=seed,
        site=SiteProfile(inferences_per_minute=600.0),
        health_interval_s=30.0,
        **options,
    )


def history(device, end=START + HOUR, scenario=None, **options):
    return list(generate_history(device, START, end, scenario, **options))


def flat(batches):
    return [event for _, events in batches for event in events]


def inferences(events, *, since=None, until=None):
    return [
        e
        for e in events
        if isinstance(e, InferenceEvent)
        and (since is None or e.timestamp >= since)
        and (until is None or e.timestamp < until)
    ]


# --- determinism and numbering -------------------------------------------------------------------


def test_the_same_seed_gives_the_same_events_and_another_seed_does_not():
    scenario = Scenario(
        outages=(Outage(start=START + 10 * timedelta(minutes=1), duration=HOUR / 6),)
    )
    first = history(busy_device(seed=5), scenario=scenario)
    again = history(busy_device(seed=5), scenario=scenario)
    other = history(busy_device(seed=6), scenario=scenario)
    assert first == again
    assert len(flat(first)) > 30_000
    assert flat(first)[:50] != flat(other)[:50]
    assert first[0][0].epoch != other[0][0].epoch


def test_sequences_are_dense_and_monotonic_within_the_epoch_and_shared_by_both_types():
    batches = history(busy_device(), end=START + HOUR / 4, batch_size=200)
    events = flat(batches)
    assert {epoch for epoch, _ in batches} == {batches[0][0]}
    assert [e.sequence for e in events] == list(range(len(events)))
    assert all(e.epoch == batches[0][0].epoch for e in events)
    assert {type(e) for e in events} == {InferenceEvent, HealthEvent}
    assert all(len(batch) <= 200 for _, batch in batches)
    health = [e for e in events if isinstance(e, HealthEvent)]
    assert len(health) == 30  # every 30 s for 15 min, the first at START
    assert [e.timestamp for e in health[:2]] == [START, START + timedelta(seconds=30)]
    timestamps = [e.timestamp for e in events]
    assert timestamps == sorted(timestamps)


def test_max_events_stops_after_exactly_that_many_events():
    events = flat(generate_history(busy_device(), START, max_events=1234, batch_size=100))
    assert len(events) == 1234
    assert events[-1].sequence == 1233


def test_a_reinstall_starts_a_new_epoch_numbered_from_zero():
    at = START + HOUR / 2
    batches = history(busy_device(), scenario=Scenario(reinstalls=(Reinstall(at=at),)))
    epochs = list(dict.fromkeys(epoch for epoch, _ in batches))
    assert len(epochs) == 2
    old, new = epochs
    assert old.epoch != new.epoch
    assert (old.started_at, new.started_at) == (START, at)
    for epoch in epochs:
        events = [e for ep, batch in batches if ep == epoch for e in batch]
        assert all(e.epoch == epoch.epoch for e in events)
        assert [e.sequence for e in events] == list(range(len(events)))
    assert all(e.timestamp < at for ep, b in batches if ep == old for e in b)
    assert all(e.timestamp >= at for ep, b in batches if ep == new for e in b)


# --- outages ------------------------------------------------------------------------------------


def test_an_outage_buffers_evicts_the_oldest_and_replays_the_rest_with_consistent_counts():
    capacity = 500
    begin, duration = START + timedelta(minutes=10, seconds=5), timedelta(minutes=5)
    device = busy_device(buffer_capacity=capacity)
    batches = history(device, scenario=Scenario(outages=(Outage(start=begin, duration=duration),)))
    events = flat(batches)
    health = [e for e in events if isinstance(e, HealthEvent)]
    # The offline report is the oldest buffered event, so it is the first evicted; an evicted
    # report's counts are carried by the next one, so the delivered reports still add up.
    assert not [e for e in health if e.online is False]
    [came_online] = [e for e in health if e.online is True]
    assert came_online.timestamp == begin + duration
    first_offline = 1 + max(e.sequence for e in events if e.timestamp < begin)

    numbered_offline = came_online.sequence - first_offline
    assert numbered_offline > 2000  # 600 a minute for 5 minutes, plus health
    assert sum(e.buffered for e in health) == numbered_offline
    assert sum(e.evicted for e in health) == numbered_offline - capacity
    assert came_online.queue_depth == capacity

    # What survives is the newest ``capacity`` of the offline events; the rest never arrive.
    sequences = sorted(e.sequence for e in events)
    missing = set(range(sequences[-1] + 1)) - set(sequences)
    assert missing == set(range(first_offline, came_online.sequence - capacity))
    assert len(sequences) == len(set(sequences))

    # Nothing is posted during the outage: the replay batches hold only offline events.
    replay = [b for _, b in batches if any(begin <= e.timestamp < begin + duration for e in b)]
    assert sum(map(len, replay)) == capacity
    assert all(begin <= e.timestamp < begin + duration for b in replay for e in b)


def test_the_offline_report_survives_an_outage_that_fits_in_the_buffer():
    begin, duration = START + timedelta(minutes=10, seconds=5), timedelta(minutes=1)
    scenario = Scenario(outages=(Outage(start=begin, duration=duration),))
    events = flat(history(busy_device(buffer_capacity=5000), scenario=scenario))
    health = [e for e in events if isinstance(e, HealthEvent)]
    [went_offline] = [e for e in health if e.online is False]
    [came_online] = [e for e in health if e.online is True]
    assert went_offline.timestamp == begin
    offline_reports = [e for e in health if begin < e.timestamp < begin + duration]
    assert len(offline_reports) == 2  # every 30 s, buffered like any event
    assert sum(e.buffered for e in health) == came_online.sequence - went_offline.sequence
    assert sum(e.evicted for e in health) == 0
    sequences = sorted(e.sequence for e in events)
    assert sequences == list(range(len(events)))


# --- the scenario in the numbers ----------------------------------------------------------------


def test_a_latency_shift_multiplies_the_latency_from_its_time():
    at = START + HOUR / 2
    events = flat(
        history(busy_device(), scenario=Scenario(latency_shifts=(LatencyShift(at=at, factor=2.0),)))
    )
    before = statistics.median(e.latency_ms for e in inferences(events, until=at))
    after = statistics.median(e.latency_ms for e in inferences(events, since=at))
    assert before == pytest.approx(12.0, rel=0.1)
    assert after / before == pytest.approx(2.0, rel=0.1)


def test_drift_changes_the_class_mix_and_lowers_confidence():
    at = START + HOUR / 2
    drift = Drift(at=at, class_weights={"wet": 5.0}, confidence_drop=0.2)
    events = flat(history(busy_device(), scenario=Scenario(drifts=(drift,))))
    before, after = inferences(events, until=at), inferences(events, since=at)

    def share_wet(items):
        return sum(e.predicted_class == "wet" for e in items) / len(items)

    assert share_wet(before) < 0.1
    assert share_wet(after) > 0.5
    drop = statistics.mean(e.confidence for e in before) - statistics.mean(
        e.confidence for e in after
    )
    assert drop == pytest.approx(0.2, abs=0.02)


def test_throttling_marks_health_heats_the_device_and_slows_inference():
    begin, duration = START + HOUR / 3, HOUR / 6
    episode = Throttling(start=begin, duration=duration, latency_factor=1.75, temperature_rise_c=18)
    events = flat(history(busy_device(), scenario=Scenario(throttling=(episode,))))
    health = [e for e in events if isinstance(e, HealthEvent)]
    inside = [e for e in health if begin <= e.timestamp < begin + duration]
    outside = [e for e in health if e not in inside]
    assert inside and all(e.throttled for e in inside)
    assert not any(e.throttled for e in outside)
    hotter = statistics.mean(e.temperature_c for e in inside) - statistics.mean(
        e.temperature_c for e in outside
    )
    assert hotter > 15
    slow = statistics.median(
        e.latency_ms for e in inferences(events, since=begin, until=begin + duration)
    )
    normal = statistics.median(e.latency_ms for e in inferences(events, until=begin))
    assert 1.5 <= slow / normal <= 2.0


# --- the wire contract --------------------------------------------------------------------------


def test_every_generated_batch_passes_decode_batch_with_nothing_refused():
    end = START + HOUR
    scenario = Scenario(
        latency_shifts=(LatencyShift(at=START + HOUR / 4, factor=1.3),),
        drifts=(Drift(at=START + HOUR / 2, class_weights={"dent": 3.0}, confidence_drop=0.3),),
        throttling=(Throttling(start=START + HOUR / 5, duration=HOUR / 10),),
        outages=(Outage(start=START + HOUR / 3, duration=HOUR / 12),),
        reinstalls=(Reinstall(at=START + 2 * HOUR / 3),),
    )
    device = busy_device(buffer_capacity=1000)
    batches = history(device, end=end, scenario=scenario, batch_size=1000)
    assert len(batches) > 20
    kinds = set()
    for device_epoch, events in batches:
        for compress in (False, True):
            body = encode_batch(device_epoch=device_epoch, events=events, compress=compress)
            if compress:
                continue  # the same JSON; decoded below once
            decoded = decode_batch(body, now=end, known_classes=device.known_classes)
            assert decoded.rejected == []
            assert decoded.duplicates == []
            assert [a.event for a in decoded.events] == events
            assert decoded.device_epoch == device_epoch
            kinds.update(
                name
                for a in decoded.events
                if isinstance(a.event, InferenceEvent)
                for name in ("label", "feedback", "time_to_action_ms")
                if getattr(a.event, name) is not None
            )
    assert kinds == {"label", "feedback", "time_to_action_ms"}  # the optional parts occur


def test_naive_times_and_an_unbounded_history_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        list(generate_history(busy_device(), datetime(2026, 1, 1), max_events=10))
    with pytest.raises(ValueError, match="end, max_events"):
        list(generate_history(busy_device(), START))
