"""Alert services: open (or update) on consecutive breaches, acknowledge, resolve.

An alert is keyed by (organisation, kind, level, site, device, model and version): at most one
is open or acknowledged per key (a partial unique constraint), further breaches update it. The
signal
evaluator (``telemetry.signals``) opens and auto-resolves; people acknowledge and resolve. Every
change is audited in its transaction and notified through the organisation's channels
(``telemetry.notifications``) after commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from opshero.actors import Actor
from opshero.errors import Conflict
from opshero.services import record_audit_event

from .audit import TelemetryVerb
from .models import Alert

ALERT_TRANSITIONS: dict[str, set[str]] = {
    Alert.Status.OPEN: {Alert.Status.ACKNOWLEDGED, Alert.Status.RESOLVED},
    Alert.Status.ACKNOWLEDGED: {Alert.Status.RESOLVED},
    Alert.Status.RESOLVED: set(),
}

LIVE = (Alert.Status.OPEN, Alert.Status.ACKNOWLEDGED)


def transition_alert(*, alert: Alert, to: str, **changes: Any) -> Alert:
    """The one place an alert's status changes; refuses a transition the table does not allow."""
    if to not in ALERT_TRANSITIONS[alert.status]:
        raise Conflict(
            f"An alert that is {alert.get_status_display().lower()} cannot become {to}.",
            code="invalid_transition",
        )
    alert.status = to
    for name, value in changes.items():
        setattr(alert, name, value)
    alert.save(update_fields=["status", *changes])
    return alert


def _notify(alert: Alert, event: str) -> None:
    from .notifications import notify_alert

    notify_alert(alert=alert, event=event)


@transaction.atomic
def raise_alert(
    *,
    organization_id: int,
    kind: str,
    level: int,
    site_id: int,
    device_id: int | None,
    model_id: int | None,
    model_sha256: str = "",
    model_version: str = "",
    severity: str = Alert.Severity.CRITICAL,
    summary: str,
    detail: dict[str, Any],
    breach_at: datetime,
    breaches: int,
) -> tuple[Alert, bool]:
    """Open an alert for the key, or update the live one; returns (alert, opened)."""
    key = {
        "organization_id": organization_id,
        "kind": kind,
        "level": level,
        "site_id": site_id,
        "device_id": device_id,
        "model_id": model_id,
        "model_sha256": model_sha256,
    }
    live = Alert.objects.select_for_update().filter(status__in=LIVE, **key).first()
    if live is not None and breach_at <= live.last_breach_at:
        return live, False  # this window was counted already (an evaluator re-run)
    if live is not None:
        live.breaches += 1
        live.last_breach_at = max(live.last_breach_at, breach_at)
        live.summary = summary[:300]
        live.detail = detail
        live.model_version = model_version or live.model_version
        live.save(
            update_fields=[
                "breaches",
                "last_breach_at",
                "summary",
                "detail",
                "model_version",
            ]
        )
        return live, False
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                **key,
                model_version=model_version,
                severity=severity,
                summary=summary[:300],
                detail=detail,
                breaches=breaches,
                first_breach_at=breach_at,
                last_breach_at=breach_at,
                opened_at=timezone.now(),
            )
    except IntegrityError:  # opened by a concurrent evaluator a moment ago: update that one
        live = Alert.objects.select_for_update().get(status__in=LIVE, **key)
        return live, False
    record_audit_event(
        organization=alert.organization,
        actor=Actor.system("signal evaluator"),
        verb=TelemetryVerb.ALERT_OPENED,
        target=alert,
        data={"kind": kind, "breaches": breaches, "detail": detail},
    )
    _notify(alert, "opened")
    return alert, True


@transaction.atomic
def acknowledge_alert(*, alert: Alert, actor: Actor) -> Alert:
    """Someone is on it: records who and when (time to acknowledge)."""
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    transition_alert(
        alert=alert,
        to=Alert.Status.ACKNOWLEDGED,
        acknowledged_at=timezone.now(),
        acknowledged_by=actor.user,
    )
    record_audit_event(
        organization=alert.organization,
        actor=actor,
        verb=TelemetryVerb.ALERT_ACKNOWLEDGED,
        target=alert,
    )
    _notify(alert, "acknowledged")
    return alert


@transaction.atomic
def resolve_alert(*, alert: Alert, actor: Actor, resolution: str = "") -> Alert:
    """Close the alert; by a person (with a note) or by the evaluator when the signal clears."""
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    transition_alert(
        alert=alert,
        to=Alert.Status.RESOLVED,
        resolved_at=timezone.now(),
        resolved_by=actor.user if actor.kind == "user" else None,
        resolution=resolution[:300],
    )
    record_audit_event(
        organization=alert.organization,
        actor=actor,
        verb=TelemetryVerb.ALERT_RESOLVED,
        target=alert,
        data={"resolution": resolution[:300]},
    )
    _notify(alert, "resolved")
    return alert
