"""Telemetry writes: land a verified batch (web), expand landed batches exactly once (workers).

The web process never writes events: ``land_batch`` decodes and judges the batch, then writes
one ``LandedBatch`` row in one transaction and answers. Only then is the batch durable and
the gateway told which sequences it may drop. ``ingest_landed_batch`` (Celery ``ingest``
queue) expands one landed row into events and deletes it in one transaction; the sweep
(``sweep_landed_batches``, beat) takes rows whose task was lost. Exactly-once holds because
(device, epoch, sequence) is claimed in the ``EventKey`` ledger in the same transaction as the
events are written (``telemetry.storage``).
"""

from __future__ import annotations

import gzip
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import msgspec
from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from fleet.models import Device
from modelregistry.selectors import class_labels_by_artifact
from opshero.errors import DomainError
from protocol import telemetry as wire

from .dispatch import IngestDispatcher
from .models import DataSent, DeviceEpoch, IngestedBatch, LandedBatch
from .partitions import ensure_partitions
from .rollups import hours_to_mark, mark_hours
from .routers import telemetry_db
from .storage import Owner, StoreResult, days_of, store_events

logger = logging.getLogger(__name__)

_payload_encoder = msgspec.json.Encoder()
_payload_decoder = msgspec.json.Decoder(wire.TelemetryBatch)


class TelemetryRefused(DomainError):
    """The whole batch is refused (400): not a batch."""


class TelemetryTooLarge(TelemetryRefused):
    """The whole batch is refused (413): too many events, or it inflates too far."""

    status = 413


class TelemetryMediaRefused(TelemetryRefused):
    """The whole batch is refused (415): not JSON, or an encoding other than gzip."""

    status = 415


_REFUSAL_BY_STATUS = {400: TelemetryRefused, 413: TelemetryTooLarge, 415: TelemetryMediaRefused}


def _refusal(exc: wire.TelemetryRejected) -> TelemetryRefused:
    return _REFUSAL_BY_STATUS[exc.status](exc.message, code=exc.code)


@dataclass(frozen=True, kw_only=True)
class LandingReceipt:
    """What the gateway is told: what is durably held now, and what was refused and why."""

    batch_id: str | None
    epoch: str
    events: int
    accepted: int
    held: list[tuple[int, int]]
    duplicates: list[int]
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "batch": self.batch_id,
            "epoch": self.epoch,
            "events": self.events,
            "accepted": self.accepted,
            "held": [list(span) for span in self.held],
            "duplicates": self.duplicates,
            "rejected": self.rejected,
        }


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _decompress(body: bytes, content_encoding: str) -> bytes:
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        if len(body) > settings.TELEMETRY_MAX_DECOMPRESSED_BYTES:
            raise TelemetryTooLarge(
                f"The body is larger than {settings.TELEMETRY_MAX_DECOMPRESSED_BYTES} bytes.",
                code="payload_too_large",
            )
        return body
    if encoding == "gzip":
        try:
            return wire.gunzip_limited(body, settings.TELEMETRY_MAX_DECOMPRESSED_BYTES)
        except wire.TelemetryRejected as exc:
            raise _refusal(exc) from None
    raise TelemetryMediaRefused(
        f"Content-Encoding {content_encoding!r} is not accepted: send gzip or none.",
        code="unsupported_encoding",
    )


def held_ranges(sequences: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, merged inclusive ranges covering ``sequences``."""
    spans: list[tuple[int, int]] = []
    for seq in sorted(set(sequences)):
        if spans and seq == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], seq)
        else:
            spans.append((seq, seq))
    return spans


def _sequence_of(body_event: Any) -> int | None:
    if isinstance(body_event, dict):
        seq = body_event.get("sequence")
        if isinstance(seq, int) and not isinstance(seq, bool):
            return seq
    return None


def land_batch(
    *,
    device: Device,
    body: bytes,
    content_type: str,
    content_encoding: str = "",
    now: datetime | None = None,
    enqueue: bool = True,
) -> LandingReceipt:
    """Verify-and-land one telemetry batch from an authenticated device; durable on return.

    Refuses the whole batch (``TelemetryRefused``) for a body that is not a batch; otherwise
    each event is held or refused by index with a reason, and the held ones are written in
    one ``LandedBatch`` row, committed before this returns. An ingest task is queued after the
    commit (unless ``enqueue`` is false: the caller ingests it itself, as the demo seeding
    does); if the broker is down the sweep takes the batch later.
    """
    now = now or timezone.now()
    if _media_type(content_type) != "application/json":
        raise TelemetryMediaRefused(
            "A telemetry batch is JSON: send Content-Type: application/json.",
            code="unsupported_media_type",
        )
    raw = _decompress(body, content_encoding)
    try:
        decoded = wire.decode_batch(
            raw,
            max_events=settings.TELEMETRY_MAX_EVENTS_PER_BATCH,
            now=now,
            clock_window_s=settings.TELEMETRY_CLOCK_WINDOW_SECONDS,
        )
    except wire.TelemetryRejected as exc:
        raise _refusal(exc) from None

    refused = list(decoded.rejected)
    kept: list[wire.AcceptedEvent] = []
    oldest = now - timedelta(days=device.organization.telemetry_retention_days)
    labels = class_labels_by_artifact(
        org=device.organization,
        sha256s={
            e.event.model.sha256 for e in decoded.events if isinstance(e.event, wire.InferenceEvent)
        },
    )
    for accepted in decoded.events:
        event = accepted.event
        if event.timestamp < oldest:
            refused.append(
                wire.EventRejection(
                    accepted.index,
                    "beyond_retention",
                    f"timestamp {event.timestamp.isoformat()} is older than this organisation's "
                    f"{device.organization.telemetry_retention_days}-day telemetry retention",
                )
            )
            continue
        if isinstance(event, wire.InferenceEvent):
            known = labels.get(event.model.sha256)
            if known is not None:
                for member, value in (
                    ("predicted_class", event.predicted_class),
                    ("label", event.label),
                ):
                    if value is not None and value not in known:
                        refused.append(
                            wire.EventRejection(
                                accepted.index,
                                "unknown_class",
                                f"{member} {value!r} is not a class of model "
                                f"{event.model.name} {event.model.version}",
                            )
                        )
                        break
                else:
                    kept.append(accepted)
                continue
        kept.append(accepted)

    record_data_sent(
        organization_id=device.organization_id,
        site_id=device.site_id,
        kind=DataSent.Kind.EVENTS,
        records=len(decoded.events) + len(decoded.rejected) + len(decoded.duplicates),
        size=len(body),
        day=now.date(),
    )
    rejected = _describe_rejections(raw, refused) if refused else []
    held_sequences = [a.event.sequence for a in kept]
    batch_id: str | None = None
    if kept:
        events = [a.event for a in kept]
        if not refused and not decoded.duplicates and content_encoding.strip().lower() == "gzip":
            payload = body  # exactly the events held, already compressed by the gateway
        else:
            payload = gzip.compress(
                _payload_encoder.encode(
                    wire.TelemetryBatch(device_epoch=decoded.device_epoch, events=events)
                ),
                compresslevel=1,
                mtime=0,
            )
        db = telemetry_db()
        with transaction.atomic(using=db):
            batch = LandedBatch.objects.using(db).create(
                organization_id=device.organization_id,
                device_id=device.pk,
                epoch=decoded.epoch,
                epoch_started_at=decoded.device_epoch.started_at,
                received_at=now,
                event_count=len(events),
                first_sequence=min(held_sequences),
                last_sequence=max(held_sequences),
                payload=payload,
            )
            batch_id = str(batch.pk)
            if enqueue:
                transaction.on_commit(lambda: enqueue_ingest(batch_id), using=db)
    return LandingReceipt(
        batch_id=batch_id,
        epoch=decoded.epoch,
        events=len(decoded.events) + len(decoded.rejected) + len(decoded.duplicates),
        accepted=len(kept),
        held=held_ranges(held_sequences),
        duplicates=decoded.duplicates,
        rejected=rejected,
    )


_DATA_SENT_UPSERT = (
    "INSERT INTO {table} (organization_id, site_id, day, kind, records, bytes, requests) "
    "VALUES (%s, %s, %s, %s, %s, %s, 1) "
    "ON CONFLICT (site_id, day, kind) DO UPDATE SET records = {table}.records + excluded.records, "
    "bytes = {table}.bytes + excluded.bytes, requests = {table}.requests + 1"
)


def record_data_sent(
    *, organization_id: int, site_id: int, kind: str, records: int, size: int, day: date
) -> None:
    """Add one request's records and bytes to its site's ledger of what left it that day.

    One upsert (PostgreSQL and SQLite alike), so concurrent gateways of a site never lose a count.
    """
    db = telemetry_db()
    with connections[db].cursor() as cursor:
        cursor.execute(
            _DATA_SENT_UPSERT.format(table=DataSent._meta.db_table),
            [organization_id, site_id, day, kind, records, size],
        )


def _describe_rejections(raw: bytes, refused: list[wire.EventRejection]) -> list[dict[str, Any]]:
    # The sequence of a refused event, when it has one, lets the gateway drop it by sequence.
    # The standard library's parser, as it reads what msgspec refused (1e400 becomes inf).
    try:
        loose = json.loads(raw).get("events") or []
    except (ValueError, AttributeError):
        loose = []
    if not isinstance(loose, list):
        loose = []
    out = []
    for rejection in sorted(refused, key=lambda r: r.index):
        source = loose[rejection.index] if rejection.index < len(loose) else None
        out.append(
            {
                "index": rejection.index,
                "sequence": _sequence_of(source),
                "code": rejection.code,
                "reason": rejection.reason,
            }
        )
    return out


def _publish_ingest(batch_id: str) -> None:
    from .tasks import ingest_landed_batch_task

    ingest_landed_batch_task.apply_async((batch_id,), retry=False)


dispatcher = IngestDispatcher(_publish_ingest)


def enqueue_ingest(batch_id: str) -> bool:
    """Queue the ingest task of a committed landing row; the gateway's answer does not wait.

    With ``TELEMETRY_ENQUEUE_IN_BACKGROUND`` off (commands, tests) it publishes here and
    returns False, logged, when the broker cannot take it. Either way the sweep takes any
    batch whose task was not published.
    """
    if settings.TELEMETRY_ENQUEUE_IN_BACKGROUND:
        return dispatcher.submit(batch_id)
    try:
        _publish_ingest(batch_id)
    except Exception:  # noqa: BLE001 - any broker failure; the batch is durable already
        logger.warning("could not queue ingest of batch %s; the sweep will take it", batch_id)
        return False
    return True


@dataclass(frozen=True)
class IngestOutcome:
    batch_id: str
    events: int
    result: StoreResult


def _epoch_id(batch: LandedBatch, using: str) -> int:
    epoch, _ = DeviceEpoch.objects.using(using).get_or_create(
        device_id=batch.device_id,
        epoch=batch.epoch,
        defaults={
            "organization_id": batch.organization_id,
            "started_at": batch.epoch_started_at,
        },
    )
    return epoch.pk


def ingest_landed_batch(*, batch_id: str) -> IngestOutcome | None:
    """Expand one landed batch into stored events exactly once, then delete it.

    None when there is nothing to do: the batch is already ingested, another worker holds it
    right now, or it has failed too often (it stays landed, shown on the ingest page).
    """
    db = telemetry_db()
    try:
        with transaction.atomic(using=db):
            batch = (
                LandedBatch.objects.using(db)
                .select_for_update(skip_locked=True)
                .filter(pk=batch_id, attempts__lt=settings.TELEMETRY_MAX_INGEST_ATTEMPTS)
                .first()
            )
            if batch is None:
                return None
            events = _payload_decoder.decode(gzip.decompress(bytes(batch.payload))).events
            owner = Owner(
                organization_id=batch.organization_id,
                device_id=batch.device_id,
                epoch_id=_epoch_id(batch, db),
            )
            ensure_partitions(days=days_of(events), using=db)
            result = store_events(owner=owner, events=events, using=db)
            IngestedBatch.objects.using(db).create(
                batch_id=batch.pk,
                organization_id=batch.organization_id,
                device_id=batch.device_id,
                epoch_id=owner.epoch_id,
                received_at=batch.received_at,
                ingested_at=timezone.now(),
                events=len(events),
                stored=result.stored,
                duplicates=result.duplicates,
                conflicts=result.conflicts,
            )
            if result.conflicts:
                logger.warning(
                    "device %s epoch %s: %d reused sequences with different content refused "
                    "(first %s)",
                    batch.device_id,
                    batch.epoch,
                    result.conflicts,
                    result.conflicting_sequences[:5],
                )
            # Mark what changed for the rollups in the same transaction: a mark can never
            # exist without its events, nor events without a mark.
            mark_hours(
                organization_id=batch.organization_id,
                device_id=batch.device_id,
                hours=hours_to_mark(
                    inference=[e.timestamp for e in events if isinstance(e, wire.InferenceEvent)],
                    health=[e.timestamp for e in events if isinstance(e, wire.HealthEvent)],
                    received_at=batch.received_at,
                ),
                using=db,
            )
            batch.delete()
    except Exception as exc:
        _record_failure(batch_id, exc, db)
        raise
    return IngestOutcome(batch_id=str(batch_id), events=len(events), result=result)


def _record_failure(batch_id: str, exc: Exception, db: str) -> None:
    try:
        with transaction.atomic(using=db):
            batch = LandedBatch.objects.using(db).select_for_update().filter(pk=batch_id).first()
            if batch is not None:
                batch.attempts += 1
                batch.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                batch.save(update_fields=["attempts", "last_error"])
    except Exception:  # the database itself is failing; the row is still there
        logger.exception("could not record the failure of batch %s", batch_id)


def sweep_landed_batches(*, now: datetime | None = None, budget_s: float = 20.0) -> int:
    """Ingest landed batches whose task never ran (lost to a broker outage or a dead worker).

    Takes batches landed more than ``TELEMETRY_SWEEP_AFTER_SECONDS`` ago, oldest first, until
    the time budget is spent; returns how many it ingested. Safe alongside the regular tasks:
    a batch being ingested elsewhere is skipped, and one already ingested is gone.
    """
    now = now or timezone.now()
    db = telemetry_db()
    cutoff = now - timedelta(seconds=settings.TELEMETRY_SWEEP_AFTER_SECONDS)
    started = time.monotonic()
    done = 0
    while time.monotonic() - started < budget_s:
        ids = list(
            LandedBatch.objects.using(db)
            .filter(received_at__lte=cutoff, attempts__lt=settings.TELEMETRY_MAX_INGEST_ATTEMPTS)
            .order_by("received_at")
            .values_list("pk", flat=True)[:200]
        )
        if not ids:
            break
        progressed = False
        for batch_id in ids:
            if time.monotonic() - started >= budget_s:
                break
            try:
                outcome = ingest_landed_batch(batch_id=str(batch_id))
            except Exception:  # recorded on the row; go on with the others
                logger.exception("sweep: ingest of batch %s failed", batch_id)
                progressed = True
                continue
            if outcome is not None:
                done += 1
                progressed = True
        if not progressed:
            break
    return done
