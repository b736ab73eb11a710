"""Browser: an ops leader answers the wizard (with a mistake, back and forward on the way),
saves the assessment, generates the 90-day plan, moves a task, and opens the ROI case.

Every step waits for the response or the element it checks, and the requests are judged by
``PageWatch`` (tests/conftest.py), so the test holds on a busy machine."""

import io
import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from opshero.demo import DEMO_PASSWORD
from roi.models import Assessment, Plan
from tests.conftest import browser_login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def next_step(page, url_part: str) -> None:
    with page.expect_response(re.compile(r"/plan/wizard/")):
        page.click("[data-testid=wizard-next]")
    expect(page).to_have_url(re.compile(url_part))


def test_wizard_to_saved_plan(page_factory, live_server):
    call_command("seed_demo", stdout=io.StringIO())
    page, watch = page_factory()
    browser_login(page, live_server, "demo-planner", DEMO_PASSWORD)
    expect(page).to_have_url(f"{live_server.url}/o/northwind/")

    page.goto(f"{live_server.url}/o/northwind/plan/")
    page.click("[data-testid=start-wizard]")
    expect(page.locator("[data-testid=wizard-question]")).to_have_text(
        "Which workflow are you planning?"
    )
    page.click("[data-testid=workflow-field_service_triage]")
    next_step(page, "/wizard/latency/$")

    # A mistake: the reason shows next to the field and the typed value stays.
    page.fill("#id_latency_tolerance_ms", "-5")
    with page.expect_response(re.compile(r"/wizard/latency/$")):
        page.click("[data-testid=wizard-next]")
    expect(page.locator("#id_latency_tolerance_ms")).to_have_value("-5")
    expect(page.locator("#wizard .invalid-feedback")).to_contain_text("Must be at least 1.")
    screenshot(page, "roi-wizard-error")
    page.fill("#id_latency_tolerance_ms", "300")
    next_step(page, "/wizard/offline/$")
    page.fill("#id_offline_percent", "15")
    page.fill("#id_longest_outage", "8")
    next_step(page, "/wizard/privacy/$")
    page.click("[data-testid=privacy-medium]")
    next_step(page, "/wizard/change/$")
    page.click("[data-testid=change-4]")
    next_step(page, "/wizard/fleet/$")
    page.fill("#id_sites", "2")
    page.fill("#id_devices_per_site", "10")
    page.select_option("#id_model_complexity", "small")
    page.check("input[name=existing_hardware][value=phones_tablets]")
    expect(page.locator("input[name=existing_hardware][value=phones_tablets]")).to_be_checked()
    screenshot(page, "roi-wizard-fleet")
    next_step(page, "/wizard/result/$")
    expect(
        page.locator("[data-testid=placement-summary] [data-testid=placement-badge]")
    ).to_have_text("On-device")

    # Back and forward keep every answer (the browser restores the step from the server).
    page.go_back()
    expect(page).to_have_url(re.compile("/wizard/fleet/$"))
    expect(page.locator("#id_sites")).to_have_value("2")
    expect(page.locator("#id_devices_per_site")).to_have_value("10")
    expect(page.locator("[data-testid=answers-so-far]")).to_contain_text("15 % of the time")
    page.go_forward()
    expect(page).to_have_url(re.compile("/wizard/result/$"))
    expect(page.locator("[data-testid=reference-architecture]")).to_contain_text(
        "Field service: offline triage and guided repair"
    )
    expect(page.locator("[data-testid=findings]")).to_contain_text(
        "Frequent outages make local inference primary"
    )
    screenshot(page, "roi-wizard-result")

    page.fill("#id_name", "North Sea technicians")
    page.click("[data-testid=save-assessment]")
    expect(page.locator("h2.page-title")).to_have_text("North Sea technicians")
    assessment = Assessment.objects.get(name="North Sea technicians")
    assert assessment.placement == "on_device"
    assert assessment.answers["offline_share"] == 0.15
    expect(page.locator("[data-testid=share-url]")).to_have_value(
        f"{live_server.url}/o/northwind/plan/assessments/{assessment.pk}/"
    )
    screenshot(page, "roi-assessment")

    page.click("[data-testid=generate-plan]")
    expect(page.locator("[data-testid=plan-board]")).to_contain_text(
        "Package the model for the device runtime"
    )
    plan = Plan.objects.get(assessment=assessment)
    progress = page.locator("[data-testid=plan-progress]")
    _done, total = plan.progress
    # Tasks whose evidence exists tick themselves (the demo's passed validation run ticks
    # "select_runtime"); count what the page shows as done.
    done = page.locator("[data-testid=plan-board] .task-card.status-done").count()
    expect(progress).to_have_text(f"{done} / {total}")
    with page.expect_response(re.compile(r"/tasks/device_identity/$")):
        page.select_option("[data-testid=status-device_identity]", "done")
    expect(page.locator("#task-device_identity")).to_have_class(re.compile("status-done"))
    expect(progress).to_have_text(f"{done + 1} / {total}")
    expect(page.locator("[data-testid=metric-state-latency_p95]")).to_have_text("Not measured yet")
    plan.refresh_from_db()
    assert next(t for t in plan.tasks if t["id"] == "device_identity")["status"] == "done"
    screenshot(page, "roi-plan-board")

    # The ROI case for the same assessment: live recompute as an input changes.
    page.goto(f"{live_server.url}/o/northwind/plan/scenarios/new/?assessment={assessment.pk}")
    expect(page.locator("#scenario-sites")).to_have_value("2")
    npv = page.locator("[data-testid=kpi-npv-on_device]")
    expect(npv).to_have_text(re.compile(r"\d"))
    before = npv.inner_text()
    field = page.locator("#latency-value_per_hour_saved-likely")
    if not field.is_visible():  # the section that moves the NPV most opens first
        page.click("[data-bs-target='#sec-latency']")
        expect(field).to_be_visible()
    with page.expect_response(re.compile(r"/plan/scenarios/compute/$")) as computed:
        field.fill("90")
    assert computed.value.status == 200
    expect(npv).not_to_have_text(before)
    expect(page.locator("#chart-tornado .main-svg").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    screenshot(page, "roi-calculator")

    tablet, tablet_watch = page_factory(viewport={"width": 820, "height": 1180})
    browser_login(tablet, live_server, "demo-planner", DEMO_PASSWORD)
    expect(tablet).to_have_url(f"{live_server.url}/o/northwind/")
    tablet.goto(f"{live_server.url}/o/northwind/plan/plans/{plan.pk}/")
    expect(tablet.locator("[data-testid=plan-progress]")).to_have_text(f"{done + 1} / {total}")
    screenshot(tablet, "roi-plan-board-tablet")
    tablet.goto(f"{live_server.url}/o/northwind/plan/assessments/{assessment.pk}/")
    expect(tablet.locator("[data-testid=placement-parts]")).to_contain_text("On-device")
    screenshot(tablet, "roi-assessment-tablet")
    watch.assert_clean()
    tablet_watch.assert_clean()
