"""Replay protection for signed device requests: each nonce is accepted once per device.

The database is the one record of nonces: every accepted nonce is a ``DeviceNonce`` row,
written by a single ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` (one round trip in
autocommit, atomic through the table's unique constraint, so two copies of one request
racing each other give one acceptance), its commit not waiting for the WAL flush (see
`_insert_sql` for what that trades). Entries outlive the clock-skew window, after which
the timestamp check refuses the request anyway; beat purges older rows.

Redis is deliberately not on this path. A nonce store that is Redis "with the database while
Redis is unreachable" has two records that do not see each other, so a request captured on one
side of an outage replays on the other, and a Redis restart or failover that loses keys
reopens every window. Making Redis the fast path while also writing the database saves
nothing on an accepted request (the database write is still needed for the record) and only
adds a round trip; benchmarks/bench_nonce_store.py measures all three (docs/benchmarks.md).
If the database cannot answer, the request fails as every other part of it would (the device
and its key are read from the same database): there is no state in which a nonce is accepted
without being recorded.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from django.db import connection
from django.utils import timezone

from protocol.device_auth import NONCE_TTL_SECONDS

from .models import DeviceNonce


@lru_cache(maxsize=2)
def _insert_sql(vendor: str) -> str:
    # Only the table name is interpolated (the model's, quoted); every value is a parameter.
    table = connection.ops.quote_name(DeviceNonce._meta.db_table)
    if vendor != "postgresql":
        return (
            f"INSERT INTO {table} (device_id, nonce, seen_at) VALUES (%s, %s, %s) "  # noqa: S608
            "ON CONFLICT (device_id, nonce) DO NOTHING RETURNING 1"
        )
    # set_config(..., true) lasts for this statement's own transaction: its commit does not
    # wait for the WAL flush (a few ms on this disk, most of the check's cost). The price: if
    # the PostgreSQL server itself crashes, nonces committed in the last ~0.6 s
    # (3 x wal_writer_delay) may be lost, and the requests that carried them could be replayed
    # until their timestamps leave the skew window. Committed rows are still seen at once by
    # every other connection, so concurrent replays are refused exactly as before.
    return (
        f"INSERT INTO {table} (device_id, nonce, seen_at) "  # noqa: S608
        "SELECT %s, %s, %s FROM (SELECT set_config('synchronous_commit', 'off', true)) AS c "
        "ON CONFLICT (device_id, nonce) DO NOTHING RETURNING 1"
    )


def remember_nonce(*, device_id: int, nonce: str) -> bool:
    """True when ``nonce`` is new for the device; False when it was already used (a replay)."""
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(connection.vendor), [device_id, nonce, timezone.now()])
        return cursor.fetchone() is not None


def purge_old_nonces() -> int:
    """Delete database nonces older than the replay window (beat runs this)."""
    cutoff = timezone.now() - timedelta(seconds=NONCE_TTL_SECONDS)
    deleted, _ = DeviceNonce.objects.filter(seen_at__lt=cutoff).delete()
    return deleted
