"""Fleet health pages: figures through the real path (ingest, rollups, signals), tenancy,
roles, the alert flow, the window parameter and the HTMX fragment."""

from __future__ import annotations

import re
from datetime import timedelta

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone

from opshero.overview import kpis_for
from opshero.roles import Role
from protocol import telemetry as wire
from telemetry.models import Alert, Level, SignalKind
from tests.factories import enroll_device

from .builders import health, inference
from .test_signals import START, deliver, registered_model, run_evaluator, window_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def field(client, world, queued):
    """One device: two normal windows, two slow ones (a latency alert, still open), one too
    small to be judged, one event closing it; health every 30 s with a hot, throttled stretch."""
    version = registered_model(world.a.org, budget=100.0)
    gateway = enroll_device(world.a.org)
    device, _ = gateway
    events = window_events(version, 0, seq0=0)
    events += window_events(version, 1, seq0=1000)
    events += window_events(version, 2, slow=True, seq0=2000)
    events += window_events(version, 3, slow=True, seq0=3000)
    events += window_events(version, 4, slow=True, seq0=4000, per_window=100)  # not judged
    events += window_events(version, 5, seq0=5000, per_window=1)
    for n in range(120):
        events.append(
            health(
                20_000 + n,
                at=START + timedelta(seconds=30 * n),
                throttled=40 <= n < 60,
                temperature_c=50.0 + n / 10,
                power_w=7.5,
                online=True,
            )
        )
    deliver(client, gateway, events)
    run_evaluator()
    latencies = np.array([e.latency_ms for e in events if isinstance(e, wire.InferenceEvent)])
    return version, device, latencies


def _page(client, user, name, **kwargs):
    client.force_login(user)
    query = kwargs.pop("query", "")
    headers = kwargs.pop("headers", {})
    return client.get(reverse(name, kwargs=kwargs) + query, **headers)


def test_device_page_shows_the_p95_measured_from_the_events(client, world, field):
    version, device, latencies = field
    response = _page(
        client,
        world.a.user(Role.VIEWER),
        "telemetry:device-health",
        org=world.a.org.slug,
        device_id=device.pk,
    )
    assert response.status_code == 200
    (series,) = response.context["versions"]
    assert series.model_sha256 == version.sha256
    assert series.latency.count == len(latencies)
    expected = float(np.percentile(latencies, 95))
    assert series.latency.p95 == pytest.approx(expected, rel=0.01)
    assert series.latency.p50 == pytest.approx(float(np.percentile(latencies, 50)), rel=0.01)
    html = response.content.decode()
    shown = re.search(r'data-testid="version-p95">([\d.]+) ms', html)
    assert shown and float(shown.group(1)) == pytest.approx(expected, rel=0.01)
    assert "estimated from confidence" in html
    assert 'data-testid="no-labels"' in html  # no label came back: no measured accuracy
    # Every chart is on the page, as a Plotly figure the script renders.
    ids = {figure["id"] for figure in response.context["figures"]}
    assert {"chart-latency", "chart-drift", "chart-temperature", "chart-loss"} <= ids
    assert 'data-plotly-for="chart-latency"' in html
    # The latency alert the two slow windows opened is listed on the device.
    assert any(a.kind == SignalKind.LATENCY_BUDGET for a in response.context["data"].alerts)


def test_signals_table_says_not_evaluated_never_passed(client, world, field):
    _, device, _ = field
    response = _page(
        client,
        world.a.user(Role.VIEWER),
        "telemetry:device-health",
        org=world.a.org.slug,
        device_id=device.pk,
    )
    latest = {d.kind: d for d in response.context["drift_latest"]}
    assert not latest[SignalKind.CLASS_DRIFT].evaluated  # the 100-event window
    verdicts = re.findall(r'data-testid="drift-verdict">(.*?)</td>', response.content.decode())
    assert any(
        "not evaluated" in v and "not evaluated" in latest[SignalKind.CLASS_DRIFT].reason
        for v in verdicts
    )
    assert not any("passed" in v for v in verdicts)


def test_site_page_and_health_summary(client, world, field):
    _, device, _ = field
    response = _page(
        client,
        world.a.user(Role.VIEWER),
        "telemetry:site-health",
        org=world.a.org.slug,
        site_id=device.site_id,
    )
    assert response.status_code == 200
    total = response.context["data"].health.total
    assert total["samples"] == 120 and total["throttled_samples"] == 20
    html = response.content.decode()
    assert 'data-testid="throttled-share">20 of 120' in html
    assert 'data-testid="temperature-max">61.9 °C' in html
    assert 'data-testid="online-share">100 %' in html


def test_hours_are_validated(client, world, field):
    _, device, _ = field
    user = world.a.user(Role.VIEWER)
    for query, hours in (("?hours=abc", 24), ("?hours=5", 24), ("", 24), ("?hours=3", 3)):
        response = _page(
            client,
            user,
            "telemetry:device-health",
            org=world.a.org.slug,
            device_id=device.pk,
            query=query,
        )
        assert response.status_code == 200
        assert response.context["hours"] == hours
    assert response.context["data"].resolution == 60  # 3 h: minute buckets
    window = response.context["data"].window_end - response.context["data"].window_start
    assert window == timedelta(hours=3)


def test_htmx_poll_gets_the_panel_only(client, world, field):
    _, device, _ = field
    response = _page(
        client,
        world.a.user(Role.VIEWER),
        "telemetry:device-health",
        org=world.a.org.slug,
        device_id=device.pk,
        headers={"HTTP_HX_REQUEST": "true"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="scope-panel"') and "<html" not in html
    assert "data-poll" in html and 'data-plotly-for="chart-latency"' in html
    assert "HX-Request" in response["Vary"]


def test_other_tenants_site_and_device_are_404(client, world, field):
    _, device, _ = field
    outsider = world.b.user(Role.ADMIN)
    for name, kwargs in (
        ("telemetry:device-health", {"device_id": device.pk}),
        ("telemetry:site-health", {"site_id": device.site_id}),
    ):
        response = _page(client, outsider, name, org=world.b.org.slug, **kwargs)
        assert response.status_code == 404
    alert = Alert.objects.filter(organization=world.a.org).first()
    response = _page(
        client, outsider, "telemetry:alert-detail", org=world.b.org.slug, alert_id=alert.pk
    )
    assert response.status_code == 404


def _post(client, user, name, alert, data=None):
    client.force_login(user)
    url = reverse(name, kwargs={"org": alert.organization.slug, "alert_id": alert.pk})
    return client.post(url, data or {})


def test_viewer_reads_alerts_but_cannot_acknowledge(client, world, field):
    alert = Alert.objects.get(kind=SignalKind.LATENCY_BUDGET, level=Level.DEVICE)
    viewer = world.a.user(Role.VIEWER)
    page = _page(client, viewer, "telemetry:alert-detail", org=world.a.org.slug, alert_id=alert.pk)
    assert page.status_code == 200 and b'data-testid="acknowledge-form"' not in page.content
    for name in ("telemetry:alert-acknowledge", "telemetry:alert-resolve"):
        assert _post(client, viewer, name, alert).status_code == 404
    alert.refresh_from_db()
    assert alert.status == Alert.Status.OPEN and alert.acknowledged_at is None


def test_acknowledge_then_resolve_and_conflicts_are_messages(client, world, field):
    alert = Alert.objects.get(kind=SignalKind.LATENCY_BUDGET, level=Level.DEVICE)
    approver = world.a.user(Role.APPROVER)
    response = _post(client, approver, "telemetry:alert-acknowledge", alert)
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.status == Alert.Status.ACKNOWLEDGED and alert.acknowledged_by == approver

    again = _post(client, approver, "telemetry:alert-acknowledge", alert)
    assert again.status_code == 409
    assert b'data-testid="form-error"' in again.content

    response = _post(
        client, approver, "telemetry:alert-resolve", alert, {"resolution": "Fan replaced"}
    )
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED and alert.resolution == "Fan replaced"
    page = client.get(response["Location"])
    html = page.content.decode()
    assert "Fan replaced" in html
    assert "not acknowledged" not in html and "not resolved" not in html
    assert _post(client, approver, "telemetry:alert-resolve", alert).status_code == 409


def test_alert_list_filters_by_status(client, world, field):
    alert = Alert.objects.get(kind=SignalKind.LATENCY_BUDGET, level=Level.DEVICE)
    viewer = world.a.user(Role.VIEWER)

    def listed(status):
        response = _page(
            client, viewer, "telemetry:alerts", org=world.a.org.slug, query=f"?status={status}"
        )
        return {a.pk for a in response.context["alerts"]}

    assert alert.pk in listed("open") and alert.pk in listed("live")
    assert alert.pk not in listed("resolved")
    _post(client, world.a.user(Role.ADMIN), "telemetry:alert-acknowledge", alert)
    assert alert.pk not in listed("open") and alert.pk in listed("acknowledged")
    assert listed("nonsense") == listed("live")


def test_fleet_health_p95_by_site_and_overview_cards(client, world, queued):
    gateway = enroll_device(world.a.org)
    device, _ = gateway
    rng = np.random.default_rng(7)
    now = timezone.now()
    latencies = rng.lognormal(3.0, 0.4, 400)
    events = [
        inference(n, at=now - timedelta(minutes=4, seconds=-n / 2), latency_ms=float(value))
        for n, value in enumerate(latencies)
    ]
    deliver(client, gateway, events)
    run_evaluator()
    response = _page(client, world.a.user(Role.VIEWER), "telemetry:health", org=world.a.org.slug)
    assert response.status_code == 200
    (site,) = response.context["kpis"].p95_by_site
    assert site.site_id == device.site_id
    expected = float(np.percentile(latencies, 95))
    assert site.latency.p95 == pytest.approx(expected, rel=0.01)
    shown = re.search(r'data-testid="site-p95">([\d.]+) ms', response.content.decode())
    assert float(shown.group(1)) == pytest.approx(expected, rel=0.01)
    cards = {kpi.label: kpi for kpi in kpis_for(world.a.org)}
    assert cards["Worst site P95"].value == f"{site.latency.p95:,.1f} ms"
    assert cards["Open alerts"].value == "0"


def test_overview_cards_say_no_data_yet_without_telemetry(world):
    cards = {kpi.label: kpi for kpi in kpis_for(world.a.org)}
    for label in ("Throttled devices", "Events per minute", "Worst site P95"):
        assert cards[label].value == "no data yet"


def test_compare_two_versions_on_shared_devices(client, world, queued):
    a = registered_model(world.a.org)
    b = registered_model(world.a.org)
    shared = enroll_device(world.a.org)
    only_a = enroll_device(world.a.org)
    deliver(client, shared, window_events(a, 0, seq0=0) + window_events(b, 1, seq0=1000))
    deliver(client, only_a, window_events(a, 0, seq0=0, slow=True))
    run_evaluator()
    viewer = world.a.user(Role.VIEWER)
    response = _page(
        client,
        viewer,
        "telemetry:compare",
        org=world.a.org.slug,
        query=f"?a={a.sha256}&b={b.sha256}",
    )
    comparison = response.context["comparison"]
    assert comparison.device_ids == [shared[0].pk]
    # The slow device ran only A: it is left out, so A's P95 is the fast device's.
    assert comparison.a.latency.p95 < 45 and comparison.a.latency.count == 600
    html = response.content.decode()
    assert "Compared on 1 shared device," in html
    assert 'data-plotly-for="chart-compare-latency"' in html

    c = registered_model(world.a.org)
    deliver(client, only_a, window_events(c, 2, seq0=5000))
    run_evaluator()
    response = _page(
        client,
        viewer,
        "telemetry:compare",
        org=world.a.org.slug,
        query=f"?a={b.sha256}&b={c.sha256}",
    )
    assert response.context["comparison"].device_ids == []
    assert b"No device ran both versions" in response.content
