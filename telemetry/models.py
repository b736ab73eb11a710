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

from django.conf import settings
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


class DataSent(models.Model):
    """What left a site, by UTC day and kind: the bytes and records the server received from its
    gateways (telemetry batches as sent, compressed or not; evidence samples as uploaded).

    The seed's "measure what data leaves the device/gateway": counted on arrival, whatever became
    of the content (a retried batch is counted again: it did cross the network twice).
    """

    telemetry_store = True

    class Kind(models.TextChoices):
        EVENTS = "events", "Telemetry events"
        EVIDENCE = "evidence", "Evidence samples"

    organization_id = models.BigIntegerField()
    site_id = models.BigIntegerField()
    day = models.DateField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    records = models.PositiveBigIntegerField(default=0)
    bytes = models.PositiveBigIntegerField(default=0)
    requests = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["site_id", "day", "kind"], name="telemetry_sent_unique"
            ),
        ]
        indexes = [models.Index(fields=["organization_id", "day"], name="telemetry_sent_org_day")]

    def __str__(self) -> str:
        return f"site {self.site_id} {self.day} {self.kind}: {self.bytes} bytes"


# --- Rollups ------------------------------------------------------------------------------------


class Level(models.IntegerChoices):
    """What a rollup row summarises: one device, one site (its devices merged), or the fleet."""

    DEVICE = 0, "device"
    SITE = 1, "site"
    ORGANIZATION = 2, "organisation"


class Resolution(models.IntegerChoices):
    """A rollup bucket's width, in seconds."""

    MINUTE = 60, "minute"
    HOUR = 3600, "hour"


class RollupMark(models.Model):
    """A device-hour whose rollups must be rebuilt: written by the ingest worker in its
    transaction, deleted by the rollup worker in the transaction that rebuilds them.

    Rollups are rebuilt from the stored events rather than incremented, so a rebuild is a pure
    function of what is stored: late events, replays and a worker that dies half way can only
    cause another rebuild, never a count that is off (``telemetry.rollups``).
    """

    telemetry_store = True

    pk = models.CompositePrimaryKey("device_id", "hour")
    device_id = models.BigIntegerField()
    hour = models.DateTimeField()
    organization_id = models.BigIntegerField()
    marked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["marked_at"], name="telemetry_mark_at")]

    def __str__(self) -> str:
        return f"device {self.device_id} hour {self.hour:%Y-%m-%d %H:00}"


class AggregateMark(models.Model):
    """A site-hour (``site_id`` > 0) or an organisation-hour (``site_id`` 0) whose merged rows
    must be rebuilt from the rows below: written when device rows of that hour are rebuilt,
    deleted in the transaction that rebuilds them. Separate from ``RollupMark`` so a site-hour
    is merged once after all its devices, not once per batch of devices."""

    telemetry_store = True

    pk = models.CompositePrimaryKey("organization_id", "site_id", "hour")
    organization_id = models.BigIntegerField()
    site_id = models.BigIntegerField()
    hour = models.DateTimeField()
    marked_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"organisation {self.organization_id} site {self.site_id} {self.hour:%H:00}"


class InferenceRollup(models.Model):
    """Inference events of one bucket (minute or hour) for one device, site or organisation,
    and one model version (by artifact digest).

    ``latency`` and ``time_to_action`` are :class:`telemetry.sketch.LatencySketch` dicts, so
    percentiles of any union of rows are exact merges. ``confidence_bins`` counts top-1
    confidence in the validation baseline's bins (``telemetry.drift.CONFIDENCE_BINS`` equal bins
    over [0, 1]), so the low-confidence share for a model's threshold is read from it;
    ``class_counts`` maps predicted class name to count. Site and organisation rows are merges
    of the device rows (``site_id`` / ``device_id`` are 0 where they do not apply).
    """

    telemetry_store = True

    level = models.PositiveSmallIntegerField(choices=Level.choices)
    resolution = models.PositiveIntegerField(choices=Resolution.choices)
    bucket_start = models.DateTimeField()
    organization_id = models.BigIntegerField()
    site_id = models.BigIntegerField()
    device_id = models.BigIntegerField()
    model_sha256 = models.CharField(max_length=64)
    model_name = models.CharField(max_length=200)
    model_version = models.CharField(max_length=100)
    count = models.PositiveIntegerField()
    latency = models.JSONField()
    time_to_action = models.JSONField()
    confidence_bins = models.JSONField()
    confidence_sum = models.FloatField()
    class_counts = models.JSONField()
    labelled = models.PositiveIntegerField()
    correct = models.PositiveIntegerField()
    feedback_up = models.PositiveIntegerField()
    feedback_down = models.PositiveIntegerField()
    # Inferences made while the device's latest health sample said it was offline.
    offline = models.PositiveIntegerField()
    # Site and organisation rows: how many devices contributed.
    devices = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "level",
                    "organization_id",
                    "site_id",
                    "device_id",
                    "model_sha256",
                    "resolution",
                    "bucket_start",
                ],
                name="telemetry_inference_rollup_unique",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization_id", "level", "resolution", "bucket_start"],
                name="telemetry_ir_org",
            ),
            models.Index(
                fields=["site_id", "level", "resolution", "bucket_start"], name="telemetry_ir_site"
            ),
            models.Index(
                fields=["device_id", "level", "resolution", "bucket_start"],
                name="telemetry_ir_device",
            ),
        ]

    def __str__(self) -> str:
        return f"inference rollup {Level(self.level).label} {self.bucket_start:%Y-%m-%d %H:%M}"


class HealthRollup(models.Model):
    """Health and delivery of one bucket for one device, site or organisation.

    Means are ``*_sum / *_count`` (a sensor a device lacks is not counted). Time online and
    offline comes from the health samples' ``online`` flag, each sample covering the time to
    the next one up to ``TELEMETRY_HEALTH_SAMPLE_GAP_SECONDS``; silence beyond that is neither.
    Loss accounting: ``delivered`` events stored with a timestamp in the bucket, ``duplicates``
    and ``conflicts`` refused from batches received in it, ``evicted_max`` the highest eviction
    counter a device reported (the gateway's own count of events it had to drop).
    """

    telemetry_store = True

    level = models.PositiveSmallIntegerField(choices=Level.choices)
    resolution = models.PositiveIntegerField(choices=Resolution.choices)
    bucket_start = models.DateTimeField()
    organization_id = models.BigIntegerField()
    site_id = models.BigIntegerField()
    device_id = models.BigIntegerField()
    samples = models.PositiveIntegerField()
    power_count = models.PositiveIntegerField()
    power_sum = models.FloatField()
    power_max = models.FloatField(null=True)
    temperature_count = models.PositiveIntegerField()
    temperature_sum = models.FloatField()
    temperature_max = models.FloatField(null=True)
    temperature_min = models.FloatField(null=True)
    throttled_samples = models.PositiveIntegerField()
    online_seconds = models.FloatField()
    offline_seconds = models.FloatField()
    delivered = models.PositiveIntegerField()
    duplicates = models.PositiveIntegerField()
    conflicts = models.PositiveIntegerField()
    evicted_max = models.BigIntegerField()
    buffered_max = models.BigIntegerField()
    # Site and organisation rows: devices that reported, and how many of them were throttled.
    devices = models.PositiveIntegerField(default=1)
    throttled_devices = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "level",
                    "organization_id",
                    "site_id",
                    "device_id",
                    "resolution",
                    "bucket_start",
                ],
                name="telemetry_health_rollup_unique",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization_id", "level", "resolution", "bucket_start"],
                name="telemetry_hr_org",
            ),
            models.Index(
                fields=["site_id", "level", "resolution", "bucket_start"], name="telemetry_hr_site"
            ),
            models.Index(
                fields=["device_id", "level", "resolution", "bucket_start"],
                name="telemetry_hr_device",
            ),
        ]

    def __str__(self) -> str:
        return f"health rollup {Level(self.level).label} {self.bucket_start:%Y-%m-%d %H:%M}"


# --- Signals and alerts -------------------------------------------------------------------------


class SignalKind(models.TextChoices):
    CLASS_DRIFT = "class_drift", "Class-mix drift"
    CONFIDENCE_DRIFT = "confidence_drift", "Confidence drift"
    LATENCY_BUDGET = "latency_budget", "Latency budget"
    THROTTLING = "throttling", "Thermal throttling"


class SignalEvaluation(models.Model):
    """One closed window of one signal for one device or site (and model, where it has one).

    ``evaluated`` is False when the window could not be judged (too few events, no baseline):
    such a window neither opens nor resolves an alert, and pages say "not evaluated".
    ``statistics`` holds every figure computed (JS, PSI, Wasserstein, chi-square p, P95, ...),
    ``reason`` says in words why it breached or was not evaluated.
    """

    telemetry_store = True

    organization_id = models.BigIntegerField()
    kind = models.CharField(max_length=32, choices=SignalKind.choices)
    level = models.PositiveSmallIntegerField(choices=Level.choices)
    site_id = models.BigIntegerField()
    device_id = models.BigIntegerField()
    model_sha256 = models.CharField(max_length=64)  # "" for device-wide signals (throttling)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    events = models.PositiveIntegerField()
    evaluated = models.BooleanField()
    breached = models.BooleanField()
    warning = models.BooleanField(default=False)
    value = models.FloatField(null=True)
    threshold = models.FloatField(null=True)
    statistic = models.CharField(max_length=40)
    statistics = models.JSONField(default=dict)
    baseline = models.CharField(max_length=40)  # "validation", "first days", ""
    reason = models.CharField(max_length=300)
    evaluated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "level", "site_id", "device_id", "model_sha256", "window_start"],
                name="telemetry_signal_window_unique",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization_id", "kind", "window_end"], name="telemetry_signal_org"
            ),
            models.Index(fields=["device_id", "window_end"], name="telemetry_signal_device"),
            models.Index(fields=["site_id", "window_end"], name="telemetry_signal_site"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.window_start:%Y-%m-%d %H:%M}"


class SignalCursor(models.Model):
    """Where the signal evaluator stands for one scope (device or site, and model version).

    The rollup worker keeps ``first_data`` / ``latest_data`` (the span its rows cover) as it
    writes rows; the evaluator judges the closed windows between ``evaluated_until`` and
    ``latest_data``, so it only reads scopes with new data, and a week of backfill is judged
    window by window as if it had arrived live. ``streaks`` counts consecutive breaches per
    signal kind. ``model_sha256`` is "" for a device's health (throttling).
    """

    telemetry_store = True

    organization_id = models.BigIntegerField()
    level = models.PositiveSmallIntegerField(choices=Level.choices)
    site_id = models.BigIntegerField()
    device_id = models.BigIntegerField()
    model_sha256 = models.CharField(max_length=64)
    first_data = models.DateTimeField()
    latest_data = models.DateTimeField()
    evaluated_until = models.DateTimeField(null=True)
    streaks = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization_id", "level", "site_id", "device_id", "model_sha256"],
                name="telemetry_signal_cursor_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"cursor {Level(self.level).label} {self.site_id}/{self.device_id}"


class SignalPolicy(models.Model):
    """A model's signal thresholds; a model without one uses ``telemetry.drift.DEFAULT_POLICY``."""

    model = models.OneToOneField(
        "modelregistry.MlModel", on_delete=models.CASCADE, related_name="signal_policy"
    )
    window_minutes = models.PositiveIntegerField(default=60)
    min_events = models.PositiveIntegerField(default=500)
    large_window_events = models.PositiveIntegerField(default=1000)
    js_threshold = models.FloatField(default=0.1)
    psi_warn = models.FloatField(default=0.1)
    psi_alert = models.FloatField(default=0.25)
    wasserstein_threshold = models.FloatField(default=0.1)
    chi2_p_value = models.FloatField(default=0.05)
    consecutive_breaches = models.PositiveIntegerField(default=2)
    low_confidence = models.FloatField(default=0.5)
    baseline_days = models.PositiveIntegerField(default=1)
    throttle_share = models.FloatField(default=0.5)
    temperature_rise_c = models.FloatField(default=10.0)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"signal policy of {self.model}"

    def clean(self) -> None:
        # The evaluator builds telemetry.drift.SignalPolicyValues from this row; refuse here
        # what it would refuse there (e.g. PSI warn above PSI alert), field by field.
        from django.core.exceptions import ValidationError

        from .drift import SignalPolicyValues

        try:
            SignalPolicyValues.from_object(self)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


class Alert(models.Model):
    """One condition that needs a person: open until acknowledged, then resolved.

    At most one alert is open or acknowledged per (device or site, model version, kind); further
    breaches update it. ``time_to_acknowledge`` and ``time_to_resolve`` are the seed's "time to
    diagnose inference issues in the field". Only ``telemetry.alerts.transition_alert`` changes
    ``status``.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    class Severity(models.TextChoices):
        WARNING = "warning", "Warning"
        CRITICAL = "critical", "Critical"

    organization = models.ForeignKey(
        "opshero.Organization", on_delete=models.CASCADE, related_name="alerts"
    )
    kind = models.CharField(max_length=32, choices=SignalKind.choices)
    level = models.PositiveSmallIntegerField(choices=Level.choices)
    site = models.ForeignKey("fleet.Site", on_delete=models.CASCADE, related_name="alerts")
    device = models.ForeignKey(
        "fleet.Device", on_delete=models.CASCADE, null=True, blank=True, related_name="alerts"
    )
    model = models.ForeignKey(
        "modelregistry.MlModel",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="alerts",
    )
    model_sha256 = models.CharField(max_length=64, blank=True)
    model_version = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.CRITICAL)
    summary = models.CharField(max_length=300)
    detail = models.JSONField(default=dict)
    breaches = models.PositiveIntegerField(default=0)
    first_breach_at = models.DateTimeField()
    last_breach_at = models.DateTimeField()
    opened_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolution = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "kind", "level", "site", "device", "model", "model_sha256"],
                condition=models.Q(status__in=["open", "acknowledged"]),
                nulls_distinct=False,
                name="telemetry_one_live_alert",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "status", "opened_at"], name="alert_org_status"),
        ]

    def __str__(self) -> str:
        return self.summary

    @property
    def time_to_acknowledge(self):
        return self.acknowledged_at - self.opened_at if self.acknowledged_at else None

    @property
    def time_to_resolve(self):
        return self.resolved_at - self.opened_at if self.resolved_at else None


# --- Notifications ------------------------------------------------------------------------------


class NotificationEvent(models.TextChoices):
    """What happened to an alert; ``test`` is the synthetic event of "send test"."""

    OPENED = "opened", "Opened"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"
    TEST = "test", "Test"


ALERT_EVENTS = [
    NotificationEvent.OPENED,
    NotificationEvent.ACKNOWLEDGED,
    NotificationEvent.RESOLVED,
]


def _all_alert_events() -> list[str]:
    return [str(event) for event in ALERT_EVENTS]


class NotificationChannel(models.Model):
    """Where an organisation's alert events are sent: a signed webhook or an e-mail list.

    A webhook's signing secret is generated by ``telemetry.notifications`` and stored only
    encrypted (AES-256-GCM under ``SIGNING_MASTER_KEY``, the channel's id as associated data);
    it is shown to the admin once, when the channel is created.
    """

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        EMAIL = "email", "E-mail"

    organization = models.ForeignKey(
        "opshero.Organization", on_delete=models.CASCADE, related_name="notification_channels"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=120)
    url = models.URLField(max_length=500, blank=True)
    secret_encrypted = models.BinaryField(blank=True, default=b"", editable=False)
    recipients = models.JSONField(default=list, blank=True)  # e-mail addresses
    events = models.JSONField(default=_all_alert_events)  # subscribed NotificationEvent values
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], name="telemetry_channel_unique_name"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def subscribes_to(self, event: str) -> bool:
        return event == NotificationEvent.TEST or event in self.events


class AlertNotification(models.Model):
    """One delivery of one alert event to one channel (the outbox).

    Written in the transaction that changes the alert, delivered by a task after the commit.
    ``pending`` until it is sent or given up (``failed``); a retry keeps it pending with a later
    ``next_attempt_at``. Only ``telemetry.notifications.transition_notification`` changes
    ``status``. ``alert`` is empty for the synthetic event of "send test".
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    alert = models.ForeignKey(
        Alert, on_delete=models.CASCADE, null=True, blank=True, related_name="notifications"
    )
    channel = models.ForeignKey(
        NotificationChannel, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=16, choices=NotificationEvent.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="notification_due"),
            models.Index(fields=["channel", "created_at"], name="notification_channel_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_display()} to {self.channel_id} ({self.status})"
