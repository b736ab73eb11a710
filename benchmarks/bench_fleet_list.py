"""Fleet list page with 10,000 devices on 500 sites, on PostgreSQL: server time and queries.

Server time is measured around Django's full request handling (middleware, auth, tenancy,
selectors, template) through the test client, i.e. everything but the network. The data set
is created once in the benchmark database and reused.
"""

from __future__ import annotations

import time

import django_env

django_env.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from fleet.models import Device, HardwareTarget, Site  # noqa: E402
from opshero.models import Membership, Organization  # noqa: E402

DEVICES, SITES, RUNS = 10_000, 500, 60
URLS = [
    "/o/bench/fleet/",
    "/o/bench/fleet/?page=100",
    "/o/bench/fleet/?status=offline&ordering=-last_seen",
    "/o/bench/fleet/?q=dev-0042",
    "/o/bench/fleet/?site={site}&placement=on_device",
    "/api/v1/orgs/bench/devices/?page_size=50",
]


def build() -> tuple[object, int]:
    org, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Bench Logistics"})
    user, _ = get_user_model().objects.get_or_create(username="bench-viewer")
    Membership.objects.get_or_create(user=user, organization=org, defaults={"role": "viewer"})
    if Device.objects.filter(organization=org).count() != DEVICES:
        Device.objects.filter(organization=org).delete()
        Site.objects.filter(organization=org).delete()
        sites = Site.objects.bulk_create(
            Site(organization=org, name=f"Site {i:03d}", kind=["dock", "clinic", "field"][i % 3])
            for i in range(SITES)
        )
        targets = list(HardwareTarget.objects.filter(organization=None))
        now = timezone.now()
        Device.objects.bulk_create(
            (
                Device(
                    organization=org,
                    site=sites[i % SITES],
                    name=f"dev-{i:05d}",
                    serial=f"SN{i:07d}",
                    placement=["near_edge", "on_device"][i % 2],
                    hardware_target=targets[i % len(targets)],
                    status="active" if i % 10 else "provisioning",
                    last_seen_at=now - timezone.timedelta(minutes=i % 30),
                    tags=["pilot"] if i % 7 == 0 else [],
                )
                for i in range(DEVICES)
            ),
            batch_size=2000,
        )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    site_id = Site.objects.filter(organization=org).order_by("pk").values_list("pk", flat=True)[7]
    return user, site_id


def main() -> None:
    user, site_id = build()
    client = Client()
    client.force_login(user)
    print(f"machine: {django_env.machine()}; PostgreSQL {connection.pg_version}")
    print(f"data: {DEVICES:,} devices on {SITES} sites; {RUNS} requests per URL after 5 warm-up")
    all_times: list[float] = []
    for template in URLS:
        url = template.format(site=site_id)
        for _ in range(5):
            assert client.get(url).status_code == 200
        times, queries = [], set()
        for _ in range(RUNS):
            with CaptureQueriesContext(connection) as ctx:
                started = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
            queries.add(len(ctx.captured_queries))
        all_times.extend(times)
        print(
            f"{url:<58} P50 {django_env.percentile(times, 50):6.1f} ms  "
            f"P95 {django_env.percentile(times, 95):6.1f} ms  queries {sorted(queries)}"
        )
    print(
        f"fleet list overall: P50 {django_env.percentile(all_times, 50):.1f} ms, "
        f"P95 {django_env.percentile(all_times, 95):.1f} ms (target P95 <= 150 ms)"
    )


if __name__ == "__main__":
    main()
