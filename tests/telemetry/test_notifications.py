"""Alert notifications: the outbox, signed webhooks to a real local server, e-mail, the page."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from opshero.actors import Actor
from opshero.errors import Conflict, InvalidInput
from opshero.models import AuditEvent
from opshero.roles import Role
from telemetry import notifications
from telemetry.audit import TelemetryVerb
from telemetry.models import Alert, AlertNotification, Level, NotificationChannel, SignalKind
from tests.factories import make_device, make_site

SYSTEM = Actor.system("tests")
Status = AlertNotification.Status


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fast_local_delivery(settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on 127.0.0.1
    settings.ALERT_NOTIFICATION_BACKOFF_SECONDS = 0.01
    settings.ALERT_NOTIFICATION_MAX_ATTEMPTS = 6


@pytest.fixture
def queued(monkeypatch):
    """The deliveries queued for a worker, (id, countdown), instead of publishing them."""
    sent: list[tuple[int, float | None]] = []

    def record(notification_id: int, *, countdown: float | None = None) -> bool:
        sent.append((notification_id, countdown))
        return True

    monkeypatch.setattr(notifications, "enqueue_delivery", record)
    return sent


class Receiver:
    """A real HTTP server on 127.0.0.1: answers the queued statuses in turn (then 200) and
    keeps every request it got."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                # self.headers looks names up case-insensitively, as HTTP does
                receiver.requests.append({"path": self.path, "headers": self.headers, "body": body})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/opshero"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def alert(world):
    site = make_site(world.a.org, "Dock 4")
    now = timezone.now()
    return Alert.objects.create(
        organization=world.a.org,
        kind=SignalKind.LATENCY_BUDGET,
        level=Level.DEVICE,
        site=site,
        device=make_device(world.a.org, site=site, name="cam-7"),
        summary="p95 latency over budget on cam-7",
        detail={"p95_ms": 81.5, "budget_ms": 50},
        first_breach_at=now,
        last_breach_at=now,
    )


def _webhook(org, url, **values):
    return notifications.create_channel(
        organization=org,
        actor=SYSTEM,
        kind="webhook",
        name=values.pop("name", "Hook"),
        url=url,
        **values,
    )


def _notify(alert, event, capture) -> list[AlertNotification]:
    with capture(execute=True):
        count = notifications.notify_alert(alert=alert, event=event)
    made = list(AlertNotification.objects.filter(alert=alert, event=event).order_by("pk"))
    assert len(made) == count
    return made


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- webhooks ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_webhook_receives_a_signed_json_post(
    world, alert, receiver, queued, django_capture_on_commit_callbacks
):
    made = _webhook(world.a.org, receiver.url)
    [notification] = _notify(alert, "opened", django_capture_on_commit_callbacks)
    assert queued == [(notification.pk, None)]  # queued only once the alert committed

    assert notifications.deliver_notification(notification_id=notification.pk) == Status.SENT

    [request] = receiver.requests
    headers, body = request["headers"], request["body"]
    assert request["path"] == "/hooks/opshero"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-OpsHero-Event"] == "opened"
    assert headers["X-OpsHero-Delivery"] == str(notification.pk)
    parts = dict(item.split("=", 1) for item in headers["X-OpsHero-Signature"].split(","))
    expected = hmac.new(
        made.secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    assert abs(int(parts["t"]) - time.time()) < 60
    payload = json.loads(body)
    assert payload["event"] == "opened"
    assert payload["organization"] == "acme"
    assert payload["delivery"] == notification.pk
    assert payload["alert"]["id"] == alert.pk
    assert payload["alert"]["summary"] == "p95 latency over budget on cam-7"
    assert payload["alert"]["site"]["name"] == "Dock 4"
    assert payload["alert"]["device"]["name"] == "cam-7"
    assert payload["alert"]["detail"] == {"p95_ms": 81.5, "budget_ms": 50}
    assert payload["alert"]["opened_at"] == alert.opened_at.isoformat()
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == (Status.SENT, 1)
    assert notification.response_status == 200
    assert notification.sent_at is not None


@pytest.mark.django_db
def test_a_500_is_retried_with_backoff_and_then_sent(
    world, alert, receiver, queued, django_capture_on_commit_callbacks
):
    _webhook(world.a.org, receiver.url)
    receiver.statuses = [500]
    [notification] = _notify(alert, "opened", django_capture_on_commit_callbacks)
    queued.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert notifications.deliver_notification(notification_id=notification.pk) == "pending"
    notification.refresh_from_db()
    assert (notification.attempts, notification.response_status) == (1, 500)
    assert notification.last_error == "HTTP 500"
    assert notification.next_attempt_at > timezone.now() - timedelta(seconds=1)
    assert queued == [(notification.pk, 0.01)]  # the backoff of the first retry

    assert notifications.deliver_notification(notification_id=notification.pk) == Status.SENT
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == (Status.SENT, 2)
    assert notification.response_status == 200
    assert notification.last_error == ""
    assert [r["headers"]["X-OpsHero-Delivery"] for r in receiver.requests] == [
        str(notification.pk)
    ] * 2


def test_the_backoff_doubles(settings):
    settings.ALERT_NOTIFICATION_BACKOFF_SECONDS = 30
    assert [notifications.retry_delay(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]


@pytest.mark.django_db
def test_a_404_fails_at_once(world, alert, receiver, queued, django_capture_on_commit_callbacks):
    _webhook(world.a.org, receiver.url)
    receiver.statuses = [404]
    [notification] = _notify(alert, "opened", django_capture_on_commit_callbacks)
    queued.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert notifications.deliver_notification(notification_id=notification.pk) == "failed"
    notification.refresh_from_db()
    assert (notification.attempts, notification.response_status) == (1, 404)
    assert notification.last_error == "HTTP 404"
    assert queued == []  # no retry
    assert notifications.deliver_notification(notification_id=notification.pk) is None
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_a_refused_connection_is_retried_until_the_attempts_run_out(
    world, alert, queued, settings, django_capture_on_commit_callbacks
):
    settings.ALERT_NOTIFICATION_MAX_ATTEMPTS = 2
    _webhook(world.a.org, f"http://127.0.0.1:{_free_port()}/nobody")
    [notification] = _notify(alert, "opened", django_capture_on_commit_callbacks)
    queued.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert notifications.deliver_notification(notification_id=notification.pk) == "pending"
    notification.refresh_from_db()
    assert notification.attempts == 1
    assert notification.response_status is None
    assert notification.last_error.startswith("Connection failed")
    assert queued == [(notification.pk, 0.01)]

    with django_capture_on_commit_callbacks(execute=True):
        assert notifications.deliver_notification(notification_id=notification.pk) == "failed"
    notification.refresh_from_db()
    assert notification.attempts == 2
    assert len(queued) == 1  # given up: not queued again


@pytest.mark.django_db
def test_a_delivery_not_yet_due_is_left_alone(world, alert, receiver, queued):
    channel = _webhook(world.a.org, receiver.url).channel
    notification = AlertNotification.objects.create(
        alert=alert,
        channel=channel,
        event="opened",
        next_attempt_at=timezone.now() + timedelta(minutes=5),
    )
    assert notifications.deliver_notification(notification_id=notification.pk) is None
    assert receiver.requests == []


@pytest.mark.django_db
def test_private_addresses_are_refused_unless_allowed(world, alert, receiver, settings, queued):
    channel = _webhook(world.a.org, receiver.url).channel
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = False
    for url in ("http://127.0.0.1:8000/x", "http://10.1.2.3/x", "http://localhost/x"):
        with pytest.raises(InvalidInput) as refused:
            _webhook(world.a.org, url, name=f"Bad {url}")
        assert "url" in refused.value.fields
    with pytest.raises(InvalidInput):
        _webhook(world.a.org, "ftp://hooks.example.com/x", name="ftp")

    # A channel made while it was allowed is refused at delivery, without a request.
    notification = AlertNotification.objects.create(alert=alert, channel=channel, event="opened")
    assert notifications.deliver_notification(notification_id=notification.pk) == "failed"
    notification.refresh_from_db()
    assert "Private" in notification.last_error
    assert receiver.requests == []


# --- e-mail -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_email_channel_sends_through_the_configured_backend(
    world, alert, queued, django_capture_on_commit_callbacks
):
    notifications.create_channel(
        organization=world.a.org,
        actor=SYSTEM,
        kind="email",
        name="On-call",
        recipients=["oncall@acme.example", "lead@acme.example"],
    )
    [notification] = _notify(alert, "acknowledged", django_capture_on_commit_callbacks)

    assert notifications.deliver_notification(notification_id=notification.pk) == Status.SENT
    [message] = mail.outbox
    assert message.subject == "[OpsHero] p95 latency over budget on cam-7"
    assert message.to == ["oncall@acme.example", "lead@acme.example"]
    assert "Alert acknowledged" in message.body
    assert "Dock 4" in message.body


# --- who is notified -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_only_enabled_channels_subscribed_to_the_event_get_a_delivery(
    world, alert, queued, django_capture_on_commit_callbacks
):
    opened_only = _webhook(
        world.a.org, "https://a.example/1", name="Opened only", events=["opened"]
    ).channel
    disabled = _webhook(world.a.org, "https://a.example/2", name="Disabled").channel
    notifications.update_channel(channel=disabled, actor=SYSTEM, enabled=False)
    everything = _webhook(world.a.org, "https://a.example/3", name="Everything").channel
    _webhook(world.b.org, "https://b.example/1", name="Other tenant")

    resolved = _notify(alert, "resolved", django_capture_on_commit_callbacks)
    assert [n.channel_id for n in resolved] == [everything.pk]
    opened = _notify(alert, "opened", django_capture_on_commit_callbacks)
    assert sorted(n.channel_id for n in opened) == sorted([opened_only.pk, everything.pk])
    assert sorted(pk for pk, _ in queued) == sorted(n.pk for n in resolved + opened)

    with pytest.raises(ValueError):
        notifications.notify_alert(alert=alert, event="exploded")


@pytest.mark.django_db
def test_the_sweep_queues_again_only_overdue_pending_deliveries(world, alert, queued):
    channel = _webhook(world.a.org, "https://a.example/1").channel
    past = timezone.now() - timedelta(minutes=10)
    lost = AlertNotification.objects.create(
        alert=alert, channel=channel, event="opened", next_attempt_at=past
    )
    AlertNotification.objects.create(alert=alert, channel=channel, event="acknowledged")
    sent = AlertNotification.objects.create(
        alert=alert, channel=channel, event="resolved", next_attempt_at=past
    )
    notifications.transition_notification(notification=sent, to=Status.SENT)

    assert notifications.retry_due_notifications() == 1
    assert queued == [(lost.pk, None)]


@pytest.mark.django_db
def test_a_finished_delivery_cannot_move_again(world, alert):
    channel = _webhook(world.a.org, "https://a.example/1").channel
    notification = AlertNotification.objects.create(alert=alert, channel=channel, event="opened")
    notifications.transition_notification(notification=notification, to=Status.FAILED)
    with pytest.raises(Conflict):
        notifications.transition_notification(notification=notification, to=Status.PENDING)


# --- the secret ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_secret_is_stored_encrypted_and_bound_to_its_channel(world):
    made = _webhook(world.a.org, "https://a.example/1")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret_encrypted FROM telemetry_notificationchannel WHERE id = %s",
            [made.channel.pk],
        )
        raw = bytes(cursor.fetchone()[0])
    assert made.secret.startswith("whsec_")
    assert made.secret.encode() not in raw
    assert raw.startswith(b"OHWS\x01")
    channel = NotificationChannel.objects.get(pk=made.channel.pk)
    assert notifications.open_secret(channel) == made.secret.encode()

    other = _webhook(world.a.org, "https://a.example/2", name="Other").channel
    other.secret_encrypted = raw  # copied into another row: does not open
    with pytest.raises(ValueError):
        notifications.open_secret(other)


# --- audit --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_channel_changes_are_audited(world):
    channel = _webhook(world.a.org, "https://a.example/1").channel
    notifications.update_channel(channel=channel, actor=SYSTEM, enabled=False)
    notifications.update_channel(channel=channel, actor=SYSTEM, enabled=False)  # no change
    notifications.delete_channel(channel=channel, actor=SYSTEM)
    verbs = list(
        AuditEvent.objects.filter(organization=world.a.org, target_type__startswith="telemetry.")
        .order_by("pk")
        .values_list("verb", flat=True)
    )
    assert verbs == [
        TelemetryVerb.CHANNEL_CREATED,
        TelemetryVerb.CHANNEL_UPDATED,
        TelemetryVerb.CHANNEL_DELETED,
    ]
    assert not NotificationChannel.objects.filter(organization=world.a.org).exists()


# --- the page -----------------------------------------------------------------------------------


def _page(world):
    return reverse("telemetry:notifications", kwargs={"org": world.a.org.slug})


WEBHOOK_FORM = {
    "kind": "webhook",
    "name": "PagerBridge",
    "url": "https://hooks.example.com/opshero",
    "events": ["opened", "resolved"],
}


@pytest.mark.django_db
def test_a_viewer_sees_channels_but_cannot_change_them(world, client):
    channel = _webhook(world.a.org, "https://a.example/1", name="Ops hook").channel
    client.force_login(world.a.user(Role.VIEWER))

    page = client.get(_page(world))
    assert page.status_code == 200
    assert "Ops hook" in page.content.decode()
    assert 'data-testid="channel-add"' not in page.content.decode()
    assert client.post(_page(world), WEBHOOK_FORM).status_code == 404
    toggle = reverse(
        "telemetry:notification-channel-toggle",
        kwargs={"org": world.a.org.slug, "channel_id": channel.pk},
    )
    assert client.post(toggle).status_code == 403
    assert list(NotificationChannel.objects.values_list("name", "enabled")) == [("Ops hook", True)]


@pytest.mark.django_db
def test_an_admin_adds_a_webhook_and_sees_its_secret_once(world, client):
    client.force_login(world.a.user(Role.ADMIN))

    answer = client.post(_page(world), WEBHOOK_FORM)
    assert answer.status_code == 200
    channel = NotificationChannel.objects.get(organization=world.a.org, name="PagerBridge")
    assert channel.events == ["opened", "resolved"]
    assert channel.created_by == world.a.user(Role.ADMIN)
    secret = notifications.open_secret(channel).decode()
    assert 'data-testid="channel-secret-value">' + secret in answer.content.decode()

    again = client.get(_page(world))
    assert "PagerBridge" in again.content.decode()
    assert secret not in again.content.decode()


@pytest.mark.django_db
def test_a_bad_channel_form_keeps_what_was_typed(world, client):
    client.force_login(world.a.user(Role.ADMIN))
    answer = client.post(_page(world), {**WEBHOOK_FORM, "url": "", "name": "Kept name"})
    assert answer.status_code == 422
    assert "A webhook needs a URL." in answer.content.decode()
    assert 'value="Kept name"' in answer.content.decode()
    assert not NotificationChannel.objects.exists()


@pytest.mark.django_db
def test_an_admin_adds_an_email_channel_toggles_and_deletes_it(world, client):
    client.force_login(world.a.user(Role.ADMIN))
    data = {"kind": "email", "name": "Mail", "recipients": "a@x.example, b@x.example"}
    data["events"] = ["opened", "acknowledged", "resolved"]
    assert client.post(_page(world), data).status_code == 302
    channel = NotificationChannel.objects.get(name="Mail")
    assert channel.recipients == ["a@x.example", "b@x.example"]
    assert bytes(channel.secret_encrypted) == b""

    kwargs = {"org": world.a.org.slug, "channel_id": channel.pk}
    assert client.post(reverse("telemetry:notification-channel-toggle", kwargs=kwargs)).status_code
    channel.refresh_from_db()
    assert channel.enabled is False
    client.post(reverse("telemetry:notification-channel-delete", kwargs=kwargs))
    assert not NotificationChannel.objects.filter(pk=channel.pk).exists()


@pytest.mark.django_db
def test_send_test_delivers_a_synthetic_event(
    world, client, receiver, queued, django_capture_on_commit_callbacks
):
    channel = _webhook(world.a.org, receiver.url).channel
    client.force_login(world.a.user(Role.ADMIN))
    url = reverse(
        "telemetry:notification-channel-test",
        kwargs={"org": world.a.org.slug, "channel_id": channel.pk},
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url).status_code == 302
    [notification] = AlertNotification.objects.filter(channel=channel)
    assert (notification.event, notification.alert) == ("test", None)
    assert queued == [(notification.pk, None)]

    assert notifications.deliver_notification(notification_id=notification.pk) == Status.SENT
    payload = json.loads(receiver.requests[0]["body"])
    assert payload["event"] == "test"
    assert payload["alert"]["id"] is None
    assert receiver.requests[0]["headers"]["X-OpsHero-Event"] == "test"


@pytest.mark.django_db
def test_another_organisation_never_sees_the_channels(world, client):
    channel = _webhook(world.a.org, "https://a.example/1", name="Acme secret hook").channel
    client.force_login(world.b.user(Role.ADMIN))
    own = client.get(reverse("telemetry:notifications", kwargs={"org": world.b.org.slug}))
    assert own.status_code == 200
    assert "Acme secret hook" not in own.content.decode()
    assert client.get(_page(world)).status_code == 404
    for name in ("test", "toggle", "delete"):
        url = reverse(
            f"telemetry:notification-channel-{name}",
            kwargs={"org": world.b.org.slug, "channel_id": channel.pk},
        )
        assert client.post(url).status_code == 404, name
    channel.refresh_from_db()
    assert channel.enabled is True
    assert not AlertNotification.objects.exists()
