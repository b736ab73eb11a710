"""Telemetry retention ("delete on schedule") and partitions ahead, run hourly by beat.

- Daily partitions exist from yesterday to ``TELEMETRY_PARTITIONS_AHEAD_DAYS`` ahead.
- Whole partitions are dropped once every day in them is older than the longest retention any
  organisation has: a ``DROP TABLE``, no row-by-row work, no bloat.
- Organisations with a shorter retention get batched deletes (one day of one organisation at
  a time, by the (organization_id, timestamp) index), and their ledger keys go with them.
- Minute rollups go after ``TELEMETRY_MINUTE_ROLLUP_DAYS``; hour rollups and signal
  evaluations after the organisation's retention, like the events they summarise.
- Events older than their organisation's retention are refused on arrival
  (``beyond_retention``), so a late replay never re-inserts what was deleted; that is also
  why ledger keys older than the retention may go: what they would catch is refused anyway.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from opshero.models import Organization

from .models import (
    EventKey,
    HealthEvent,
    HealthRollup,
    InferenceEvent,
    InferenceRollup,
    IngestedBatch,
    Resolution,
    SignalEvaluation,
)
from .partitions import drop_partitions_before, ensure_partitions, is_partitioned
from .routers import telemetry_db

DELETE_BATCH_ROWS = 20_000


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _delete_older(model, *, before: datetime, using: str, organization_id: int | None = None):
    deleted = 0
    while True:
        rows = model.objects.using(using).filter(timestamp__lt=before)
        if organization_id is not None:
            rows = rows.filter(organization_id=organization_id)
        # The oldest day first, bounded, so each statement is one day's index range.
        first = rows.order_by("timestamp").values_list("timestamp", flat=True).first()
        if first is None:
            return deleted
        day_end = min(before, _midnight(first.astimezone(UTC).date() + timedelta(days=1)))
        count, _ = rows.filter(timestamp__lt=day_end).delete()
        deleted += count


def maintain_storage(*, now: datetime | None = None) -> dict:
    """Create partitions ahead, apply every organisation's retention; returns what it did."""
    now = now or timezone.now()
    db = telemetry_db()
    today = now.astimezone(UTC).date()
    ahead = [
        today + timedelta(days=n) for n in range(-1, settings.TELEMETRY_PARTITIONS_AHEAD_DAYS + 1)
    ]
    report: dict = {"created": [], "dropped": [], "deleted_rows": 0}
    with transaction.atomic(using=db):
        report["created"] = ensure_partitions(days=ahead, using=db)

    retentions = dict(Organization.objects.values_list("pk", "telemetry_retention_days"))
    longest = max(retentions.values(), default=30)
    longest_cutoff = now - timedelta(days=longest)
    if is_partitioned(db):
        # A partition for day D holds [D, D+1): it goes once D+1 <= the cutoff's day.
        with transaction.atomic(using=db):
            report["dropped"] = drop_partitions_before(
                day=longest_cutoff.astimezone(UTC).date(), using=db
            )
    for model in (InferenceEvent, HealthEvent, EventKey):
        report["deleted_rows"] += _delete_older(model, before=longest_cutoff, using=db)
    for organization_id, days in retentions.items():
        if days >= longest:
            continue
        cutoff = now - timedelta(days=days)
        for model in (InferenceEvent, HealthEvent, EventKey):
            report["deleted_rows"] += _delete_older(
                model, before=cutoff, using=db, organization_id=organization_id
            )
    log_cutoff = now - timedelta(days=settings.TELEMETRY_INGEST_LOG_DAYS)
    IngestedBatch.objects.using(db).filter(ingested_at__lt=log_cutoff).delete()
    report["deleted_rollup_rows"] = _prune_rollups(now=now, retentions=retentions, using=db)
    return report


def _prune_rollups(*, now: datetime, retentions: dict[int, int], using: str) -> int:
    """Minute rollups after ``TELEMETRY_MINUTE_ROLLUP_DAYS``; hour rollups and signal
    evaluations after the organisation's retention (they outlive nothing they summarise)."""
    deleted = 0
    minute_cutoff = now - timedelta(days=settings.TELEMETRY_MINUTE_ROLLUP_DAYS)
    for model in (InferenceRollup, HealthRollup):
        count, _ = (
            model.objects.using(using)
            .filter(resolution=Resolution.MINUTE, bucket_start__lt=minute_cutoff)
            .delete()
        )
        deleted += count
    for organization_id, days in retentions.items():
        cutoff = now - timedelta(days=days)
        for model in (InferenceRollup, HealthRollup):
            count, _ = (
                model.objects.using(using)
                .filter(organization_id=organization_id, bucket_start__lt=cutoff)
                .delete()
            )
            deleted += count
        count, _ = (
            SignalEvaluation.objects.using(using)
            .filter(organization_id=organization_id, window_end__lt=cutoff)
            .delete()
        )
        deleted += count
    return deleted
