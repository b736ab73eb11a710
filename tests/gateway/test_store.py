"""The agent's store-and-forward queue: numbering that survives a crash, bounds that count
every eviction exactly once, and a sender that drops only what the server stored."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.sender import Sender, settled
from gateway.store import EventQueue
from gateway.transport import SignedTransport
from protocol.telemetry import HealthEvent, InferenceEvent, ModelRef
from tests.gateway.test_loadgen import FakeTelemetryServer, new_device

ROOT = Path(__file__).resolve().parents[2]
REF = ModelRef(name="dock damage", version="1.0.0", sha256="a" * 64)


def inference(queue: EventQueue):
    def make(sequence: int) -> InferenceEvent:
        return InferenceEvent(
            epoch=queue.device_epoch.epoch,
            sequence=sequence,
            timestamp=datetime.now(UTC),
            model=REF,
            latency_ms=3.5,
            confidence=0.9,
            predicted_class="ok",
            shape_bucket="1x4",
        )

    return make


def health(queue: EventQueue):
    def make(sequence: int, depth: int, buffered: int, evicted: int) -> HealthEvent:
        return HealthEvent(
            epoch=queue.device_epoch.epoch,
            sequence=sequence,
            timestamp=datetime.now(UTC),
            throttled=False,
            memory_mb=100.0,
            queue_depth=depth,
            buffered=buffered,
            evicted=evicted,
        )

    return make


def all_events(queue: EventQueue):
    batch = queue.peek(10**6)
    return [] if batch is None else queue.events(batch)


def test_numbering_and_events_survive_reopening(tmp_path):
    queue = EventQueue(tmp_path / "q.sqlite3")
    epoch = queue.device_epoch
    assert queue.enqueue([inference(queue)] * 5) == [0, 1, 2, 3, 4]
    queue.close()
    again = EventQueue(tmp_path / "q.sqlite3")
    assert again.device_epoch == epoch
    assert again.next_sequence == 5
    assert [e.sequence for e in all_events(again)] == [0, 1, 2, 3, 4]
    assert again.enqueue(inference(again)) == [5]


def test_a_killed_writer_leaves_a_gapless_numbering(tmp_path):
    """SIGKILL while enqueueing one event per transaction: every number given is stored, and
    the next number continues after the last stored one (never reused)."""
    path = tmp_path / "q.sqlite3"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from tests.gateway.test_store import inference
        from gateway.store import EventQueue
        queue = EventQueue({str(path)!r})
        print("ready", flush=True)
        while True:
            queue.enqueue(inference(queue))
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    queue = EventQueue(path)
    sequences = [e.sequence for e in all_events(queue)]
    assert len(sequences) > 10
    assert sequences == list(range(len(sequences)))
    assert queue.next_sequence == len(sequences)
    assert queue.counts().depth == len(sequences)


def test_drop_oldest_keeps_the_newest_events(tmp_path):
    queue = EventQueue(tmp_path / "q.sqlite3", max_events=10)
    for _ in range(25):
        queue.enqueue(inference(queue))
        queue.enqueue_health(health(queue))
    counts = queue.counts()
    assert counts.depth == 10 and counts.evicted_overflow == 40
    events = all_events(queue)
    assert [e.sequence for e in events] == list(range(40, 50))


def test_a_full_drain_reports_every_eviction_exactly_once(tmp_path):
    queue = EventQueue(tmp_path / "q.sqlite3", max_events=6)
    reported = 0
    for round_ in range(20):
        queue.enqueue([inference(queue)] * 3)
        queue.enqueue_health(health(queue))
        if round_ % 4 == 3:  # the link is up now and then: the sender empties the queue
            batch = queue.peek(100)
            reported += sum(e.evicted for e in queue.events(batch) if isinstance(e, HealthEvent))
            queue.settle(stored=batch.sequences)
    queue.enqueue_health(health(queue))
    batch = queue.peek(100)
    reported += sum(e.evicted for e in queue.events(batch) if isinstance(e, HealthEvent))
    counts = queue.counts()
    assert counts.evicted_overflow > 0
    assert reported == counts.evicted


def test_drop_newest_refuses_new_events_when_full(tmp_path):
    queue = EventQueue(tmp_path / "q.sqlite3", max_events=3, overflow="drop_newest")
    given = [queue.enqueue(inference(queue)) for _ in range(5)]
    assert given == [[0], [1], [2], [], []]
    assert [e.sequence for e in all_events(queue)] == [0, 1, 2]
    assert queue.counts().evicted_overflow == 2


def test_the_byte_cap_evicts_the_oldest(tmp_path):
    queue = EventQueue(tmp_path / "q.sqlite3", max_bytes=2000)
    for _ in range(30):
        queue.enqueue(inference(queue))
    counts = queue.counts()
    assert counts.bytes <= 2000 and counts.depth < 30
    assert counts.depth + counts.evicted_overflow == 30


def test_events_past_their_ttl_are_evicted_and_counted(tmp_path):
    now = [1000.0]
    queue = EventQueue(tmp_path / "q.sqlite3", ttl_s=60, clock=lambda: now[0])
    queue.enqueue([inference(queue)] * 4)
    now[0] += 30
    queue.enqueue(inference(queue))
    now[0] += 45  # the first four are 75 s old, the fifth 45 s
    batch = queue.peek(10)
    assert batch.sequences == (4,)
    assert queue.counts().evicted_ttl == 4


def test_settle_drops_exactly_what_was_stored_or_refused(tmp_path):
    queue = EventQueue(tmp_path / "q.sqlite3")
    queue.enqueue([inference(queue)] * 6)
    batch = queue.peek(6)
    stored, refused = settled(
        {"held": [[0, 1], [4, 4]], "rejected": [{"index": 2, "code": "x"}]}, batch.sequences
    )
    assert (stored, refused) == ([0, 1, 4], [2])
    queue.settle(stored=stored, refused=refused)
    assert [e.sequence for e in all_events(queue)] == [3, 5]
    counts = queue.counts()
    assert (counts.sent, counts.refused, counts.depth) == (3, 1, 2)


def test_a_corrupt_queue_file_is_an_error_not_silence(tmp_path):
    path = tmp_path / "q.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(sqlite3.DatabaseError):
        EventQueue(path)


# --- the sender against a server that answers as the contract says -----------------------------


def _sender(server, device_id, key, queue, **options):
    transport = SignedTransport(server=server.url, device_id=device_id, private_key=key, timeout=5)
    clock = [0.0]
    sender = Sender(queue, transport, clock=lambda: clock[0], **options)
    return sender, clock


def test_the_sender_drains_everything_once_through_faults(tmp_path):
    fleet_device, key = new_device()
    with FakeTelemetryServer({fleet_device.device_id: key.public_key()}) as server:
        queue = EventQueue(tmp_path / "q.sqlite3")
        queue.enqueue([inference(queue)] * 1200)
        sender, clock = _sender(server, fleet_device.device_id, key, queue, batch_size=500)
        server.script.extend(["503", "drop_before_read", "drop_after_read", "ok", "429"])
        for _ in range(50):
            if sender.drain_once() == "empty":
                break
            clock[0] += 1000  # past any backoff
        assert queue.counts().depth == 0
        assert server.stored() == {(queue.device_epoch.epoch, s) for s in range(1200)}
        assert queue.counts().sent == 1200
        assert sender.counts.http_errors == 2  # the 503 and the 429
        # The two dropped connections: one was a kept-alive connection, re-sent at once on a
        # new one with a fresh signature; the other surfaced as a network error.
        assert sender.counts.network_errors >= 1
        # The batch stored before its answer was lost came again and was held, not doubled.
        assert max(server.received.values()) == 2


def test_an_unreachable_server_backs_off_and_counts_what_was_buffered(tmp_path, unreachable_url):
    fleet_device, key = new_device()
    queue = EventQueue(tmp_path / "q.sqlite3")
    queue.enqueue(inference(queue))
    transport = SignedTransport(
        server=unreachable_url, device_id=fleet_device.device_id, private_key=key, timeout=2
    )
    clock = [0.0]
    sender = Sender(queue, transport, clock=lambda: clock[0], backoff_s=1.0, max_backoff_s=8.0)
    waits = []
    for _ in range(6):
        assert sender.drain_once() == "failed"
        waits.append(sender.wait_s())
        assert sender.drain_once() == "waiting"
        clock[0] += waits[-1]
    assert sender.online is False
    assert all(0.5 <= w <= 8.0 for w in waits) and waits[-1] >= 4.0  # capped exponential
    queue.enqueue([inference(queue)] * 3)  # queued while offline: "buffered"
    queue.enqueue_health(health(queue))
    last = all_events(queue)[-1]
    assert last.buffered == 3 and queue.counts().depth == 5


def test_a_poison_event_is_isolated_by_halving_and_set_aside(tmp_path):
    fleet_device, key = new_device()
    with FakeTelemetryServer({fleet_device.device_id: key.public_key()}) as server:
        queue = EventQueue(tmp_path / "q.sqlite3")
        queue.enqueue([inference(queue)] * 4)
        sender, clock = _sender(server, fleet_device.device_id, key, queue, batch_size=4)
        # The first three requests are refused whole (as a body the server can never take).
        server.script.extend(["400", "400", "400"])
        for _ in range(20):
            if sender.drain_once() == "empty":
                break
            clock[0] += 1000
        assert queue.counts().depth == 0
        assert sender.counts.dead_lettered == 1
        assert len(server.stored()) == 3


def test_one_enqueue_larger_than_the_queue_keeps_only_the_newest(tmp_path):
    queue = EventQueue(tmp_path / "q.sqlite3", max_events=5)
    queue.enqueue([inference(queue)] * 2)
    given = queue.enqueue([inference(queue)] * 8)
    assert given == [5, 6, 7, 8, 9]
    counts = queue.counts()
    assert counts.depth == 5 and counts.evicted_overflow == 5  # three new, two old
    assert [e.sequence for e in all_events(queue)] == [5, 6, 7, 8, 9]


def test_a_partial_batch_waits_for_the_telemetry_interval_a_full_one_goes_at_once(tmp_path):
    fleet_device, key = new_device()
    with FakeTelemetryServer({fleet_device.device_id: key.public_key()}) as server:
        now = [1000.0]
        queue = EventQueue(tmp_path / "q.sqlite3", clock=lambda: now[0])
        sender, _ = _sender(server, fleet_device.device_id, key, queue, batch_size=10)
        sender.flush_interval_s = 60.0
        assert sender.drain_once() == "empty"
        queue.enqueue([inference(queue)] * 3)
        assert sender.drain_once() == "holding"
        now[0] += 59
        assert sender.drain_once() == "holding"
        now[0] += 1
        assert sender.drain_once() == "sent"  # the oldest is a telemetry interval old
        queue.enqueue([inference(queue)] * 25)  # a backlog: full batches go at once
        assert sender.drain() == 2
        assert queue.counts().depth == 5
        assert sender.drain(flush=True) == 1  # flush sends the partial one too
        assert len(server.stored()) == 28


def test_a_proxy_refusal_keeps_every_event(tmp_path):
    """A 404 or 415 from something in the way says nothing about the events: none dropped."""
    fleet_device, key = new_device()
    with FakeTelemetryServer({fleet_device.device_id: key.public_key()}) as server:
        queue = EventQueue(tmp_path / "q.sqlite3")
        queue.enqueue([inference(queue)] * 40)
        transport = SignedTransport(
            server=server.url + "/wrong-prefix",
            device_id=fleet_device.device_id,
            private_key=key,
            timeout=5,
        )
        sender = Sender(queue, transport, batch_size=10)
        assert sender.drain_once() == "failed"
        assert sender.wait_s() >= 59  # waits a minute before trying again
        assert queue.counts().depth == 40 and sender.counts.dead_lettered == 0


def test_a_locked_queue_file_fails_the_call_and_the_queue_still_works(tmp_path):
    path = tmp_path / "q.sqlite3"
    queue = EventQueue(path)
    other = sqlite3.connect(path, timeout=0.1)
    other.execute("BEGIN IMMEDIATE")  # a backup or a second agent holds the write lock
    queue._db.execute("PRAGMA busy_timeout = 100")
    with pytest.raises(sqlite3.OperationalError):
        queue.enqueue(inference(queue))
    other.rollback()
    other.close()
    assert queue.enqueue(inference(queue)) == [0]  # the lock was released, no deadlock
    assert queue.counts().depth == 1


def test_a_refused_health_event_hands_its_loss_counts_on(tmp_path):
    queue = EventQueue(tmp_path / "q.sqlite3", max_events=2)
    queue.enqueue([inference(queue)] * 3)  # one evicted
    queue.enqueue_health(health(queue))  # carries evicted=1, evicts another
    batch = queue.peek(10)
    health_seq = batch.sequences[-1]
    queue.settle(stored=batch.sequences[:-1], refused=[health_seq])
    queue.enqueue_health(health(queue))
    last = all_events(queue)[-1]
    assert last.evicted == 2  # the refused report's 1, plus the one evicted since
