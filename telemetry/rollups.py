"""Rollups: stored events summarised per device, site and organisation x minute and hour.

The ingest worker marks the device-hours a batch touched (``RollupMark``, in its own
transaction); this module rebuilds those device-hours *from the stored events* and then the
site and organisation rows above them, and deletes the marks, all in one transaction. A rebuild
is a pure function of what is stored, so:

* late events (a gateway back from a week offline) simply mark old hours again;
* a replayed batch stores nothing new and rebuilds to the same rows;
* a worker that dies half way rolls back with its marks, and the next run does the work.

So counts are never off by a retry, which an incremental ``count = count + n`` would be.

Two phases, each in its own transactions: device-hours (``RollupMark``) are rebuilt from
events in batches, and each marks its site-hour and organisation-hour (``AggregateMark``);
once an organisation has no device-hour left, its marked site-hours are merged from their
device rows, then its organisation-hours from the site rows. So a site-hour is merged once
after all its devices, whatever the batch size. One organisation is rolled up by one worker at a
time (a transaction-scoped advisory lock on PostgreSQL; SQLite serialises writers anyway).

Site and organisation rows are merges of device rows with :func:`merge_inference` and
:func:`merge_health`, the same functions the pages use to merge hours and devices, and the
latency sketches merge exactly (``telemetry.sketch``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

import msgspec
import numpy as np
from django.conf import settings
from django.db import connections, transaction
from django.db.models import Q
from django.utils import timezone

from fleet.models import Device

from .drift import CONFIDENCE_BINS
from .models import (
    AggregateMark,
    HealthEvent,
    HealthRollup,
    InferenceEvent,
    InferenceRollup,
    IngestedBatch,
    Level,
    Resolution,
    RollupMark,
    SignalCursor,
)
from .routers import telemetry_db
from .sketch import LatencySketch

logger = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
_US = 1_000_000


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def sample_gap() -> timedelta:
    """How long one health sample speaks for, at most (silence beyond it is "no data")."""
    return timedelta(seconds=settings.TELEMETRY_HEALTH_SAMPLE_GAP_SECONDS)


# --- Marking (called by the ingest worker, inside its transaction) -------------------------------


def hours_to_mark(*, inference: Iterable[datetime], health: Iterable[datetime], received_at):
    """The hours whose rollups a batch changes.

    Every event's hour; for a health sample near the end of an hour also the next hour (its
    ``online`` state speaks for the start of that hour too); and the hour the batch was
    received in, whose loss accounting counts its duplicates.
    """
    gap = sample_gap()
    hours = {hour_of(received_at)}
    hours.update(hour_of(moment) for moment in inference)
    for moment in health:
        hour = hour_of(moment)
        hours.add(hour)
        if moment + gap >= hour + HOUR:
            hours.add(hour + HOUR)
    return hours


def mark_hours(*, organization_id: int, device_id: int, hours: Iterable[datetime], using: str):
    """Mark device-hours for a rebuild (idempotent: a mark already there stays)."""
    now = timezone.now()
    # An upsert, not "do nothing": updating an existing mark locks it until this ingest
    # commits, so a rollup deleting that mark meanwhile waits, then reads these events. With
    # "do nothing" the rollup could take the mark, miss the uncommitted events, and leave
    # them unmarked for good.
    RollupMark.objects.using(using).bulk_create(
        [
            RollupMark(
                device_id=device_id, hour=hour, organization_id=organization_id, marked_at=now
            )
            for hour in sorted(hours)
        ],
        update_conflicts=True,
        unique_fields=["device_id", "hour"],
        update_fields=["marked_at"],
    )


# --- Writing rows -------------------------------------------------------------------------------

_json = msgspec.json.Encoder()


def _column(value: Any, is_json: bool) -> Any:
    if is_json:
        return _json.encode(value).decode()
    # Level and Resolution are IntegerChoices: psycopg would write an Enum's name.
    return value.value if isinstance(value, Enum) else value


def write_rows(model, rows: Sequence[Any], db: str) -> None:
    """Insert rollup rows: ``COPY`` on PostgreSQL (ORM inserts of JSON-heavy rows run at a few
    thousand a second, ``COPY`` at tens of thousands), ``bulk_create`` elsewhere."""
    if not rows:
        return
    connection = connections[db]
    if connection.vendor != "postgresql":
        model.objects.using(db).bulk_create(rows, batch_size=500)
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    json_fields = {f.attname for f in fields if f.get_internal_type() == "JSONField"}
    names = [f.attname for f in fields]
    table = connection.ops.quote_name(model._meta.db_table)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row([_column(getattr(row, name), name in json_fields) for name in names])


# --- Merging rows (used by the rollup and by the pages) ------------------------------------------


def empty_inference() -> dict[str, Any]:
    return {
        "count": 0,
        "latency": LatencySketch(),
        "time_to_action": LatencySketch(),
        "confidence_bins": [0] * CONFIDENCE_BINS,
        "confidence_sum": 0.0,
        "class_counts": {},
        "labelled": 0,
        "correct": 0,
        "feedback_up": 0,
        "feedback_down": 0,
        "offline": 0,
        "devices": 0,
    }


def merge_inference(rows: Iterable[Any]) -> dict[str, Any]:
    """Merge inference rollup rows (model instances or dicts with the same fields) into one.

    The sketches come back as :class:`LatencySketch` objects; counts are summed exactly.
    """
    total = empty_inference()
    bins = np.zeros(CONFIDENCE_BINS, dtype=np.int64)
    classes: dict[str, int] = defaultdict(int)
    for row in rows:
        get = row.get if isinstance(row, Mapping) else row.__getattribute__
        total["count"] += get("count")
        for name in ("latency", "time_to_action"):
            value = get(name)
            total[name].merge(
                value if isinstance(value, LatencySketch) else LatencySketch.from_dict(value)
            )
        bins += np.asarray(get("confidence_bins"), dtype=np.int64)
        total["confidence_sum"] += get("confidence_sum")
        for name, count in get("class_counts").items():
            classes[name] += count
        for name in ("labelled", "correct", "feedback_up", "feedback_down", "offline", "devices"):
            total[name] += get(name)
    total["confidence_bins"] = [int(count) for count in bins]
    total["class_counts"] = dict(sorted(classes.items()))
    return total


HEALTH_SUMS = (
    "samples",
    "power_count",
    "power_sum",
    "temperature_count",
    "temperature_sum",
    "throttled_samples",
    "online_seconds",
    "offline_seconds",
    "delivered",
    "duplicates",
    "conflicts",
    "devices",
    "throttled_devices",
)
HEALTH_MAXIMA = ("power_max", "temperature_max", "evicted_max", "buffered_max")


def empty_health() -> dict[str, Any]:
    values: dict[str, Any] = dict.fromkeys(HEALTH_SUMS, 0)
    values.update(dict.fromkeys(HEALTH_MAXIMA))
    values["temperature_min"] = None
    return values


def _max(a, b):
    return b if a is None else a if b is None else max(a, b)


def _min(a, b):
    return b if a is None else a if b is None else min(a, b)


def merge_health(rows: Iterable[Any]) -> dict[str, Any]:
    """Merge health rollup rows: sums summed, maxima and minima kept (None = no reading)."""
    total = empty_health()
    for row in rows:
        get = row.get if isinstance(row, Mapping) else row.__getattribute__
        for name in HEALTH_SUMS:
            total[name] += get(name)
        for name in HEALTH_MAXIMA:
            total[name] = _max(total[name], get(name))
        total["temperature_min"] = _min(total["temperature_min"], get("temperature_min"))
    for name in ("evicted_max", "buffered_max"):
        total[name] = total[name] or 0
    return total


# --- Rebuilding device rows from events ----------------------------------------------------------


@dataclass(frozen=True)
class DeviceHour:
    device_id: int
    hour: datetime


def _range_filter(device_hours: Sequence[DeviceHour], *, before=timedelta(0), after=timedelta(0)):
    condition = Q()
    for item in device_hours:
        condition |= Q(
            device_id=item.device_id,
            timestamp__gte=item.hour - before,
            timestamp__lt=item.hour + HOUR + after,
        )
    return condition


def _epoch_us(moments: Sequence[datetime]) -> np.ndarray:
    return np.fromiter(
        (int(moment.timestamp() * _US) for moment in moments), dtype=np.int64, count=len(moments)
    )


def _bucket(us: np.ndarray, width_s: int) -> np.ndarray:
    return us - np.mod(us, width_s * _US)


def _moment(us: int) -> datetime:
    return datetime.fromtimestamp(us / _US, tz=UTC)


@dataclass
class HealthTimeline:
    """One device's health samples, sorted, for "was it online at t" and coverage."""

    us: np.ndarray
    online: list[bool | None]

    def state_at(self, moments_us: np.ndarray, gap_us: int) -> np.ndarray:
        """For each moment: 1 offline, 0 online or unknown (the latest sample within the gap)."""
        if self.us.size == 0:
            return np.zeros(moments_us.size, dtype=np.int64)
        index = np.searchsorted(self.us, moments_us, side="right") - 1
        offline = np.array([flag is False for flag in self.online], dtype=np.int64)
        valid = (index >= 0) & (moments_us - self.us[np.maximum(index, 0)] <= gap_us)
        return np.where(valid, offline[np.maximum(index, 0)], 0)


def _coverage(
    timeline: HealthTimeline, *, start_us: int, end_us: int, gap_us: int
) -> dict[int, list[float]]:
    """Seconds online and offline per minute bucket in [start, end), from the samples."""
    per_minute: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
    samples = timeline.us
    for position, (at, flag) in enumerate(zip(samples.tolist(), timeline.online, strict=True)):
        if flag is None:
            continue
        following = samples[position + 1] if position + 1 < samples.size else at + gap_us
        lo, hi = max(at, start_us), min(at + gap_us, int(following), end_us)
        slot = 1 if flag is False else 0
        while lo < hi:
            minute = lo - lo % (60 * _US)
            upto = min(hi, minute + 60 * _US)
            per_minute[minute][slot] += (upto - lo) / _US
            lo = upto
    return per_minute


_INFERENCE_FIELDS = (
    "device_id",
    "timestamp",
    "model_sha256",
    "model_name",
    "model_version",
    "latency_ms",
    "time_to_action_ms",
    "confidence",
    "predicted_class",
    "label",
    "feedback_thumbs",
)
_HEALTH_FIELDS = (
    "device_id",
    "timestamp",
    "power_w",
    "temperature_c",
    "throttled",
    "online",
    "buffered",
    "evicted",
)


def _inference_rows(
    *, rows: list[tuple], owners: Mapping[int, tuple[int, int]], timelines, gap_us: int, now
) -> list[InferenceRollup]:
    if not rows:
        return []
    columns = list(zip(*rows, strict=True))
    device = np.array(columns[0], dtype=np.int64)
    us = _epoch_us(columns[1])
    sha = columns[2]
    latency = np.array(columns[5], dtype=np.float64)
    tta = np.array([np.nan if v is None else v for v in columns[6]], dtype=np.float64)
    confidence = np.array(columns[7], dtype=np.float64)
    conf_bin = np.minimum((confidence * CONFIDENCE_BINS).astype(np.int64), CONFIDENCE_BINS - 1)
    predicted, label, thumbs = columns[8], columns[9], columns[10]
    offline = np.zeros(len(rows), dtype=np.int64)
    for device_id in set(columns[0]):
        timeline = timelines.get(device_id)
        if timeline is not None:
            where = np.flatnonzero(device == device_id)
            offline[where] = timeline.state_at(us[where], gap_us)

    built: list[InferenceRollup] = []
    for resolution in (Resolution.MINUTE, Resolution.HOUR):
        buckets = _bucket(us, int(resolution))
        groups: dict[tuple[int, str, int], list[int]] = defaultdict(list)
        for index, key in enumerate(zip(device.tolist(), sha, buckets.tolist(), strict=True)):
            groups[key].append(index)
        for (device_id, digest, bucket_us), members in groups.items():
            idx = np.asarray(members, dtype=np.int64)
            first = members[0]
            org_id, site_id = owners[device_id]
            latency_sketch = LatencySketch()
            latency_sketch.add_many(latency[idx])
            tta_values = tta[idx]
            tta_sketch = LatencySketch()
            tta_sketch.add_many(tta_values[~np.isnan(tta_values)])
            classes: dict[str, int] = defaultdict(int)
            labelled = correct = up = down = 0
            for i in members:
                classes[predicted[i]] += 1
                if label[i] is not None:
                    labelled += 1
                    correct += label[i] == predicted[i]
                if thumbs[i] == "up":
                    up += 1
                elif thumbs[i] == "down":
                    down += 1
            built.append(
                InferenceRollup(
                    level=Level.DEVICE,
                    resolution=resolution,
                    bucket_start=_moment(bucket_us),
                    organization_id=org_id,
                    site_id=site_id,
                    device_id=device_id,
                    model_sha256=digest,
                    model_name=columns[3][first],
                    model_version=columns[4][first],
                    count=len(members),
                    latency=latency_sketch.to_dict(),
                    time_to_action=tta_sketch.to_dict(),
                    confidence_bins=np.bincount(conf_bin[idx], minlength=CONFIDENCE_BINS).tolist(),
                    confidence_sum=float(confidence[idx].sum()),
                    class_counts=dict(sorted(classes.items())),
                    labelled=labelled,
                    correct=int(correct),
                    feedback_up=up,
                    feedback_down=down,
                    offline=int(offline[idx].sum()),
                    devices=1,
                    updated_at=now,
                )
            )
    return built


def _health_rows(
    *,
    device_hours: Sequence[DeviceHour],
    health: list[tuple],
    inference_us: Mapping[int, np.ndarray],
    received: Mapping[tuple[int, int], list[int]],
    owners: Mapping[int, tuple[int, int]],
    timelines: Mapping[int, HealthTimeline],
    gap_us: int,
    now,
) -> list[HealthRollup]:
    by_device: dict[int, list[tuple]] = defaultdict(list)
    for row in health:
        by_device[row[0]].append(row)
    built: list[HealthRollup] = []
    for item in device_hours:
        start_us = int(item.hour.timestamp() * _US)
        end_us = start_us + 3600 * _US
        minutes: dict[int, dict[str, Any]] = defaultdict(empty_health)
        bucket = minutes.__getitem__

        for row in by_device.get(item.device_id, ()):
            at = int(row[1].timestamp() * _US)
            if not start_us <= at < end_us:
                continue
            values = bucket(at - at % (60 * _US))
            _, _, power, temperature, throttled, _, buffered, evicted = row
            values["samples"] += 1
            values["delivered"] += 1
            if power is not None:
                values["power_count"] += 1
                values["power_sum"] += power
                values["power_max"] = _max(values["power_max"], power)
            if temperature is not None:
                values["temperature_count"] += 1
                values["temperature_sum"] += temperature
                values["temperature_max"] = _max(values["temperature_max"], temperature)
                values["temperature_min"] = _min(values["temperature_min"], temperature)
            values["throttled_samples"] += int(bool(throttled))
            values["evicted_max"] = _max(values["evicted_max"], evicted)
            values["buffered_max"] = _max(values["buffered_max"], buffered)
        timeline = timelines.get(item.device_id)
        if timeline is not None:
            coverage = _coverage(timeline, start_us=start_us, end_us=end_us, gap_us=gap_us)
            for minute_us, (online_s, offline_s) in coverage.items():
                values = bucket(minute_us)
                values["online_seconds"] += online_s
                values["offline_seconds"] += offline_s
        inference = inference_us.get(item.device_id)
        if inference is not None:
            inside = inference[(inference >= start_us) & (inference < end_us)]
            minute_keys, counts = np.unique(_bucket(inside, 60), return_counts=True)
            for minute_us, count in zip(minute_keys.tolist(), counts.tolist(), strict=True):
                bucket(minute_us)["delivered"] += count
        for minute_us, refused in received.get((item.device_id, start_us), {}).items():
            values = bucket(minute_us)
            values["duplicates"] += refused[0]
            values["conflicts"] += refused[1]
        if not minutes:
            continue
        org_id, site_id = owners[item.device_id]
        for values in minutes.values():
            values["devices"] = 1
            values["throttled_devices"] = int(values["throttled_samples"] > 0)
        hour_values = merge_health(minutes.values())
        hour_values["devices"] = 1
        hour_values["throttled_devices"] = int(hour_values["throttled_samples"] > 0)
        rows = [(Resolution.MINUTE, minute_us, values) for minute_us, values in minutes.items()]
        rows.append((Resolution.HOUR, start_us, hour_values))
        for resolution, bucket_us, values in rows:
            values = dict(values)
            values["evicted_max"] = values["evicted_max"] or 0
            values["buffered_max"] = values["buffered_max"] or 0
            built.append(
                HealthRollup(
                    level=Level.DEVICE,
                    resolution=resolution,
                    bucket_start=_moment(bucket_us),
                    organization_id=org_id,
                    site_id=site_id,
                    device_id=item.device_id,
                    updated_at=now,
                    **values,
                )
            )
    return built


# The fields a merge produces, per rollup model (the rest are the row's key).
_MERGED = {
    InferenceRollup: tuple(empty_inference()),
    HealthRollup: tuple(empty_health()),
}

# --- Site and organisation rows ------------------------------------------------------------------


def _inference_fields(merged: Mapping[str, Any]) -> dict[str, Any]:
    fields = dict(merged)
    fields["latency"] = merged["latency"].to_dict()
    fields["time_to_action"] = merged["time_to_action"].to_dict()
    return fields


def _merged_rows(model, source_rows, *, level: int, organization_id: int, now) -> list:
    """Rows of ``level`` merged from ``source_rows`` (the level below), per bucket (and version)."""
    groups: dict[tuple, list] = defaultdict(list)
    for row in source_rows:
        site_id = row.site_id if level == Level.SITE else 0
        key = (site_id, row.resolution, row.bucket_start)
        if model is InferenceRollup:
            key = (*key, row.model_sha256)
        groups[key].append(row)
    merge = merge_inference if model is InferenceRollup else merge_health
    built = []
    for key, members in groups.items():
        if len(members) == 1:  # sparse traffic: one device in the bucket, nothing to merge
            merged = {name: getattr(members[0], name) for name in _MERGED[model]}
        else:
            merged = merge(members)
            if model is InferenceRollup:
                merged = _inference_fields(merged)
        if model is InferenceRollup:
            merged.update(
                model_sha256=key[3],
                model_name=members[0].model_name,
                model_version=members[0].model_version,
            )
        built.append(
            model(
                level=level,
                resolution=key[1],
                bucket_start=key[2],
                organization_id=organization_id,
                site_id=key[0],
                device_id=0,
                updated_at=now,
                **merged,
            )
        )
    return built


def roll_up_aggregates(*, organization_id: int, limit: int = 50) -> int | None:
    """Merge up to ``limit`` marked site-hours from their device rows, or, once no site-hour
    is marked, up to ``limit`` organisation-hours from their site rows.

    Returns how many were rebuilt; None when another worker holds the organisation.
    """
    db = telemetry_db()
    now = timezone.now()
    with transaction.atomic(using=db):
        if not _lock(organization_id, db):
            return None
        marks = AggregateMark.objects.using(db).filter(organization_id=organization_id)
        site_marks = list(
            marks.filter(site_id__gt=0)
            .order_by("hour", "site_id")
            .values_list("site_id", "hour")[:limit]
        )
        level = Level.SITE if site_marks else Level.ORGANIZATION
        claimed = site_marks or list(
            marks.filter(site_id=0).order_by("hour").values_list("site_id", "hour")[:limit]
        )
        if not claimed:
            return 0
        claim = Q()
        for site_id, hour in claimed:
            claim |= Q(site_id=site_id, hour=hour)
        marks.filter(claim).delete()
        sources = Q()
        for site_id, hour in claimed:
            in_hour = Q(bucket_start__gte=hour, bucket_start__lt=hour + HOUR)
            sources |= (
                in_hour & Q(level=Level.DEVICE, site_id=site_id)
                if level == Level.SITE
                else in_hour & Q(level=Level.SITE)
            )
        written: list = []
        for model in (InferenceRollup, HealthRollup):
            rows = list(
                model.objects.using(db).filter(Q(organization_id=organization_id) & sources)
            )
            target = Q()
            for site_id, hour in claimed:
                target |= Q(bucket_start__gte=hour, bucket_start__lt=hour + HOUR) & (
                    Q(site_id=site_id) if level == Level.SITE else Q()
                )
            model.objects.using(db).filter(
                Q(organization_id=organization_id, level=level) & target
            ).delete()
            built = _merged_rows(model, rows, level=level, organization_id=organization_id, now=now)
            write_rows(model, built, db)
            written.extend(built)
        if level == Level.SITE:
            touch_cursors(organization_id=organization_id, rows=written, db=db)
    return len(claimed)


def _mark_aggregates(*, organization_id: int, site_hours: set[tuple[int, datetime]], db: str):
    hours = {hour for _, hour in site_hours}
    AggregateMark.objects.using(db).bulk_create(
        [
            AggregateMark(organization_id=organization_id, site_id=site_id, hour=hour)
            for site_id, hour in sorted({*site_hours, *((0, hour) for hour in hours)})
        ],
        ignore_conflicts=True,
    )


# --- The rebuild ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RollupOutcome:
    device_hours: int
    inference_events: int
    health_events: int
    seconds: float


def _lock(organization_id: int, db: str) -> bool:
    connection = connections[db]
    if connection.vendor != "postgresql":
        return True
    key = int.from_bytes(
        hashlib.blake2b(f"rollup:{organization_id}".encode(), digest_size=8).digest(),
        "big",
        signed=True,
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [key])
        return bool(cursor.fetchone()[0])


def roll_up_organization(*, organization_id: int, limit: int = 200) -> RollupOutcome | None:
    """Rebuild up to ``limit`` marked device-hours of one organisation, and the rows above them.

    None when another worker is rolling this organisation up right now, or nothing is marked.
    """
    db = telemetry_db()
    started = time.perf_counter()
    now = timezone.now()
    gap = sample_gap()
    gap_us = int(gap.total_seconds() * _US)
    with transaction.atomic(using=db):
        if not _lock(organization_id, db):
            return None
        marks = list(
            RollupMark.objects.using(db)
            .filter(organization_id=organization_id)
            # Oldest hours first: a backfill's site and organisation hours are rebuilt once
            # with all their devices rather than once per device.
            .order_by("hour", "device_id")
            .values_list("device_id", "hour")[:limit]
        )
        if not marks:
            return None
        device_hours = [DeviceHour(device_id, hour) for device_id, hour in marks]
        claimed = Q()
        for item in device_hours:
            claimed |= Q(device_id=item.device_id, hour=item.hour)
        RollupMark.objects.using(db).filter(claimed).delete()

        devices = {item.device_id for item in device_hours}
        sites = dict(Device.objects.filter(pk__in=devices).values_list("pk", "site_id"))
        owners = {device: (organization_id, sites.get(device, 0)) for device in devices}

        inference = list(
            InferenceEvent.objects.using(db)
            .filter(_range_filter(device_hours))
            .order_by()
            .values_list(*_INFERENCE_FIELDS)
        )
        health = list(
            HealthEvent.objects.using(db)
            .filter(_range_filter(device_hours, before=gap, after=gap))
            .order_by("device_id", "timestamp")
            .values_list(*_HEALTH_FIELDS)
        )
        timelines: dict[int, HealthTimeline] = {}
        for device_id in devices:
            samples = [row for row in health if row[0] == device_id]
            if samples:
                timelines[device_id] = HealthTimeline(
                    us=_epoch_us([row[1] for row in samples]),
                    online=[row[5] for row in samples],
                )
        inference_us: dict[int, np.ndarray] = {}
        if inference:
            all_us = _epoch_us([row[1] for row in inference])
            all_devices = np.array([row[0] for row in inference], dtype=np.int64)
            for device_id in devices:
                inference_us[device_id] = all_us[all_devices == device_id]
        received: dict[tuple[int, int], dict[int, list[int]]] = defaultdict(
            lambda: defaultdict(lambda: [0, 0])
        )
        refused = (
            IngestedBatch.objects.using(db)
            .filter(_received_filter(device_hours))
            .filter(Q(duplicates__gt=0) | Q(conflicts__gt=0))
            .values_list("device_id", "received_at", "duplicates", "conflicts")
        )
        for device_id, received_at, duplicates, conflicts in refused:
            at = int(received_at.timestamp() * _US)
            hour_us = at - at % (3600 * _US)
            slot = received[(device_id, hour_us)][at - at % (60 * _US)]
            slot[0] += duplicates
            slot[1] += conflicts

        # A device moved to another site: the old site's rows of these hours still count it,
        # so they are merged again too.
        previous_sites = {
            (site_id, hour_of(bucket_start))
            for site_id, bucket_start in InferenceRollup.objects.using(db)
            .filter(_bucket_filter(device_hours), level=Level.DEVICE, resolution=Resolution.HOUR)
            .values_list("site_id", "bucket_start")
        }
        InferenceRollup.objects.using(db).filter(
            _bucket_filter(device_hours), level=Level.DEVICE
        ).delete()
        HealthRollup.objects.using(db).filter(
            _bucket_filter(device_hours), level=Level.DEVICE
        ).delete()
        device_inference = _inference_rows(
            rows=inference, owners=owners, timelines=timelines, gap_us=gap_us, now=now
        )
        write_rows(InferenceRollup, device_inference, db)
        device_health = _health_rows(
            device_hours=device_hours,
            health=health,
            inference_us=inference_us,
            received=received,
            owners=owners,
            timelines=timelines,
            gap_us=gap_us,
            now=now,
        )
        write_rows(HealthRollup, device_health, db)
        # The site and organisation rows of these hours are merged afterwards, once per
        # site-hour (roll_up_aggregates), not once per batch of devices.
        _mark_aggregates(
            organization_id=organization_id,
            site_hours={(owners[item.device_id][1], item.hour) for item in device_hours}
            | previous_sites,
            db=db,
        )
        touch_cursors(
            organization_id=organization_id,
            rows=[*device_inference, *device_health],
            db=db,
        )
    return RollupOutcome(
        device_hours=len(device_hours),
        inference_events=len(inference),
        health_events=len(health),
        seconds=time.perf_counter() - started,
    )


def touch_cursors(*, organization_id: int, rows: Sequence[Any], db: str) -> None:
    """Widen the signal cursors of the scopes these rows belong to (first and latest data).

    Device inference rows and site inference rows have model signals; device health rows have
    the device's throttling (model ""). Only ever widened, so late data cannot hide newer data.
    """
    spans: dict[tuple[int, int, int, str], list[datetime]] = {}
    for row in rows:
        if row.resolution != Resolution.MINUTE:
            continue
        sha = getattr(row, "model_sha256", "")
        key = (row.level, row.site_id, row.device_id, sha)
        end = row.bucket_start + timedelta(seconds=60)
        span = spans.get(key)
        if span is None:
            spans[key] = [row.bucket_start, end]
        else:
            span[0], span[1] = min(span[0], row.bucket_start), max(span[1], end)
    if not spans:
        return
    existing = {
        (c.level, c.site_id, c.device_id, c.model_sha256): c
        for c in SignalCursor.objects.using(db).filter(
            organization_id=organization_id, device_id__in={key[2] for key in spans}
        )
        if (c.level, c.site_id, c.device_id, c.model_sha256) in spans
    }
    changed, created = [], []
    for key, (first, latest) in spans.items():
        cursor = existing.get(key)
        if cursor is None:
            created.append(
                SignalCursor(
                    organization_id=organization_id,
                    level=key[0],
                    site_id=key[1],
                    device_id=key[2],
                    model_sha256=key[3],
                    first_data=first,
                    latest_data=latest,
                )
            )
        elif first < cursor.first_data or latest > cursor.latest_data:
            cursor.first_data = min(first, cursor.first_data)
            cursor.latest_data = max(latest, cursor.latest_data)
            changed.append(cursor)
    SignalCursor.objects.using(db).bulk_create(created, batch_size=500)
    SignalCursor.objects.using(db).bulk_update(
        changed, ["first_data", "latest_data"], batch_size=500
    )


def _bucket_filter(device_hours: Sequence[DeviceHour]) -> Q:
    condition = Q()
    for item in device_hours:
        condition |= Q(
            device_id=item.device_id,
            bucket_start__gte=item.hour,
            bucket_start__lt=item.hour + HOUR,
        )
    return condition


def _received_filter(device_hours: Sequence[DeviceHour]) -> Q:
    condition = Q()
    for item in device_hours:
        condition |= Q(
            device_id=item.device_id,
            received_at__gte=item.hour,
            received_at__lt=item.hour + HOUR,
        )
    return condition


def roll_up_marked(*, budget_s: float = 20.0, limit: int = 200) -> int:
    """Roll up every organisation with marks until none is left or the budget is spent:
    its marked device-hours first, then the site-hours and organisation-hours above them.

    Returns how many device-hours were rebuilt.
    """
    db = telemetry_db()
    started = time.monotonic()
    done = 0
    while time.monotonic() - started < budget_s:
        organisations = set(
            RollupMark.objects.using(db).values_list("organization_id", flat=True).distinct()
        ) | set(AggregateMark.objects.using(db).values_list("organization_id", flat=True))
        progressed = False
        for organization_id in sorted(organisations):
            outcome = roll_up_organization(organization_id=organization_id, limit=limit)
            if outcome is not None:
                done += outcome.device_hours
                progressed = True
                continue
            if RollupMark.objects.using(db).filter(organization_id=organization_id).exists():
                continue  # held by another worker: its devices come first
            merged = roll_up_aggregates(organization_id=organization_id)
            progressed = progressed or bool(merged)
        if not progressed:
            break
    return done


def pending_marks(*, organization_id: int | None = None) -> int:
    marks = RollupMark.objects.using(telemetry_db())
    if organization_id is not None:
        marks = marks.filter(organization_id=organization_id)
    return marks.count()
