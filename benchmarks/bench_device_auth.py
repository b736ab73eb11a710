"""Device authentication per request, credential lookup cached in Redis vs read from PostgreSQL.

The DRF authentication step the device API runs (``DeviceSignatureAuthentication``: headers,
clock window, credential lookup, Ed25519 verify, nonce recorded in PostgreSQL, the device
loaded), called directly on signed GET /api/v1/device/me requests spread over a few hundred
devices. Two variants in the same run, interleaved in rounds:

  uncached  fleet.credential_cache reads a DummyCache (every get a miss, every add a no-op), so
            every lookup is the credential query, as before; the rest of the request (throttles)
            keeps using Redis;
  cached    Redis (CACHES "default" from REDIS_URL), warm: a Redis GET instead of the query,
            the device query checking the cached credential is still active.

CPU is this process's (``time.process_time``): the PostgreSQL and Redis servers' CPU is not in
it. Then, for scale, the same request end to end through Django's test Client, both variants.

    REDIS_URL=redis://127.0.0.1:6379/8 .venv/bin/python benchmarks/bench_device_auth.py
"""

from __future__ import annotations

import random
import secrets
import time
from contextlib import contextmanager, nullcontext

import django_env

django_env.setup()

from django.conf import settings  # noqa: E402
from django.core.cache.backends.dummy import DummyCache  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client, RequestFactory  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from rest_framework.request import Request  # noqa: E402

from fleet import credential_cache, services  # noqa: E402
from fleet.api.device_authentication import DeviceSignatureAuthentication  # noqa: E402
from fleet.models import Site  # noqa: E402
from opshero.actors import Actor  # noqa: E402
from opshero.models import Organization  # noqa: E402
from protocol import device_auth  # noqa: E402

DEVICES = 300
ROUNDS = 4
PER_ROUND = 500  # per variant: 2,000 requests each in all
CLIENT_REQUESTS = 300  # per variant, end to end
ME = "/api/v1/device/me"
NO_CACHE = DummyCache("", {})


@contextmanager
def uncached():
    real = credential_cache.cache
    credential_cache.cache = NO_CACHE
    try:
        yield
    finally:
        credential_cache.cache = real


def enroll_devices(n: int):
    org, _ = Organization.objects.get_or_create(
        slug="bench-auth", defaults={"name": "Bench Device Auth"}
    )
    site, _ = Site.objects.get_or_create(organization=org, name="Device auth bench site")
    run = secrets.token_hex(3)
    devices = []
    for i in range(n):
        _, token = services.create_enrollment_token(
            organization=org, site=site, actor=Actor.system("bench")
        )
        key = device_auth.generate_device_key()
        device = services.enroll_device(
            token=token,
            public_key=device_auth.public_key_text(key),
            facts=services.EnrollmentFacts(serial=f"AUTH-{run}-{i:04d}"),
        )
        devices.append((device, key))
    return devices


def signed_meta(device, key) -> dict[str, str]:
    headers = device_auth.sign_request(
        private_key=key, device_id=str(device.uid), method="GET", path=ME, body=b""
    )
    return {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}


def requests_for(devices, n: int, factory: RequestFactory) -> list[Request]:
    return [Request(factory.get(ME, **signed_meta(*random.choice(devices)))) for _ in range(n)]


def authenticate_all(auth, requests) -> tuple[float, float]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for request in requests:
        assert auth.authenticate(request) is not None
    return time.process_time() - cpu0, time.perf_counter() - wall0


def queries_per_request(auth, devices, factory) -> int:
    (request,) = requests_for(devices, 1, factory)
    with CaptureQueriesContext(connection) as queries:
        auth.authenticate(request)
    return len(queries)


def main() -> None:
    print(f"machine: {django_env.machine()}")
    print(f"cache: {settings.CACHES['default']['BACKEND']} at {settings.CACHES['default']}")
    random.seed(13)
    devices = enroll_devices(DEVICES)
    factory = RequestFactory()
    auth = DeviceSignatureAuthentication()

    # Warm Redis for every device (through the code under test), and count queries.
    for device, key in devices:
        assert auth.authenticate(Request(factory.get(ME, **signed_meta(device, key))))
    cached_queries = queries_per_request(auth, devices, factory)
    with uncached():
        uncached_queries = queries_per_request(auth, devices, factory)
    print(f"queries per request: uncached {uncached_queries}, cached {cached_queries}")

    totals = {"uncached": [0.0, 0.0], "cached": [0.0, 0.0]}
    for round_no in range(ROUNDS):
        order = ["uncached", "cached"] if round_no % 2 == 0 else ["cached", "uncached"]
        for variant in order:
            batch = requests_for(devices, PER_ROUND, factory)  # signed now: fresh timestamps
            if variant == "uncached":
                with uncached():
                    cpu, wall = authenticate_all(auth, batch)
            else:
                cpu, wall = authenticate_all(auth, batch)
            totals[variant][0] += cpu
            totals[variant][1] += wall
    n = ROUNDS * PER_ROUND
    for variant, (cpu, wall) in totals.items():
        print(
            f"authentication, {variant:8s}: {cpu / n * 1e6:6.0f} us CPU, "
            f"{wall / n * 1e6:6.0f} us wall per request ({n} requests, {DEVICES} devices)"
        )
    saved = (totals["uncached"][0] - totals["cached"][0]) / n
    print(
        f"CPU saved per request: {saved * 1e6:.0f} us; at 170 requests/s: {saved * 170e3:.1f} ms/s"
    )

    # End to end through Django, for scale.
    client = Client()
    for _ in range(20):  # the first requests build URL resolvers, serializers, ...
        assert client.get(ME, **signed_meta(*random.choice(devices))).status_code == 200
    for variant in ("uncached", "cached", "uncached", "cached"):
        times = []
        cpu0 = time.process_time()
        with uncached() if variant == "uncached" else nullcontext():
            for _ in range(CLIENT_REQUESTS // 2):
                meta = signed_meta(*random.choice(devices))
                started = time.perf_counter()
                response = client.get(ME, **meta)
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.content
        cpu_ms = (time.process_time() - cpu0) / len(times) * 1000
        print(
            f"GET {ME} end to end, {variant:8s}: P50 {django_env.percentile(times, 50):.2f} ms, "
            f"P95 {django_env.percentile(times, 95):.2f} ms, {cpu_ms:.2f} ms CPU"
        )


if __name__ == "__main__":
    main()
