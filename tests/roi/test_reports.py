"""Formatting and the side-by-side table the calculator and its report share."""

from __future__ import annotations

import pytest

from roi.engine import analyse, preset
from roi.presets import starting_inputs
from roi.reports import format_money, format_payback, input_differences, kpi_rows, scenario_summary
from roi.rules import Tier, WizardAnswers, Workflow
from tests.roi.builders import dock_answers


@pytest.mark.parametrize(
    ("value", "signed", "text"),
    [
        (1234567.8, False, "1,234,568"),
        (-2500.4, True, "\u22122,500"),
        (12.0, True, "+12"),
        (-0.3, True, "0"),
        (None, False, "—"),
        (float("nan"), False, "—"),
    ],
)
def test_money(value, signed, text):
    assert format_money(value, signed=signed) == text


def test_payback_words():
    assert format_payback(None, 36) == "not within 36 months"
    assert format_payback(0, 36) == "immediately"
    assert format_payback(7, 36) == "month 7"


def test_kpi_rows_mark_the_best_cell_per_row():
    summary = scenario_summary(
        analyse(inputs=preset(workflow=Workflow.LOGISTICS_DOCK_VISION), draws=2000)
    )
    rows = {row.key: row for row in kpi_rows(summary)}
    npv = rows["npv"]
    best = [cell.placement for cell in npv.cells if cell.best]
    assert best == [summary["best_placement"]]
    tco = rows["tco"]
    cheapest = min(tco.cells, key=lambda cell: cell.value)
    assert [cell.placement for cell in tco.cells if cell.best] == [cheapest.placement]
    assert rows["tco"].label == "3-year TCO"


def test_starting_from_an_assessment_takes_its_answers_and_keeps_other_sources():
    answers = WizardAnswers.from_dict(dock_answers(sites=9, model_changes_per_year=24))
    inputs, note = starting_inputs(
        workflow="logistics_dock_vision",
        answers=answers,
        assessment_name="Docks",
        local_tier=Tier.ON_DEVICE,
    )
    assert note == ""
    assert inputs.scenario.sites == 9
    assert inputs.scenario.hybrid_local_tier is Tier.ON_DEVICE
    rollouts = inputs.estimates["maintenance.rollouts_per_month"]
    # Preset spread 0.5 / 1 / 2 per month, scaled to 2 a month.
    assert (rollouts.low, rollouts.likely, rollouts.high) == (1.0, 2.0, 4.0)
    assert "from the assessment “Docks”" in rollouts.source
    base = preset(workflow=Workflow.LOGISTICS_DOCK_VISION)
    assert (
        inputs.estimates["tco.gateway_hardware_cost"] == base.estimates["tco.gateway_hardware_cost"]
    )


def test_custom_workflow_starts_from_logistics_and_says_so():
    inputs, note = starting_inputs(workflow="custom")
    assert inputs.name == "Logistics: dock vision"
    assert "no preset for a custom workflow" in note


def test_input_differences_list_only_what_differs():
    base = preset(workflow=Workflow.LOGISTICS_DOCK_VISION)
    other = base.with_scenario(sites=5)
    rows = input_differences([base, other])
    assert [(row.name, row.values) for row in rows] == [("scenario.sites", ("3", "5"))]


def test_gateways_follow_the_assessment_devices_at_the_presets_ratio():
    base = preset(workflow=Workflow.FIELD_SERVICE_TRIAGE).scenario
    answers = WizardAnswers.from_dict(dock_answers(sites=40, devices_per_site=3))
    inputs, _ = starting_inputs(workflow="field_service_triage", answers=answers)
    expected = max(1, round(base.gateways_per_site / base.devices_per_site * 3))
    assert inputs.scenario.devices_per_site == 3
    assert inputs.scenario.gateways_per_site == expected
    assert expected != base.gateways_per_site  # the preset's figure would have been wrong
    assert "ratio" in inputs.scenario.notes["gateways_per_site"]
