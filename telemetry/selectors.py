"""Telemetry reads, each starting from an organisation.

The telemetry store may be another database (``telemetry.routers``), so every query here names
it with ``.using(telemetry_db())`` and devices are joined by id in a second query on the fleet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Min, Q, Sum
from django.utils import timezone

from fleet.models import Device
from opshero.models import Organization

from .models import IngestedBatch, LandedBatch
from .routers import telemetry_db

# Percentiles are computed in Python from the most recent lags; this bounds the rows fetched
# (a busy fleet lands far more batches a day) and the page says when it is a sample.
LAG_SAMPLE_LIMIT = 50_000
TOP_DEVICES = 20
HELD_SHOWN = 50

_LAG = ExpressionWrapper(F("ingested_at") - F("received_at"), output_field=DurationField())


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The ``fraction`` percentile of ascending ``sorted_values``, linearly interpolated
    (PostgreSQL's ``percentile_cont``); the list must not be empty."""
    position = (len(sorted_values) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    if low == high:
        return sorted_values[low]
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


@dataclass(frozen=True, kw_only=True)
class LagWindow:
    """Ingest lag (landed → visible) over a window; ``batches`` is 0 when none were ingested."""

    label: str
    batches: int
    sampled: int  # how many of the most recent lags the percentiles come from
    p50: float | None
    p95: float | None
    max: float | None

    @property
    def is_sample(self) -> bool:
        return self.sampled < self.batches


@dataclass(frozen=True, kw_only=True)
class HeldBatch:
    batch_id: str
    device_id: int
    device_name: str | None  # None when the device no longer exists in this organisation
    received_at: datetime
    event_count: int
    attempts: int
    last_error: str


@dataclass(frozen=True, kw_only=True)
class DeviceTotals:
    device_id: int
    device_name: str | None
    batches: int
    events: int
    stored: int
    duplicates: int
    conflicts: int


@dataclass(frozen=True, kw_only=True)
class IngestOverview:
    """Everything the ingest page shows, for one organisation at ``now``."""

    now: datetime
    lag_windows: list[LagWindow]
    waiting_batches: int
    waiting_events: int
    oldest_waiting_age: float | None  # seconds; None when nothing waits
    held_count: int
    held: list[HeldBatch]  # the oldest HELD_SHOWN
    batches_24h: int
    events_24h: int
    stored_24h: int
    duplicates_24h: int
    conflicts_24h: int
    top_devices: list[DeviceTotals]


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _lag_window(
    *, label: str, batches: int, max_lag: timedelta | None, lags: list[float]
) -> LagWindow:
    if not batches or not lags:
        return LagWindow(label=label, batches=batches, sampled=0, p50=None, p95=None, max=None)
    lags = sorted(lags)
    return LagWindow(
        label=label,
        batches=batches,
        sampled=len(lags),
        p50=percentile(lags, 0.50),
        p95=percentile(lags, 0.95),
        max=_seconds(max_lag),
    )


def ingest_overview(*, org: Organization, now: datetime | None = None) -> IngestOverview:
    """Ingest lag, backlog, held batches and the last day's totals of ``org``.

    Six queries whatever the number of batches: two on the ingest log (totals, recent lags),
    one per device, two on the landing table (backlog, held list) and one for device names.
    """
    now = now or timezone.now()
    db = telemetry_db()
    hour_ago, day_ago = now - timedelta(hours=1), now - timedelta(days=1)
    in_hour = Q(ingested_at__gt=hour_ago)
    ingested = IngestedBatch.objects.using(db).filter(
        organization_id=org.pk, ingested_at__gt=day_ago, ingested_at__lte=now
    )

    totals = ingested.annotate(lag=_LAG).aggregate(
        batches=Count("pk"),
        batches_1h=Count("pk", filter=in_hour),
        max_lag=Max("lag"),
        max_lag_1h=Max("lag", filter=in_hour),
        events=Sum("events"),
        stored=Sum("stored"),
        duplicates=Sum("duplicates"),
        conflicts=Sum("conflicts"),
    )
    recent = list(
        ingested.annotate(lag=_LAG)
        .order_by("-ingested_at")
        .values_list("ingested_at", "lag")[:LAG_SAMPLE_LIMIT]
    )
    lags_24h = [lag.total_seconds() for _, lag in recent]
    lags_1h = [lag.total_seconds() for at, lag in recent if at > hour_ago]
    windows = [
        _lag_window(
            label="last hour",
            batches=totals["batches_1h"],
            max_lag=totals["max_lag_1h"],
            lags=lags_1h,
        ),
        _lag_window(
            label="last 24 h", batches=totals["batches"], max_lag=totals["max_lag"], lags=lags_24h
        ),
    ]

    per_device = list(
        ingested.values("device_id")
        .annotate(
            batches=Count("pk"),
            events_sum=Sum("events"),
            stored_sum=Sum("stored"),
            duplicates_sum=Sum("duplicates"),
            conflicts_sum=Sum("conflicts"),
        )
        .order_by("-events_sum", "device_id")[:TOP_DEVICES]
    )

    landed = LandedBatch.objects.using(db).filter(organization_id=org.pk)
    is_held = Q(attempts__gte=settings.TELEMETRY_MAX_INGEST_ATTEMPTS)
    backlog = landed.aggregate(
        waiting=Count("pk", filter=~is_held),
        waiting_events=Sum("event_count", filter=~is_held),
        oldest_waiting=Min("received_at", filter=~is_held),
        held=Count("pk", filter=is_held),
    )
    held_rows = list(
        landed.filter(is_held)
        .order_by("received_at")
        .values_list("id", "device_id", "received_at", "event_count", "attempts", "last_error")[
            :HELD_SHOWN
        ]
    )

    device_ids = {row["device_id"] for row in per_device} | {row[1] for row in held_rows}
    names = dict(
        Device.objects.filter(organization=org, pk__in=device_ids).values_list("pk", "name")
    )
    oldest = backlog["oldest_waiting"]
    return IngestOverview(
        now=now,
        lag_windows=windows,
        waiting_batches=backlog["waiting"],
        waiting_events=backlog["waiting_events"] or 0,
        oldest_waiting_age=None if oldest is None else max(0.0, (now - oldest).total_seconds()),
        held_count=backlog["held"],
        held=[
            HeldBatch(
                batch_id=str(batch_id),
                device_id=device_id,
                device_name=names.get(device_id),
                received_at=received_at,
                event_count=event_count,
                attempts=attempts,
                last_error=last_error,
            )
            for batch_id, device_id, received_at, event_count, attempts, last_error in held_rows
        ],
        batches_24h=totals["batches"],
        events_24h=totals["events"] or 0,
        stored_24h=totals["stored"] or 0,
        duplicates_24h=totals["duplicates"] or 0,
        conflicts_24h=totals["conflicts"] or 0,
        top_devices=[
            DeviceTotals(
                device_id=row["device_id"],
                device_name=names.get(row["device_id"]),
                batches=row["batches"],
                events=row["events_sum"],
                stored=row["stored_sum"],
                duplicates=row["duplicates_sum"],
                conflicts=row["conflicts_sum"],
            )
            for row in per_device
        ],
    )
