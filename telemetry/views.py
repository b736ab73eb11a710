"""Telemetry pages: the ingest page (lag, backlog, held batches, the last day's totals), the
alert notification channels, fleet health (fleet, site, device, two versions compared) and
alerts."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from fleet import selectors as fleet_selectors
from opshero.actors import Actor
from opshero.errors import DomainError
from opshero.form_flow import handle_form_post
from opshero.htmx import render_page
from opshero.roles import Action
from opshero.tenancy import org_view

from . import alerts as alerts_service
from . import charts, notifications, selectors
from .forms import AlertAcknowledgeForm, AlertResolveForm, ChannelForm
from .models import Alert, Level, NotificationChannel, SignalKind

POLL_SECONDS = 5


@require_GET
@never_cache
@org_view()
def ingest(request: HttpRequest) -> HttpResponse:
    """The ingest page; an HTMX poll gets only the panel, refreshed every few seconds."""
    context = {
        "overview": selectors.ingest_overview(org=request.org),
        "max_attempts": settings.TELEMETRY_MAX_INGEST_ATTEMPTS,
        "poll_seconds": POLL_SECONDS,
    }
    return render_page(
        request,
        "telemetry/ingest.html",
        context,
        fragment="telemetry/partials/ingest_panel.html",
    )


# --- alert notifications -------------------------------------------------------------------------


def _notifications_page(request, *, form, created=None, status: int = 200) -> HttpResponse:
    context = {
        "channels": selectors.notification_channels_for_org(org=request.org),
        "deliveries": selectors.recent_notifications_for_org(org=request.org),
        "form": form,
        "created": created,
        "can_manage": request.membership.can(Action.MANAGE_NOTIFICATIONS),
        "max_attempts": settings.ALERT_NOTIFICATION_MAX_ATTEMPTS,
    }
    return render(request, "telemetry/notifications.html", context, status=status)


@never_cache
@org_view()
def notification_channels(request: HttpRequest) -> HttpResponse:
    """Channels and their recent deliveries; admins add webhooks and e-mail channels.

    A new webhook's secret is rendered in the answer to the POST itself (no redirect, nothing
    kept in the session): it is shown this once and cannot be read back afterwards.
    """
    can_manage = request.membership.can(Action.MANAGE_NOTIFICATIONS)
    form = ChannelForm(request.POST or None) if can_manage else None
    if request.method == "POST":
        return handle_form_post(
            request,
            action=Action.MANAGE_NOTIFICATIONS,
            form=form,
            perform=lambda: notifications.create_channel(
                organization=request.org, actor=Actor.from_request(request), **form.cleaned_data
            ),
            success_message=lambda made: f"Channel {made.channel.name} was added.",
            redirect_to=lambda made: (
                _notifications_page(request, form=ChannelForm(), created=made)
                if made.secret
                else _notifications_url(request)
            ),
            render_invalid=lambda status: _notifications_page(request, form=form, status=status),
        )
    return _notifications_page(request, form=form)


def _notifications_url(request) -> str:
    return reverse("telemetry:notifications", kwargs={"org": request.org.slug})


def _channel_or_404(request, channel_id: int) -> NotificationChannel:
    channel = selectors.notification_channel_for_org(org=request.org, pk=channel_id)
    if channel is None:
        raise Http404("No such channel.")
    return channel


@require_POST
@org_view(Action.MANAGE_NOTIFICATIONS)
def notification_channel_toggle(request: HttpRequest, channel_id: int) -> HttpResponse:
    """Switch a channel off, or on again."""
    channel = _channel_or_404(request, channel_id)
    notifications.update_channel(
        channel=channel, actor=Actor.from_request(request), enabled=not channel.enabled
    )
    state = "enabled" if channel.enabled else "disabled"
    messages.success(request, f"Channel {channel.name} is {state}.")
    return redirect("telemetry:notifications", org=request.org.slug)


@require_POST
@org_view(Action.MANAGE_NOTIFICATIONS)
def notification_channel_delete(request: HttpRequest, channel_id: int) -> HttpResponse:
    channel = _channel_or_404(request, channel_id)
    name = channel.name
    notifications.delete_channel(channel=channel, actor=Actor.from_request(request))
    messages.success(request, f"Channel {name} was deleted.")
    return redirect("telemetry:notifications", org=request.org.slug)


@require_POST
@org_view(Action.MANAGE_NOTIFICATIONS)
def notification_channel_test(request: HttpRequest, channel_id: int) -> HttpResponse:
    """Queue a synthetic test event to one channel; its result shows in the deliveries."""
    channel = _channel_or_404(request, channel_id)
    try:
        notifications.send_test_notification(channel=channel, actor=Actor.from_request(request))
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"A test event was queued for {channel.name}.")
    return redirect("telemetry:notifications", org=request.org.slug)


# --- fleet health ----------------------------------------------------------------------------
# Every figure on these pages is a field figure read from the rollups (telemetry.selectors);
# nothing here reads raw events.

HOURS_CHOICES = (1, 3, 24, 168)
DEFAULT_HOURS = 24
LIVE_ALERTS_SHOWN = 50
ALERTS_SHOWN = 200
VERSIONS_CHARTED = 3  # confidence and class-mix charts for the busiest versions only
ALERT_STATUS_CHOICES = (
    ("live", "Open or acknowledged"),
    ("open", "Open"),
    ("acknowledged", "Acknowledged"),
    ("resolved", "Resolved"),
    ("", "All"),
)


def _poll_seconds() -> float:
    return float(settings.TELEMETRY_HEALTH_POLL_SECONDS)


def _poll_context() -> dict:
    seconds = _poll_seconds()
    return {"poll_seconds": seconds, "poll_ms": max(100, round(seconds * 1000))}


def _hours(request: HttpRequest) -> int:
    """The window of the page; anything but the offered choices falls back to a day."""
    try:
        hours = int(request.GET.get("hours", DEFAULT_HOURS))
    except (TypeError, ValueError):
        return DEFAULT_HOURS
    return hours if hours in HOURS_CHOICES else DEFAULT_HOURS


def _figure(dom_id: str, figure: dict) -> dict:
    return {"id": dom_id, "json": mark_safe(charts.figure_json(figure))}  # noqa: S308 - escaped


def _kind_labels() -> dict[str, str]:
    return {str(value): str(label) for value, label in SignalKind.choices}


def _latest_drift(points) -> list:
    """The newest evaluation per (signal, version), in kind order."""
    latest: dict[tuple[str, str], object] = {}
    for point in sorted(points, key=lambda p: p.window_end):
        latest[(point.kind, point.model_sha256)] = point
    return [latest[key] for key in sorted(latest)]


@require_GET
@never_cache
@org_view()
def fleet_health(request: HttpRequest) -> HttpResponse:
    """Fleet KPIs, P95 by site (this hour and the last) and the live alerts."""
    kpis = selectors.fleet_kpis(org=request.org)
    context = {
        "kpis": kpis,
        "live_alerts": list(
            selectors.alerts_for_org(org=request.org, status="live")[:LIVE_ALERTS_SHOWN]
        ),
        "live_alerts_total": kpis.open_alerts + kpis.acknowledged_alerts,
        **_poll_context(),
    }
    return render_page(
        request,
        "telemetry/health.html",
        context,
        fragment="telemetry/partials/health_panel.html",
    )


def _scope_page(request: HttpRequest, *, level: int, scope, title: str) -> HttpResponse:
    hours = _hours(request)
    health = selectors.scope_health(org=request.org, level=level, scope_id=scope.pk, hours=hours)
    labels = _kind_labels()
    versions = health.versions
    window = (health.window_start, health.window_end)
    figures = [
        _figure("chart-latency", charts.latency_figure(versions, window=window)),
        *(
            _figure(f"chart-confidence-{i}", charts.confidence_figure(v))
            for i, v in enumerate(versions[:VERSIONS_CHARTED])
        ),
        *(
            _figure(f"chart-class-mix-{i}", charts.class_mix_figure(v, window=window))
            for i, v in enumerate(versions[:VERSIONS_CHARTED])
        ),
    ]
    if not versions:
        figures += [
            _figure("chart-confidence-0", charts.empty_figure("Confidence (field)")),
            _figure("chart-class-mix-0", charts.empty_figure("Class mix (field)")),
        ]
    figures += [
        _figure("chart-drift", charts.drift_figure(health.drift, labels=labels, window=window)),
        _figure("chart-temperature", charts.temperature_power_figure(health.health, window=window)),
        _figure("chart-availability", charts.availability_figure(health.health, window=window)),
        _figure("chart-loss", charts.loss_figure(health.health, window=window)),
    ]
    context = {
        "scope": scope,
        "level": level,
        "is_site": level == Level.SITE,
        "title": title,
        "hours": hours,
        "hours_choices": HOURS_CHOICES,
        "data": health,
        "versions": versions,
        "figures": figures,
        "drift_latest": _latest_drift(health.drift),
        "kind_labels": labels,
        "temperature_max": health.health.total["temperature_max"],
        **_poll_context(),
    }
    return render_page(
        request,
        "telemetry/scope_health.html",
        context,
        fragment="telemetry/partials/scope_panel.html",
    )


@require_GET
@never_cache
@org_view()
def site_health(request: HttpRequest, site_id: int) -> HttpResponse:
    site = fleet_selectors.site_for_org(org=request.org, pk=site_id)
    if site is None:
        raise Http404("No such site.")
    return _scope_page(request, level=Level.SITE, scope=site, title=site.name)


@require_GET
@never_cache
@org_view()
def device_health(request: HttpRequest, device_id: int) -> HttpResponse:
    device = fleet_selectors.device_for_org(org=request.org, pk=device_id)
    if device is None:
        raise Http404("No such device.")
    return _scope_page(request, level=Level.DEVICE, scope=device, title=device.name)


@require_GET
@never_cache
@org_view()
def compare(request: HttpRequest) -> HttpResponse:
    """Two versions on the devices that ran both over the last week."""
    seen = selectors.versions_seen(org=request.org)
    known = {sha for sha, _, _ in seen}
    sha_a = request.GET.get("a", "")
    sha_b = request.GET.get("b", "")
    sha_a = sha_a if sha_a in known else ""
    sha_b = sha_b if sha_b in known else ""
    comparison = None
    figures: list[dict] = []
    if sha_a and sha_b and sha_a != sha_b:
        comparison = selectors.compare_versions(org=request.org, sha_a=sha_a, sha_b=sha_b)
        window = (comparison.window_start, comparison.window_end)
        if comparison.device_ids:
            pair = [s for s in (comparison.a, comparison.b) if s is not None]
            figures.append(
                _figure("chart-compare-latency", charts.latency_figure(pair, window=window))
            )
            figures.append(
                _figure(
                    "chart-compare-low-confidence",
                    charts.low_confidence_figure(pair, window=window),
                )
            )
            for side, series in (("a", comparison.a), ("b", comparison.b)):
                if series is None:
                    continue
                figures.append(
                    _figure(f"chart-compare-confidence-{side}", charts.confidence_figure(series))
                )
                figures.append(
                    _figure(
                        f"chart-compare-class-mix-{side}",
                        charts.class_mix_figure(series, window=window),
                    )
                )
    context = {
        "versions_seen": seen,
        "sha_a": sha_a,
        "sha_b": sha_b,
        "same_version": bool(sha_a) and sha_a == sha_b,
        "comparison": comparison,
        "sides": [s for s in (comparison.a, comparison.b) if s] if comparison else [],
        "figures": figures,
    }
    return render(request, "telemetry/compare.html", context)


# --- alerts ------------------------------------------------------------------------------------


@require_GET
@never_cache
@org_view()
def alert_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "live")
    if status not in {value for value, _ in ALERT_STATUS_CHOICES}:
        status = "live"
    context = {
        "alerts": list(selectors.alerts_for_org(org=request.org, status=status)[:ALERTS_SHOWN]),
        "status": status,
        "status_choices": ALERT_STATUS_CHOICES,
        "alerts_shown": ALERTS_SHOWN,
        "kind_labels": _kind_labels(),
        **_poll_context(),
    }
    return render_page(
        request,
        "telemetry/alerts.html",
        context,
        fragment="telemetry/partials/alerts_panel.html",
    )


def _alert_or_404(request: HttpRequest, alert_id: int) -> Alert:
    alert = selectors.alert_for_org(org=request.org, pk=alert_id)
    if alert is None:
        raise Http404("No such alert.")
    return alert


def _alert_page(
    request: HttpRequest, alert: Alert, *, ack_form=None, resolve_form=None, status: int = 200
) -> HttpResponse:
    can_act = request.membership.can(Action.ACKNOWLEDGE_ALERTS)
    detail = alert.detail if isinstance(alert.detail, dict) else {}
    context = {
        "alert": alert,
        "can_act": can_act,
        "ack_form": ack_form or AlertAcknowledgeForm(),
        "resolve_form": resolve_form or AlertResolveForm(),
        "detail_rows": sorted(
            (str(key), value) for key, value in detail.items() if not isinstance(value, dict | list)
        ),
        "kind_label": _kind_labels().get(alert.kind, alert.kind),
    }
    return render(request, "telemetry/alert_detail.html", context, status=status)


@require_GET
@never_cache
@org_view()
def alert_detail(request: HttpRequest, alert_id: int) -> HttpResponse:
    return _alert_page(request, _alert_or_404(request, alert_id))


def _alert_url(request: HttpRequest, alert: Alert) -> str:
    return reverse("telemetry:alert-detail", kwargs={"org": request.org.slug, "alert_id": alert.pk})


@require_POST
@org_view()
def alert_acknowledge(request: HttpRequest, alert_id: int) -> HttpResponse:
    """Someone is on it; a second acknowledgement (or one of a resolved alert) is a 409."""
    alert = _alert_or_404(request, alert_id)
    form = AlertAcknowledgeForm(request.POST)
    return handle_form_post(
        request,
        action=Action.ACKNOWLEDGE_ALERTS,
        form=form,
        perform=lambda: alerts_service.acknowledge_alert(
            alert=alert, actor=Actor.from_request(request)
        ),
        success_message="Alert acknowledged.",
        redirect_to=lambda done: _alert_url(request, done),
        render_invalid=lambda status: _alert_page(request, alert, ack_form=form, status=status),
        status_from_error=True,
    )


@require_POST
@org_view()
def alert_resolve(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = _alert_or_404(request, alert_id)
    form = AlertResolveForm(request.POST)
    return handle_form_post(
        request,
        action=Action.ACKNOWLEDGE_ALERTS,
        form=form,
        perform=lambda: alerts_service.resolve_alert(
            alert=alert,
            actor=Actor.from_request(request),
            resolution=form.cleaned_data["resolution"],
        ),
        success_message="Alert resolved.",
        redirect_to=lambda done: _alert_url(request, done),
        render_invalid=lambda status: _alert_page(request, alert, resolve_form=form, status=status),
        status_from_error=True,
    )
