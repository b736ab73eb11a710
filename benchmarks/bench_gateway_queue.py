"""The gateway agent's store-and-forward queue (issue 16): enqueue, drain, depth, outage drain.

Phases, same run, all on this machine:

  local    ``gateway.store.EventQueue`` alone (no network): events/s enqueued one event per
           transaction (the agent's pattern: one inference, one enqueue) and 100 per
           transaction, and events/s through ``peek(500)`` + ``settle``;
  depth    a queue filled to 1,000,000 events (100 per transaction): SQLite file + WAL size,
           bytes per event, process RSS/HWM before and after; single enqueues and peeks at
           that depth; then, full at ``max_events=1,000,000``, 10,000 more with ``drop_oldest``
           (rate, and the evicted counts must be exact);
  outage   one hour at 10 events/s (36,000 events) queued per device, then drained by
           ``gateway.sender.Sender`` (batch_size 500) into the real stack (gunicorn 2 x 2
           threads, one Celery ingest worker, a private Redis, PostgreSQL): 1 device, then 10
           devices at once (one process each); wall time until the queues are empty (every
           event landed, ``held``) and until every row is in the event tables, counted per
           device.

Uses its own database (BENCH_DATABASE_URL, default bench_gateway_queue, recreated) and scratch
files under /tmp/bench-queue.

    .venv/bin/python benchmarks/bench_gateway_queue.py [--phases local,depth,outage]
        [--depth 1000000] [--devices 10]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import django_env  # noqa: E402

from gateway.store import EventQueue  # noqa: E402
from protocol.telemetry import InferenceEvent, ModelRef  # noqa: E402

SCRATCH = Path("/tmp/bench-queue")  # noqa: S108 - scratch files, named in the brief
BENCH_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_gateway_queue"
)
MODEL = ModelRef(name="parcel-damage", version="v3", sha256="7f" * 32)
CLASSES = ("dent", "scratch", "tear", "ok")
OUTAGE_EVENTS = 36_000  # one hour at 10 events/s
BATCH = 500


def event_maker(epoch: str, at: datetime, n: int):
    """A realistic inference event for sequence ``seq`` (what one inference enqueues)."""

    def make(seq: int) -> InferenceEvent:
        return InferenceEvent(
            epoch=epoch,
            sequence=seq,
            timestamp=at,
            model=MODEL,
            latency_ms=11.0 + (n % 17) * 0.37,
            time_to_action_ms=180.0 + (n % 29),
            confidence=0.5 + (n % 50) / 100.0,
            predicted_class=CLASSES[n % 4],
            shape_bucket="1x3x224x224",
            workflow_fields={"damage_type": CLASSES[n % 4], "rework": n % 7 == 0},
        )

    return make


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def memory() -> dict:
    return {
        "rss_mb": round(status_kb("VmRSS") / 1024, 1),
        "hwm_mb": round(status_kb("VmHWM") / 1024, 1),
        "maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def disk(path: Path) -> dict:
    wal = Path(str(path) + "-wal")
    main_bytes = path.stat().st_size
    wal_bytes = wal.stat().st_size if wal.exists() else 0
    return {"db_mb": round(main_bytes / 2**20, 1), "wal_mb": round(wal_bytes / 2**20, 1)}


def fresh(name: str, **kwargs) -> EventQueue:
    path = SCRATCH / name
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return EventQueue(path, **kwargs)


def fill(queue: EventQueue, count: int, *, start: datetime, step_s: float = 0.1) -> float:
    """Enqueue ``count`` events, 100 per transaction; returns the seconds it took."""
    epoch = queue.device_epoch.epoch
    began = time.perf_counter()
    for first in range(0, count, 100):
        size = min(100, count - first)
        queue.enqueue(
            [
                event_maker(epoch, start + timedelta(seconds=(first + i) * step_s), first + i)
                for i in range(size)
            ]
        )
    return time.perf_counter() - began


def rate(count: int, seconds: float) -> int:
    return round(count / seconds) if seconds else 0


# --- local -----------------------------------------------------------------------------------


def phase_local() -> dict:
    now = datetime.now(UTC)
    queue = fresh("local.db")
    epoch = queue.device_epoch.epoch
    n_single = 20_000
    single_us = []
    began = time.perf_counter()
    for n in range(n_single):
        t0 = time.perf_counter()
        queue.enqueue(event_maker(epoch, now, n))
        single_us.append((time.perf_counter() - t0) * 1e6)
    single_s = time.perf_counter() - began
    n_batched = 200_000
    batched_s = fill(queue, n_batched, start=now)
    total = queue.counts().depth
    assert total == n_single + n_batched, total
    began = time.perf_counter()
    drained = 0
    while (batch := queue.peek(BATCH)) is not None:
        queue.settle(stored=batch.sequences)
        drained += len(batch)
    drain_s = time.perf_counter() - began
    counts = queue.counts()
    assert drained == total and counts.depth == 0 and counts.sent == total, counts
    queue.close()
    return {
        "single_events": n_single,
        "single_events_per_s": rate(n_single, single_s),
        "single_p50_us": round(django_env.percentile(single_us, 50), 1),
        "single_p99_us": round(django_env.percentile(single_us, 99), 1),
        "batched_events": n_batched,
        "batched_events_per_s": rate(n_batched, batched_s),
        "drain_events": drained,
        "drain_events_per_s": rate(drained, drain_s),
        "event_json_bytes": len(
            __import__("msgspec").json.encode(event_maker(epoch, now, 1)(123456))
        ),
    }


# --- depth -----------------------------------------------------------------------------------


def phase_depth(depth: int) -> dict:
    now = datetime.now(UTC)
    before = memory()
    queue = fresh("depth.db", max_events=depth)
    fill_s = fill(queue, depth, start=now - timedelta(seconds=depth * 0.1), step_s=0.1)
    counts = queue.counts()
    assert counts.depth == depth, counts
    after_fill = memory()
    size = disk(queue.path)
    on_disk = queue.path.stat().st_size + Path(str(queue.path) + "-wal").stat().st_size
    # Checkpoint so the main file holds everything (what a restart would find).
    queue._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size_ckpt = disk(queue.path)
    epoch = queue.device_epoch.epoch

    # At depth: single enqueues (queue full at max_events: make room first, so these measure
    # the plain path) and peeks of the oldest 500 (not settled: the depth stays).
    extra = 5000
    room = queue.peek(extra)
    queue.settle(stored=room.sequences)
    t0 = time.perf_counter()
    for n in range(extra):
        queue.enqueue(event_maker(epoch, now, n))
    single_s = time.perf_counter() - t0
    peeks = 2000
    t0 = time.perf_counter()
    for _ in range(peeks):
        batch = queue.peek(BATCH)
    peek_s = time.perf_counter() - t0
    assert len(batch) == BATCH
    t0 = time.perf_counter()
    for _ in range(100):
        batch = queue.peek(BATCH)
        queue.settle(stored=batch.sequences)
        queue.enqueue([event_maker(epoch, now, n) for n in range(BATCH)])
    cycle_s = time.perf_counter() - t0

    # Eviction: full at max_events, 10,000 more with drop_oldest.
    full = queue.counts()
    assert full.depth == depth, full
    evict_n = 10_000
    t0 = time.perf_counter()
    for n in range(evict_n):
        queue.enqueue(event_maker(epoch, now, n))
    evict_s = time.perf_counter() - t0
    after = queue.counts()
    health = {}

    def make_health(seq, queue_depth, buffered, evicted):
        from protocol.telemetry import HealthEvent

        health.update(queue_depth=queue_depth, buffered=buffered, evicted=evicted)
        return HealthEvent(
            epoch=epoch,
            sequence=seq,
            timestamp=now,
            throttled=False,
            memory_mb=100.0,
            queue_depth=queue_depth,
            buffered=buffered,
            evicted=evicted,
        )

    # The health event is reported with the evictions since the last one (none before).
    queue.enqueue_health(make_health)
    evicted_exact = (
        after.evicted_overflow - full.evicted_overflow == evict_n
        and after.depth == depth
        and health["evicted"] == after.evicted_overflow
    )
    oldest = queue.peek(1).sequences[0]
    end = memory()
    queue.close()
    return {
        "depth": depth,
        "fill_s": round(fill_s, 1),
        "fill_events_per_s": rate(depth, fill_s),
        "disk_after_fill": size,
        "disk_after_checkpoint": size_ckpt,
        "bytes_per_event_on_disk": round(on_disk / depth, 1),
        "bytes_per_event_counted": round(counts.bytes / depth, 1),
        "counted_bytes_mb": round(counts.bytes / 2**20, 1),
        "memory_before": before,
        "memory_after_fill": after_fill,
        "memory_end": end,
        "single_enqueue_at_depth_per_s": rate(extra, single_s),
        "peek500_at_depth_per_s": round(peeks / peek_s, 1),
        "peek500_at_depth_ms": round(peek_s / peeks * 1000, 2),
        "peek_settle_enqueue500_cycle_ms": round(cycle_s / 100 * 1000, 2),
        "evict_enqueues": evict_n,
        "evict_events_per_s": rate(evict_n, evict_s),
        "evicted_overflow": after.evicted_overflow - full.evicted_overflow,
        "evicted_reported_in_health": health["evicted"],
        "oldest_sequence_after": oldest,
        "evicted_exact": evicted_exact,
    }


# --- outage ----------------------------------------------------------------------------------


def _drain_worker(args) -> dict:
    """One device: drain its prefilled queue into the server; runs in its own process."""
    path, server, device_id, pem, go = args
    from cryptography.hazmat.primitives import serialization

    from gateway.sender import Sender
    from gateway.transport import SignedTransport

    key = serialization.load_pem_private_key(pem.encode(), password=None)
    queue = EventQueue(path, max_events=1_000_000)
    transport = SignedTransport(server=server, device_id=device_id, private_key=key)
    sender = Sender(queue, transport, batch_size=BATCH)
    while time.time() < go:
        time.sleep(0.001)
    began, cpu = time.time(), time.process_time()
    outcomes = {}
    while True:
        outcome = sender.drain_once()
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome == "empty":
            break
        if outcome in ("failed", "waiting"):
            time.sleep(max(0.05, sender.wait_s()))
    ended = time.time()
    counts = queue.counts()
    transport.close()
    queue.close()
    lat = sender.counts.latencies_ms
    return {
        "began": began,
        "ended": ended,
        "cpu_s": time.process_time() - cpu,
        "sent": counts.sent,
        "depth": counts.depth,
        "refused": counts.refused,
        "requests": sender.counts.requests,
        "errors": sender.counts.http_errors + sender.counts.network_errors,
        "last_error": sender.counts.last_error,
        "outcomes": outcomes,
        "p50_ms": django_env.percentile(lat, 50) if lat else None,
        "p95_ms": django_env.percentile(lat, 95) if lat else None,
    }


def recreate_database() -> None:
    from urllib.parse import urlsplit

    import psycopg

    parts = urlsplit(BENCH_URL)
    name = parts.path.lstrip("/")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def rows_per_device(device_pks: list[int]) -> dict[int, int]:
    from django.db import connections

    from telemetry.routers import telemetry_db

    with connections[telemetry_db()].cursor() as cursor:
        cursor.execute(
            "SELECT device_id, count(*) FROM telemetry_inferenceevent"
            " WHERE device_id = ANY(%s) GROUP BY device_id",
            [device_pks],
        )
        found = dict(cursor.fetchall())
    return {pk: found.get(pk, 0) for pk in device_pks}


def phase_outage(devices: int) -> dict:
    recreate_database()
    os.environ["DATABASE_URL"] = BENCH_URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opshero.settings")
    os.environ.pop("TELEMETRY_DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_telemetry_ingest import make_fleet

    from fleet.models import Device
    from tests.telemetry.stack import (
        Processes,
        free_port,
        gunicorn_command,
        listening,
        redis_command,
        redis_up,
        stack_env,
        wait_for,
        worker_command,
    )

    tmp = SCRATCH / "stack"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "var").mkdir(parents=True)
    redis_port, port = free_port(), free_port()
    server = f"http://127.0.0.1:{port}"
    _, fleet = make_fleet(1 + devices, server, tmp / "fleet.json")
    pks = dict(Device.objects.values_list("uid", "pk"))
    env = stack_env(
        tmp,
        redis_port,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
        DB_CONN_MAX_AGE="60",
    )
    procs = Processes(tmp, env)
    report: dict = {"stack": "gunicorn 2 workers x 2 threads, 1 Celery ingest worker (prefork 1)"}
    try:
        procs.start("redis", redis_command(redis_port, tmp))
        wait_for(lambda: redis_up(redis_port), 20, "redis")
        procs.start("web", gunicorn_command(port))
        procs.start("worker", worker_command(concurrency=1))
        wait_for(lambda: listening(port), 30, "gunicorn")
        time.sleep(5)  # the worker connects
        groups = [("1 device", fleet.devices[:1]), (f"{devices} devices", fleet.devices[1:])]
        for label, members in groups:
            # One hour of events at 10/s, ending now (the server refuses future timestamps).
            jobs = []
            start = datetime.now(UTC) - timedelta(seconds=3600)
            for i, device in enumerate(members):
                queue = fresh(f"outage-{label.split()[0]}-{i}.db")
                fill(queue, OUTAGE_EVENTS, start=start, step_s=0.1)
                queue.close()
                jobs.append(
                    (str(queue.path), server, device.device_id, device.private_key_pem, 0.0)
                )
            go = time.time() + 2.0
            jobs = [(*job[:4], go) for job in jobs]
            ctx = multiprocessing.get_context("fork")
            with ctx.Pool(len(jobs)) as pool:
                results = pool.map(_drain_worker, jobs)
            drained_at = max(r["ended"] for r in results)
            device_pks = [pks[__import__("uuid").UUID(d.device_id)] for d in members]

            def all_rows(device_pks=device_pks):
                rows = rows_per_device(device_pks)
                return rows if all(v >= OUTAGE_EVENTS for v in rows.values()) else None

            rows = wait_for(all_rows, 300, "every event ingested", interval=0.1)
            visible_at = time.time()
            total = OUTAGE_EVENTS * len(members)
            drain_s = drained_at - go
            entry = {
                "devices": len(members),
                "events": total,
                "drain_s": round(drain_s, 2),
                "drain_events_per_s": rate(total, drain_s),
                "per_device_drain_s": [round(r["ended"] - go, 2) for r in results],
                "visible_s": round(visible_at - go, 2),
                "visible_events_per_s": rate(total, visible_at - go),
                "requests": sum(r["requests"] for r in results),
                "errors": sum(r["errors"] for r in results),
                "last_errors": sorted({r["last_error"] for r in results if r["last_error"]}),
                "request_p50_ms": max(r["p50_ms"] for r in results),
                "request_p95_ms": max(r["p95_ms"] for r in results),
                "client_cpu_s": round(sum(r["cpu_s"] for r in results), 2),
                "sent_per_device": sorted({r["sent"] for r in results}),
                "left_in_queues": sum(r["depth"] for r in results),
                "rows_per_device": sorted(set(rows.values())),
                "exact": all(v == OUTAGE_EVENTS for v in rows.values())
                and all(r["sent"] == OUTAGE_EVENTS and r["depth"] == 0 for r in results),
            }
            report[label] = entry
            print(json.dumps({label: entry}), flush=True)
    finally:
        procs.stop_all()
    return report


def table(report: dict) -> str:
    lines = ["| measure | figure |", "| --- | --- |"]

    def row(k: str, v) -> None:
        lines.append(f"| {k} | {v} |")

    if "local" in report:
        loc = report["local"]
        row("event size (JSON, one inference)", f"{loc['event_json_bytes']} B")
        row(
            "enqueue, 1 event per transaction",
            f"{loc['single_events_per_s']:,} events/s (P50 {loc['single_p50_us']} µs, "
            f"P99 {loc['single_p99_us']} µs)",
        )
        row("enqueue, 100 events per transaction", f"{loc['batched_events_per_s']:,} events/s")
        row(
            f"peek(500) + settle, {loc['drain_events']:,} events",
            f"{loc['drain_events_per_s']:,} events/s",
        )
    if "depth" in report:
        d = report["depth"]
        row(
            f"fill to {d['depth']:,} events (100 per tx)",
            f"{d['fill_s']} s ({d['fill_events_per_s']:,} events/s)",
        )
        a, c = d["disk_after_fill"], d["disk_after_checkpoint"]
        row(
            "SQLite file at 1M events",
            f"{a['db_mb']} MB + WAL {a['wal_mb']} MB; after checkpoint {c['db_mb']} MB",
        )
        row(
            "bytes per event",
            f"{d['bytes_per_event_on_disk']} B on disk; {d['bytes_per_event_counted']} B counted "
            f"against max_bytes ({d['counted_bytes_mb']} MB of 512 MB)",
        )
        b, f, e = d["memory_before"], d["memory_after_fill"], d["memory_end"]
        row(
            "process memory (VmRSS / VmHWM)",
            f"before {b['rss_mb']} / {b['hwm_mb']} MB; after fill {f['rss_mb']} / "
            f"{f['hwm_mb']} MB; end {e['rss_mb']} / {e['hwm_mb']} MB",
        )
        row("single enqueue at 1M depth", f"{d['single_enqueue_at_depth_per_s']:,} events/s")
        row(
            "peek(500) at 1M depth",
            f"{d['peek500_at_depth_ms']} ms ({d['peek500_at_depth_per_s']:,} peeks/s)",
        )
        row("peek + settle + enqueue of 500 at 1M", f"{d['peek_settle_enqueue500_cycle_ms']} ms")
        row(
            f"full (max_events 1M), {d['evict_enqueues']:,} more, drop_oldest",
            f"{d['evict_events_per_s']:,} events/s; evicted {d['evicted_overflow']:,}, "
            f"health reports {d['evicted_reported_in_health']:,}; exact: {d['evicted_exact']}",
        )
    for label in [k for k in report if k.endswith("device") or k.endswith("devices")]:
        o = report[label]
        row(
            f"drain 36,000 events x {label}, batch 500",
            f"{o['drain_s']} s ({o['drain_events_per_s']:,} events/s); all rows in the tables "
            f"after {o['visible_s']} s ({o['visible_events_per_s']:,} events/s); request P50 "
            f"{o['request_p50_ms']:.0f} ms, P95 {o['request_p95_ms']:.0f} ms; "
            f"rows per device {o['rows_per_device']}; exact: {o['exact']}",
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--phases", default="local,depth,outage")
    parser.add_argument("--depth", type=int, default=1_000_000)
    parser.add_argument("--devices", type=int, default=10)
    args = parser.parse_args()
    SCRATCH.mkdir(parents=True, exist_ok=True)
    report: dict = {
        "machine": django_env.machine(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "sqlite": __import__("sqlite3").sqlite_version,
    }
    phases = args.phases.split(",")
    began = time.perf_counter()
    if "local" in phases:
        report["local"] = phase_local()
        print(json.dumps({"local": report["local"]}), flush=True)
    if "depth" in phases:
        report["depth"] = phase_depth(args.depth)
        print(json.dumps({"depth": report["depth"]}), flush=True)
    if "outage" in phases:
        report.update(phase_outage(args.devices))
    report["total_s"] = round(time.perf_counter() - began, 1)
    print(json.dumps(report, indent=2))
    print()
    print(table(report))


if __name__ == "__main__":
    main()
