"""Alert notifications: channels (signed webhooks, e-mail) and the outbox that delivers to them.

``notify_alert`` is called by ``telemetry.alerts`` inside the transaction that opens,
acknowledges or resolves an alert: it writes one ``AlertNotification`` per enabled, subscribed
channel and queues its delivery once that transaction commits, so a lost broker message or a
rolled-back alert never sends anything wrong. ``retry_due_notifications`` (beat) re-queues
pending deliveries whose task was lost.

Webhook requests are signed Stripe-style::

    X-OpsHero-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}." + body)>

so a receiver checks the MAC over the exact bytes it got and rejects an old ``t`` (a replay).
The secret is generated here, shown once, and stored only encrypted (AES-256-GCM under a key
derived from ``SIGNING_MASTER_KEY`` with its own HKDF label, the channel id as associated data:
a blob copied into another channel's row does not open).

Retries belong to this module, not to Celery: a delivery that fails in a way worth retrying
(408, 429, 5xx, no connection, a mail server error) stays ``pending`` with ``next_attempt_at``
``ALERT_NOTIFICATION_BACKOFF_SECONDS * 2**(attempts - 1)`` later and its task is queued with
that countdown; after ``ALERT_NOTIFICATION_MAX_ATTEMPTS`` attempts it is ``failed``. Any other
answer (a 4xx, a redirect) fails at once with the status recorded.

Webhook URLs must be http(s). Unless ``ALERT_WEBHOOK_ALLOW_PRIVATE`` is on, a URL whose host is
(or, at delivery, resolves to) a loopback, private, link-local or reserved address is refused
and redirects are never followed. This is a plain check, not a full SSRF defence: the address
is resolved again by the HTTP client, so DNS that changes between the two lookups is not caught.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import os
import secrets
import smtplib
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from opshero.actors import Actor
from opshero.errors import Conflict, InvalidInput
from opshero.models import Organization
from opshero.services import record_audit_event

from .audit import TelemetryVerb
from .models import (
    ALERT_EVENTS,
    Alert,
    AlertNotification,
    NotificationChannel,
    NotificationEvent,
)

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 5
RETRY_STATUSES = frozenset({408, 429})
# A pending delivery is the sweep's once it is this late: its own task had time to run.
SWEEP_GRACE = timedelta(seconds=60)
SWEEP_BATCH = 500
# A task may arrive a little before next_attempt_at (clocks, countdown rounding).
EARLY_TOLERANCE = timedelta(seconds=2)
USER_AGENT = "OpsHero-Webhooks/1"

Status = AlertNotification.Status

# --- the delivery state machine -----------------------------------------------------------------

NOTIFICATION_TRANSITIONS: dict[str, set[str]] = {
    Status.PENDING: {Status.PENDING, Status.SENT, Status.FAILED},  # pending -> pending: a retry
    Status.SENT: set(),
    Status.FAILED: set(),
}


def transition_notification(
    *, notification: AlertNotification, to: str, **changes: Any
) -> AlertNotification:
    """The only place a delivery's status changes; refuses transitions the machine lacks.

    ``changes`` are other fields (``attempts``, ``last_error``, ``next_attempt_at``...) saved
    with the status.
    """
    if "status" in changes:
        raise TypeError("Pass the new status as `to`, not in `changes`.")
    if to not in NOTIFICATION_TRANSITIONS[notification.status]:
        raise Conflict(
            f"Delivery {notification.pk} is {notification.get_status_display().lower()}; it "
            f"cannot become {Status(to).label.lower()}.",
            code="invalid_transition",
        )
    for name, value in changes.items():
        setattr(notification, name, value)
    notification.status = to
    notification.save(update_fields=["status", *changes])
    return notification


# --- the secret at rest -----------------------------------------------------------------------

_BLOB_HEADER = b"OHWS\x01"
_HKDF_INFO = b"opshero webhook-secret v1"


def _aead_key(salt: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_HKDF_INFO).derive(
        settings.SIGNING_MASTER_KEY
    )


def seal_secret(secret: str, *, channel_id: int) -> bytes:
    """Encrypt a webhook secret for the row of ``channel_id``."""
    salt, nonce = os.urandom(16), os.urandom(12)
    sealed = AESGCM(_aead_key(salt)).encrypt(nonce, secret.encode(), str(channel_id).encode())
    return _BLOB_HEADER + salt + nonce + sealed


def open_secret(channel: NotificationChannel) -> bytes:
    """The webhook secret of ``channel`` (bytes, the HMAC key); ValueError if it does not open."""
    blob = bytes(channel.secret_encrypted)
    if not blob.startswith(_BLOB_HEADER):
        raise ValueError("The channel has no sealed secret.")
    body = blob[len(_BLOB_HEADER) :]
    salt, nonce, sealed = body[:16], body[16:28], body[28:]
    try:
        return AESGCM(_aead_key(salt)).decrypt(nonce, sealed, str(channel.pk).encode())
    except InvalidTag as exc:
        raise ValueError("The channel's secret does not open with SIGNING_MASTER_KEY.") from exc


def sign_body(*, secret: bytes, body: bytes, timestamp: int) -> str:
    """The ``X-OpsHero-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


# --- webhook addresses ---------------------------------------------------------------------------


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.is_global and not ip.is_multicast


def validate_webhook_url(url: str) -> str:
    """The URL if it may receive webhooks; InvalidInput (on ``url``) otherwise."""
    parts = urlsplit(url)
    reason = None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        reason = "Use an http:// or https:// URL."
    elif not settings.ALERT_WEBHOOK_ALLOW_PRIVATE:
        host = parts.hostname
        try:
            if host == "localhost" or host.endswith(".localhost") or not _is_public(host):
                reason = "Private, loopback and link-local addresses cannot receive webhooks."
        except ValueError:  # a name, checked again when it is resolved at delivery
            pass
    if reason:
        raise InvalidInput(reason, fields={"url": [reason]})
    return url


def _private_address_of(url: str) -> str | None:
    """A non-public address the URL's host resolves to, or None (also when it does not
    resolve: the request then fails as a connection error and is retried)."""
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError:
        return None
    for info in infos:
        address = info[4][0]
        if not _is_public(address):
            return address
    return None


# --- channels ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedChannel:
    """A new channel and, for a webhook, its secret: shown once, never readable again."""

    channel: NotificationChannel
    secret: str | None


def _clean_events(events) -> list[str]:
    allowed = [str(e) for e in ALERT_EVENTS]
    chosen = [str(e) for e in events]
    unknown = sorted(set(chosen) - set(allowed))
    if unknown or not chosen:
        reason = f"Choose events among {', '.join(allowed)}."
        raise InvalidInput(reason, fields={"events": [reason]})
    return [e for e in allowed if e in chosen]


def _channel_data(channel: NotificationChannel) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": channel.kind,
        "events": channel.events,
        "enabled": channel.enabled,
    }
    if channel.kind == NotificationChannel.Kind.WEBHOOK:
        data["url"] = channel.url
    else:
        data["recipients"] = channel.recipients
    return data


@transaction.atomic
def create_channel(
    *,
    organization: Organization,
    actor: Actor,
    kind: str,
    name: str,
    url: str = "",
    recipients: list[str] | None = None,
    events: list[str] | None = None,
) -> CreatedChannel:
    """Add a webhook (with a new secret, returned once) or an e-mail channel."""
    name = name.strip()
    if NotificationChannel.objects.filter(organization=organization, name=name).exists():
        reason = "A channel of this organisation already has this name."
        raise Conflict(reason, fields={"name": [reason]})
    events = _clean_events(events if events is not None else ALERT_EVENTS)
    secret = None
    if kind == NotificationChannel.Kind.WEBHOOK:
        validate_webhook_url(url)
        recipients = []
    elif kind == NotificationChannel.Kind.EMAIL:
        if not recipients:
            reason = "Give at least one e-mail address."
            raise InvalidInput(reason, fields={"recipients": [reason]})
        url = ""
    else:
        raise InvalidInput(f"Unknown channel kind {kind!r}.", fields={"kind": ["Unknown kind."]})
    channel = NotificationChannel.objects.create(
        organization=organization,
        kind=kind,
        name=name,
        url=url,
        recipients=list(recipients or []),
        events=events,
        created_by=actor.user,
    )
    if kind == NotificationChannel.Kind.WEBHOOK:
        secret = f"whsec_{secrets.token_urlsafe(32)}"
        channel.secret_encrypted = seal_secret(secret, channel_id=channel.pk)
        channel.save(update_fields=["secret_encrypted"])
    record_audit_event(
        organization=organization,
        actor=actor,
        verb=TelemetryVerb.CHANNEL_CREATED,
        target=channel,
        data=_channel_data(channel),
    )
    return CreatedChannel(channel=channel, secret=secret)


@transaction.atomic
def update_channel(
    *,
    channel: NotificationChannel,
    actor: Actor,
    enabled: bool | None = None,
    events: list[str] | None = None,
) -> NotificationChannel:
    """Switch a channel on or off, or change the events it receives."""
    before = _channel_data(channel)
    fields = []
    if enabled is not None and enabled != channel.enabled:
        channel.enabled = enabled
        fields.append("enabled")
    if events is not None:
        channel.events = _clean_events(events)
        fields.append("events")
    if fields:
        channel.save(update_fields=fields)
        record_audit_event(
            organization=channel.organization,
            actor=actor,
            verb=TelemetryVerb.CHANNEL_UPDATED,
            target=channel,
            data={"before": before, "after": _channel_data(channel)},
        )
    return channel


@transaction.atomic
def delete_channel(*, channel: NotificationChannel, actor: Actor) -> None:
    """Remove a channel and its delivery history."""
    record_audit_event(
        organization=channel.organization,
        actor=actor,
        verb=TelemetryVerb.CHANNEL_DELETED,
        target=channel,
        data=_channel_data(channel),
    )
    channel.delete()


@transaction.atomic
def send_test_notification(*, channel: NotificationChannel, actor: Actor) -> AlertNotification:
    """Queue a delivery of a synthetic ``test`` event to one channel (enabled or not)."""
    notification = AlertNotification.objects.create(
        channel=channel, alert=None, event=NotificationEvent.TEST
    )
    record_audit_event(
        organization=channel.organization,
        actor=actor,
        verb=TelemetryVerb.CHANNEL_TESTED,
        target=channel,
        data={"delivery": notification.pk},
    )
    _enqueue_on_commit(notification.pk)
    return notification


# --- the outbox ------------------------------------------------------------------------------


def notify_alert(*, alert: Alert, event: str) -> int:
    """Write one delivery per enabled channel of the alert's organisation subscribed to
    ``event`` ("opened", "acknowledged" or "resolved"); each is queued after the caller's
    commit. Returns how many were written. Call it inside the alert's transaction."""
    if event not in {str(e) for e in ALERT_EVENTS}:
        raise ValueError(f"Unknown alert event {event!r}.")
    channels = NotificationChannel.objects.filter(
        organization_id=alert.organization_id, enabled=True
    ).only("pk", "events")
    now = timezone.now()
    rows = [
        AlertNotification(
            alert=alert, channel=channel, event=event, next_attempt_at=now, created_at=now
        )
        for channel in channels
        if channel.subscribes_to(event)
    ]
    if not rows:
        return 0
    with transaction.atomic():
        created = AlertNotification.objects.bulk_create(rows)
        for notification in created:
            _enqueue_on_commit(notification.pk)
    return len(created)


def _enqueue_on_commit(notification_id: int, countdown: float | None = None) -> None:
    transaction.on_commit(lambda: enqueue_delivery(notification_id, countdown=countdown))


def enqueue_delivery(notification_id: int, *, countdown: float | None = None) -> bool:
    """Publish the delivery task; False (logged) when the broker cannot take it: the row is
    durable and the sweep queues it again."""
    from .tasks import deliver_notification_task

    try:
        deliver_notification_task.apply_async((notification_id,), countdown=countdown, retry=False)
    except Exception:  # noqa: BLE001 - any broker failure; the delivery is durable already
        logger.warning("could not queue delivery %s; the sweep will take it", notification_id)
        return False
    return True


def retry_due_notifications() -> int:
    """Queue again the pending deliveries well past their ``next_attempt_at`` (a lost task, a
    worker that died mid-delivery). Safe to run at any time and twice: delivery locks the row
    and does nothing for a row that is not due or no longer pending."""
    cutoff = timezone.now() - SWEEP_GRACE
    due = list(
        AlertNotification.objects.filter(status=Status.PENDING, next_attempt_at__lte=cutoff)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for notification_id in due:
        enqueue_delivery(notification_id)
    return len(due)


# --- delivery ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """What one try gave: ``outcome`` is "sent", "retry" or "failed"."""

    outcome: str
    response_status: int | None = None
    error: str = ""


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _alert_url(alert: Alert) -> str | None:
    try:
        path = reverse(
            "telemetry:alert-detail",
            kwargs={"org": alert.organization.slug, "alert_id": alert.pk},
        )
    except NoReverseMatch:
        return None
    return f"{settings.PUBLIC_BASE_URL}{path}"


def notification_payload(notification: AlertNotification) -> dict[str, Any]:
    """The JSON document a webhook receives (and the e-mail describes)."""
    channel = notification.channel
    alert = notification.alert
    if alert is None:  # "send test"
        alert_data: dict[str, Any] = {
            "id": None,
            "kind": "test",
            "severity": Alert.Severity.WARNING.value,
            "status": Alert.Status.OPEN.value,
            "summary": f"Test notification to {channel.name}",
            "site": None,
            "device": None,
            "model": None,
            "version": "",
            "opened_at": _iso(notification.created_at),
            "acknowledged_at": None,
            "resolved_at": None,
            "detail": {},
            "url": None,
        }
    else:
        alert_data = {
            "id": alert.pk,
            "kind": alert.kind,
            "severity": alert.severity,
            "status": alert.status,
            "summary": alert.summary,
            "site": {"id": alert.site_id, "name": alert.site.name},
            "device": (
                {"id": alert.device_id, "name": alert.device.name} if alert.device_id else None
            ),
            "model": {"id": alert.model_id, "name": alert.model.name} if alert.model_id else None,
            "version": alert.model_version,
            "opened_at": _iso(alert.opened_at),
            "acknowledged_at": _iso(alert.acknowledged_at),
            "resolved_at": _iso(alert.resolved_at),
            "detail": alert.detail,
            "url": _alert_url(alert),
        }
    return {
        "event": notification.event,
        "delivery": notification.pk,
        "organization": channel.organization.slug,
        "alert": alert_data,
    }


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a 3xx is then an HTTPError: the receiver's answer, not followed


_opener = urllib.request.build_opener(_NoRedirects)


def _post_webhook(notification: AlertNotification, payload: dict[str, Any]) -> Attempt:
    channel = notification.channel
    if not settings.ALERT_WEBHOOK_ALLOW_PRIVATE:
        try:
            validate_webhook_url(channel.url)
        except InvalidInput as exc:
            return Attempt("failed", error=exc.message)
        address = _private_address_of(channel.url)
        if address:
            return Attempt("failed", error=f"Refused: the host resolves to {address}.")
    try:
        secret = open_secret(channel)
    except ValueError as exc:
        return Attempt("failed", error=str(exc))
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked to be http(s)
        channel.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-OpsHero-Event": notification.event,
            "X-OpsHero-Delivery": str(notification.pk),
            "X-OpsHero-Signature": sign_body(secret=secret, body=body, timestamp=int(time.time())),
        },
    )
    try:
        with _opener.open(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
            return Attempt("sent", response_status=response.status)
    except urllib.error.HTTPError as exc:
        code = exc.code
        retry = code in RETRY_STATUSES or code >= 500
        return Attempt("retry" if retry else "failed", response_status=code, error=f"HTTP {code}")
    except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets
        reason = getattr(exc, "reason", None) or exc
        return Attempt("retry", error=f"Connection failed: {reason}"[:500])


def _send_email(notification: AlertNotification, payload: dict[str, Any]) -> Attempt:
    alert = payload["alert"]
    summary = " ".join(str(alert["summary"]).split())
    lines = [
        f"Alert {notification.get_event_display().lower()}: {summary}",
        "",
        f"Organisation: {payload['organization']}",
        f"Severity: {alert['severity']}",
        f"Status: {alert['status']}",
        f"Site: {alert['site']['name'] if alert['site'] else '-'}",
        f"Device: {alert['device']['name'] if alert['device'] else '-'}",
        f"Model: {alert['model']['name'] if alert['model'] else '-'} {alert['version']}".rstrip(),
        f"Opened: {alert['opened_at']}",
    ]
    if alert["url"]:
        lines += ["", alert["url"]]
    try:
        send_mail(
            subject=f"[OpsHero] {summary}",
            message="\n".join(lines),
            from_email=None,
            recipient_list=list(notification.channel.recipients),
            fail_silently=False,
        )
    except (smtplib.SMTPException, OSError) as exc:
        return Attempt("retry", error=f"Mail not sent: {exc}"[:500])
    return Attempt("sent")


def _attempt(notification: AlertNotification) -> Attempt:
    payload = notification_payload(notification)
    if notification.channel.kind == NotificationChannel.Kind.WEBHOOK:
        return _post_webhook(notification, payload)
    return _send_email(notification, payload)


def retry_delay(attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failed try."""
    return settings.ALERT_NOTIFICATION_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)


def deliver_notification(*, notification_id: int) -> str | None:
    """Try one delivery once; returns its status afterwards, or None when there was nothing to
    do (gone, not pending, not due yet, or being delivered by another worker).

    The row stays locked while the request runs (at most a few timeouts of
    ``WEBHOOK_TIMEOUT_SECONDS``), so a duplicate task skips it rather than sending twice.
    """
    with transaction.atomic():
        notification = (
            AlertNotification.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("channel__organization", "alert__site", "alert__device", "alert__model")
            .filter(pk=notification_id, status=Status.PENDING)
            .first()
        )
        now = timezone.now()
        if notification is None or notification.next_attempt_at > now + EARLY_TOLERANCE:
            return None
        if not notification.channel.enabled and notification.event != NotificationEvent.TEST:
            transition_notification(
                notification=notification,
                to=Status.FAILED,
                last_error="The channel was disabled before delivery.",
            )
            return notification.status
        attempt = _attempt(notification)
        attempts = notification.attempts + 1
        done = timezone.now()
        changes: dict[str, Any] = {
            "attempts": attempts,
            "response_status": attempt.response_status,
            "last_error": attempt.error[:500],
        }
        if attempt.outcome == "sent":
            transition_notification(
                notification=notification, to=Status.SENT, sent_at=done, **changes
            )
        elif attempt.outcome == "retry" and attempts < settings.ALERT_NOTIFICATION_MAX_ATTEMPTS:
            delay = retry_delay(attempts)
            transition_notification(
                notification=notification,
                to=Status.PENDING,
                next_attempt_at=done + timedelta(seconds=delay),
                **changes,
            )
            _enqueue_on_commit(notification.pk, countdown=delay)
        else:
            transition_notification(notification=notification, to=Status.FAILED, **changes)
        return notification.status
