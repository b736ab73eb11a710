"""Browser: a technical manager registers a site, creates a token, a gateway enrolls through
the API with the reference agent, and the device appears on the fleet list.

Every step waits for the page or element it checks before the next click, and the requests
are judged by ``PageWatch`` (tests/conftest.py), so the test holds on a busy machine."""

import io
import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from fleet.models import Device, Site
from gateway.client import DeviceClient, enroll
from opshero.demo import DEMO_PASSWORD
from tests.conftest import browser_login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_site_token_enrollment_and_fleet_list(page_factory, live_server, tmp_path):
    call_command("seed_demo", stdout=io.StringIO())
    page, watch = page_factory()
    browser_login(page, live_server, "demo-admin", DEMO_PASSWORD)
    expect(page).to_have_url(f"{live_server.url}/o/northwind/")

    page.goto(f"{live_server.url}/o/northwind/fleet/sites/")
    page.fill("#id_name", "Felixstowe Berth 9")
    page.select_option("#id_kind", "dock")
    page.fill("#id_time_zone", "Europe/London")
    page.fill("#id_expected_connectivity", "96")
    page.fill("#id_maintenance_windows", "Sun 01:00-04:00")
    page.click("form.card button[type=submit]")
    expect(page.locator("h2.page-title")).to_have_text("Felixstowe Berth 9")
    expect(page.locator("[data-testid=site-windows]")).to_contain_text("Sunday 01:00\u201304:00")
    screenshot(page, "fleet-site-created")

    site = Site.objects.get(organization__slug="northwind", name="Felixstowe Berth 9")
    page.click("text=Enroll a gateway here")
    # The site page has a form.card of its own: wait for the enrollment page before submitting.
    expect(page.locator("h2.page-title")).to_have_text("Enroll a gateway")
    expect(page.locator("#id_site")).to_have_value(str(site.pk))
    page.click("form.card button[type=submit]")
    token_field = page.locator("[data-testid=token-value]")
    expect(token_field).to_have_value(re.compile(r"^ohe_"))
    token = token_field.input_value()
    expect(page.locator("[data-testid=gateway-command]")).to_contain_text(f"--token {token}")
    screenshot(page, "fleet-token-created")

    # The gateway side: the reference agent, over real HTTP, with its own key.
    state = tmp_path / "gateway"
    client = enroll(
        server=live_server.url,
        token=token,
        serial="GW-FXT-09",
        name="fxt9-gateway",
        state_dir=state,
    )
    assert (state / "device_key.pem").stat().st_mode & 0o777 == 0o600
    again = DeviceClient.load(state)
    assert again.me()["site"] == "Felixstowe Berth 9"
    again.report_status(model_version="damage-detector 1.0")

    page.goto(f"{live_server.url}/o/northwind/fleet/?q=fxt9")
    row = page.locator("[data-testid=device-table] tbody tr").first
    expect(row).to_contain_text("fxt9-gateway")
    expect(row).to_contain_text("Online")
    expect(row).to_contain_text("damage-detector 1.0")
    screenshot(page, "fleet-list-after-enrollment")
    device = Device.objects.get(serial="GW-FXT-09")
    assert str(device.uid) == client.device_id

    page.click("text=fxt9-gateway")
    expect(page.locator("h2.page-title")).to_contain_text("fxt9-gateway")
    fingerprint = device.credentials.get().fingerprint
    expect(page.locator("[data-testid=key-fingerprint]")).to_have_text(fingerprint)
    screenshot(page, "fleet-device-page")
    page.goto(f"{live_server.url}/o/northwind/fleet/")
    expect(page.locator("[data-testid=device-count]")).to_have_text(re.compile(r"^\d+ devices"))
    screenshot(page, "fleet-list")
    watch.assert_clean()
