"""Fleet health at scale: rollup and signal job throughput, and the pages, on PostgreSQL.

Phases, one run, one database (BENCH_DATABASE_URL, default opshero_health_bench, recreated):

  events    10,000 devices over 200 sites, 10 million inference events over the last two
            hours and some minutes (about 6 inferences a minute per device) and a health
            sample a minute per device, ``COPY``'d into the partitioned event tables; the devices
            of 5 % of the sites drift in the last hour (half their inferences become the first
            class); the model's policy judges windows of 300 events or more.
            A second, small organisation (100 devices, 10 sites, 100,000 events) is the
            baseline for "query count independent of size".
  rollup    every device-hour marked, then ``telemetry.rollups.roll_up_marked`` until none is
            left: events/s, against the ingest rate the first telemetry issue measured.
  signals   ``telemetry.signals.evaluate_signals`` over every scope: windows/s and events/s.
  pages     Overview, fleet health, a site and a device page (24 h and 3 h), the alert list:
            30 timed requests each after 3 warm-ups, in process (Django test client, so the
            figure is server time: middleware, queries, templates), P50/P95 and the query count,
            for the large and the small organisation.

    .venv/bin/python benchmarks/bench_fleet_health.py [--devices 10000] [--events 10000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BENCH_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/opshero_health_bench"
)
CLASSES = [f"class-{n}" for n in range(10)]


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
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/5")
    # The test settings: plain static files (no collectstatic manifest needed), as the suite.
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_org(slug: str, devices: int, sites: int):
    from django.contrib.auth import get_user_model

    from fleet.models import Device, Site
    from modelregistry.models import MlModel, ModelVersion
    from opshero.models import Membership, Organization
    from opshero.roles import Role

    org = Organization.objects.create(name=slug.title(), slug=slug)
    site_rows = Site.objects.bulk_create(
        [Site(organization=org, name=f"{slug} site {n:03d}") for n in range(sites)]
    )
    Device.objects.bulk_create(
        [
            Device(
                organization=org,
                site=site_rows[n % sites],
                name=f"{slug}-gw-{n:05d}",
                serial=f"{slug}-SN-{n:05d}",
                status=Device.Status.ACTIVE,
                last_seen_at=datetime.now(UTC),
            )
            for n in range(devices)
        ],
        batch_size=2000,
    )
    model = MlModel.objects.create(organization=org, name="dock-damage", latency_budget_ms=200)
    version = ModelVersion.objects.create(
        model=model,
        version="1.0.0",
        artifact="artifacts/none.onnx",
        file_name="none.onnx",
        sha256=(slug.encode().hex() * 64)[:64],
        size_bytes=1,
        io_contract={"labels": CLASSES, "score_output": "probabilities"},
    )
    # A validation baseline drawn from the same distributions the events come from.
    from fleet.models import HardwareTarget
    from modelregistry.models import ValidationRun
    from onnxcheck.scoring import confidence_histogram, distribution

    rng = np.random.default_rng(99)
    weights = 1.0 / np.arange(1, len(CLASSES) + 1)
    ValidationRun.objects.create(
        version=version,
        target=HardwareTarget.objects.create(organization=org, name="bench target"),
        number=1,
        status=ValidationRun.Status.PASSED,
        report={
            "steps": [
                {
                    "name": "calibration",
                    "status": "passed",
                    "data": {
                        "drift_baseline": {
                            "confidence_histogram": confidence_histogram(rng.beta(18, 2, 20_000)),
                            "predicted_class_mix": distribution(
                                rng.choice(len(CLASSES), 20_000, p=weights / weights.sum()),
                                num_classes=len(CLASSES),
                            ),
                        }
                    },
                }
            ]
        },
    )
    # About 350 inferences a device-hour: windows of at least 300 (the default 500 would leave
    # every device window "not evaluated" at this rate; sites have thousands).
    from telemetry.models import SignalPolicy

    SignalPolicy.objects.create(model=model, min_events=300)
    user = get_user_model().objects.create_user(username=f"{slug}-viewer", password=None)
    Membership.objects.create(organization=org, user=user, role=Role.VIEWER)
    return org, version, user


def copy_events(org, version, *, events: int, hours: float, seed: int, drifting: float) -> dict:
    """Synthetic but shaped like the simulator: numpy draws, ``COPY``'d in device order."""
    from django.db import connection

    from fleet.models import Device
    from telemetry.partitions import ensure_partitions

    rng = np.random.default_rng(seed)
    devices = list(Device.objects.filter(organization=org).values_list("pk", flat=True))
    from telemetry.rollups import hour_of

    # Whole hours back from the current one, so signal windows (an hour) are closed by the
    # minutes of data after them.
    end = datetime.now(UTC) - timedelta(minutes=1)
    start = hour_of(end) - timedelta(hours=hours)
    ensure_partitions(
        days={(start + timedelta(hours=h)).date() for h in range(25)}, using="default"
    )
    per_device = events // len(devices)
    weights = 1.0 / np.arange(1, len(CLASSES) + 1)
    weights /= weights.sum()
    span_s = (end - start).total_seconds()
    drift_from = 3600 * (hours - 1)
    # The drifting devices are whole sites (the first 5 % of them), so sites drift as well.
    site_of = dict(Device.objects.filter(organization=org).values_list("pk", "site_id"))
    sites = sorted(set(site_of.values()))
    drifting_sites = set(sites[: max(1, int(len(sites) * drifting))])
    drifted_devices = {device for device, site in site_of.items() if site in drifting_sites}
    t0 = time.perf_counter()
    inference_columns = (
        "organization_id, device_id, epoch_id, sequence, timestamp, model_name, model_version, "
        "model_sha256, latency_ms, time_to_action_ms, confidence, predicted_class, "
        "shape_bucket, workflow_fields"
    )
    health_columns = (
        "organization_id, device_id, epoch_id, sequence, timestamp, temperature_c, throttled, "
        "memory_mb, queue_depth, online, buffered, evicted, power_w"
    )
    written = health_written = 0
    with connection.cursor() as cursor:
        with cursor.cursor.copy(
            f"COPY telemetry_inferenceevent ({inference_columns}) FROM STDIN"
        ) as copy:
            for device_id in devices:
                offsets = np.sort(rng.uniform(0, span_s, per_device))
                classes = rng.choice(len(CLASSES), per_device, p=weights)
                if device_id in drifted_devices:
                    late = offsets >= drift_from
                    classes[late & (rng.random(per_device) < 0.5)] = 0
                latency = rng.lognormal(np.log(25), 0.3, per_device)
                tta = latency + rng.lognormal(np.log(150), 0.4, per_device)
                confidence = rng.beta(18, 2, per_device)
                for i in range(per_device):
                    copy.write_row(
                        (
                            org.pk,
                            device_id,
                            0,
                            i,
                            start + timedelta(seconds=float(offsets[i])),
                            version.model.name,
                            version.version,
                            version.sha256,
                            float(latency[i]),
                            float(tta[i]),
                            float(confidence[i]),
                            CLASSES[classes[i]],
                            "1x3x224x224",
                            "{}",
                        )
                    )
                written += per_device
        with cursor.cursor.copy(
            f"COPY telemetry_healthevent ({health_columns}) FROM STDIN"
        ) as copy:
            samples = int(span_s // 60)
            for device_id in devices:
                temperature = 45 + rng.normal(0, 1, samples)
                for i in range(samples):
                    copy.write_row(
                        (
                            org.pk,
                            device_id,
                            0,
                            10_000_000 + i,
                            start + timedelta(seconds=60 * i + 5),
                            float(temperature[i]),
                            False,
                            512.0,
                            0,
                            True,
                            0,
                            0,
                            6.5,
                        )
                    )
                health_written += samples
    copy_s = time.perf_counter() - t0
    return {
        "inference_events": written,
        "health_events": health_written,
        "copy_s": round(copy_s, 1),
        "start": start,
        "end": end,
    }


def mark_everything(org, start, end) -> int:
    from fleet.models import Device
    from telemetry.models import RollupMark
    from telemetry.rollups import hour_of

    hours = []
    hour = hour_of(start)
    while hour <= end:
        hours.append(hour)
        hour += timedelta(hours=1)
    devices = Device.objects.filter(organization=org).values_list("pk", flat=True)
    marks = [
        RollupMark(device_id=d, hour=h, organization_id=org.pk) for d in devices for h in hours
    ]
    RollupMark.objects.bulk_create(marks, batch_size=5000, ignore_conflicts=True)
    return len(marks)


def time_pages(org, user, *, site_id: int, device_id: int) -> list[dict]:
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = Client()
    client.force_login(user)
    kwargs = {"org": org.slug}
    urls = {
        "overview": reverse("overview", kwargs=kwargs),
        "fleet health": reverse("telemetry:health", kwargs=kwargs),
        "site 24 h": reverse("telemetry:site-health", kwargs={**kwargs, "site_id": site_id}),
        "site 3 h": reverse("telemetry:site-health", kwargs={**kwargs, "site_id": site_id})
        + "?hours=3",
        "device 24 h": reverse(
            "telemetry:device-health", kwargs={**kwargs, "device_id": device_id}
        ),
        "device 3 h": reverse("telemetry:device-health", kwargs={**kwargs, "device_id": device_id})
        + "?hours=3",
        "alerts": reverse("telemetry:alerts", kwargs=kwargs),
    }
    out = []
    for name, url in urls.items():
        for _ in range(3):
            response = client.get(url)
            assert response.status_code == 200, (name, response.status_code)
        queries = []

        def count(execute, sql, params, many, context, queries=queries):
            queries.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            client.get(url)
        timings = []
        for _ in range(30):
            began = time.perf_counter()
            client.get(url)
            timings.append((time.perf_counter() - began) * 1000)
        timings.sort()
        out.append(
            {
                "page": name,
                "queries": len(queries),
                "p50_ms": round(statistics.median(timings), 1),
                "p95_ms": round(timings[int(0.95 * (len(timings) - 1))], 1),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--sites", type=int, default=200)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--hours", type=int, default=2)
    args = parser.parse_args()
    recreate_database()
    setup_django()
    from django.db import connection

    from fleet.models import Device
    from telemetry import rollups, signals
    from telemetry.models import InferenceRollup, Level, SignalEvaluation

    result: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "postgres": connection.cursor().connection.info.server_version,
        },
        "devices": args.devices,
        "sites": args.sites,
    }
    orgs = {}
    for slug, devices, sites, events, seed in (
        ("large", args.devices, args.sites, args.events, 1),
        ("small", 100, 10, 100_000, 2),
    ):
        org, version, user = make_org(slug, devices, sites)
        figures = copy_events(
            org, version, events=events, hours=args.hours, seed=seed, drifting=0.05
        )
        orgs[slug] = (org, user, figures)
        print(
            f"{slug}: {figures['inference_events']} inference + {figures['health_events']} "
            f"health events copied in {figures['copy_s']} s",
            flush=True,
        )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    for slug, (org, user, figures) in orgs.items():
        marks = mark_everything(org, figures["start"], figures["end"])
        began = time.perf_counter()
        rolled = 0
        while True:
            done = rollups.roll_up_marked(budget_s=3600.0, limit=200)
            rolled += done
            if not done:
                break
        rollup_s = time.perf_counter() - began
        events = figures["inference_events"] + figures["health_events"]
        began = time.perf_counter()
        judged = signals.evaluate_signals(budget_s=3600.0, max_windows=100)
        signals_s = time.perf_counter() - began
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        rows = InferenceRollup.objects.filter(organization_id=org.pk).count()
        evaluated = SignalEvaluation.objects.filter(organization_id=org.pk, evaluated=True)
        site_id = (
            InferenceRollup.objects.filter(organization_id=org.pk, level=Level.SITE)
            .values_list("site_id", flat=True)
            .first()
        )
        device_id = Device.objects.filter(organization=org, site_id=site_id).first().pk
        result[slug] = {
            **{k: v for k, v in figures.items() if k not in {"start", "end"}},
            "device_hours_marked": marks,
            "device_hours_rolled": rolled,
            "rollup_s": round(rollup_s, 1),
            "rollup_events_per_s": round(events / rollup_s),
            "inference_rollup_rows": rows,
            "signal_windows_judged": judged,
            "signal_windows_evaluated": evaluated.count(),
            "signal_breaches": evaluated.filter(breached=True).count(),
            "signals_s": round(signals_s, 1),
            "signal_events_per_s": round(figures["inference_events"] / signals_s),
            "pages": time_pages(org, user, site_id=site_id, device_id=device_id),
        }
        print(json.dumps({slug: result[slug]}, default=str), flush=True)
    print(json.dumps(result, default=str, indent=2))


if __name__ == "__main__":
    main()
