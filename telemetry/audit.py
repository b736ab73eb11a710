"""Audit verbs of telemetry: alerts and their notification channels."""

from __future__ import annotations

from opshero.audit import AuditVerb


class TelemetryVerb(AuditVerb):
    """What ``telemetry.alerts`` and ``telemetry.notifications`` record; values are stored as
    they are."""

    CHANNEL_CREATED = "notification_channel.created"
    CHANNEL_UPDATED = "notification_channel.updated"
    CHANNEL_DELETED = "notification_channel.deleted"
    CHANNEL_TESTED = "notification_channel.tested"
    ALERT_OPENED = "alert.opened"
    ALERT_ACKNOWLEDGED = "alert.acknowledged"
    ALERT_RESOLVED = "alert.resolved"
