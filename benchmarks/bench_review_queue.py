"""The review queue page with 100,000 pending items, beside one with 1,000, on PostgreSQL.

One run, one database (BENCH_DATABASE_URL, default opshero_bench_queue, recreated): a large
organisation with ``--pending`` linked samples over 10 sites x 2 model versions (20 lanes) and a
small one with 1,000, both bulk-inserted (the page reads rows, never the encrypted objects), then
``VACUUM ANALYZE`` (what autovacuum does to a table this size soon after). The queue page, the
page of one lane and the item fragment are each requested 3 times to warm up and then 30 times
in process (Django test client, so the figure is server time: middleware, queries, template),
P50/P95 and the query count, for both organisations.

    .venv/bin/python benchmarks/bench_review_queue.py [--pending 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/opshero_bench_queue"
)
sys.path.insert(0, str(ROOT))
CLASSES = [str(n) for n in range(10)]


def recreate_database(url: str) -> None:
    from urllib.parse import urlsplit

    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def build(slug: str, pending: int):
    from django.utils import timezone

    from fleet.models import Device, Site
    from modelregistry.models import MlModel, ModelVersion
    from opshero.models import Membership, Organization
    from opshero.roles import Role
    from review.models import EvidenceSample
    from tests.factories import make_user

    org = Organization.objects.create(name=slug.title(), slug=slug)
    user = make_user(f"{slug}-reviewer")
    Membership.objects.create(user=user, organization=org, role=Role.REVIEWER)
    model = MlModel.objects.create(organization=org, name="handwritten-digits")
    versions = [
        ModelVersion.objects.create(
            model=model,
            version=label,
            artifact=f"artifacts/{slug}-{label}.onnx",
            file_name="digits.onnx",
            sha256=uuid.uuid4().hex * 2,
            size_bytes=1,
            io_contract={"labels": CLASSES},
        )
        for label in ("1.0.0", "1.1.0")
    ]
    sites = [
        Site.objects.create(organization=org, name=f"{slug} dock {n}", kind="dock")
        for n in range(10)
    ]
    devices = [
        Device.objects.create(organization=org, site=site, name=f"{slug}-gw-{n}", serial=f"{n}")
        for n, site in enumerate(sites)
    ]
    now = timezone.now()
    batch = []
    for n in range(pending):
        device = devices[n % len(devices)]
        version = versions[(n // len(devices)) % 2]
        batch.append(
            EvidenceSample(
                organization=org,
                site_id=device.site_id,
                device=device,
                epoch="bench-epoch-0001",
                sequence=n,
                reason="low_confidence" if n % 10 else "audit",
                status="linked",
                media_type="application/json",
                size_bytes=120,
                sha256="0" * 64,
                object_name=f"{org.pk}/{uuid.uuid4()}.bin",
                wrapped_key=b"\x00" * 60,
                site_kind="dock",
                received_at=now - timedelta(seconds=pending - n),
                delete_after=now + timedelta(days=30),
                linked_at=now,
                model_version=version,
                model_name=model.name,
                model_version_label=version.version,
                model_sha256=version.sha256,
                predicted_class=CLASSES[n % 10],
                confidence=0.3 + (n % 30) / 100,
            )
        )
        if len(batch) == 5000:
            EvidenceSample.objects.bulk_create(batch)
            batch = []
    if batch:
        EvidenceSample.objects.bulk_create(batch)
    return org, user, sites[3], versions[1]


def time_pages(org, user, site, version) -> list[dict]:
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from review.models import EvidenceSample

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = Client()
    client.force_login(user)
    kwargs = {"org": org.slug}
    middle = (
        EvidenceSample.objects.filter(organization=org, site=site, model_version=version)
        .order_by("received_at")
        .values_list("pk", flat=True)
    )
    sample_id = middle[middle.count() // 2]
    urls = {
        "queue (first lane)": reverse("review:queue", kwargs=kwargs),
        "queue (one lane)": reverse("review:queue", kwargs=kwargs)
        + f"?site={site.pk}&version={version.pk}",
        "item fragment (mid-lane)": reverse(
            "review:item", kwargs={**kwargs, "sample_id": sample_id}
        ),
    }
    out = []
    for name, url in urls.items():
        headers = {"HTTP_HX_REQUEST": "true"} if "fragment" in name else {}
        for _ in range(3):
            response = client.get(url, **headers)
            assert response.status_code == 200, (name, response.status_code)
        queries: list[str] = []

        def count(execute, sql, params, many, context, queries=queries):
            queries.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            client.get(url, **headers)
        timings = []
        for _ in range(30):
            began = time.perf_counter()
            client.get(url, **headers)
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
    parser.add_argument("--pending", type=int, default=100_000)
    args = parser.parse_args()
    recreate_database(os.environ["BENCH_DATABASE_URL"])
    # The test settings: plain static files (no collectstatic manifest needed), as the suite.
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    from benchmarks import django_env

    django_env.setup()
    from django.db import connection

    began = time.perf_counter()
    large = build("large", args.pending)
    small = build("small", 1_000)
    built_s = time.perf_counter() - began
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE review_evidencesample")
    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "load_average": os.getloadavg(),
        "pending": {"large": args.pending, "small": 1_000},
        "setup_s": round(built_s, 1),
        "large": time_pages(*large),
        "small": time_pages(*small),
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
