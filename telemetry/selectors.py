"""Telemetry reads, each starting from an organisation.

The telemetry store may be another database (``telemetry.routers``), so every query here names
it with ``.using(telemetry_db())`` and devices are joined by id in a second query on the fleet.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import (
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
)
from django.utils import timezone

from fleet.models import Device, Site
from opshero.models import Organization

from .drift import estimated_accuracy
from .models import (
    Alert,
    HealthRollup,
    InferenceRollup,
    IngestedBatch,
    LandedBatch,
    Level,
    Resolution,
    SignalCursor,
    SignalEvaluation,
)
from .rollups import hour_of, merge_health, merge_inference
from .routers import telemetry_db
from .series import (
    LOW_CONFIDENCE,
    DriftPoint,
    HealthSeries,
    LatencyFigures,
    VersionSeries,
    low_confidence_share,
    share,
)
from .sketch import LatencySketch

LIVE_ALERT = (Alert.Status.OPEN, Alert.Status.ACKNOWLEDGED)

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


# --- alert notifications -------------------------------------------------------------------------

RECENT_DELIVERIES = 50


def notification_channels_for_org(*, org: Organization):
    """The organisation's channels with how many deliveries each has pending and failed."""
    from .models import AlertNotification, NotificationChannel

    pending, failed = AlertNotification.Status.PENDING, AlertNotification.Status.FAILED
    return NotificationChannel.objects.filter(organization=org).annotate(
        pending_count=Count("deliveries", filter=Q(deliveries__status=pending)),
        failed_count=Count("deliveries", filter=Q(deliveries__status=failed)),
    )


def notification_channel_for_org(*, org: Organization, pk: int):
    """One channel of the organisation, or None (another organisation's is None too)."""
    from .models import NotificationChannel

    return NotificationChannel.objects.filter(organization=org, pk=pk).first()


def recent_notifications_for_org(*, org: Organization, limit: int = RECENT_DELIVERIES):
    """The organisation's latest deliveries, newest first, with channel and alert joined."""
    from .models import AlertNotification

    return AlertNotification.objects.filter(channel__organization=org).select_related(
        "channel", "alert"
    )[:limit]


# --- Fleet health: read from the rollups only, never from raw events -----------------------------
# Every selector below does a fixed number of queries whatever the fleet's size or event count:
# rollup rows of one scope and window, alerts, names. Percentiles come from merged sketches.


@dataclass(frozen=True)
class SiteLatency:
    site_id: int
    site_name: str
    latency: LatencyFigures
    devices: int


@dataclass(frozen=True)
class FleetKpis:
    """The Overview's fleet-health figures (organisation and site rollups)."""

    reporting_devices: int  # devices with health in the latest minute that has any
    throttled_devices: int
    latest_minute: datetime | None
    events_per_minute: float | None  # mean over the last KPI_MINUTES complete minutes
    open_alerts: int
    acknowledged_alerts: int
    p95_by_site: list[SiteLatency]
    latency_since: datetime  # P95 by site covers [latency_since, now]


KPI_MINUTES = 5
HEALTH_LOOKBACK = timedelta(minutes=10)


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def fleet_kpis(*, org: Organization, now: datetime | None = None) -> FleetKpis:
    """Five queries: the latest organisation health minute, the last minutes' inference counts,
    the site rows of this hour and the last, alert counts, site names."""
    now = now or timezone.now()
    db = telemetry_db()
    minute_now = _minute(now)
    latest = (
        HealthRollup.objects.using(db)
        .filter(
            organization_id=org.pk,
            level=Level.ORGANIZATION,
            resolution=Resolution.MINUTE,
            bucket_start__gte=minute_now - HEALTH_LOOKBACK,
            bucket_start__lte=minute_now,
        )
        .order_by("-bucket_start")
        .values_list("bucket_start", "devices", "throttled_devices")
        .first()
    )
    counts = (
        InferenceRollup.objects.using(db)
        .filter(
            organization_id=org.pk,
            level=Level.ORGANIZATION,
            resolution=Resolution.MINUTE,
            bucket_start__gte=minute_now - timedelta(minutes=KPI_MINUTES),
            bucket_start__lt=minute_now,
        )
        .aggregate(events=Sum("count"))["events"]
    )
    since = hour_of(now) - timedelta(hours=1)
    site_rows = list(
        InferenceRollup.objects.using(db)
        .filter(
            organization_id=org.pk,
            level=Level.SITE,
            resolution=Resolution.HOUR,
            bucket_start__gte=since,
        )
        .only("site_id", "latency", "devices", "count")
    )
    alerts = Alert.objects.filter(organization=org).aggregate(
        open=Count("pk", filter=Q(status=Alert.Status.OPEN)),
        acknowledged=Count("pk", filter=Q(status=Alert.Status.ACKNOWLEDGED)),
    )
    by_site: dict[int, list] = {}
    for row in site_rows:
        by_site.setdefault(row.site_id, []).append(row)
    names = dict(Site.objects.filter(organization=org, pk__in=by_site).values_list("pk", "name"))
    sites = [
        SiteLatency(
            site_id=site_id,
            site_name=names.get(site_id, f"site {site_id}"),
            latency=LatencyFigures.of(
                LatencySketch.merged(*(LatencySketch.from_dict(r.latency) for r in rows))
            ),
            devices=max(r.devices for r in rows),
        )
        for site_id, rows in by_site.items()
    ]
    sites.sort(key=lambda site: (-(site.latency.p95 or 0.0), site.site_name))
    return FleetKpis(
        reporting_devices=latest[1] if latest else 0,
        throttled_devices=latest[2] if latest else 0,
        latest_minute=latest[0] if latest else None,
        events_per_minute=None if counts is None else counts / KPI_MINUTES,
        open_alerts=alerts["open"],
        acknowledged_alerts=alerts["acknowledged"],
        p95_by_site=sites,
        latency_since=since,
    )


# --- One scope over time (a site or a device) ------------------------------------------------


@dataclass(frozen=True)
class ScopeHealth:
    """What a site or device page shows, for one window of hours."""

    level: int
    window_start: datetime
    window_end: datetime
    resolution: int
    versions: list[VersionSeries]
    health: HealthSeries
    drift: list[DriftPoint]
    alerts: list[Alert]

    @property
    def has_data(self) -> bool:
        return bool(self.versions) or bool(self.health.buckets)


def _scope_filter(level: int, scope_id: int) -> dict[str, int]:
    return {"level": level, "site_id" if level == Level.SITE else "device_id": scope_id}


def _series_resolution(hours: int) -> int:
    return Resolution.MINUTE if hours <= 3 else Resolution.HOUR


def scope_health(
    *,
    org: Organization,
    level: int,
    scope_id: int,
    hours: int = 24,
    now: datetime | None = None,
) -> ScopeHealth:
    """A site's (``level`` SITE) or a device's (DEVICE) rollups over the last ``hours``.

    Minute buckets up to 3 hours, hour buckets beyond. Five queries: inference rows, health
    rows, signal evaluations, alerts and the validation baselines of the versions seen.
    """
    now = now or timezone.now()
    db = telemetry_db()
    resolution = _series_resolution(hours)
    width = timedelta(seconds=int(resolution))
    end = (
        _minute(now) + timedelta(minutes=1)
        if resolution == Resolution.MINUTE
        else (hour_of(now) + timedelta(hours=1))
    )
    start = end - timedelta(hours=hours)
    scope = _scope_filter(level, scope_id)
    window = {"bucket_start__gte": start, "bucket_start__lt": end, "resolution": resolution}
    inference = list(
        InferenceRollup.objects.using(db)
        .filter(organization_id=org.pk, **scope, **window)
        .order_by("bucket_start")
    )
    health_rows = list(
        HealthRollup.objects.using(db)
        .filter(organization_id=org.pk, **scope, **window)
        .order_by("bucket_start")
    )
    evaluations = list(
        SignalEvaluation.objects.using(db)
        .filter(
            organization_id=org.pk,
            **scope,
            window_end__gt=start,
            window_start__lt=end,
        )
        .order_by("window_start", "kind")
    )
    alert_scope = {"site_id": scope_id} if level == Level.SITE else {"device_id": scope_id}
    alerts = list(
        Alert.objects.filter(organization=org, level=level, **alert_scope)
        .filter(Q(status__in=LIVE_ALERT) | Q(resolved_at__gte=start))
        .select_related("model", "device", "site")
        .order_by("-opened_at")[:50]
    )
    baselines = validation_baselines(org=org, shas={row.model_sha256 for row in inference})
    return ScopeHealth(
        level=level,
        window_start=start,
        window_end=end,
        resolution=resolution,
        versions=_version_series(inference, baselines),
        health=_health_series(health_rows, width),
        drift=[
            DriftPoint(
                kind=e.kind,
                window_start=e.window_start,
                window_end=e.window_end,
                evaluated=e.evaluated,
                breached=e.breached,
                value=e.value,
                threshold=e.threshold,
                statistic=e.statistic,
                reason=e.reason,
                model_sha256=e.model_sha256,
            )
            for e in evaluations
        ],
        alerts=alerts,
    )


def _version_series(rows: list, baselines: dict[str, list[int] | None]) -> list[VersionSeries]:
    by_version: dict[str, list] = {}
    for row in rows:
        by_version.setdefault(row.model_sha256, []).append(row)
    series = []
    for sha, members in by_version.items():
        buckets: dict[datetime, list] = {}
        for row in members:
            buckets.setdefault(row.bucket_start, []).append(row)
        times = sorted(buckets)
        merged_buckets = [merge_inference(buckets[t]) for t in times]
        total = merge_inference(members)
        classes = sorted(total["class_counts"], key=lambda name: -total["class_counts"][name])
        labelled = total["labelled"]
        series.append(
            VersionSeries(
                model_sha256=sha,
                model_name=members[0].model_name,
                model_version=members[0].model_version,
                buckets=times,
                counts=[m["count"] for m in merged_buckets],
                p50=[m["latency"].quantile(0.5) for m in merged_buckets],
                p95=[m["latency"].quantile(0.95) for m in merged_buckets],
                p99=[m["latency"].quantile(0.99) for m in merged_buckets],
                low_confidence_share=[
                    low_confidence_share(m["confidence_bins"], LOW_CONFIDENCE)
                    for m in merged_buckets
                ],
                class_mix={
                    name: [m["class_counts"].get(name, 0) for m in merged_buckets]
                    for name in classes
                },
                total=total,
                latency=LatencyFigures.of(total["latency"]),
                time_to_action=LatencyFigures.of(total["time_to_action"]),
                estimated_accuracy=estimated_accuracy(
                    confidence_sum=total["confidence_sum"], count=total["count"]
                ),
                measured_accuracy=total["correct"] / labelled if labelled else None,
                baseline_bins=baselines.get(sha),
            )
        )
    series.sort(key=lambda s: -s.total["count"])
    return series


def _health_series(rows: list, width: timedelta) -> HealthSeries:
    buckets: dict[datetime, list] = {}
    for row in rows:
        buckets.setdefault(row.bucket_start, []).append(row)
    times = sorted(buckets)
    merged = [merge_health(buckets[t]) for t in times]
    offline_periods: list[tuple[datetime, datetime]] = []
    for moment, values in zip(times, merged, strict=True):
        if values["offline_seconds"] > 0 and values["offline_seconds"] >= values["online_seconds"]:
            if offline_periods and offline_periods[-1][1] == moment:
                offline_periods[-1] = (offline_periods[-1][0], moment + width)
            else:
                offline_periods.append((moment, moment + width))
    return HealthSeries(
        buckets=times,
        temperature_mean=[
            v["temperature_sum"] / v["temperature_count"] if v["temperature_count"] else None
            for v in merged
        ],
        temperature_max=[v["temperature_max"] for v in merged],
        power_mean=[
            v["power_sum"] / v["power_count"] if v["power_count"] else None for v in merged
        ],
        throttled_share=[
            v["throttled_samples"] / v["samples"] if v["samples"] else None for v in merged
        ],
        online_share=[share(v["online_seconds"], v["offline_seconds"]) for v in merged],
        delivered=[v["delivered"] for v in merged],
        duplicates=[v["duplicates"] for v in merged],
        total=merge_health(rows),
        offline_periods=offline_periods,
    )


def validation_baselines(*, org: Organization, shas) -> dict[str, list[int] | None]:
    """The confidence histogram each version's validation run stored (None where none did)."""
    from .signals import artifact_profiles

    profiles = artifact_profiles(organization_id=org.pk, shas=shas)
    return {sha: (p.baseline[1] if p.baseline else None) for sha, p in profiles.items()}


# --- Two versions on the same devices ---------------------------------------------------------


@dataclass(frozen=True)
class VersionComparison:
    """Two versions judged on the devices that ran both, over the same window."""

    window_start: datetime
    window_end: datetime
    device_ids: list[int]
    a: VersionSeries | None
    b: VersionSeries | None


def compare_versions(
    *, org: Organization, sha_a: str, sha_b: str, hours: int = 168, now: datetime | None = None
) -> VersionComparison:
    """Device hour rows of both versions; only devices that reported both are compared, so a
    version is not flattered (or blamed) by the sites it happened to run on."""
    now = now or timezone.now()
    end = hour_of(now) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    rows = list(
        InferenceRollup.objects.using(telemetry_db()).filter(
            organization_id=org.pk,
            level=Level.DEVICE,
            resolution=Resolution.HOUR,
            model_sha256__in=[sha_a, sha_b],
            bucket_start__gte=start,
            bucket_start__lt=end,
        )
    )
    devices_a = {row.device_id for row in rows if row.model_sha256 == sha_a}
    devices_b = {row.device_id for row in rows if row.model_sha256 == sha_b}
    shared = devices_a & devices_b
    kept = [row for row in rows if row.device_id in shared]
    baselines = validation_baselines(org=org, shas={sha_a, sha_b})
    series = {s.model_sha256: s for s in _version_series(kept, baselines)}
    return VersionComparison(
        window_start=start,
        window_end=end,
        device_ids=sorted(shared),
        a=series.get(sha_a),
        b=series.get(sha_b),
    )


def versions_seen(*, org: Organization, days: int = 30) -> list[tuple[str, str, str]]:
    """(sha256, model name, version) of every version with rollups in the last ``days``."""
    since = hour_of(timezone.now()) - timedelta(days=days)
    return list(
        InferenceRollup.objects.using(telemetry_db())
        .filter(
            organization_id=org.pk,
            level=Level.ORGANIZATION,
            resolution=Resolution.HOUR,
            bucket_start__gte=since,
        )
        .values_list("model_sha256", "model_name", "model_version")
        .distinct()
        .order_by("model_name", "model_version")
    )


# --- Field figures for planning and rollouts -----------------------------------------------------


@dataclass(frozen=True)
class FieldFigure:
    """A figure measured from gateways' telemetry, with where and when it was measured."""

    value: float
    unit: str
    count: int  # events (or alerts) behind it
    device_count: int
    site_names: tuple[str, ...]
    window_start: datetime
    window_end: datetime
    detail: str = ""


def _first_whole_hour(since: datetime) -> datetime:
    """Field figures are read from hour rollups, so they start at the first whole hour at or
    after ``since``: the hour ``since`` falls in also holds events from before it."""
    hour = hour_of(since)
    return hour if hour == since else hour + timedelta(hours=1)


def _site_rows(org: Organization, since: datetime, shas: Iterable[str] | None, site_ids):
    rows = InferenceRollup.objects.using(telemetry_db()).filter(
        organization_id=org.pk,
        level=Level.SITE,
        resolution=Resolution.HOUR,
        bucket_start__gte=_first_whole_hour(since),
    )
    if shas is not None:
        rows = rows.filter(model_sha256__in=list(shas))
    if site_ids is not None:
        rows = rows.filter(site_id__in=list(site_ids))
    return list(rows)


def _site_names(org: Organization, site_ids) -> tuple[str, ...]:
    return tuple(
        Site.objects.filter(organization=org, pk__in=set(site_ids))
        .order_by("name")
        .values_list("name", flat=True)
    )


def _reporting_devices(
    org: Organization, since: datetime, *, shas: Iterable[str] | None, site_ids, health: bool
) -> int:
    """Devices that reported since ``since``: from the signal cursors (one per device and
    version, or per device for health), which know each scope's span without a scan of rows."""
    cursors = SignalCursor.objects.using(telemetry_db()).filter(
        organization_id=org.pk,
        level=Level.DEVICE,
        latest_data__gt=_first_whole_hour(since),
    )
    if health:
        cursors = cursors.filter(model_sha256="")
    else:
        cursors = cursors.exclude(model_sha256="")
        if shas is not None:
            cursors = cursors.filter(model_sha256__in=list(shas))
    if site_ids is not None:
        cursors = cursors.filter(site_id__in=list(site_ids))
    return cursors.values("device_id").distinct().count()


def _span(rows) -> tuple[datetime, datetime]:
    return (
        min(r.bucket_start for r in rows),
        max(r.bucket_start for r in rows) + timedelta(hours=1),
    )


def field_latency(
    *,
    org: Organization,
    since: datetime,
    shas: Iterable[str] | None = None,
    site_ids: Iterable[int] | None = None,
    measure: str = "time_to_action",
    quantile: float = 0.95,
) -> FieldFigure | None:
    """Field P95 (or another quantile) of time-to-action (capture to UI update, as gateways
    report it) or of inference latency (``measure="latency"``), merged exactly over the sites'
    hour rollups since ``since``; None when nothing was reported."""
    rows = [r for r in _site_rows(org, since, shas, site_ids) if getattr(r, measure)["count"]]
    sketch = LatencySketch.merged(*(LatencySketch.from_dict(getattr(r, measure)) for r in rows))
    if sketch.count == 0:
        return None
    window_start, window_end = _span(rows)
    return FieldFigure(
        value=float(sketch.quantile(quantile)),
        unit="ms",
        count=sketch.count,
        device_count=_reporting_devices(org, since, shas=shas, site_ids=site_ids, health=False),
        site_names=_site_names(org, {r.site_id for r in rows}),
        window_start=window_start,
        window_end=window_end,
        detail=f"P{round(quantile * 100)} of {sketch.count} "
        + ("time-to-action readings" if measure == "time_to_action" else "inferences"),
    )


def field_accuracy(
    *, org: Organization, since: datetime, shas: Iterable[str] | None = None, min_labels: int = 30
) -> FieldFigure | None:
    """Accuracy on the inferences that came back with a label (operator feedback)."""
    rows = [r for r in _site_rows(org, since, shas, None) if r.labelled]
    labelled = sum(r.labelled for r in rows)
    if labelled < min_labels:
        return None
    window_start, window_end = _span(rows)
    return FieldFigure(
        value=sum(r.correct for r in rows) / labelled,
        unit="share",
        count=labelled,
        device_count=_reporting_devices(org, since, shas=shas, site_ids=None, health=False),
        site_names=_site_names(org, {r.site_id for r in rows}),
        window_start=window_start,
        window_end=window_end,
        detail=f"{labelled} labelled inferences",
    )


def _site_health_rows(org: Organization, since: datetime, site_ids=None) -> list:
    rows = HealthRollup.objects.using(telemetry_db()).filter(
        organization_id=org.pk,
        level=Level.SITE,
        resolution=Resolution.HOUR,
        bucket_start__gte=_first_whole_hour(since),
    )
    if site_ids is not None:
        rows = rows.filter(site_id__in=list(site_ids))
    return list(rows)


def field_offline_coverage(
    *, org: Organization, since: datetime, site_ids: Iterable[int] | None = None
) -> FieldFigure | None:
    """Share of the work done while offline that completed: inferences made offline and
    delivered later, against those plus the events gateways had to evict from their buffer.

    None until some device has been offline (there is nothing to judge before that).
    """
    inference = _site_rows(org, since, None, site_ids)
    health = _site_health_rows(org, since, site_ids)
    offline = sum(r.offline for r in inference)
    evicted = _evicted(org, since, site_ids)
    if offline + evicted == 0:
        return None
    totals = merge_health(health)
    online = share(totals["online_seconds"], totals["offline_seconds"])
    window_start, window_end = _span([*inference, *health])
    return FieldFigure(
        value=offline / (offline + evicted),
        unit="share",
        count=offline + evicted,
        device_count=_reporting_devices(org, since, shas=None, site_ids=site_ids, health=True),
        site_names=_site_names(org, {r.site_id for r in inference if r.offline}),
        window_start=window_start,
        window_end=window_end,
        detail=f"{offline} inferences made offline and delivered, {evicted} events evicted; "
        + ("online " + f"{online:.0%} of the time" if online is not None else "no online data"),
    )


def _evicted(org: Organization, since: datetime, site_ids) -> int:
    """Events gateways evicted since ``since``: each device's eviction counter is cumulative
    (per agent installation), so what counts is its rise from hour to hour, measured from the
    last reading before the window; a counter that went down was reset by a reinstall, and
    its new value is all new evictions."""
    start = _first_whole_hour(since)
    rows = HealthRollup.objects.using(telemetry_db()).filter(
        organization_id=org.pk,
        level=Level.DEVICE,
        resolution=Resolution.HOUR,
        bucket_start__gte=start - timedelta(days=1),
        evicted_max__gt=0,
    )
    if site_ids is not None:
        rows = rows.filter(site_id__in=list(site_ids))
    previous: dict[int, int] = {}
    evicted = 0
    for device_id, bucket_start, counter in rows.order_by("device_id", "bucket_start").values_list(
        "device_id", "bucket_start", "evicted_max"
    ):
        before = previous.get(device_id, 0)
        if bucket_start >= start:
            evicted += counter - before if counter >= before else counter
        previous[device_id] = counter
    return evicted


def field_throttling(
    *, org: Organization, since: datetime, site_ids: Iterable[int] | None = None
) -> FieldFigure | None:
    """Share of health samples that reported thermal throttling."""
    health = _site_health_rows(org, since, site_ids)
    totals = merge_health(health)
    if not totals["samples"]:
        return None
    window_start, window_end = _span(health)
    return FieldFigure(
        value=totals["throttled_samples"] / totals["samples"],
        unit="share",
        count=totals["samples"],
        device_count=_reporting_devices(org, since, shas=None, site_ids=site_ids, health=True),
        site_names=_site_names(org, {r.site_id for r in health}),
        window_start=window_start,
        window_end=window_end,
        detail=f"{totals['throttled_samples']} of {totals['samples']} health samples throttled",
    )


def field_time_to_diagnose(
    *, org: Organization, since: datetime, model_ids: Iterable[int] | None = None
) -> FieldFigure | None:
    """Mean hours from an alert opening to someone acknowledging it (the diagnosis starts),
    over the alerts opened since ``since`` and acknowledged; alerts that cleared on their own
    before anyone looked are left out."""
    alerts = Alert.objects.filter(
        organization=org, acknowledged_at__isnull=False, opened_at__gte=since
    )
    if model_ids is not None:
        alerts = alerts.filter(model_id__in=list(model_ids))
    rows = list(alerts.values_list("opened_at", "acknowledged_at", "site_id", "device_id"))
    if not rows:
        return None
    hours = [(ack - opened).total_seconds() / 3600 for opened, ack, _, _ in rows]
    return FieldFigure(
        value=sum(hours) / len(hours),
        unit="h",
        count=len(rows),
        device_count=len({device for *_, device in rows if device}),
        site_names=_site_names(org, {site for _, _, site, _ in rows}),
        window_start=min(opened for opened, *_ in rows),
        window_end=max(ack for _, ack, *_ in rows),
        detail=f"mean time to acknowledge over {len(rows)} alerts",
    )


# --- Signals, for rollouts and pages -------------------------------------------------------------


@dataclass(frozen=True)
class SignalState:
    """The newest judgement of one signal on one scope, and the live alert if there is one."""

    kind: str
    level: int
    site_id: int
    device_id: int
    model_sha256: str
    evaluation: SignalEvaluation | None
    alert: Alert | None

    @property
    def state(self) -> str:
        """ "alert", "breached", "clear" or "not evaluated"."""
        if self.alert is not None:
            return "alert"
        if self.evaluation is None or not self.evaluation.evaluated:
            return "not evaluated"
        return "breached" if self.evaluation.breached else "clear"


def signal_states(
    *,
    org: Organization,
    device_ids: Iterable[int] | None = None,
    model_sha256s: Iterable[str] | None = None,
    since: datetime | None = None,
    kinds: Iterable[str] | None = None,
) -> list[SignalState]:
    """The newest evaluation per (kind, scope, version) since ``since`` (default: a day) and
    the live alerts, for the given devices and versions: what a rollout gate reads. Two
    queries whatever the number of devices (one on evaluations, one on alerts)."""
    since = since or timezone.now() - timedelta(days=1)
    evaluations = SignalEvaluation.objects.using(telemetry_db()).filter(
        organization_id=org.pk, window_end__gte=since
    )
    alerts = Alert.objects.filter(organization=org, status__in=LIVE_ALERT)
    if device_ids is not None:
        device_ids = list(device_ids)
        evaluations = evaluations.filter(level=Level.DEVICE, device_id__in=device_ids)
        alerts = alerts.filter(device_id__in=device_ids)
    if model_sha256s is not None:
        shas = list(model_sha256s)
        evaluations = evaluations.filter(Q(model_sha256__in=shas) | Q(model_sha256=""))
        alerts = alerts.filter(Q(model_sha256__in=shas) | Q(model__isnull=True))
    if kinds is not None:
        evaluations = evaluations.filter(kind__in=list(kinds))
        alerts = alerts.filter(kind__in=list(kinds))
    latest: dict[tuple, SignalEvaluation] = {}
    for row in evaluations.order_by("window_end"):
        latest[(row.kind, row.level, row.site_id, row.device_id, row.model_sha256)] = row
    live = {(a.kind, a.level, a.site_id, a.device_id or 0, a.model_sha256): a for a in alerts}
    keys = set(latest) | set(live)
    return [
        SignalState(
            kind=key[0],
            level=key[1],
            site_id=key[2],
            device_id=key[3],
            model_sha256=key[4],
            evaluation=latest.get(key),
            alert=live.get(key),
        )
        for key in sorted(keys, key=str)
    ]


# --- Alerts ------------------------------------------------------------------------------------


def alerts_for_org(*, org: Organization, status: str | None = None) -> QuerySet[Alert]:
    alerts = Alert.objects.filter(organization=org).select_related(
        "site", "device", "model", "acknowledged_by", "resolved_by"
    )
    if status == "live":
        alerts = alerts.filter(status__in=LIVE_ALERT)
    elif status:
        alerts = alerts.filter(status=status)
    return alerts.order_by("-opened_at")


def alert_for_org(*, org: Organization, pk: int) -> Alert | None:
    return alerts_for_org(org=org).filter(pk=pk).first()


# --- Canary groups (rollout analysis) ----------------------------------------------------------


@dataclass(frozen=True)
class CanaryGroup:
    """A group of devices over a window, merged from their minute rollups: what a rollout's
    canary analysis compares (``inference`` and ``health`` as ``merge_inference`` and
    ``merge_health`` return them; ``devices`` that sent any inference of the versions)."""

    devices: int
    inference: dict
    health: dict


def canary_group(
    *,
    org: Organization,
    device_ids: Iterable[int],
    model_sha256s: Iterable[str],
    since: datetime,
    until: datetime,
) -> CanaryGroup:
    """The devices' inference of the given versions and their health in [since, until), from
    device x minute rollups. Two queries whatever the number of devices."""
    ids = list(device_ids)
    shas = list(model_sha256s)
    if not ids or not shas:
        return CanaryGroup(devices=0, inference=merge_inference([]), health=merge_health([]))
    rows = list(
        InferenceRollup.objects.using(telemetry_db()).filter(
            organization_id=org.pk,
            level=Level.DEVICE,
            resolution=Resolution.MINUTE,
            device_id__in=ids,
            model_sha256__in=shas,
            bucket_start__gte=since,
            bucket_start__lt=until,
        )
    )
    health = HealthRollup.objects.using(telemetry_db()).filter(
        organization_id=org.pk,
        level=Level.DEVICE,
        resolution=Resolution.MINUTE,
        device_id__in=ids,
        bucket_start__gte=since,
        bucket_start__lt=until,
    )
    return CanaryGroup(
        devices=len({row.device_id for row in rows}),
        inference=merge_inference(rows),
        health=merge_health(health),
    )


# --- events by reference (evidence samples name their event by device, epoch and sequence) -------


@dataclass(frozen=True)
class EventReference:
    """What an evidence sample needs of its event; ``kind`` is "inference" or "health"."""

    kind: str
    epoch_id: int
    sequence: int
    timestamp: datetime
    model_name: str = ""
    model_version: str = ""
    model_sha256: str = ""
    predicted_class: str = ""
    confidence: float | None = None


class FoundEvents(dict):
    """(epoch, sequence) → ``EventReference`` of the events stored; ``foreign_epochs`` are the
    asked-for epochs that are another device's."""

    foreign_epochs: set[str]


_REFERENCE_CHUNK = 500


def events_by_reference(
    *, device_id: int, organization_id: int, refs: Iterable[tuple[str, int]]
) -> FoundEvents:
    """The stored events of one device among ``refs`` ((epoch, sequence) pairs).

    ``foreign_epochs`` looks only inside the device's organisation: an epoch of another
    tenant's device is simply unknown here (nothing about other tenants is confirmed)."""
    from .models import DeviceEpoch, EventKey, HealthEvent, InferenceEvent

    db = telemetry_db()
    wanted = list(dict.fromkeys(refs))
    found = FoundEvents()
    found.foreign_epochs = set()
    epochs = {epoch for epoch, _ in wanted}
    if not epochs:
        return found
    own = dict(
        DeviceEpoch.objects.using(db)
        .filter(device_id=device_id, epoch__in=epochs)
        .values_list("epoch", "pk")
    )
    missing = epochs - own.keys()
    if missing:
        found.foreign_epochs = set(
            DeviceEpoch.objects.using(db)
            .filter(epoch__in=missing, organization_id=organization_id)
            .exclude(device_id=device_id)
            .values_list("epoch", flat=True)
        )
    epoch_names = {pk: epoch for epoch, pk in own.items()}
    pairs = [(own[epoch], sequence) for epoch, sequence in wanted if epoch in own]
    for start in range(0, len(pairs), _REFERENCE_CHUNK):
        chunk = pairs[start : start + _REFERENCE_CHUNK]
        wanted_pairs = set(chunk)
        keys = [
            key
            for key in EventKey.objects.using(db).filter(
                device_id=device_id,
                epoch_id__in={e for e, _ in chunk},
                sequence__in={s for _, s in chunk},
            )
            if (key.epoch_id, key.sequence) in wanted_pairs
        ]
        if not keys:
            continue
        moments = {key.timestamp for key in keys}
        common = {
            "device_id": device_id,
            "epoch_id__in": {key.epoch_id for key in keys},
            "sequence__in": {key.sequence for key in keys},
            "timestamp__in": moments,
        }
        for event in InferenceEvent.objects.using(db).filter(**common):
            if (event.epoch_id, event.sequence) in wanted_pairs:
                found[(epoch_names[event.epoch_id], event.sequence)] = EventReference(
                    kind="inference",
                    epoch_id=event.epoch_id,
                    sequence=event.sequence,
                    timestamp=event.timestamp,
                    model_name=event.model_name,
                    model_version=event.model_version,
                    model_sha256=event.model_sha256,
                    predicted_class=event.predicted_class,
                    confidence=event.confidence,
                )
        for epoch_id, sequence, moment in (
            HealthEvent.objects.using(db)
            .filter(**common)
            .values_list("epoch_id", "sequence", "timestamp")
        ):
            if (epoch_id, sequence) in wanted_pairs:
                found.setdefault(
                    (epoch_names[epoch_id], sequence),
                    EventReference(
                        kind="health", epoch_id=epoch_id, sequence=sequence, timestamp=moment
                    ),
                )
    return found


# --- feedback counts for review ------------------------------------------------------------------


@dataclass
class FeedbackDay:
    """One site's inferences of one model version on one UTC day, merged from hour rollups:
    what the review accuracy page sets beside the reviews (thumbs, confidences)."""

    site_id: int
    model_sha256: str
    model_name: str
    model_version: str
    day: datetime  # midnight UTC
    count: int
    confidence_sum: float
    confidence_bins: list[int]
    feedback_up: int
    feedback_down: int


def feedback_days(
    *,
    org: Organization,
    since: datetime,
    site_ids: Iterable[int] | None = None,
    shas: Iterable[str] | None = None,
) -> list[FeedbackDay]:
    """Site hour rollups since ``since`` merged per site, version and UTC day, in one query
    (confidence histograms are summed bin by bin here: they are JSON in the table)."""
    rows = InferenceRollup.objects.using(telemetry_db()).filter(
        organization_id=org.pk,
        level=Level.SITE,
        resolution=Resolution.HOUR,
        bucket_start__gte=_first_whole_hour(since),
    )
    if site_ids is not None:
        rows = rows.filter(site_id__in=list(site_ids))
    if shas is not None:
        rows = rows.filter(model_sha256__in=list(shas))
    merged: dict[tuple[int, str, datetime], FeedbackDay] = {}
    for site_id, sha, name, version, bucket, count, conf_sum, bins, up, down in rows.values_list(
        "site_id",
        "model_sha256",
        "model_name",
        "model_version",
        "bucket_start",
        "count",
        "confidence_sum",
        "confidence_bins",
        "feedback_up",
        "feedback_down",
    ):
        day = hour_of(bucket).replace(hour=0)
        key = (site_id, sha, day)
        entry = merged.get(key)
        if entry is None:
            entry = merged[key] = FeedbackDay(
                site_id, sha, name, version, day, 0, 0.0, [0] * len(bins or []), 0, 0
            )
        entry.count += count
        entry.confidence_sum += conf_sum
        for i, value in enumerate(bins or []):
            if i < len(entry.confidence_bins):
                entry.confidence_bins[i] += int(value)
        entry.feedback_up += up
        entry.feedback_down += down
    return sorted(merged.values(), key=lambda d: (d.site_id, d.model_sha256, d.day))


def awaiting_ingest(*, device_id: int, refs: Iterable[tuple[str, int]]) -> set[tuple[str, int]]:
    """The (epoch, sequence) pairs among ``refs`` that sit in a landed batch of the device not
    yet expanded (durable, waiting for a worker): they exist, they are only not stored yet."""
    from .models import LandedBatch

    wanted = list(dict.fromkeys(refs))
    if not wanted:
        return set()
    batches = list(
        LandedBatch.objects.using(telemetry_db())
        .filter(device_id=device_id, epoch__in={epoch for epoch, _ in wanted})
        .values_list("epoch", "first_sequence", "last_sequence")
    )
    return {
        (epoch, sequence)
        for epoch, sequence in wanted
        if any(e == epoch and first <= sequence <= last for e, first, last in batches)
    }
