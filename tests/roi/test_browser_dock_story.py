"""Browser, issue 18's "done means": an ops leader runs the dock case from the wizard to the
plan and sees one story. The wizard's fleet step starts from the registered fleet, the
scenario built from the assessment shows the wizard's placement first, flags pure cloud as
ruled out by the latency rule, costs the ramp and the hybrid's tiers, and shows money in the
organisation's currency; the plan has dates and ticks the ROI task once the scenario exists;
no page logs a console error (htmx's out-of-band errors included)."""

import io
import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from opshero.demo import DEMO_PASSWORD
from opshero.models import Organization
from roi.models import Assessment, RoiScenario
from tests.conftest import browser_login, screenshot
from tests.roi.test_browser import next_step

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_dock_case_from_wizard_to_plan_tells_one_story(page_factory, live_server):
    call_command("seed_demo", stdout=io.StringIO())
    Organization.objects.filter(slug="northwind").update(currency="USD")
    page, watch = page_factory()
    browser_login(page, live_server, "demo-planner", DEMO_PASSWORD)
    expect(page).to_have_url(f"{live_server.url}/o/northwind/")

    page.goto(f"{live_server.url}/o/northwind/plan/")
    page.click("[data-testid=start-wizard]")
    page.click("[data-testid=workflow-logistics_dock_vision]")
    next_step(page, "/wizard/latency/$")
    page.fill("#id_latency_tolerance_ms", "150")
    next_step(page, "/wizard/offline/$")
    page.fill("#id_offline_percent", "2")
    page.fill("#id_longest_outage", "4")
    next_step(page, "/wizard/privacy/$")
    page.click("[data-testid=privacy-medium]")
    next_step(page, "/wizard/change/$")
    page.click("[data-testid=change-4]")
    next_step(page, "/wizard/fleet/$")
    # The registered fleet fills the step in (the demo has three docks), editable.
    expect(page.locator("#id_sites")).to_have_value("3")
    next_step(page, "/wizard/result/$")
    badge = page.locator("[data-testid=placement-summary] [data-testid=placement-badge]")
    expect(badge).to_have_text(re.compile("Near-edge"))
    expect(page.locator("body")).not_to_contain_text("No suitable hardware yet")
    page.fill("#id_name", "Dock vision")
    page.click("[data-testid=save-assessment]")
    expect(page.locator("h2.page-title")).to_have_text("Dock vision")
    assessment = Assessment.objects.get(name="Dock vision")
    assert assessment.placement == "near_edge"

    # The ROI case for that assessment.
    page.goto(f"{live_server.url}/o/northwind/plan/scenarios/new/?assessment={assessment.pk}")
    expect(page.locator("[data-testid=assessed-placement]")).to_have_text("Near-edge")
    heads = page.locator("[data-testid^=kpi-head-]")
    expect(heads.first).to_have_attribute("data-testid", "kpi-head-near_edge")
    expect(page.locator("[data-testid=ruled-out-cloud]")).to_contain_text(
        "Tight latency keeps inference local"
    )
    expect(page.locator("[data-testid=kpi-npv-near_edge]")).to_have_text(re.compile(r"^USD"))
    expect(page.locator("[data-testid=kpi-cost_per_site_month_p10-near_edge]")).to_have_text(
        re.compile(r"^USD\s[\d,]+ \u2013 [\d,]+$")
    )
    expect(page.locator("[data-testid=results-callout]")).to_contain_text(
        "live from month 3 (pilot)"
    )
    expect(page.locator("[data-testid=mc-footer]")).to_contain_text("Money in USD")
    # An edit recomputes live and keeps the story.
    with page.expect_response(re.compile(r"/plan/scenarios/compute/$")) as computed:
        page.fill("#scenario-build_months", "3")
    assert computed.value.status == 200
    expect(page.locator("[data-testid=results-callout]")).to_contain_text(
        "live from month 4 (pilot)"
    )
    expect(heads.first).to_have_attribute("data-testid", "kpi-head-near_edge")
    screenshot(page, "roi-dock-scenario")
    page.click("[data-testid=save-scenario]")
    expect(page.locator(".alert-success, .toast")).to_contain_text("saved")
    scenario = RoiScenario.objects.get(assessment=assessment)
    assert scenario.inputs["scenario"]["build_months"] == 3

    # The plan: dated; the ROI recompute waits for measured values (a scenario alone is not it).
    page.goto(f"{live_server.url}/o/northwind/plan/assessments/{assessment.pk}/")
    page.click("[data-testid=generate-plan]")
    expect(page.locator("[data-testid=plan-board]")).to_be_visible()
    expect(page.locator("[data-testid=plan-dates]")).to_have_text(re.compile(r"\d{4}"))
    expect(page.locator("#task-recompute_roi_with_measurements")).to_have_class(
        re.compile("status-todo")
    )
    page.wait_for_load_state("networkidle")
    screenshot(page, "roi-dock-plan")
    watch.assert_clean()
