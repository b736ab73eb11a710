"""Expanding landed events into rows: the ledger insert that decides what is new, then the events.

PostgreSQL: the batch's keys are ``COPY``'d into a temporary staging table, one set-based
``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING`` into the ledger says which are new
(ordered by sequence, so two workers on overlapping batches lock keys in the same order and
cannot deadlock; the second waits for the first's commit, then skips), and only the new
events are ``COPY``'d into the partitioned event tables. SQLite (the embedded default, whose
writes are serialised): the existing keys are read and the new rows bulk-inserted.

Both run inside the caller's transaction, so the ledger rows and the events they admit
commit together or not at all.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC

import msgspec
from django.db import connections, transaction

from protocol.telemetry import HealthEvent as WireHealth
from protocol.telemetry import InferenceEvent as WireInference
from protocol.telemetry import TelemetryEvent

from .models import EventKey, HealthEvent, InferenceEvent

_encoder = msgspec.json.Encoder()

INFERENCE_COLUMNS = (
    "organization_id",
    "device_id",
    "epoch_id",
    "sequence",
    "timestamp",
    "model_name",
    "model_version",
    "model_sha256",
    "latency_ms",
    "time_to_action_ms",
    "confidence",
    "predicted_class",
    "label",
    "feedback_thumbs",
    "feedback_reason",
    "shape_bucket",
    "workflow_fields",
)
HEALTH_COLUMNS = (
    "organization_id",
    "device_id",
    "epoch_id",
    "sequence",
    "timestamp",
    "cpu_utilisation",
    "gpu_utilisation",
    "npu_utilisation",
    "power_w",
    "temperature_c",
    "throttled",
    "memory_mb",
    "queue_depth",
    "online",
    "buffered",
    "evicted",
)


def event_digest(event: TelemetryEvent) -> int:
    """64 bits of BLAKE2b over the event's canonical encoding, as a signed bigint."""
    raw = hashlib.blake2b(_encoder.encode(event), digest_size=8).digest()
    return int.from_bytes(raw, "big", signed=True)


@dataclass(frozen=True)
class Owner:
    organization_id: int
    device_id: int
    epoch_id: int


def inference_values(event: WireInference) -> tuple:
    """The event's own columns, in ``INFERENCE_COLUMNS`` order after the owner's three ids."""
    feedback = event.feedback
    return (
        event.sequence,
        event.timestamp,
        event.model.name,
        event.model.version,
        event.model.sha256,
        event.latency_ms,
        event.time_to_action_ms,
        event.confidence,
        event.predicted_class,
        event.label,
        feedback.thumbs if feedback else None,
        feedback.reason if feedback else None,
        event.shape_bucket,
        event.workflow_fields,
    )


def health_values(event: WireHealth) -> tuple:
    """The event's own columns, in ``HEALTH_COLUMNS`` order after the owner's three ids."""
    return (
        event.sequence,
        event.timestamp,
        event.cpu_utilisation,
        event.gpu_utilisation,
        event.npu_utilisation,
        event.power_w,
        event.temperature_c,
        event.throttled,
        event.memory_mb,
        event.queue_depth,
        event.online,
        event.buffered,
        event.evicted,
    )


def inference_row(owner: Owner, event: WireInference) -> tuple:
    return (owner.organization_id, owner.device_id, owner.epoch_id, *inference_values(event))


def health_row(owner: Owner, event: WireHealth) -> tuple:
    return (owner.organization_id, owner.device_id, owner.epoch_id, *health_values(event))


@dataclass(frozen=True)
class StoreResult:
    """What one batch did: events new to the store, identical repeats, reused sequences."""

    stored: int
    duplicates: int
    conflicts: int
    conflicting_sequences: tuple[int, ...] = ()


def store_events(*, owner: Owner, events: Sequence[TelemetryEvent], using: str) -> StoreResult:
    """Store each (device, epoch, sequence) once; count repeats and conflicts. In a transaction."""
    if not events:
        return StoreResult(0, 0, 0)
    # One event per sequence within a batch is guaranteed by decode_batch; keep it true here
    # for payloads written by anything else.
    by_sequence: dict[int, TelemetryEvent] = {}
    for event in events:
        by_sequence.setdefault(event.sequence, event)
    digests = {seq: event_digest(event) for seq, event in by_sequence.items()}
    if connections[using].vendor == "postgresql":
        stored, conflicts = _store_postgres(owner, by_sequence, digests, using)
    else:
        stored, conflicts = _store_bulk(owner, by_sequence, digests, using)
    return StoreResult(
        stored=stored,
        duplicates=len(by_sequence) - stored - len(conflicts),
        conflicts=len(conflicts),
        conflicting_sequences=conflicts,
    )


# Staging tables: one row per event of the batch, its digest first, then the event's own columns
# (the owner's three ids are the same for the whole batch and are added by the insert).
_OWNER_COLUMNS = ("organization_id", "device_id", "epoch_id")
_STAGED_INFERENCE = ("digest", *INFERENCE_COLUMNS[3:])
_STAGED_HEALTH = ("digest", *HEALTH_COLUMNS[3:])
_STAGING_INFERENCE = "telemetry_staging_inference"
_STAGING_HEALTH = "telemetry_staging_health"
# The database connections that already have the staging tables (they live with the connection).
_staged: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _store_postgres(owner, by_sequence, digests, using) -> tuple[int, tuple[int, ...]]:
    connection = connections[using]
    quote = connection.ops.quote_name
    ledger = quote(EventKey._meta.db_table)
    inference_table = quote(InferenceEvent._meta.db_table)
    health_table = quote(HealthEvent._meta.db_table)
    with connection.cursor() as cursor:
        # The worker's commit need not wait for the WAL flush: if the server crashes before
        # the flush, this transaction is lost whole, the landing row it deleted with it, so
        # the batch is simply ingested again (nothing lost, nothing twice).
        cursor.execute("SET LOCAL synchronous_commit = off")
        raw = connection.connection
        if _staged.get(id(raw)) is not raw:
            # Temporary tables live as long as the connection and are emptied at each commit.
            for staging, table, columns in (
                (_STAGING_INFERENCE, inference_table, _STAGED_INFERENCE[1:]),
                (_STAGING_HEALTH, health_table, _STAGED_HEALTH[1:]),
            ):
                cursor.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS {staging} ON COMMIT DELETE ROWS AS "  # noqa: S608
                    f"SELECT 0::bigint AS digest, {', '.join(map(quote, columns))} "
                    f"FROM {table} WITH NO DATA"
                )
            # Remembered once committed: a rolled-back transaction takes the tables with it.
            transaction.on_commit(lambda: _staged.__setitem__(id(raw), raw), using=using)
        with cursor.cursor.copy(
            f"COPY {_STAGING_INFERENCE} ({', '.join(map(quote, _STAGED_INFERENCE))}) FROM STDIN"
        ) as copy:
            for seq, event in by_sequence.items():
                if isinstance(event, WireInference):
                    copy.write_row(_staged_inference(digests[seq], event))
        with cursor.cursor.copy(
            f"COPY {_STAGING_HEALTH} ({', '.join(map(quote, _STAGED_HEALTH))}) FROM STDIN"
        ) as copy:
            for seq, event in by_sequence.items():
                if isinstance(event, WireHealth):
                    copy.write_row(_staged_health(digests[seq], event))
        # One statement: claim the keys in the ledger (in sequence order, so two workers on
        # overlapping batches lock in the same order), then copy only the events whose key was
        # new. Data-modifying CTEs see each other's RETURNING.
        owner_ids = ", ".join(map(quote, _OWNER_COLUMNS))
        inference_columns = ", ".join(map(quote, INFERENCE_COLUMNS[3:]))
        health_columns = ", ".join(map(quote, HEALTH_COLUMNS[3:]))
        cursor.execute(
            "WITH new AS ("  # noqa: S608 - identifiers are the models' tables, values are params
            f"  INSERT INTO {ledger} "
            "  (device_id, epoch_id, sequence, digest, organization_id, timestamp) "
            "  SELECT %(device)s, %(epoch)s, s.sequence, s.digest, %(org)s, s.timestamp FROM ("
            f"    SELECT sequence, digest, timestamp FROM {_STAGING_INFERENCE} "
            f"    UNION ALL SELECT sequence, digest, timestamp FROM {_STAGING_HEALTH}"
            "  ) s ORDER BY s.sequence "
            "  ON CONFLICT (device_id, epoch_id, sequence) DO NOTHING RETURNING sequence"
            "), inference AS ("
            f"  INSERT INTO {inference_table} ({owner_ids}, {inference_columns}) "
            f"  SELECT %(org)s, %(device)s, %(epoch)s, {inference_columns} "
            f"  FROM {_STAGING_INFERENCE} WHERE sequence IN (SELECT sequence FROM new) "
            "  RETURNING 1"
            "), health AS ("
            f"  INSERT INTO {health_table} ({owner_ids}, {health_columns}) "
            f"  SELECT %(org)s, %(device)s, %(epoch)s, {health_columns} "
            f"  FROM {_STAGING_HEALTH} WHERE sequence IN (SELECT sequence FROM new) "
            "  RETURNING 1"
            ") SELECT (SELECT count(*) FROM new), (SELECT count(*) FROM inference), "
            "(SELECT count(*) FROM health)",
            {"device": owner.device_id, "epoch": owner.epoch_id, "org": owner.organization_id},
        )
        claimed, inference_stored, health_stored = cursor.fetchone()
        if claimed != inference_stored + health_stored:
            raise RuntimeError("ledger and event tables disagree; the transaction is rolled back")
        conflicts: tuple[int, ...] = ()
        if claimed < len(by_sequence):
            # Every key of the batch is in the ledger now: claimed just now, or held before
            # with the same digest (a replay) or another one (a conflict).
            cursor.execute(
                f"SELECT s.sequence FROM {ledger} l JOIN ("  # noqa: S608
                f"  SELECT sequence, digest FROM {_STAGING_INFERENCE} "
                f"  UNION ALL SELECT sequence, digest FROM {_STAGING_HEALTH}"
                ") s ON s.sequence = l.sequence "
                "WHERE l.device_id = %s AND l.epoch_id = %s AND l.digest <> s.digest",
                [owner.device_id, owner.epoch_id],
            )
            conflicts = tuple(sorted(row[0] for row in cursor.fetchall()))
        # The commit empties them (ON COMMIT DELETE ROWS, no new files, unlike TRUNCATE); a
        # caller that runs several batches in one transaction needs them empty before that.
        cursor.execute(f"DELETE FROM {_STAGING_INFERENCE}")  # noqa: S608
        cursor.execute(f"DELETE FROM {_STAGING_HEALTH}")  # noqa: S608
    return claimed, conflicts


def _staged_inference(digest: int, event: WireInference) -> tuple:
    *columns, workflow_fields = inference_values(event)
    return (digest, *columns, _encoder.encode(workflow_fields).decode())


def _staged_health(digest: int, event: WireHealth) -> tuple:
    return (digest, *health_values(event))


def _store_bulk(owner, by_sequence, digests, using) -> tuple[int, tuple[int, ...]]:
    new, existing = _claim_keys_bulk(owner, by_sequence, digests, using)
    new_events = [by_sequence[seq] for seq in sorted(new)]
    InferenceEvent.objects.using(using).bulk_create(
        [
            InferenceEvent(**dict(zip(INFERENCE_COLUMNS, inference_row(owner, e), strict=True)))
            for e in new_events
            if isinstance(e, WireInference)
        ],
        batch_size=500,
    )
    HealthEvent.objects.using(using).bulk_create(
        [
            HealthEvent(**dict(zip(HEALTH_COLUMNS, health_row(owner, e), strict=True)))
            for e in new_events
            if isinstance(e, WireHealth)
        ],
        batch_size=500,
    )
    conflicts = tuple(sorted(seq for seq, digest in existing.items() if digest != digests[seq]))
    return len(new_events), conflicts


def _claim_keys_bulk(owner, by_sequence, digests, using):
    sequences = sorted(by_sequence)
    existing: dict[int, int] = {}
    for start in range(0, len(sequences), 500):
        chunk = sequences[start : start + 500]
        existing.update(
            EventKey.objects.using(using)
            .filter(device_id=owner.device_id, epoch_id=owner.epoch_id, sequence__in=chunk)
            .values_list("sequence", "digest")
        )
    new = [seq for seq in sequences if seq not in existing]
    EventKey.objects.using(using).bulk_create(
        [
            EventKey(
                device_id=owner.device_id,
                epoch_id=owner.epoch_id,
                sequence=seq,
                digest=digests[seq],
                organization_id=owner.organization_id,
                timestamp=by_sequence[seq].timestamp,
            )
            for seq in new
        ],
        batch_size=500,
    )
    return set(new), existing


def days_of(events: Sequence[TelemetryEvent]) -> set:
    """The UTC days the events fall on (their partitions)."""
    return {e.timestamp.astimezone(UTC).date() for e in events}
