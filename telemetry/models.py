"""Telemetry storage: the landing table, the dedup ledger, raw events and the ingest log.

Every model here except ``RetentionPolicy``-like settings lives in the *telemetry store*
(``telemetry_store = True``): the ``telemetry`` database when ``TELEMETRY_DATABASE_URL`` is
set (``telemetry.routers.TelemetryRouter``), the default database otherwise. So nothing here
has a foreign key to the fleet or the tenants: they hold plain ids (``organization_id``,
``device_id``) and pages join by id (the ids are indexed).

The two raw event tables are range-partitioned by event ``timestamp`` on PostgreSQL (one
partition a day, ``telemetry.partitions``); on SQLite they are plain tables. A partitioned
table's unique key must contain its partition key, so the event tables carry no unique key
of their own: exactly-once is held by ``EventKey``, the ledger of (device, epoch, sequence),
which is not partitioned by time (docs/architecture.md, "Telemetry").
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class LandedBatch(models.Model):
    """A verified batch, written by the web process before it answers 200, one row a batch.

    ``payload`` is the accepted events as a gzip-compressed batch (protocol.telemetry's
    format): the gateway's own bytes when every event was held, else the held events
    re-encoded (refused events are not kept). An ingest worker expands it into events and
    deletes the row in the same transaction; a row still here is work not yet done (the sweep
    picks it up).
    """

    telemetry_store = True

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization_id = models.BigIntegerField(db_index=True)
    device_id = models.BigIntegerField()
    epoch = models.CharField(max_length=64)
    epoch_started_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    event_count = models.PositiveIntegerField()
    first_sequence = models.BigIntegerField()
    last_sequence = models.BigIntegerField()
    payload = models.BinaryField()
    # A batch that keeps failing (a bug, not an outage) is retried a bounded number of times
    # and then held here, visible on the ingest page, never silently dropped.
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["received_at"]

    def __str__(self) -> str:
        return f"batch {self.id} of device {self.device_id} ({self.event_count} events)"


class DeviceEpoch(models.Model):
    """One installation of a device's agent: its sequence numbers count from here."""

    telemetry_store = True

    organization_id = models.BigIntegerField()
    device_id = models.BigIntegerField()
    epoch = models.CharField(max_length=64)
    started_at = models.DateTimeField()
    first_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device_id", "epoch"], name="device_epoch_unique"),
        ]

    def __str__(self) -> str:
        return f"device {self.device_id} epoch {self.epoch}"


class EventKey(models.Model):
    """The dedup ledger: (device, epoch, sequence) is stored once, whatever the event type.

    ``digest`` is 64 bits of BLAKE2b over the event's canonical encoding, so a replay (same
    content) is told from a reused sequence with different content (a conflict: refused and
    counted, the stored event kept). ``timestamp`` is the event's, for retention.
    """

    telemetry_store = True

    pk = models.CompositePrimaryKey("device_id", "epoch_id", "sequence")
    device_id = models.BigIntegerField()
    epoch_id = models.BigIntegerField()
    sequence = models.BigIntegerField()
    digest = models.BigIntegerField()
    organization_id = models.BigIntegerField()
    timestamp = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["timestamp"], name="telemetry_eventkey_ts")]

    def __str__(self) -> str:
        return f"{self.device_id}/{self.epoch_id}/{self.sequence}"


class InferenceEvent(models.Model):
    """One inference on a device (protocol.telemetry.InferenceEvent), as stored."""

    telemetry_store = True
    partitioned = True

    id = models.BigAutoField(primary_key=True)
    organization_id = models.BigIntegerField()
    device_id = models.BigIntegerField()
    epoch_id = models.BigIntegerField()
    sequence = models.BigIntegerField()
    timestamp = models.DateTimeField()
    model_name = models.CharField(max_length=200)
    model_version = models.CharField(max_length=100)
    model_sha256 = models.CharField(max_length=64)
    latency_ms = models.FloatField()
    time_to_action_ms = models.FloatField(null=True)
    confidence = models.FloatField()
    predicted_class = models.CharField(max_length=200)
    # NULL is "not sent", which differs from an empty string on the wire.
    label = models.CharField(max_length=200, null=True)  # noqa: DJ001
    feedback_thumbs = models.CharField(max_length=4, null=True)  # noqa: DJ001
    feedback_reason = models.CharField(max_length=500, null=True)  # noqa: DJ001
    shape_bucket = models.CharField(max_length=100)
    workflow_fields = models.JSONField(default=dict)

    class Meta:
        indexes = [
            models.Index(fields=["device_id", "timestamp"], name="telemetry_inf_device_ts"),
            models.Index(fields=["organization_id", "timestamp"], name="telemetry_inf_org_ts"),
        ]

    def __str__(self) -> str:
        return f"inference {self.device_id}/{self.epoch_id}/{self.sequence}"


class HealthEvent(models.Model):
    """A device health snapshot (protocol.telemetry.HealthEvent), as stored."""

    telemetry_store = True
    partitioned = True

    id = models.BigAutoField(primary_key=True)
    organization_id = models.BigIntegerField()
    device_id = models.BigIntegerField()
    epoch_id = models.BigIntegerField()
    sequence = models.BigIntegerField()
    timestamp = models.DateTimeField()
    cpu_utilisation = models.FloatField(null=True)
    gpu_utilisation = models.FloatField(null=True)
    npu_utilisation = models.FloatField(null=True)
    power_w = models.FloatField(null=True)
    temperature_c = models.FloatField(null=True)
    throttled = models.BooleanField()
    memory_mb = models.FloatField()
    queue_depth = models.BigIntegerField()
    online = models.BooleanField(null=True)
    buffered = models.BigIntegerField()
    evicted = models.BigIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["device_id", "timestamp"], name="telemetry_health_device_ts"),
            models.Index(fields=["organization_id", "timestamp"], name="telemetry_health_org_ts"),
        ]

    def __str__(self) -> str:
        return f"health {self.device_id}/{self.epoch_id}/{self.sequence}"


class IngestedBatch(models.Model):
    """What became of each landed batch once a worker expanded it: the ingest log.

    ``lag`` (landed → visible) is ``ingested_at - received_at``; the ingest page shows its
    percentiles. ``conflicts`` counts events whose (device, epoch, sequence) was already
    stored with different content. Kept for ``TELEMETRY_INGEST_LOG_DAYS``.
    """

    telemetry_store = True

    batch_id = models.UUIDField(unique=True)
    organization_id = models.BigIntegerField()
    device_id = models.BigIntegerField()
    epoch_id = models.BigIntegerField()
    received_at = models.DateTimeField()
    ingested_at = models.DateTimeField(db_index=True)
    events = models.PositiveIntegerField()
    stored = models.PositiveIntegerField()
    duplicates = models.PositiveIntegerField()
    conflicts = models.PositiveIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["organization_id", "ingested_at"], name="telemetry_ib_org_at"),
        ]

    def __str__(self) -> str:
        return f"ingested {self.batch_id}"

    @property
    def lag_seconds(self) -> float:
        return (self.ingested_at - self.received_at).total_seconds()
