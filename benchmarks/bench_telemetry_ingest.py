"""Telemetry ingest end to end over HTTP into PostgreSQL, against a raw COPY of the same rows.

Everything runs on this machine at once, as the issue asks ("clients included"): gunicorn,
Celery ingest workers, PostgreSQL, Redis and the load generator (``gateway.loadgen``: signed
gzip batches from simulated devices, pre-generated before the clock starts). Phases, same run:

  copy       the same events as rows, ``COPY``'d straight into the partitioned event tables
             (psycopg 3, one connection): the ceiling;
  web        gunicorn alone, no ingest worker: how fast the web tier verifies and lands batches;
  e2e        gunicorn + ingest workers: from the first request until the last batch's events are
             committed (max ``IngestedBatch.ingested_at``), so workers are inside the figure;
  e2e+replay the same with one batch in five posted twice (deduplicated by the ledger).

CPU split: utime+stime from /proc for each process group (gunicorn, Celery, PostgreSQL's
backends, the load generator) over the phase. Ingest lag: ``ingested_at - received_at`` per
batch. Uses its own database (BENCH_DATABASE_URL, default opshero_bench, recreated) and Redis
database 5 (BENCH_REDIS_URL).

    .venv/bin/python benchmarks/bench_telemetry_ingest.py [--devices 40] [--events-per-device 10000]
        [--batch-size 1000] [--web-workers 2] [--ingest-workers 2] [--clients 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BENCH_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/opshero_bench")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")


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


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "opshero.settings"
    os.environ["DATABASE_URL"] = BENCH_URL
    os.environ["REDIS_URL"] = REDIS
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# --- CPU accounting ------------------------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    # utime, stime, cutime, cstime (children that exited are in the last two)
    return sum(int(v) for v in fields[11:15]) / TICK


def _pids(pattern: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def cpu_snapshot(groups: dict[str, str]) -> dict[str, float]:
    return {name: sum(_cpu_of(pid) for pid in _pids(pattern)) for name, pattern in groups.items()}


def machine_cpu() -> float:
    values = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(v) for i, v in enumerate(values) if i not in (3, 4))  # minus idle, iowait
    return busy / TICK


# --- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


def start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


# --- data ----------------------------------------------------------------------------------------


def make_fleet(devices: int, server: str, path: Path):
    from cryptography.hazmat.primitives import serialization

    from fleet import services
    from fleet.models import Site
    from gateway.loadgen import FleetDevice, FleetFile
    from opshero.actors import Actor
    from opshero.models import Organization
    from protocol import device_auth

    org = Organization.objects.create(name="Bench", slug="bench")
    site = Site.objects.create(organization=org, name="Bench dock", kind="dock")
    entries = []
    for n in range(devices):
        _, token = services.create_enrollment_token(
            organization=org, site=site, actor=Actor.system("bench")
        )
        key = device_auth.generate_device_key()
        device = services.enroll_device(
            token=token,
            public_key=device_auth.public_key_text(key),
            facts=services.EnrollmentFacts(serial=f"BENCH-{n:05d}"),
        )
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        entries.append(FleetDevice(device_id=str(device.uid), private_key_pem=pem))
    fleet = FleetFile(server=server, devices=tuple(entries))
    fleet.write(path)
    return org, fleet


def truncate_telemetry() -> None:
    from django.db import connection

    from telemetry.partitions import forget_known_partitions

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE telemetry_inferenceevent, telemetry_healthevent, telemetry_eventkey, "
            "telemetry_landedbatch, telemetry_ingestedbatch, telemetry_deviceepoch"
        )
    forget_known_partitions()


def copy_baseline(org, fleet, options) -> dict:
    """COPY the rows the load generator would send, into the same tables, one connection."""
    from django.db import connection, transaction

    from fleet.models import Device
    from gateway import loadgen
    from protocol.telemetry import HealthEvent as WireHealth
    from telemetry.models import HealthEvent, InferenceEvent
    from telemetry.partitions import ensure_partitions
    from telemetry.storage import (
        HEALTH_COLUMNS,
        INFERENCE_COLUMNS,
        Owner,
        days_of,
        health_row,
        inference_row,
    )

    ids = dict(Device.objects.values_list("uid", "pk"))
    inference, health, days = [], [], set()
    now = datetime.now(UTC)
    for device in fleet.devices:
        owner = Owner(
            organization_id=org.pk, device_id=ids[uuid.UUID(device.device_id)], epoch_id=1
        )
        for _, events in loadgen._generate(device, options, now):
            days |= days_of(events)
            for event in events:
                if isinstance(event, WireHealth):
                    health.append(health_row(owner, event))
                else:
                    inference.append(inference_row(owner, event))
    with transaction.atomic():
        ensure_partitions(days=days, using="default")
    rows = len(inference) + len(health)
    began = time.perf_counter()
    with transaction.atomic():
        copy_rows(InferenceEvent, INFERENCE_COLUMNS, inference)
        copy_rows(HealthEvent, HEALTH_COLUMNS, health)
    elapsed = time.perf_counter() - began
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM telemetry_inferenceevent")
        stored = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM telemetry_healthevent")
        stored += cursor.fetchone()[0]
    assert stored == rows, (stored, rows)
    return {"rows": rows, "seconds": round(elapsed, 3), "rows_per_s": round(rows / elapsed)}


def copy_rows(model, columns, rows) -> None:
    """COPY rows as they are into a model's table (the baseline: no ledger, no staging)."""
    import msgspec
    from django.db import connection

    encoder = msgspec.json.Encoder()
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    json_at = [i for i, c in enumerate(columns) if c == "workflow_fields"]
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
    ):
        for row in rows:
            if json_at:
                row = list(row)
                for i in json_at:
                    row[i] = encoder.encode(row[i]).decode()
            copy.write_row(row)


def run_loadgen(fleet_path: Path, options, clients: int) -> dict:
    from gateway.loadgen import FleetFile, run_fleet

    return run_fleet(FleetFile.load(fleet_path), processes=clients, options=options)


def ingest_figures(began: float) -> dict:
    from django.db.models import Max, Sum

    from telemetry.models import IngestedBatch, LandedBatch

    rows = list(IngestedBatch.objects.values_list("received_at", "ingested_at"))
    lags = sorted((b - a).total_seconds() for a, b in rows)
    totals = IngestedBatch.objects.aggregate(
        stored=Sum("stored"), duplicates=Sum("duplicates"), last=Max("ingested_at")
    )
    visible_s = totals["last"].timestamp() - began if totals["last"] else None
    return {
        "batches": len(rows),
        "stored": totals["stored"] or 0,
        "duplicates": totals["duplicates"] or 0,
        "still_landed": LandedBatch.objects.count(),
        "visible_after_s": round(visible_s, 3) if visible_s else None,
        "lag_p50_s": round(statistics.median(lags), 3) if lags else None,
        "lag_p95_s": round(lags[int(0.95 * (len(lags) - 1))], 3) if lags else None,
        "lag_max_s": round(lags[-1], 3) if lags else None,
    }


def wait_ingested(expected: int, timeout: float = 600) -> None:
    from django.db.models import Sum

    from telemetry.models import IngestedBatch, LandedBatch

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stored = IngestedBatch.objects.aggregate(s=Sum("stored"))["s"] or 0
        if stored >= expected and not LandedBatch.objects.exists():
            return
        time.sleep(0.25)
    raise RuntimeError(f"events not all ingested after {timeout}s")


def stored_events() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM telemetry_inferenceevent) + "
            "(SELECT count(*) FROM telemetry_healthevent)"
        )
        return cursor.fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=40)
    parser.add_argument("--events-per-device", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=2)
    parser.add_argument("--ingest-workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--phases", default="copy,web,e2e,replay")
    args = parser.parse_args()

    recreate_database()
    setup_django()
    from gateway.loadgen import RunOptions

    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    port = free_port()
    server = f"http://127.0.0.1:{port}"
    org, fleet = make_fleet(args.devices, server, tmp / "fleet.json")
    options = RunOptions(batch_size=args.batch_size, events_per_device=args.events_per_device)
    env = {
        **os.environ,
        "DATABASE_URL": BENCH_URL,
        "REDIS_URL": REDIS,
        "DJANGO_SETTINGS_MODULE": "opshero.settings",
        "OPSHERO_VAR_DIR": str(tmp / "var"),
        "HOME": str(tmp),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
    }
    groups = {
        "web": f"gunicorn opshero.wsgi --bind 127.0.0.1:{port}",
        "workers": "celery -A opshero worker --hostname bench-ingest",
        # Every PostgreSQL process: backends, WAL writer, checkpointer, autovacuum.
        "postgres": "bin/postgres |^postgres:",
        "redis": "redis-server",
    }
    report: dict = {
        "machine": f"{platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "devices": args.devices,
        "events_per_device": args.events_per_device,
        "batch_size": args.batch_size,
        "web_workers": f"{args.web_workers} x {args.web_threads} threads",
        "ingest_workers": args.ingest_workers,
        "clients": args.clients,
    }
    phases = args.phases.split(",")
    if "copy" in phases:
        report["copy"] = copy_baseline(org, fleet, options)
        truncate_telemetry()
        print(json.dumps({"copy": report["copy"]}), flush=True)

    web = start(
        [
            str(BIN / "gunicorn"),
            "opshero.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.web_workers),
            "--threads",
            str(args.web_threads),
            "--worker-class",
            "gthread",
            "--timeout",
            "120",
        ],
        env,
        tmp / "web.log",
    )
    workers = None
    try:
        wait_port(port)
        from opshero.celery import app

        app.control.purge()

        def measured(name: str, replay: float) -> dict:
            run_options = RunOptions(
                batch_size=args.batch_size,
                events_per_device=args.events_per_device,
                replay_fraction=replay,
            )
            cpu0, machine0 = cpu_snapshot(groups), machine_cpu()
            began = time.time()
            summary = run_loadgen(tmp / "fleet.json", run_options, args.clients)
            return {"summary": summary, "cpu0": cpu0, "machine0": machine0, "began": began}

        def cpu_split(start: dict) -> dict:
            after = cpu_snapshot(groups)
            split = {k: round(after[k] - start["cpu0"].get(k, 0.0), 2) for k in groups}
            split["clients_posting"] = start["summary"]["client_cpu_s"]
            # The machine's busy time, less what the clients spent generating before the clock.
            split["machine_busy"] = round(
                machine_cpu() - start["machine0"] - start["summary"]["generation_cpu_s"], 2
            )
            return split

        if "web" in phases:
            run = measured("web", 0.0)
            s = run["summary"]
            report["web"] = {
                "events_per_s": s["events_per_s"],
                "requests_per_s": s["requests_per_s"],
                "request_p50_ms": s["latency_p50_ms"],
                "request_p95_ms": s["latency_p95_ms"],
                "held": s["held"],
                "rejected": s["rejected"],
                "cpu_s": cpu_split(run),
                "elapsed_s": s["elapsed_s"],
            }
            print(json.dumps({"web": report["web"]}), flush=True)
            app.control.purge()
            truncate_telemetry()

        workers = start(
            [
                str(BIN / "celery"),
                "-A",
                "opshero",
                "worker",
                "--hostname",
                "bench-ingest@%h",
                "--queues",
                "ingest",
                "--concurrency",
                str(args.ingest_workers),
                "--prefetch-multiplier",
                "4",
                "--loglevel",
                "WARNING",
                "--without-mingle",
                "--without-gossip",
            ],
            env,
            tmp / "worker.log",
        )
        time.sleep(6)  # the worker connects and is ready
        for name, replay in (("e2e", 0.0), ("replay", 0.2)):
            if name not in phases:
                continue
            run = measured(name, replay)
            s = run["summary"]
            expected = s["held"]
            wait_ingested(expected)
            # From the first request (after the clients generated their batches) until the last
            # batch's events are committed.
            figures = ingest_figures(s["began_at"])
            stored = stored_events()
            report[name] = {
                "events": expected,
                "stored_rows": stored,
                "events_per_s": round(expected / figures["visible_after_s"]),
                "web_events_per_s": s["events_per_s"],
                "requests": s["requests"],
                "replays": s["replays"],
                "duplicates_seen_by_workers": figures["duplicates"],
                "request_p95_ms": s["latency_p95_ms"],
                "lag_p50_s": figures["lag_p50_s"],
                "lag_p95_s": figures["lag_p95_s"],
                "lag_max_s": figures["lag_max_s"],
                "cpu_s": cpu_split(run),
                "client_cpu_s": s["client_cpu_s"],
            }
            assert stored == expected, (stored, expected)
            print(json.dumps({name: report[name]}), flush=True)
            truncate_telemetry()
    finally:
        if workers is not None:
            stop(workers)
        stop(web)
    if "copy" in report and "e2e" in report:
        report["e2e_over_copy"] = round(
            report["e2e"]["events_per_s"] / report["copy"]["rows_per_s"], 3
        )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
