"""Browser: the device health page draws its Plotly charts from the rollups, refreshes its
panel by polling, and stops polling while the tab is hidden.

Waits for what it asserts (the charts' SVG, a poll request, a count of poll triggers), and
judges the page's requests with ``PageWatch`` (tests/conftest.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from opshero.roles import Role
from tests.conftest import browser_login, screenshot
from tests.factories import PASSWORD, enroll_device

from .builders import health
from .test_signals import START, deliver, registered_model, run_evaluator, window_events

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

POLL_SECONDS = 0.5

# Counts the polls htmx tries (htmx:beforeRequest on a [data-poll] element), whether or not
# app.js lets them through.
COUNT_TRIGGERS = """() => {
  window.__pollTriggers = 0;
  document.addEventListener("htmx:beforeRequest", (event) => {
    if (event.detail.elt.hasAttribute("data-poll")) window.__pollTriggers += 1;
  });
}"""
SET_HIDDEN = """(hidden) => {
  Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
  Object.defineProperty(document, "visibilityState", {
    configurable: true, get: () => (hidden ? "hidden" : "visible"),
  });
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def _wait_for_triggers(page, count: int, timeout_s: float = 60.0) -> None:
    """Poll from Python: ``wait_for_function`` evaluates a string, which the CSP forbids."""
    for _ in range(int(timeout_s / 0.25)):
        if page.evaluate("() => window.__pollTriggers") >= count:
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"htmx did not try {count} polls in {timeout_s} s")


def _is_poll(url_path: str):
    return lambda request: url_path in request.url and request.headers.get("hx-request") == "true"


def test_device_health_charts_render_and_polling_pauses_when_hidden(
    page_factory, live_server, world, client, queued, settings
):
    settings.TELEMETRY_HEALTH_POLL_SECONDS = POLL_SECONDS
    version = registered_model(world.a.org, budget=100.0)
    gateway = enroll_device(world.a.org)
    device, _ = gateway
    events = window_events(version, 0, seq0=0) + window_events(version, 1, slow=True, seq0=1000)
    events += window_events(version, 2, slow=True, seq0=2000)
    events += window_events(version, 3, seq0=3000, per_window=1)
    events += [
        health(9000 + n, at=START + timedelta(seconds=30 * n), temperature_c=48.0, online=True)
        for n in range(60)
    ]
    deliver(client, gateway, events)
    run_evaluator()

    page, watch = page_factory()
    viewer = world.a.user(Role.VIEWER)
    browser_login(page, live_server, viewer.username, PASSWORD)
    path = reverse(
        "telemetry:device-health", kwargs={"org": world.a.org.slug, "device_id": device.pk}
    )
    page.goto(live_server.url + path)
    for chart in ("chart-latency", "chart-confidence-0", "chart-drift", "chart-loss"):
        expect(page.locator(f"#{chart} .plot-container svg.main-svg").first).to_be_visible()
    expect(page.locator("[data-testid=version-row]")).to_have_count(1)

    # Visible: the panel polls, and the swapped-in charts are drawn again.
    with page.expect_request(_is_poll(path)):
        pass
    expect(page.locator("#chart-latency .plot-container svg.main-svg").first).to_be_visible()
    screenshot(page, "telemetry-device-health")

    # Hidden: htmx keeps triggering, app.js cancels every one before a request is made.
    page.evaluate(COUNT_TRIGGERS)
    page.evaluate(SET_HIDDEN, True)
    polls: list[str] = []
    page.on("request", lambda request: _is_poll(path)(request) and polls.append(request.url))
    _wait_for_triggers(page, 20)
    assert polls == []

    # Shown again: one refresh straight away, then polling as before.
    with page.expect_request(_is_poll(path)):
        page.evaluate(SET_HIDDEN, False)
    expect(page.locator("#chart-latency .plot-container svg.main-svg").first).to_be_visible()
    watch.assert_clean()
