"""ROI/TCO engine: hand-computed cases, properties, Monte Carlo, tornado, planned vs measured.

Expected numbers are worked out in the comments from the formulas in ``roi.engine``'s
docstring, never by calling the engine.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roi.engine import (
    INPUT_NAMES,
    PLACEMENTS,
    PRESETS,
    SPEC_BY_NAME,
    Distribution,
    Estimate,
    ResidualValue,
    RoiInputs,
    Scenario,
    analyse,
    evaluate,
    preset,
    recompute_with_measurements,
    sample_inputs,
    simulate,
    tornado,
)
from roi.rules import Placement, PlanningInputError, Workflow

NE, CL, HY = (Placement.NEAR_EDGE, Placement.CLOUD, Placement.HYBRID)


def blank(
    values: Mapping[str, float | Estimate] | None = None,
    *,
    sites: int = 1,
    devices_per_site: int = 1,
    gateways_per_site: int = 1,
    annual_discount_rate: float = 0.0,
    horizon_months: int = 12,
    hybrid: tuple[float, float, float] = (0.0, 1.0, 0.0),
    residual_value: str = "none",
    **scenario: object,
) -> RoiInputs:
    """Every input exactly at its minimum (0, cooling factor 1), no replacement within the
    horizon, no residual value, no ramp, then ``values`` on top: only what a test sets
    contributes. ``hybrid`` is the (on-device, near-edge, cloud) share of events."""
    estimates = {name: Estimate.exactly(SPEC_BY_NAME[name].minimum) for name in INPUT_NAMES}
    estimates["tco.device_replacement_months"] = Estimate.exactly(240)
    estimates["tco.gateway_replacement_months"] = Estimate.exactly(240)
    for name, value in (values or {}).items():
        estimates[name] = value if isinstance(value, Estimate) else Estimate.exactly(value)
    return RoiInputs(
        scenario=Scenario(
            sites=sites,
            devices_per_site=devices_per_site,
            gateways_per_site=gateways_per_site,
            annual_discount_rate=annual_discount_rate,
            horizon_months=horizon_months,
            hybrid_on_device_share=hybrid[0],
            hybrid_near_edge_share=hybrid[1],
            hybrid_cloud_share=hybrid[2],
            residual_value=ResidualValue(residual_value),
            **scenario,
        ),
        estimates=estimates,
    )


# A near-edge pilot: 2 sites x 1 gateway at 1,000, integration 1,000, a compliance cost of
# 12,000 a year of which near-edge avoids half (500 a month), tooling 100 a month.
PILOT = {
    "tco.gateway_hardware_cost": 1_000,
    "tco.integration.near_edge": 1_000,
    "privacy.annual_compliance_cost": 12_000,
    "privacy.compliance_reduction.near_edge": 0.5,
    "tco.tooling_per_month.near_edge": 100,
}


def test_npv_payback_and_costs_of_a_simple_pilot_by_hand():
    # Monthly rate 1 %: the annual rate (1.01 ** 12 - 1) converted back is exactly 0.01.
    inputs = blank(PILOT, sites=2, devices_per_site=3, annual_discount_rate=1.01**12 - 1)
    near_edge = evaluate(inputs=inputs)[NE]
    # benefit = 12,000 / 12 x 0.5 = 500; operating = tooling 100; net = 400.
    assert near_edge.monthly_benefit == pytest.approx(500)
    assert near_edge.monthly_operating_cost == pytest.approx(100)
    assert near_edge.net_monthly == pytest.approx(400)
    # upfront = 2 gateways x 1,000 + integration 1,000 = 3,000.
    assert near_edge.upfront == pytest.approx(3_000)
    # NPV = -3,000 + 400 x sum(1.01 ** -t, t = 1..12) = -3,000 + 400 x 11.2550775 = 1,502.031
    assert near_edge.npv == pytest.approx(1_502.030989, rel=1e-9)
    # Cumulative: -3,000 + 400 t; month 7 = -200, month 8 = +200 -> payback month 8.
    assert near_edge.payback_month == 8
    assert near_edge.cumulative_cash_flow[7] == pytest.approx(-200)
    assert near_edge.cumulative_cash_flow[8] == pytest.approx(200)
    # TCO over 12 months = 2,000 hardware + 1,000 integration + 12 x 100 = 4,200.
    assert near_edge.tco == pytest.approx(4_200)
    # Per active site per month = 4,200 / 12 / 2 = 175; per device = 4,200 / 12 / 6 = 58.33.
    assert near_edge.cost_per_site_month == pytest.approx(175)
    assert near_edge.cost_per_device_month == pytest.approx(58.333333, rel=1e-6)
    # ROI = (12 x 500 - 4,200) / 4,200 = 42.857 %.
    assert near_edge.roi_pct == pytest.approx(42.857142857, rel=1e-9)
    assert near_edge.outage_loss_monthly == 0  # no outages in this pilot


def test_a_placement_with_nothing_set_has_zero_economics():
    cloud = evaluate(inputs=blank(PILOT, sites=2))[CL]
    assert cloud.npv == 0
    assert cloud.tco == 0
    assert cloud.roi_pct is None  # no cost, no ROI
    assert cloud.payback_month == 0  # never below zero
    assert cloud.outage_loss_monthly == 0


def test_replacement_delays_payback_until_the_curve_stays_above_zero():
    # No discounting; gateways replaced every 6 months within a 12-month horizon: bought at
    # months 0 and 6 (not 12). Benefit 12,000 / 12 x 0.7 = 700, net 600.
    inputs = blank(
        {
            **PILOT,
            "privacy.compliance_reduction.near_edge": 0.7,
            "tco.gateway_replacement_months": 6,
        },
        sites=2,
    )
    near_edge = evaluate(inputs=inputs)[NE]
    # Month 0: -3,000; +600 a month; month 6 also -2,000 for the replacement.
    expected = [-3000, -2400, -1800, -1200, -600, 0, -1400, -800, -200, 400, 1000, 1600, 2200]
    assert near_edge.cumulative_cash_flow == pytest.approx(expected)
    # Month 5 touches 0 but month 6 dips again: payback is month 9, from which it stays >= 0.
    assert near_edge.payback_month == 9
    assert near_edge.hardware_replacements == 1
    assert near_edge.npv == pytest.approx(2_200)  # undiscounted sum
    # TCO = 2 purchases x 2,000 + 1,000 + 12 x 100 = 6,200.
    assert near_edge.tco == pytest.approx(6_200)


def test_payback_is_none_when_never_reached_within_the_horizon():
    inputs = blank({**PILOT, "privacy.compliance_reduction.near_edge": 0.1}, sites=2)
    # Net = 12,000 / 12 x 0.1 - 100 = 0: the 3,000 upfront is never recovered.
    assert evaluate(inputs=inputs)[NE].payback_month is None


def test_per_event_benefits_and_cloud_inference_cost_by_hand():
    values = {
        "latency.events_per_device_per_day": 30,
        "latency.baseline_time_to_action_s": 10,
        "latency.value_per_hour_saved": 36,
        "accuracy.baseline_error_rate": 0.02,
        "accuracy.cost_per_error": 5,
        "tco.cloud_price_per_1000": 2,
        "power.gateway_watts": 50,
        "power.electricity_price_per_kwh": 0.2,
        "power.cooling_overhead_factor": 1.5,
    }
    for placement in PLACEMENTS:
        values[f"latency.time_to_action_s.{placement}"] = 4
        values[f"accuracy.error_rate.{placement}"] = 0.01
    result = evaluate(inputs=blank(values, devices_per_site=2, hybrid=(0, 0.75, 0.25)))
    # events = 1 site x 2 devices x 30 a day x 30.4375 days = 1,826.25 a month.
    # latency = 1,826.25 x (10 - 4) s / 3,600 x 36 = 109.575
    # accuracy = 1,826.25 x (0.02 - 0.01) x 5 = 91.3125
    # cloud inference = 1,826.25 x 2 / 1,000 = 3.6525
    cloud = result[CL]
    assert cloud.benefits["latency"] == pytest.approx(109.575)
    assert cloud.benefits["accuracy"] == pytest.approx(91.3125)
    assert cloud.costs["cloud_inference"] == pytest.approx(3.6525)
    assert cloud.net_monthly == pytest.approx(197.235)
    # Hybrid (near-edge 75 %, cloud 25 %): a quarter of events go to the cloud = 0.913125,
    # plus one gateway at 50 W x 24 h x 30.4375 / 1,000 = 36.525 kWh x 0.2 x 1.5 = 10.9575.
    hybrid = result[HY]
    assert hybrid.costs["cloud_inference"] == pytest.approx(0.913125)
    assert hybrid.costs["power"] == pytest.approx(10.9575)
    assert hybrid.net_monthly == pytest.approx(189.016875)


def test_operating_cost_breakdown_of_near_edge_by_hand():
    values = {
        "power.gateway_watts": 40,
        "power.electricity_price_per_kwh": 0.25,
        "power.cooling_overhead_factor": 1.2,
        "maintenance.rollouts_per_month": 2,
        "maintenance.rollout_hours.near_edge": 3,
        "maintenance.rollback_share": 0.5,
        "maintenance.rollback_hours.near_edge": 2,
        "maintenance.interventions_per_site.near_edge": 1.5,
        "maintenance.cost_per_intervention": 20,
        "tco.support_hourly_rate": 50,
        "privacy.data_leaving_gb_per_site.near_edge": 10,
        "privacy.egress_price_per_gb": 0.1,
        "accuracy.monitoring_per_month.near_edge": 25,
        "tco.licence_per_device.near_edge": 1.5,
        "tco.tooling_per_month.near_edge": 100,
        "tco.support_hours_per_month.near_edge": 4,
        "tco.bandwidth_per_site.near_edge": 15,
        "privacy.annual_compliance_cost": 1_200,
        "privacy.compliance_reduction.near_edge": 0.5,
    }
    near_edge = evaluate(inputs=blank(values, sites=2, devices_per_site=3))[NE]
    assert near_edge.costs == pytest.approx(
        {
            # 2 gateways x 40 W x 24 h x 30.4375 / 1,000 = 58.44 kWh x 0.25 x 1.2
            "power": 17.532,
            "rollouts": 400,  # 2 rollouts x (3 h + 0.5 x 2 h) x 50
            "interventions": 60,  # 2 sites x 1.5 x 20
            "data_egress": 2,  # 2 sites x 10 GB x 0.1
            "monitoring": 25,
            "licences": 9,  # 6 devices x 1.5
            "tooling": 100,
            "support": 200,  # 4 h x 50
            "cloud_inference": 0,
            "bandwidth": 30,  # 2 sites x 15
            "wan_outages": 0,  # no outage hours set
        }
    )
    assert near_edge.monthly_operating_cost == pytest.approx(843.532)
    assert near_edge.benefits["compliance"] == pytest.approx(50)  # 1,200 / 12 x 0.5


def test_hybrid_uses_the_local_tier_the_scenario_names():
    values = {"tco.device_hardware_cost": 100, "tco.gateway_hardware_cost": 1_000}
    on_device_hybrid = evaluate(inputs=blank(values, devices_per_site=4, hybrid=(0.9, 0, 0.1)))[HY]
    near_edge_hybrid = evaluate(inputs=blank(values, devices_per_site=4))[HY]
    assert on_device_hybrid.hardware_purchase == pytest.approx(400)  # 4 devices x 100
    assert near_edge_hybrid.hardware_purchase == pytest.approx(1_000)  # 1 gateway


def test_discounted_cumulative_ends_at_the_npv_and_best_placement_is_the_highest_npv():
    result = evaluate(inputs=preset(workflow=Workflow.LOGISTICS_DOCK_VISION))
    for economics in result.placements.values():
        assert len(economics.cumulative_cash_flow) == 37
        assert economics.cumulative_discounted_cash_flow[-1] == pytest.approx(economics.npv)
    best = max(result.placements.values(), key=lambda e: e.npv)
    assert result.best_placement is best.placement


# --- Properties ---------------------------------------------------------------------------

money = st.floats(min_value=0, max_value=1e6, allow_nan=False)
hours = st.floats(min_value=0, max_value=744, allow_nan=False)
share = st.floats(min_value=0, max_value=1, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(low=hours, high=hours, revenue=money, rescued=share)
def test_more_outage_hours_never_lower_the_cloud_loss(low, high, revenue, rescued):
    low, high = sorted((low, high))

    def loss(outage: float) -> float:
        inputs = blank(
            {
                "offline.outage_hours_per_site": outage,
                "offline.revenue_lost_per_outage_hour": revenue,
                "offline.completes_offline.cloud": rescued,
            },
            sites=3,
        )
        return evaluate(inputs=inputs)[CL].outage_loss_monthly

    assert loss(high) >= loss(low)


@settings(max_examples=60, deadline=None)
@given(
    rates=st.tuples(share, share),
    saving=st.floats(min_value=0.01, max_value=1e5, allow_nan=False),
    upfront=st.floats(min_value=0, max_value=1e6, allow_nan=False),
)
def test_a_higher_discount_rate_never_raises_the_npv_of_positive_savings(rates, saving, upfront):
    low_rate, high_rate = sorted(rates)

    def npv(rate: float) -> float:
        inputs = blank(
            {
                "privacy.annual_compliance_cost": saving * 12,
                "privacy.compliance_reduction.near_edge": 1,
                "tco.integration.near_edge": upfront,
            },
            annual_discount_rate=rate,
            horizon_months=36,
        )
        return evaluate(inputs=inputs)[NE].npv

    assert npv(high_rate) <= npv(low_rate) + 1e-9 * max(1.0, abs(npv(low_rate)))


@st.composite
def estimates(draw, *, maximum: float) -> Estimate:
    points = sorted(draw(st.floats(min_value=0, max_value=maximum)) for _ in range(3))
    return Estimate(*points)


@settings(max_examples=25, deadline=None)
@given(
    revenue=estimates(maximum=1_000),
    rescued=estimates(maximum=1),
    hardware=estimates(maximum=5_000),
    tooling=estimates(maximum=500),
    distribution=st.sampled_from(list(Distribution)),
)
def test_p10_p50_p90_are_ordered(revenue, rescued, hardware, tooling, distribution):
    inputs = blank(
        {
            "offline.outage_hours_per_site": 5,
            "offline.revenue_lost_per_outage_hour": revenue,
            "offline.completes_offline.near_edge": rescued,
            "tco.gateway_hardware_cost": hardware,
            "tco.tooling_per_month.near_edge": tooling,
        }
    )
    result = simulate(inputs=inputs, draws=500, seed=3, distribution=distribution)
    for spread in result.placements.values():
        assert spread.npv.p10 <= spread.npv.p50 <= spread.npv.p90
        assert spread.net_monthly.p10 <= spread.net_monthly.p50 <= spread.net_monthly.p90
        assert 0 <= spread.probability_npv_positive <= 1


def collapsed(inputs: RoiInputs) -> RoiInputs:
    return inputs.with_estimates(
        {name: Estimate.exactly(est.likely) for name, est in inputs.estimates.items()}
    )


@pytest.mark.parametrize("workflow", list(PRESETS))
def test_monte_carlo_of_point_estimates_equals_the_deterministic_result(workflow):
    inputs = collapsed(preset(workflow=workflow))
    deterministic = evaluate(inputs=inputs)
    result = simulate(inputs=inputs, draws=2_000)
    for placement in PLACEMENTS:
        spread, exact = result[placement], deterministic[placement]
        for value in (spread.npv.p10, spread.npv.p50, spread.npv.p90, spread.npv_mean):
            assert value == pytest.approx(exact.npv, rel=1e-12, abs=1e-6)
        assert spread.net_monthly.p50 == pytest.approx(exact.net_monthly, rel=1e-12)
        assert spread.probability_npv_positive == (1.0 if exact.npv > 0 else 0.0)


# --- Monte Carlo sampling -------------------------------------------------------------------


def test_pert_and_triangular_samples_have_the_textbook_means_and_stay_in_range():
    inputs = blank({"tco.gateway_hardware_cost": Estimate(0, 1, 10)})
    pert = sample_inputs(inputs=inputs, draws=10_000, seed=7)["tco.gateway_hardware_cost"]
    tri = sample_inputs(inputs=inputs, draws=10_000, seed=7, distribution=Distribution.TRIANGULAR)[
        "tco.gateway_hardware_cost"
    ]
    # PERT mean (a + 4m + b) / 6 = 14 / 6 = 2.333; triangular (a + m + b) / 3 = 3.667.
    assert pert.mean() == pytest.approx(14 / 6, abs=0.05)
    assert tri.mean() == pytest.approx(11 / 3, abs=0.05)
    for sample in (pert, tri):
        assert sample.min() >= 0 and sample.max() <= 10
        assert sample.shape == (10_000,)


def test_distribution_given_as_text_is_honoured_and_unknown_text_is_refused():
    inputs = blank({"tco.gateway_hardware_cost": Estimate(0, 1, 10)})
    as_text = sample_inputs(inputs=inputs, draws=2_000, seed=5, distribution="triangular")
    as_enum = sample_inputs(
        inputs=inputs, draws=2_000, seed=5, distribution=Distribution.TRIANGULAR
    )
    name = "tco.gateway_hardware_cost"
    assert np.array_equal(as_text[name], as_enum[name])
    with pytest.raises(PlanningInputError) as caught:
        simulate(inputs=inputs, draws=10, distribution="lognormal")
    assert list(caught.value.fields) == ["distribution"]


def test_point_estimates_are_sampled_as_exact_constants():
    samples = sample_inputs(inputs=blank({"power.gateway_watts": 42.5}), draws=100)
    assert np.all(samples["power.gateway_watts"] == 42.5)


def test_monte_carlo_is_reproducible_and_independent_of_sampling_threads():
    inputs = preset(workflow=Workflow.FIELD_SERVICE_TRIAGE)
    one = sample_inputs(inputs=inputs, draws=1_000, seed=11, workers=1)
    two = sample_inputs(inputs=inputs, draws=1_000, seed=11, workers=2)
    other = sample_inputs(inputs=inputs, draws=1_000, seed=12, workers=2)
    assert all(np.array_equal(one[name], two[name]) for name in INPUT_NAMES)
    assert not np.array_equal(
        one["latency.value_per_hour_saved"], other["latency.value_per_hour_saved"]
    )
    first = simulate(inputs=inputs, draws=1_000, seed=11)
    assert simulate(inputs=inputs, draws=1_000, seed=11) == first


def test_editing_one_input_leaves_the_other_inputs_draws_unchanged():
    inputs = preset(workflow=Workflow.LOGISTICS_DOCK_VISION)
    edited = inputs.with_estimates({"power.gateway_watts": Estimate(10, 20, 90)})
    before = sample_inputs(inputs=inputs, draws=500, seed=1)
    after = sample_inputs(inputs=edited, draws=500, seed=1)
    assert np.array_equal(before["tco.cloud_price_per_1000"], after["tco.cloud_price_per_1000"])
    assert not np.array_equal(before["power.gateway_watts"], after["power.gateway_watts"])


def test_a_sure_loss_has_zero_probability_of_positive_npv():
    inputs = blank(
        {
            "tco.tooling_per_month.cloud": Estimate(100, 200, 300),
            "privacy.annual_compliance_cost": Estimate(120, 240, 600),
            "privacy.compliance_reduction.near_edge": 1,
        }
    )
    result = simulate(inputs=inputs, draws=1_000)
    assert result[CL].probability_npv_positive == 0.0
    assert result[NE].probability_npv_positive == 1.0
    # Cloud: net between -300 and -100 a month, 12 months undiscounted.
    assert -3_600 <= result[CL].npv.p10 <= result[CL].npv.p90 <= -1_200


# --- Tornado ----------------------------------------------------------------------------------


def test_tornado_bars_are_sorted_by_swing_and_match_one_at_a_time_evaluation():
    inputs = preset(workflow=Workflow.LOGISTICS_DOCK_VISION)
    result = tornado(inputs=inputs, placement=NE)
    swings = [bar.swing for bar in result.bars]
    assert swings == sorted(swings, reverse=True)
    assert swings[0] > 0
    assert result.base == pytest.approx(evaluate(inputs=inputs)[NE].npv)
    for bar in result.bars[:3]:
        # A correlated group swings all its members together, as the Monte Carlo draws them.
        low = inputs.with_estimates(
            {name: Estimate.exactly(inputs.estimates[name].low) for name in bar.members}
        )
        high = inputs.with_estimates(
            {name: Estimate.exactly(inputs.estimates[name].high) for name in bar.members}
        )
        assert bar.output_at_low == pytest.approx(evaluate(inputs=low)[NE].npv)
        assert bar.output_at_high == pytest.approx(evaluate(inputs=high)[NE].npv)


def test_tornado_leaves_out_point_estimates_and_keeps_input_order_for_equal_swings():
    inputs = blank(
        {
            "privacy.annual_compliance_cost": Estimate(0, 120, 240),
            "privacy.compliance_reduction.cloud": 1,
            "tco.tooling_per_month.cloud": Estimate(0, 10, 20),  # same swing, later input
            "tco.tooling_per_month.near_edge": Estimate(0, 50, 100),  # other placement
        }
    )
    result = tornado(inputs=inputs, placement=CL, output="net_monthly")
    assert [bar.name for bar in result.bars] == [
        "privacy.annual_compliance_cost",
        "tco.tooling_per_month.cloud",
        "tco.tooling_per_month.near_edge",
    ]
    assert [bar.swing for bar in result.bars] == [20, 20, 0]
    assert result.base == 0  # 1 x 10 - 10


def test_tornado_defaults_to_the_best_placement():
    # Two sites: near-edge NPV = -3,000 + 12 x 400 = 1,800, every other placement is 0.
    inputs = blank({**PILOT, "tco.gateway_hardware_cost": Estimate(500, 1_000, 1_500)}, sites=2)
    result = tornado(inputs=inputs)
    assert result.placement is NE
    assert result.base == pytest.approx(1_800)
    # Gateways at 500 or 1,500 each (2 of them): NPV 2,800 or 800.
    (bar,) = result.bars
    assert (bar.output_at_low, bar.output_at_high) == pytest.approx((2_800, 800))
    with pytest.raises(PlanningInputError) as caught:
        tornado(inputs=inputs, output="irr")
    assert "output" in caught.value.fields


# --- Planned vs measured ----------------------------------------------------------------------


def test_recompute_with_measurements_shows_both_results():
    inputs = blank(
        {
            **PILOT,
            "offline.outage_hours_per_site": 10,
            "offline.revenue_lost_per_outage_hour": 50,
            "offline.completes_offline.near_edge": Estimate(0.4, 0.5, 0.9),
        },
        sites=2,
    )
    both = recompute_with_measurements(
        inputs=inputs, measured={"offline.completes_offline.near_edge": 0.8}
    )
    # Outages are worth 2 sites x 10 h x 50 = 1,000 a month; what does not keep working is
    # lost: planned 1,000 x (1 - 0.5) = 500, measured 1,000 x (1 - 0.8) = 200, plus tooling 100.
    assert both.planned[NE].outage_loss_monthly == pytest.approx(500)
    assert both.measured[NE].outage_loss_monthly == pytest.approx(200)
    assert both.planned[NE].monthly_operating_cost == pytest.approx(600)
    assert both.measured[NE].monthly_operating_cost == pytest.approx(300)
    assert both.measured_inputs.estimates["offline.completes_offline.near_edge"].is_exact
    (replaced,) = both.replaced
    assert (replaced.name, replaced.planned.likely, replaced.measured) == (
        "offline.completes_offline.near_edge",
        0.5,
        0.8,
    )
    assert inputs.estimates["offline.completes_offline.near_edge"].likely == 0.5  # untouched
    json.dumps(both.to_dict())


def test_measurements_for_unknown_or_impossible_inputs_name_the_field():
    with pytest.raises(PlanningInputError) as caught:
        recompute_with_measurements(
            inputs=blank(PILOT),
            measured={"offline.completes_offline.near_edge": 1.4, "latency.p95": 120},
        )
    assert set(caught.value.fields) == {"offline.completes_offline.near_edge", "latency.p95"}


# --- Bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "estimate", "message"),
    [
        ("power.electricity_price_per_kwh", Estimate(0.3, 0.2, 0.4), "greater than likely"),
        ("tco.gateway_hardware_cost", Estimate(100, 200, 150), "greater than high"),
        ("privacy.egress_price_per_gb", Estimate(-1, 0, 1), "cannot be negative"),
        ("offline.completes_offline.cloud", Estimate(0, 0.5, 1.2), "a share is between 0 and 1"),
        ("power.cooling_overhead_factor", Estimate(0.5, 1, 1), "cannot be below 1"),
        ("latency.events_per_device_per_day", Estimate(1, 2, float("inf")), "finite"),
    ],
)
def test_bad_estimates_name_the_field(name, estimate, message):
    with pytest.raises(PlanningInputError) as caught:
        evaluate(inputs=blank({name: estimate}))
    assert list(caught.value.fields) == [name]
    assert message in caught.value.fields[name][0]


def test_bad_scenario_and_missing_or_unknown_estimates_name_the_field():
    inputs = blank().with_scenario(sites=10**9, annual_discount_rate=-0.1)
    estimates = dict(inputs.estimates)
    del estimates["tco.support_hourly_rate"]
    estimates["tco.espresso_machine"] = Estimate(1, 2, 3)
    with pytest.raises(PlanningInputError) as caught:
        simulate(inputs=RoiInputs(scenario=inputs.scenario, estimates=estimates))
    assert set(caught.value.fields) == {
        "scenario.sites",
        "scenario.annual_discount_rate",
        "tco.support_hourly_rate",
        "tco.espresso_machine",
    }


def test_from_dict_reports_unparseable_values_per_field_and_round_trips():
    inputs = preset(workflow=Workflow.HEALTHCARE_DECISION_SUPPORT)
    assert RoiInputs.from_dict(json.loads(json.dumps(inputs.to_dict()))) == inputs
    broken = inputs.to_dict()
    broken["scenario"]["sites"] = "many"
    broken["estimates"]["tco.support_hourly_rate"]["high"] = "lots"
    with pytest.raises(PlanningInputError) as caught:
        RoiInputs.from_dict(broken)
    assert set(caught.value.fields) == {"scenario.sites", "tco.support_hourly_rate"}


# --- Presets --------------------------------------------------------------------------------


@pytest.mark.parametrize("workflow", list(PRESETS))
def test_presets_are_valid_and_every_default_has_a_source(workflow):
    inputs = preset(workflow=workflow)
    assert set(inputs.estimates) == set(INPUT_NAMES)
    for name, estimate in inputs.estimates.items():
        assert len(estimate.source) > 15, name
        assert estimate.low <= estimate.likely <= estimate.high, name
    for key in ("sites", "devices_per_site", "gateways_per_site", "annual_discount_rate"):
        assert inputs.scenario.notes.get(key), key
    analysis = analyse(inputs=inputs, draws=1_000)
    json.dumps(analysis.to_dict())


def test_there_is_no_preset_for_a_custom_workflow():
    with pytest.raises(PlanningInputError) as caught:
        preset(workflow=Workflow.CUSTOM)
    assert "workflow" in caught.value.fields
