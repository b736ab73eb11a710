"""The calculator tells the assessment's story: its placement first, ruled-out placements
flagged with their rule, the ramp and tiers shown, money in the organisation's currency."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from opshero.models import AuditEvent
from opshero.roles import Role
from roi.models import RoiScenario
from tests.roi.builders import calculator_data, make_assessment

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


def url(name: str, **kwargs) -> str:
    return reverse(f"roi:{name}", kwargs={"org": "acme", **kwargs})


def kpi_heads(body: str) -> list[str]:
    return re.findall(r'data-testid="kpi-head-([a-z_]+)"', body)


def test_a_scenario_from_an_assessment_puts_its_placement_first_and_flags_ruled_out(client, world):
    # The demo's dock answers: 150 ms latency tolerance rules pure cloud out.
    assessment = make_assessment(world.a.org)
    client.force_login(world.a.user(Role.PLANNER))
    body = client.get(url("scenario-new") + f"?assessment={assessment.pk}").content.decode()
    assert kpi_heads(body)[0] == assessment.placement == "near_edge"
    assert 'data-testid="assessed-placement">Near-edge<' in body
    assert 'data-testid="headline-assessed">Near-edge<' in body
    assert "Cloud (ruled out)" in body
    flagged = re.search(r'data-testid="ruled-out-cloud">(.*?)</li>', body, re.S).group(1)
    assert "Tight latency keeps inference local" in flagged
    assert "150 ms" in flagged
    # A ruled-out placement is never the row's best.
    assert not re.search(r'class="[^"]*best[^"]*"[^>]*data-testid="kpi-[a-z_]+-cloud"', body)
    # The live recompute keeps the same story (the form posts the assessment).
    data = calculator_data(assessment=str(assessment.pk))
    live = client.post(url("scenario-compute"), data, **HX).content.decode()
    assert kpi_heads(live)[0] == "near_edge"
    assert 'data-testid="ruled-out-cloud"' in live


def test_without_an_assessment_nothing_is_ruled_out_and_the_usual_order_stands(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    body = client.post(url("scenario-compute"), calculator_data(), **HX).content.decode()
    assert kpi_heads(body) == ["on_device", "near_edge", "cloud", "hybrid"]
    assert 'data-testid="ruled-out"' not in body


def test_results_show_the_ramp_the_tiers_the_residual_value_and_ranges(client, world):
    assessment = make_assessment(world.a.org)
    client.force_login(world.a.user(Role.PLANNER))
    body = client.get(url("scenario-new") + f"?assessment={assessment.pk}").content.decode()
    assert "Ramp: 1 site live from month 3 (pilot)" in body
    assert "Straight-line residual value at the horizon" in body
    assert 'data-testid="kpi-cost_per_site_month_p10-near_edge">EUR' in body
    assert re.search(r'data-testid="kpi-payback_month_p10-near_edge">months \d+', body)
    assert "Error rate today and with AI" in body  # the declared correlation is shown
    # The scenario's inputs: ramp, hybrid tiers and residual value, labelled in plain words.
    for label in (
        "Build before anything is live",
        "Pilot sites",
        "Roll-out pace after the pilot",
        "Hybrid: events served near-edge",
        "Hardware value at the horizon",
    ):
        assert label in body
    assert "near_edge (one of" not in body


def test_the_calculator_opens_with_the_most_influential_section(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    body = client.get(url("scenario-new") + "?workflow=logistics_dock_vision").content.decode()
    swings = re.findall(r'data-testid="section-swing">moves the NPV by up to EUR\xa0([\d,]+)', body)
    values = [int(text.replace(",", "")) for text in swings]
    assert values == sorted(values, reverse=True) and values[0] > 0
    assert body.count('data-testid="top-input"') >= 3


def test_bad_ramp_and_hybrid_shares_get_their_reason_next_to_the_field(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    data = calculator_data(
        **{
            "scenario.pilot_sites": "9",
            "scenario.hybrid_near_edge_pct": "50",
            "scenario.hybrid_on_device_pct": "20",
            "scenario.hybrid_cloud_pct": "10",
        }
    )
    body = client.post(url("scenario-compute"), data, **HX).content.decode()
    assert "The pilot cannot have more sites (9)" in body
    assert "add up to 0.8; they must add up to 1" in body
    assert 'id="err-scenario-hybrid_cloud_pct"' in body


def test_saving_keeps_the_ramp_and_tiers_as_typed(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    data = calculator_data(
        **{
            "scenario.build_months": "4",
            "scenario.hybrid_on_device_pct": "30",
            "scenario.hybrid_near_edge_pct": "70",
            "scenario.hybrid_cloud_pct": "0",
            "scenario.residual_value": "none",
        }
    )
    response = client.post(url("scenario-new"), data)
    assert response.status_code == 302
    scenario = RoiScenario.objects.get(organization=world.a.org)
    saved = scenario.inputs["scenario"]
    assert saved["build_months"] == 4
    assert saved["hybrid_on_device_share"] == pytest.approx(0.3)
    assert saved["residual_value"] == "none"
    page = client.get(url("scenario", scenario_id=scenario.pk)).content.decode()
    assert re.search(r'name="scenario.hybrid_on_device_pct"[^>]*value="30"', page)
    assert "No residual value" in page


def test_an_admin_sets_the_currency_and_every_money_figure_follows(client, world):
    admin = world.a.user(Role.ADMIN)
    client.force_login(admin)
    members = reverse("members", kwargs={"org": "acme"})
    bad = client.post(reverse("org-currency", kwargs={"org": "acme"}), {"currency": "EURO"})
    assert bad.status_code == 422
    assert "three-letter ISO 4217 code" in bad.content.decode()
    unknown = client.post(reverse("org-currency", kwargs={"org": "acme"}), {"currency": "ABC"})
    assert "ABC is not an ISO 4217 currency code." in unknown.content.decode()
    world.a.org.refresh_from_db()
    assert world.a.org.currency == "EUR"
    done = client.post(reverse("org-currency", kwargs={"org": "acme"}), {"currency": " gbp "})
    assert done.status_code == 302 and done.url == members
    world.a.org.refresh_from_db()
    assert world.a.org.currency == "GBP"
    event = AuditEvent.objects.get(verb="organization.currency_changed")
    assert event.data == {"from": "EUR", "to": "GBP"}
    body = client.post(url("scenario-compute"), calculator_data(), **HX).content.decode()
    assert re.search(r'data-testid="kpi-npv-cloud">GBP\xa0', body)
    assert "EUR\xa0" not in body
    # The other organisation keeps its own currency.
    assert world.b.org.currency == "EUR"


def test_a_planner_cannot_change_the_currency(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    response = client.post(reverse("org-currency", kwargs={"org": "acme"}), {"currency": "USD"})
    assert response.status_code == 403
    world.a.org.refresh_from_db()
    assert world.a.org.currency == "EUR"


def test_the_api_says_which_currency_its_money_is_in(client, world):
    from tests.roi.builders import logistics_inputs

    client.force_login(world.a.user(Role.PLANNER))
    response = client.post(
        "/api/v1/orgs/acme/scenarios/compute/",
        {"inputs": logistics_inputs(), "draws": 500},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    payload = response.json()
    assert payload["currency"] == "EUR"
    near_edge = payload["summary"]["placements"]["near_edge"]
    assert near_edge["cost_per_site_month_p10"] <= near_edge["cost_per_site_month_p90"]


def test_money_inputs_carry_the_currency_and_a_loss_at_small_scale_is_explained(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    body = client.get(url("scenario-new") + "?workflow=logistics_dock_vision").content.decode()
    assert "EUR per h" in body and "EUR each" in body
    assert 'data-testid="all-negative"' not in body
    tiny = calculator_data(
        **{"scenario.sites": "1", "scenario.devices_per_site": "1", "scenario.pilot_sites": "1"}
    )
    small = client.post(url("scenario-compute"), tiny, **HX).content.decode()
    note = re.search(r'data-testid="all-negative">(.*?)</div>', small, re.S).group(1)
    assert "do not shrink with the fleet" in note and "1 device" in note


def test_payback_ranges_read_plainly():
    from roi.reports import _payback_range

    figures = {"payback_month_p10": 5, "payback_month_p50": 8, "payback_month_p90": None}
    assert _payback_range(figures, 36) == "months 5\u201336+, median 8"
    none = dict.fromkeys(figures)
    assert _payback_range(none, 36) == "not within 36 months"
