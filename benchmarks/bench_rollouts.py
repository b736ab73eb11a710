"""Staged rollouts at fleet scale, on PostgreSQL: the evaluator tick, wave planning and the
device desired-state poll.

Phases, one run, one database (BENCH_DATABASE_URL, default opshero_bench_rollouts, recreated):

  plan      10,000 devices (200 sites x 50, active, built-in CPU target, onnxruntime 1.20.1)
            with a baseline version assigned and a signed candidate: ``plan_waves`` alone
            (pure), ``preview_rollout`` and ``create_rollout`` (default waves, then aborted).
  ticks     a rollout of the candidate to every site (canary: 2 sites; waves canary, 10 %,
            60 %, 100 %), submitted by one approver and approved by another, then
            ``rollouts.engine.evaluate_rollouts(now=...)`` timed and its queries counted
            (``CaptureQueriesContext``) through: the first tick (start, canary notified), the
            10 % wave notified, the 60 % wave (~5,000 devices) notified, 2,000 of them timing
            out, a steady tick with nothing to do (repeated), and ~5,000 promoted to healthy.
            Between ticks the benchmark moves devices along with raw ``.update()`` calls (what
            device reports would do). The same ticks run on 1,000 devices (200 sites x 5) to
            compare the query counts.
  desired   ``GET /api/v1/device/desired`` through gunicorn (2 workers x 4 threads): devices
            created with generated Ed25519 keys and one assignment each; an open-loop paced
            load (a separate process) at 170 requests/s, once with ``If-None-Match`` (304
            expected) and once without; P50/P95/P99, achieved rate and status counts.

    .venv/bin/python benchmarks/bench_rollouts.py [--devices 10000] [--small 1000]
        [--phases plan,ticks,desired] [--desired-devices 2000] [--rate 170] [--duration 30]
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
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
BENCH_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/opshero_bench_rollouts"
)
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
RUNTIME = "onnxruntime 1.20.1"
DESIRED = "/api/v1/device/desired"


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


def bench_env(var_dir: Path) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "opshero.settings",
        "DATABASE_URL": BENCH_URL,
        "REDIS_URL": REDIS,
        "OPSHERO_VAR_DIR": str(var_dir),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
    }


def setup_django(var_dir: Path) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.update(bench_env(var_dir))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# --- data ---------------------------------------------------------------------------------------


class World:
    """An organisation with two approvers, a signing key, a model with a baseline version
    assigned to every device and a signed candidate, and sites full of active devices."""

    def __init__(self, slug: str, sites: int, per_site: int):
        from django.contrib.auth import get_user_model
        from django.db import transaction

        from fleet.models import Device, HardwareTarget, Site
        from modelregistry import assignment_services, services, signing_services
        from opshero.actors import Actor
        from opshero.models import Membership, Organization
        from opshero.roles import Role
        from tests.rollouts.fleet import tiny_version, validate_and_sign

        users = get_user_model().objects
        self.org = Organization.objects.create(name=slug.title(), slug=slug)

        def member(name: str, role: str) -> Actor:
            user = users.create_user(username=f"{slug}-{name}", password=None)
            Membership.objects.create(organization=self.org, user=user, role=role)
            return Actor.for_user(user)

        self.planner = member("planner", Role.APPROVER)
        self.approver = member("approver", Role.APPROVER)
        uploader = member("uploader", Role.APPROVER)
        admin = member("admin", Role.ADMIN)
        signing_services.create_signing_key(organization=self.org, actor=admin)
        target = HardwareTarget.objects.get(builtin_key="cpu")
        self.model = services.create_model(
            organization=self.org, actor=self.planner, name="dock damage"
        )
        with transaction.atomic():
            self.baseline = validate_and_sign(
                tiny_version(self.model, uploader, "1.0.0", 0.5), target, self.planner, "a" * 64
            )
        with transaction.atomic():
            self.candidate = validate_and_sign(
                tiny_version(self.model, uploader, "1.1.0", 0.25), target, self.planner, "b" * 64
            )
        self.sites = Site.objects.bulk_create(
            [
                Site(organization=self.org, name=f"Dock {n:03d}", kind="dock", time_zone="UTC")
                for n in range(sites)
            ]
        )
        Device.objects.bulk_create(
            [
                Device(
                    organization=self.org,
                    site=self.sites[n % sites],
                    name=f"{slug}-gw-{n:05d}",
                    serial=f"{slug}-SN-{n:05d}",
                    status=Device.Status.ACTIVE,
                    hardware_target=target,
                    runtime_version=RUNTIME,
                )
                for n in range(sites * per_site)
            ],
            batch_size=2000,
        )
        self.device_ids = list(
            Device.objects.filter(organization=self.org).order_by("pk").values_list("pk", flat=True)
        )
        assignment_services.assign_version(
            organization=self.org,
            model=self.model,
            version=self.baseline,
            device_ids=self.device_ids,
            actor=Actor.system("bench"),
        )
        self.site_ids = [site.pk for site in self.sites]


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


# --- phase: planning ----------------------------------------------------------------------------


def timed(fn, repeat: int = 1):
    times, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - began) * 1000)
    return result, times


def plan_phase(world: World, repeat: int, db_repeat: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from fleet.models import Device
    from opshero.roles import Role
    from rollouts import planning, services

    devices = [
        planning.PlannedDevice(id=pk, site_id=site)
        for pk, site in Device.objects.filter(organization=world.org).values_list("pk", "site_id")
    ]
    canary = world.site_ids[:2]
    planned, pure = timed(
        lambda: planning.plan_waves(
            devices=devices, canary_site_ids=canary, waves=planning.default_waves(), seed=7
        ),
        repeat,
    )
    preview_kwargs = {
        "organization": world.org,
        "version": world.candidate,
        "site_ids": world.site_ids,
        "canary_site_ids": canary,
        "seed": 7,
    }
    with CaptureQueriesContext(connection) as preview_queries:
        preview, previews = timed(lambda: services.preview_rollout(**preview_kwargs), db_repeat)
    creates, create_queries = [], []
    for n in range(db_repeat):
        with CaptureQueriesContext(connection) as captured:
            began = time.perf_counter()
            rollout = services.create_rollout(
                actor=world.planner,
                role=Role.APPROVER,
                name=f"plan bench {n}",
                **preview_kwargs,
            )
            creates.append((time.perf_counter() - began) * 1000)
        create_queries.append(len(captured.captured_queries))
        services.abort_rollout(rollout=rollout, actor=world.planner, role=Role.APPROVER)
    out = {
        "devices": len(devices),
        "waves": [len(ids) for ids in planned],
        "plan_waves_ms": summary(pure),
        "preview_rollout_ms": summary(previews),
        "preview_queries": len(preview_queries.captured_queries) // db_repeat,
        "preview_slowest": slowest(preview_queries.captured_queries),
        "preview_eligible": preview.device_count,
        "create_rollout_ms": summary(creates),
        "create_queries": create_queries[0],
        "create_slowest": slowest(captured.captured_queries),
    }
    print(json.dumps({"plan": out}), flush=True)
    return out


def summary(times: list[float]) -> dict:
    return {
        "n": len(times),
        "p50": round(statistics.median(times), 1),
        "max": round(max(times), 1),
        "min": round(min(times), 1),
    }


def slowest(queries: list[dict], n: int = 3) -> list[dict]:
    ranked = sorted(queries, key=lambda q: float(q.get("time") or 0), reverse=True)[:n]
    return [{"ms": round(float(q["time"]) * 1000, 1), "sql": q["sql"][:160]} for q in ranked]


# --- phase: evaluator ticks ---------------------------------------------------------------------


def bench_waves():
    from rollouts.planning import WaveSpec

    return [
        WaveSpec(name="Canary", share_percent=None, soak_minutes=30),
        WaveSpec(name="10 %", share_percent=10.0, soak_minutes=20),
        WaveSpec(name="60 %", share_percent=60.0, soak_minutes=20),
        WaveSpec(name="100 %", share_percent=100.0, soak_minutes=0),
    ]


def tick_phase(world: World, *, steady_repeat: int, timeouts: int) -> dict:
    from django.db import connection
    from django.db.models import Count
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from opshero.roles import Role
    from rollouts import engine, services
    from rollouts.models import DeploymentAction, Rollout, Wave

    A = DeploymentAction.Status
    began = time.perf_counter()
    rollout = services.create_rollout(
        organization=world.org,
        actor=world.planner,
        role=Role.APPROVER,
        version=world.candidate,
        name="tick bench",
        site_ids=world.site_ids,
        canary_site_ids=world.site_ids[:2],
        waves=bench_waves(),
        seed=11,
    )
    create_ms = (time.perf_counter() - began) * 1000
    services.submit_rollout(rollout=rollout, actor=world.planner, role=Role.APPROVER)
    services.approve_rollout(rollout=rollout, actor=world.approver, role=Role.APPROVER)
    waves = list(Wave.objects.filter(rollout=rollout).order_by("number"))
    analyze()
    t0 = timezone.now()
    ticks: list[dict] = []

    def tick(name: str, now, repeat: int = 1) -> dict:
        times, counts = [], []
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as captured:
                began = time.perf_counter()
                result = engine.evaluate_rollouts(now=now)
                times.append((time.perf_counter() - began) * 1000)
            counts.append(len(captured.captured_queries))
        rollout.refresh_from_db()
        by_status = dict(
            DeploymentAction.objects.filter(rollout=rollout)
            .values_list("status")
            .annotate(n=Count("pk"))
        )
        entry = {
            "tick": name,
            "ms": summary(times) if repeat > 1 else round(times[0], 1),
            "queries": counts[0] if len(set(counts)) == 1 else counts,
            "result": result,
            "rollout": rollout.status,
            "waves": [
                f"{w.name}:{w.status}"
                for w in Wave.objects.filter(rollout=rollout).order_by("number")
            ],
            "actions": by_status,
            "slowest": slowest(captured.captured_queries),
        }
        ticks.append(entry)
        print(json.dumps({"tick": entry}, default=str), flush=True)
        return entry

    def finish_wave(wave: Wave, at) -> None:
        """What the devices' reports and the engine would have done: every device healthy."""
        DeploymentAction.objects.filter(wave=wave).update(
            status=A.HEALTHY,
            installed_at=at,
            confirmed_at=at,
            healthy_at=at,
            inferences_served=100,
        )
        Wave.objects.filter(pk=wave.pk).update(status=Wave.Status.DONE, finished_at=at)

    # 1. start + canary notified
    tick("start + canary notified", t0)
    canary, ten, sixty = waves[0], waves[1], waves[2]
    finish_wave(canary, t0 + timedelta(minutes=40))
    analyze()
    # 2. 10 % wave starts and its devices are notified
    t = t0 + timedelta(hours=1)
    tick(f"10 % wave notified ({ten.device_count})", t)
    finish_wave(ten, t + timedelta(minutes=40))
    analyze()
    # 3. 60 % wave notified
    t = t0 + timedelta(hours=2)
    tick(f"60 % wave notified ({sixty.device_count})", t)
    # 4. some of them pass their deadline
    late = list(
        DeploymentAction.objects.filter(wave=sixty).order_by("pk").values_list("pk", flat=True)
    )[:timeouts]
    DeploymentAction.objects.filter(pk__in=late).update(deadline_at=t + timedelta(minutes=5))
    analyze()
    t = t + timedelta(minutes=10)
    tick(f"{sixty.device_count} in flight, {len(late)} time out", t)
    # the timeouts paused the rollout (over the 5 % error threshold): an approver resumes
    paused = Rollout.objects.get(pk=rollout.pk).status == Rollout.Status.PAUSED
    if paused:
        services.resume_rollout(rollout=rollout, actor=world.approver, role=Role.APPROVER)
    # 5. steady: nothing to do
    t = t + timedelta(minutes=1)
    tick("steady, nothing to do", t, repeat=steady_repeat)
    # 6. every device of the wave confirmed serving after its device soak: promoted to healthy
    confirmed = t + timedelta(minutes=2)
    DeploymentAction.objects.filter(wave=sixty, status__in=DeploymentAction.IN_FLIGHT).update(
        status=A.INSTALLED
    )
    # Installed six minutes before a confirmation: past the 5-minute device soak.
    promote = DeploymentAction.objects.filter(wave=sixty).update(
        installed_at=confirmed - timedelta(minutes=6), confirmed_at=confirmed, inferences_served=100
    )
    analyze()
    tick(f"{promote} promoted to healthy", confirmed + timedelta(minutes=10))
    # free the devices for another rollout
    services.abort_rollout(rollout=rollout, actor=world.approver, role=Role.APPROVER)
    return {
        "devices": len(world.device_ids),
        "create_rollout_ms": round(create_ms, 1),
        "waves": [w.device_count for w in waves],
        "paused_by_timeouts": paused,
        "ticks": ticks,
    }


# --- phase: desired-state poll ------------------------------------------------------------------


def desired_world(world: World, devices: int, path: Path) -> None:
    """Devices with generated keys (credential rows written directly) and one assignment."""
    from cryptography.hazmat.primitives import serialization

    from fleet.models import Device, DeviceCredential
    from modelregistry import assignment_services
    from opshero.actors import Actor
    from protocol import device_auth

    ids = world.device_ids[:devices]
    keys, rows = [], []
    for pk in ids:
        key = device_auth.generate_device_key()
        public = key.public_key()
        rows.append(
            DeviceCredential(
                device_id=pk,
                public_key=device_auth.canonical_public_key(public),
                fingerprint=device_auth.key_fingerprint(public),
            )
        )
        keys.append(
            key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            ).hex()
        )
    DeviceCredential.objects.bulk_create(rows, batch_size=2000)
    # Every device has the baseline; the candidate for the fleet under test (one assignment).
    assignment_services.assign_version(
        organization=world.org,
        model=world.model,
        version=world.candidate,
        device_ids=ids,
        actor=Actor.system("bench"),
    )
    uids = dict(Device.objects.filter(pk__in=ids).values_list("pk", "uid"))
    path.write_text(
        json.dumps([{"uid": str(uids[pk]), "key": key} for pk, key in zip(ids, keys, strict=True)])
    )
    analyze()


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


def desired_phase(world: World, args, tmp: Path) -> dict:
    fleet = tmp / "fleet.json"
    desired_world(world, args.desired_devices, fleet)
    port = free_port()
    env = {**os.environ, **bench_env(tmp / "var"), "HOME": str(tmp)}
    log = (tmp / "web.log").open("ab")
    web = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "opshero.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--worker-class",
            "gthread",
            "--timeout",
            "120",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    out: dict = {"devices": args.desired_devices, "rate": args.rate, "duration_s": args.duration}
    try:
        wait_port(port)
        for mode in ("etag", "no-etag"):
            run = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--loadgen",
                    str(fleet),
                    "--port",
                    str(port),
                    "--rate",
                    str(args.rate),
                    "--duration",
                    str(args.duration),
                    "--mode",
                    mode,
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
            if run.returncode != 0:
                out[mode] = {"error": run.stderr[-2000:]}
            else:
                out[mode] = json.loads(run.stdout.strip().splitlines()[-1])
            print(json.dumps({"desired": {mode: out[mode]}}), flush=True)
    finally:
        try:
            os.killpg(web.pid, signal.SIGTERM)
            web.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(web.pid, signal.SIGKILL)
            web.wait(5)
    return out


def loadgen(args) -> None:
    """Open loop: request i is due at start + i / rate whatever the earlier ones did; a pool
    of threads with keep-alive connections sends them. Latency is measured from the moment
    the request was due (so queueing in the client counts) and from the moment it was sent."""
    import http.client
    import threading

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    sys.path.insert(0, str(ROOT))
    from protocol import device_auth

    fleet = [
        (entry["uid"], Ed25519PrivateKey.from_private_bytes(bytes.fromhex(entry["key"])))
        for entry in json.loads(Path(args.loadgen).read_text())
    ]

    def headers_for(uid, key, etag=None):
        headers = device_auth.sign_request(
            private_key=key, device_id=uid, method="GET", path=DESIRED
        )
        if etag:
            headers["If-None-Match"] = etag
        return headers

    total = int(args.rate * args.duration)
    fleet = fleet[:total]  # each device polls at most once in the run, as at 10,000 a minute
    lock = threading.Lock()
    # A first fetch per device for its ETag (unpaced, before the measured run).
    etags: dict[str, str | None] = {}
    first_status: dict[int, int] = {}
    pending = list(fleet)

    def first_fetch() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
        while True:
            with lock:
                if not pending:
                    break
                uid, key = pending.pop()
            conn.request("GET", DESIRED, headers=headers_for(uid, key))
            response = conn.getresponse()
            response.read()
            with lock:
                first_status[response.status] = first_status.get(response.status, 0) + 1
                etags[uid] = response.getheader("ETag")
        conn.close()

    if args.mode == "etag":
        fetchers = [threading.Thread(target=first_fetch) for _ in range(8)]
        for thread in fetchers:
            thread.start()
        for thread in fetchers:
            thread.join()

    state = {"next": 0}
    due_lat: list[float] = []
    sent_lat: list[float] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    start = time.perf_counter() + 0.5

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            if i >= total:
                break
            uid, key = fleet[i % len(fleet)]
            due = start + i / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            etag = etags.get(uid) if args.mode == "etag" else None
            headers = headers_for(uid, key, etag)
            sent = time.perf_counter()
            try:
                conn.request("GET", DESIRED, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
                status = 0
                errors.append(repr(exc)[:100])
            done = time.perf_counter()
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                due_lat.append((done - due) * 1000)
                sent_lat.append((done - sent) * 1000)
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))], 2)

    print(
        json.dumps(
            {
                "mode": args.mode,
                "requests": total,
                "achieved_rps": round(total / elapsed, 1),
                "first_fetch_statuses": first_status,
                "etag_sample": next(iter(etags.values()), None),
                "statuses": statuses,
                "errors": errors[:5],
                "latency_ms": {
                    "p50": pct(sent_lat, 50),
                    "p95": pct(sent_lat, 95),
                    "p99": pct(sent_lat, 99),
                    "max": round(max(sent_lat), 1),
                },
                "latency_from_due_ms": {
                    "p50": pct(due_lat, 50),
                    "p95": pct(due_lat, 95),
                    "p99": pct(due_lat, 99),
                },
            }
        )
    )


# --- main ---------------------------------------------------------------------------------------


def print_side_by_side(large: dict, small: dict) -> None:
    print(f"\nEvaluator ticks: {large['devices']} devices vs {small['devices']} devices")
    print(f"  {'tick':<44} {'ms (large)':>12} {'queries':>8} | {'ms (small)':>12} {'queries':>8}")
    for a, b in zip(large["ticks"], small["ticks"], strict=True):
        ma = (
            a["ms"]
            if not isinstance(a["ms"], dict)
            else f"P50 {a['ms']['p50']}/max {a['ms']['max']}"
        )
        mb = (
            b["ms"]
            if not isinstance(b["ms"], dict)
            else f"P50 {b['ms']['p50']}/max {b['ms']['max']}"
        )
        print(f"  {a['tick']:<44} {ma!s:>12} {a['queries']!s:>8} | {mb!s:>12} {b['queries']!s:>8}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--sites", type=int, default=200)
    parser.add_argument("--phases", default="plan,ticks,desired")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--plan-repeat", type=int, default=1, help="preview/create repetitions (slow)"
    )
    parser.add_argument("--timeouts", type=int, default=2000, help="at --devices; scaled")
    parser.add_argument("--desired-devices", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=170.0)
    parser.add_argument("--duration", type=float, default=30.0)
    # load generator (internal)
    parser.add_argument("--loadgen")
    parser.add_argument("--port", type=int)
    parser.add_argument("--mode", default="etag")
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    if args.loadgen:
        loadgen(args)
        return

    tmp = Path(tempfile.mkdtemp(prefix="bench-rollouts-"))
    recreate_database()
    setup_django(tmp / "var")
    from django.db import connection

    phases = args.phases.split(",")
    report: dict = {
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}, PostgreSQL "
        f"{connection.cursor().connection.info.server_version}",
        "load_before": os.getloadavg(),
    }
    began = time.perf_counter()
    large = World("large", args.sites, args.devices // args.sites)
    analyze()
    print(
        f"large world ({len(large.device_ids)} devices) built in "
        f"{time.perf_counter() - began:.1f} s",
        flush=True,
    )
    if "plan" in phases:
        report["plan"] = plan_phase(large, args.repeat, args.plan_repeat)
    if "ticks" in phases:
        report["ticks_large"] = tick_phase(
            large, steady_repeat=max(args.repeat, 5), timeouts=args.timeouts
        )
        small = World("small", args.sites, args.small // args.sites)
        analyze()
        report["ticks_small"] = tick_phase(
            small,
            steady_repeat=max(args.repeat, 5),
            timeouts=args.timeouts * args.small // args.devices,
        )
        print_side_by_side(report["ticks_large"], report["ticks_small"])
    if "desired" in phases:
        views = ROOT / "rollouts" / "api" / "device_views.py"
        if not views.exists():
            report["desired"] = "skipped: rollouts/api/device_views.py does not exist"
        else:
            report["desired"] = desired_phase(large, args, tmp)
    report["load_after"] = os.getloadavg()
    print(json.dumps(report, default=str, indent=2))


if __name__ == "__main__":
    main()
