"""The issue's "done means": ingest through a broker outage and a worker killed mid-batch.

Everything runs as it does in production, each part its own process: gunicorn (2 workers), a
Celery ingest worker, Celery beat (running the sweep), and a Redis server owned by this test
(so stopping it disturbs nobody). Gateways post signed gzip batches over HTTP, a fifth of
them twice. Then: a worker is killed while provably inside a batch's transaction (it waits on
a ledger key this test holds), Redis is stopped while posting goes on, and both come back
(Redis empty: every queued task is lost). Every event the answers said was held is stored
exactly once, counted at both ends.
"""

from __future__ import annotations

import http.client
import json
import random
import shutil
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from protocol import device_auth
from protocol import telemetry as wire
from telemetry.models import DeviceEpoch, HealthEvent, InferenceEvent, IngestedBatch, LandedBatch
from tests.factories import enroll_device

from .builders import MODEL, TELEMETRY
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


class Gateway:
    """A minimal gateway: numbered events, signed gzip batches, the answer decides the queue."""

    def __init__(self, device, key, port: int, seed: int):
        self.device, self.key, self.port = device, key, port
        self.epoch = f"epoch-{device.pk:04d}-e2e"
        self.sequence = 0
        self.rng = random.Random(seed)
        self.held: set[tuple[str, int]] = set()
        self.started = timezone.now() - timedelta(hours=1)

    def events(self, n: int) -> list:
        out = []
        for _ in range(n):
            seq, self.sequence = self.sequence, self.sequence + 1
            at = timezone.now() - timedelta(seconds=30)
            if seq % 10 == 9:
                out.append(
                    wire.HealthEvent(
                        epoch=self.epoch,
                        sequence=seq,
                        timestamp=at,
                        throttled=False,
                        memory_mb=300.0,
                        queue_depth=0,
                        buffered=0,
                        evicted=0,
                    )
                )
            else:
                out.append(
                    wire.InferenceEvent(
                        epoch=self.epoch,
                        sequence=seq,
                        timestamp=at,
                        model=MODEL,
                        latency_ms=self.rng.lognormvariate(2.5, 0.3),
                        confidence=self.rng.random(),
                        predicted_class="dent",
                        shape_bucket="1x3x224x224",
                    )
                )
        return out

    def post(self, events) -> dict:
        body = wire.encode_batch(
            device_epoch=wire.DeviceEpoch(epoch=self.epoch, started_at=self.started),
            events=events,
            compress=True,
        )
        headers = device_auth.sign_request(
            private_key=self.key,
            device_id=str(self.device.uid),
            method="POST",
            path=TELEMETRY,
            query="",
            body=body,
        )
        headers.update({"Content-Type": "application/json", "Content-Encoding": "gzip"})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("POST", TELEMETRY, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        assert response.status == 200, (response.status, payload[:500])
        answer = json.loads(payload)
        assert answer["rejected"] == []
        for first, last in answer["held"]:
            self.held.update((self.epoch, s) for s in range(first, last + 1))
        return answer


def stored_keys() -> list[tuple[int, str, int]]:
    epochs = dict(DeviceEpoch.objects.values_list("pk", "epoch"))
    rows = []
    for model in (InferenceEvent, HealthEvent):
        rows += [
            (device_id, epochs[epoch_id], seq)
            for device_id, epoch_id, seq in model.objects.values_list(
                "device_id", "epoch_id", "sequence"
            )
        ]
    return rows


def test_every_event_is_stored_exactly_once_through_outages(world, tmp_path):
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is needed (Debian's redis-server package)")
    redis_port, web_port = free_port(), free_port()
    env = stack_env(
        tmp_path, redis_port, TELEMETRY_SWEEP_SECONDS="1", TELEMETRY_SWEEP_AFTER_SECONDS="2"
    )
    procs = Processes(tmp_path, env)
    redis_cmd = redis_command(redis_port, tmp_path)
    worker_cmd = worker_command(concurrency=1)
    try:
        procs.start("redis", redis_cmd)
        wait_for(lambda: redis_up(redis_port), 10, "redis")
        procs.start("web", gunicorn_command(web_port))
        procs.start("worker", worker_cmd)
        procs.start("beat", beat_command(tmp_path / "beat-schedule"))
        wait_for(lambda: listening(web_port), 30, "gunicorn")
        gateways = [Gateway(*enroll_device(world.a.org), port=web_port, seed=n) for n in range(3)]
        posted = 0

        def post_round(size: int, replay_every: int = 5):
            nonlocal posted
            for gateway in gateways:
                events = gateway.events(size)
                gateway.post(events)
                posted += 1
                if posted % replay_every == 0:  # one batch in five sent again
                    gateway.post(events)

        step("normal ingest")
        # 1. Normal ingest, replays included.
        for _ in range(4):
            post_round(200)
        wait_for(lambda: not LandedBatch.objects.exists(), 60, "the first batches ingested")

        step("kill the worker mid-batch")
        # 2. Kill the worker inside a batch's transaction: it waits on a ledger key we hold.
        victim = gateways[0]
        epoch_id = DeviceEpoch.objects.get(device_id=victim.device.pk, epoch=victim.epoch).pk
        events = victim.events(300)
        blocker = connections.create_connection("default")
        try:
            with blocker.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute(
                    "INSERT INTO telemetry_eventkey (device_id, epoch_id, sequence, digest, "
                    "organization_id, timestamp) VALUES (%s, %s, %s, 0, %s, now())",
                    [victim.device.pk, epoch_id, events[150].sequence, world.a.org.pk],
                )

                def worker_blocked():
                    # Activity statistics are a snapshot per transaction: take a fresh one.
                    cursor.execute("SELECT pg_stat_clear_snapshot()")
                    cursor.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND query LIKE '%INSERT INTO \"telemetry_eventkey\"%'"
                    )
                    return cursor.fetchone()[0] > 0

                victim.post(events)
                wait_for(worker_blocked, 30, "the worker to be inside the batch")
                procs.kill("worker")
                cursor.execute("ROLLBACK")
        finally:
            blocker.close()
        assert LandedBatch.objects.count() >= 1  # the killed batch is still landed

        step("stop redis")
        # 3. Redis goes away; gateways keep posting and get 200s (the batches are durable).
        procs.kill("redis")
        assert not redis_up(redis_port)
        for _ in range(3):
            post_round(150)
        landed_while_down = LandedBatch.objects.count()
        assert landed_while_down >= 9

        step("restart redis and a worker")
        # 4. Both come back; Redis empty, so every queued task is gone: the sweep must act.
        procs.start("redis", redis_cmd)
        wait_for(lambda: redis_up(redis_port), 10, "redis again")
        procs.start("worker", worker_cmd)
        for _ in range(2):
            post_round(100)
        step("wait for the sweep")
        wait_for(lambda: not LandedBatch.objects.exists(), 120, "every landed batch ingested")
        step("all ingested")
    except BaseException:
        for name in ("web", "worker", "beat", "redis"):
            if (tmp_path / f"{name}.log").exists():
                print(f"--- {name} ---\n{procs.log(name)}")
        raise
    finally:
        procs.stop_all()

    held = {(g.device.pk, epoch, seq) for g in gateways for epoch, seq in g.held}
    sent = sum(g.sequence for g in gateways)
    rows = stored_keys()
    assert len(held) == sent  # every event sent was held by some answer
    assert len(rows) == len(set(rows)) == sent  # stored once each: no loss, no duplicate
    assert set(rows) == held
    assert sum(IngestedBatch.objects.values_list("stored", flat=True)) == sent
    assert sum(IngestedBatch.objects.values_list("duplicates", flat=True)) > 0
