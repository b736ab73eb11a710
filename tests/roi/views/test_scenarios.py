"""The ROI/TCO calculator pages: presets, live recompute, bad input, save, clone, CSV, compare."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from django.urls import reverse

from opshero.roles import Role
from roi.models import RoiScenario
from tests.roi.builders import calculator_data, make_assessment, make_scenario

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


def url(name: str, **kwargs) -> str:
    return reverse(f"roi:{name}", kwargs={"org": "acme", **kwargs})


def figures(body: str) -> dict[str, dict]:
    """The Plotly figures shipped in the page, by chart id."""
    found = re.findall(
        r'<script type="application/json" data-plotly-for="([^"]+)">(.*?)</script>', body, re.S
    )
    return {chart: json.loads(text) for chart, text in found}


def test_new_scenario_starts_from_the_workflow_preset_with_sources(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    body = client.get(url("scenario-new") + "?workflow=field_service_triage").content.decode()
    assert 'value="Field service: offline triage"' in body
    # A preset default and its source, as typed into the form.
    assert 'name="tco.gateway_hardware_cost.likely"' in body
    assert "truck-mounted embedded unit with power conditioning." in body
    for section in ("Latency and workflow impact", "Offline capability", "Total cost of ownership"):
        assert section in body
    assert figures(body).keys() == {"chart-tornado", "chart-cashflow"}


def test_new_scenario_from_an_assessment_takes_its_fleet_and_change_rate(client, world):
    assessment = make_assessment(world.a.org, sites=7, devices_per_site=4, model_changes_per_year=6)
    client.force_login(world.a.user(Role.PLANNER))
    body = client.get(url("scenario-new") + f"?assessment={assessment.pk}").content.decode()
    assert re.search(r'name="scenario.sites"[^>]*value="7"', body)
    assert re.search(r'name="scenario.devices_per_site"[^>]*value="4"', body)
    assert re.search(r'name="maintenance.rollouts_per_month.likely"[^>]*value="0.5"', body)
    assert "from the assessment “Dock assessment”: 7 site(s)." in body
    # The assessed placement is preselected as the focus.
    assert '<option value="near_edge" selected>Near-edge (assessed)</option>' in body


def test_live_recompute_returns_results_and_clears_errors_out_of_band(client, world):
    client.force_login(world.a.user(Role.VIEWER))  # computing changes nothing: anyone may
    data = calculator_data(focus="cloud")
    response = client.post(url("scenario-compute"), data, **HX)
    assert response.status_code == 200
    body = response.content.decode()
    assert '<div id="results"' in body[:200]
    assert 'data-testid="kpi-table"' in body
    assert 'id="calc-headline" class="calc-headline card card-sm mb-3" hx-swap-oob="true"' in body
    assert 'class="field-errors" hx-swap-oob="true"' not in body  # nothing to clear
    # An input the page still shows as wrong is cleared in the same answer.
    data["_shown_errors"] = "tco.cloud_price_per_1000"
    body = client.post(url("scenario-compute"), data, **HX).content.decode()
    assert (
        'id="err-tco-cloud_price_per_1000" class="field-errors" hx-swap-oob="true"></div>' in body
    )
    assert body.count('class="field-errors" hx-swap-oob="true"') == 1
    assert 'id="calc-shown-errors" name="_shown_errors" value=""' in body
    charts = figures(body)
    tornado = charts["chart-tornado"]
    assert [trace["name"] for trace in tornado["data"]] == [
        "Input at its low value",
        "Input at its high value",
    ]
    assert "NPV of cloud" in tornado["layout"]["xaxis"]["title"]["text"]  # the focus placement
    assert len(charts["chart-cashflow"]["data"][0]["y"]) == 37  # months 0..36


def test_changing_an_input_changes_the_figures(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    base = client.post(url("scenario-compute"), calculator_data(), **HX).content.decode()
    dearer = calculator_data(
        **{
            "tco.cloud_price_per_1000.low": "150",
            "tco.cloud_price_per_1000.likely": "200",
            "tco.cloud_price_per_1000.high": "300",
        }
    )
    changed = client.post(url("scenario-compute"), dearer, **HX).content.decode()

    def cloud_npv(body: str) -> str:
        return re.search(r'data-testid="kpi-npv-cloud">([^<]+)<', body).group(1)

    assert cloud_npv(base) != cloud_npv(changed)
    # 200 per 1,000 inferences sinks the cloud; money carries the organisation's currency.
    assert cloud_npv(changed).startswith("EUR\u00a0\u2212")


@pytest.mark.parametrize(
    ("field", "value", "slot", "message"),
    [
        (
            "power.electricity_price_per_kwh.low",
            "-0.2",
            "power-electricity_price_per_kwh",
            "low (-0.2) cannot be negative.",
        ),
        (
            "tco.support_hourly_rate.low",
            "500",
            "tco-support_hourly_rate",
            "low (500) is greater than likely (75).",
        ),
        (
            "latency.events_per_device_per_day.high",
            "1e12",
            "latency-events_per_device_per_day",
            "beyond the plausible maximum",
        ),
        (
            "accuracy.error_rate.cloud.likely",
            "abc",
            "accuracy-error_rate-cloud",
            "Enter a number for likely.",
        ),
        ("tco.integration.hybrid.high", "", "tco-integration-hybrid", "Enter a number for high."),
        ("scenario.sites", "0", "scenario-sites", "Must be between 1 and 100,000."),
        ("scenario.horizon_months", "", "scenario-horizon_months", "This figure is required."),
        (
            "scenario.annual_discount_rate_pct",
            "250",
            "scenario-annual_discount_rate_pct",
            "Between 0 and 100 % a year.",
        ),
    ],
)
def test_bad_input_puts_the_reason_next_to_the_input(client, world, field, value, slot, message):
    client.force_login(world.a.user(Role.PLANNER))
    response = client.post(url("scenario-compute"), calculator_data(**{field: value}), **HX)
    assert response.status_code == 200
    assert response["HX-Reswap"] == "none"  # the last good results stay on screen
    body = response.content.decode()
    match = re.search(
        rf'<div id="err-{re.escape(slot)}" class="field-errors" hx-swap-oob="true">(.*?)</div>\n',
        body,
        re.S,
    )
    assert match and message in match.group(1)
    assert 'data-testid="kpi-table"' not in body
    assert "1 input needs attention" in body
    assert 'data-testid="headline-stale"' in body  # the sticky strip says the figures are stale
    shown = re.search(r'id="calc-shown-errors" name="_shown_errors" value="([^"]*)"', body)
    expected = field if field.startswith("scenario.") else field.rsplit(".", 1)[0]
    assert shown.group(1) == expected


def test_saving_bad_input_keeps_every_typed_value(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    data = calculator_data(
        name="Typed",
        **{"power.gateway_watts.low": "-3", "offline.outage_hours_per_site.likely": "lots"},
    )
    response = client.post(url("scenario-new"), data)
    assert response.status_code == 422
    body = response.content.decode()
    assert 'name="power.gateway_watts.low" id="power-gateway_watts-low" value="-3"' in body
    assert 'value="lots"' in body
    assert "low (-3) cannot be negative." in body
    assert 'value="Typed"' in body
    assert "2 inputs need attention" in body
    assert RoiScenario.objects.count() == 0


def test_save_then_edit_with_a_stale_revision_is_409_and_keeps_the_edit(client, world):
    assessment = make_assessment(world.a.org)
    client.force_login(world.a.user(Role.PLANNER))
    data = calculator_data(
        name="Pilot", assessment=str(assessment.pk), workflow="logistics_dock_vision"
    )
    response = client.post(url("scenario-new"), data)
    scenario = RoiScenario.objects.get()
    assert response.url == url("scenario", scenario_id=scenario.pk)
    assert scenario.assessment == assessment
    assert scenario.summary["best_placement"] in {"on_device", "near_edge", "cloud", "hybrid"}
    edit = calculator_data(
        name="Pilot v2", revision="1", **{"tco.support_hourly_rate.likely": "90"}
    )
    assert client.post(url("scenario", scenario_id=scenario.pk), edit).status_code == 302
    scenario.refresh_from_db()
    assert (scenario.name, scenario.revision) == ("Pilot v2", 2)
    assert scenario.inputs["estimates"]["tco.support_hourly_rate"]["likely"] == 90
    stale = calculator_data(
        name="Someone else", revision="1", **{"tco.support_hourly_rate.likely": "95"}
    )
    response = client.post(url("scenario", scenario_id=scenario.pk), stale)
    assert response.status_code == 409
    body = response.content.decode()
    assert "changed by someone else" in body
    assert (
        'name="tco.support_hourly_rate.likely" id="tco-support_hourly_rate-likely" value="95"'
        in body
    )
    scenario.refresh_from_db()
    assert scenario.name == "Pilot v2"


def test_viewer_cannot_save_clone_or_delete(client, world):
    scenario = make_scenario(world.a.org)
    client.force_login(world.a.user(Role.VIEWER))
    assert client.post(url("scenario-new"), calculator_data()).status_code == 403
    assert (
        client.post(url("scenario", scenario_id=scenario.pk), calculator_data()).status_code == 403
    )
    assert client.post(url("scenario-clone", scenario_id=scenario.pk)).status_code == 403
    assert client.post(url("scenario-delete", scenario_id=scenario.pk)).status_code == 403
    assert RoiScenario.objects.count() == 1
    body = client.get(url("scenario", scenario_id=scenario.pk)).content.decode()
    assert 'data-testid="save-scenario"' not in body
    assert "saving needs the planner or admin role" in body


def test_clone_copies_and_links_back(client, world):
    scenario = make_scenario(world.a.org, name="Base case")
    client.force_login(world.a.user(Role.PLANNER))
    response = client.post(url("scenario-clone", scenario_id=scenario.pk))
    clone = RoiScenario.objects.exclude(pk=scenario.pk).get()
    assert response.url == url("scenario", scenario_id=clone.pk)
    assert clone.cloned_from == scenario and clone.inputs == scenario.inputs


def test_csv_export_has_inputs_sources_results_and_no_formulas(client, world):
    scenario = make_scenario(world.a.org)
    scenario.inputs["estimates"]["tco.tooling_per_month.cloud"]["source"] = "=HYPERLINK(evil)"
    scenario.save()
    client.force_login(world.a.user(Role.VIEWER))
    response = client.get(url("scenario-export", scenario_id=scenario.pk))
    assert response["Content-Type"].startswith("text/csv")
    assert f"acme-scenario-{scenario.pk}.csv" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    by_name = {row[1]: row for row in rows if len(row) == 8}
    price = by_name["tco.cloud_price_per_1000"]
    assert price[4:7] == ["0.5", "1.5", "4.0"]
    assert "managed vision inference endpoint" in price[7]
    assert by_name["tco.tooling_per_month.cloud"][7] == "'=HYPERLINK(evil)"
    npv = next(row for row in rows if row and row[0] == "npv")
    assert len(npv) == 5  # one figure per placement
    assert any(row and row[0] == "tornado" for row in rows)


def test_report_and_compare(client, world):
    base = make_scenario(world.a.org, name="Base")
    other = make_scenario(world.a.org, name="Dearer cloud")
    other.inputs["estimates"]["tco.cloud_price_per_1000"].update(low=2, likely=3, high=6)
    other.save()
    client.force_login(world.a.user(Role.VIEWER))
    report = client.get(url("scenario-report", scenario_id=base.pk)).content.decode()
    assert "Cost per active site / month" in report
    assert "rugged handheld refresh cycle." in report  # sources are in the report
    compare = client.get(url("scenario-compare") + f"?ids={base.pk}&ids={other.pk}")
    body = compare.content.decode()
    differences = body[body.index('data-testid="differences"') :]
    assert "Cloud price per 1,000 inferences" in differences
    assert "0.5 / 1.5 / 4" in differences and "2 / 3 / 6" in differences
    assert "Hardware cost per gateway" not in differences  # same in both


def test_scenario_of_another_organisation_is_404(client, world):
    foreign = make_scenario(world.b.org)
    client.force_login(world.a.user(Role.ADMIN))
    assert client.get(url("scenario", scenario_id=foreign.pk)).status_code == 404
    assert client.get(url("scenario-export", scenario_id=foreign.pk)).status_code == 404
    compare = client.get(url("scenario-compare") + f"?ids={foreign.pk}").content.decode()
    assert foreign.name not in compare
