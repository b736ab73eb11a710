"""Per-request cost of the device replay check, side by side in one run.

(a) today's store before issue 11: Redis ``SET key 1 NX EX ttl`` only (the database was used
    only while Redis was unreachable, so the two never saw each other);
(b) the database as the one record: ``INSERT ... ON CONFLICT DO NOTHING RETURNING 1`` in
    autocommit, the commit waiting for its WAL flush;
(c) the same insert with ``synchronous_commit`` off for that one statement, what
    ``fleet.replay.remember_nonce`` runs now;
(d) both: Redis ``SET NX`` as a fast path, then the insert of (c).

Each variant stores N fresh nonces for one device, interleaved in rounds so that load from
other processes falls on all three alike; CPU time of this process and wall time per nonce,
plus P50/P95 wall time. Then the whole GET /api/v1/device/me with (a) and with (c), for scale.

    .venv/bin/python benchmarks/bench_nonce_store.py
"""

from __future__ import annotations

import secrets
import time

import django_env

django_env.setup()

import redis  # noqa: E402
from bench_device_signature import device_with_key, headers_for  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from fleet import replay  # noqa: E402
from protocol.device_auth import NONCE_TTL_SECONDS  # noqa: E402

N = 3000
DURABLE_SQL = (
    "INSERT INTO fleet_devicenonce (device_id, nonce, seen_at) VALUES (%s, %s, %s) "
    "ON CONFLICT (device_id, nonce) DO NOTHING RETURNING 1"
)
ROUNDS = 6


def main() -> None:
    device, key = device_with_key()
    client_redis = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    client_redis.ping()

    def redis_only(nonce: str) -> bool:
        return bool(
            client_redis.set(f"bench:nonce:{device.pk}:{nonce}", 1, nx=True, ex=NONCE_TTL_SECONDS)
        )

    def database(nonce: str) -> bool:
        return replay.remember_nonce(device_id=device.pk, nonce=nonce)

    def durable(nonce: str) -> bool:
        with connection.cursor() as cursor:
            cursor.execute(DURABLE_SQL, [device.pk, nonce, timezone.now()])
            return cursor.fetchone() is not None

    def both(nonce: str) -> bool:
        return redis_only(nonce) and database(nonce)

    variants = {
        "(a) Redis only (before)": redis_only,
        "(b) database, commit waits for the WAL flush": durable,
        "(c) database, synchronous_commit off (now)": database,
        "(d) Redis + (c)": both,
    }
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, float] = dict.fromkeys(variants, 0.0)
    print(f"machine: {django_env.machine()}")
    for _ in range(ROUNDS):
        for name, store in variants.items():
            nonces = [secrets.token_urlsafe(18) for _ in range(N // ROUNDS)]
            cpu0 = time.process_time()
            for nonce in nonces:
                started = time.perf_counter()
                assert store(nonce)
                wall[name].append((time.perf_counter() - started) * 1e6)
            cpu[name] += time.process_time() - cpu0
    for name in variants:
        times = wall[name]
        print(
            f"{name}: {cpu[name] / len(times) * 1e6:.0f} us CPU, "
            f"wall mean {sum(times) / len(times):.0f} us, "
            f"P50 {django_env.percentile(times, 50):.0f} us, "
            f"P95 {django_env.percentile(times, 95):.0f} us per nonce"
        )
    assert not database(nonce), "a replay must be refused"

    # The whole request, with the authentication step using each store in turn (interleaved).
    from fleet.api import device_authentication

    stores = {
        "(a) Redis only": lambda *, device_id, nonce: redis_only(nonce),
        "(c) database (now)": replay.remember_nonce,
    }
    client = Client()
    e2e: dict[str, list[float]] = {name: [] for name in stores}
    for _ in range(10):
        for name, store in stores.items():
            device_authentication.remember_nonce = store
            for _ in range(50):
                h = headers_for(key, device, path="/api/v1/device/me", body=b"", method="GET")
                meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in h.items()}
                started = time.perf_counter()
                response = client.get("/api/v1/device/me", **meta)
                e2e[name].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.content
    device_authentication.remember_nonce = replay.remember_nonce
    for name, times in e2e.items():
        print(
            f"GET /api/v1/device/me end to end, {name}: "
            f"P50 {django_env.percentile(times, 50):.2f} ms, "
            f"P95 {django_env.percentile(times, 95):.2f} ms"
        )


if __name__ == "__main__":
    main()
