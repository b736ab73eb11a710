"""The decision wizard, rule by rule, including the exact boundaries the module documents."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from roi.rules import (
    RULES,
    RULESET_VERSION,
    ExistingHardware,
    ModelComplexity,
    Placement,
    PlanningInputError,
    PrivacyRisk,
    Tier,
    WizardAnswers,
    Workflow,
    decide,
    rule_table,
)


def answers(**changes) -> WizardAnswers:
    """A neutral starting point: nothing requires or favours local inference, so the rules
    pick the cloud by the cloud tie-break; each test moves one answer."""
    base = WizardAnswers(
        workflow=Workflow.CUSTOM,
        latency_tolerance_ms=1000,
        offline_share=0.0,
        longest_outage_hours=0.0,
        privacy_risk=PrivacyRisk.LOW,
        phi_involved=False,
        model_changes_per_year=4,
        devices_per_site=1,
        sites=1,
        payload_kb=0,
        inferences_per_device_per_minute=0,
        model_complexity=ModelComplexity.SMALL,
        existing_hardware=(),
    )
    return replace(base, **changes)


def fired(result) -> set[str]:
    return {finding.rule_id for finding in result.findings}


def test_neutral_answers_go_to_the_cloud_by_the_cloud_tie_break():
    result = decide(answers=answers())
    assert result.placement is Placement.CLOUD
    assert result.inference_tiers == (Tier.CLOUD,)
    assert "tie.location_cloud" in fired(result)
    assert result.ruleset_version == RULESET_VERSION


@pytest.mark.parametrize(
    ("latency_ms", "placement", "tight"),
    [
        (199, Placement.ON_DEVICE, True),  # strictly below 200 ms is tight
        (200, Placement.CLOUD, False),
        (201, Placement.CLOUD, False),
    ],
)
def test_latency_boundary_is_strictly_below_200_ms(latency_ms, placement, tight):
    result = decide(answers=answers(latency_tolerance_ms=latency_ms))
    assert result.placement is placement
    assert ("latency.tight" in fired(result)) is tight


def test_very_tight_latency_tips_a_tie_toward_on_device_below_50_ms():
    # Phones favour on-device (+1), a shared site with a medium model favours near-edge (+1);
    # under 50 ms on-device gets one more point, at 50 ms the tie goes to near-edge.
    shared = {
        "devices_per_site": 3,
        "model_complexity": ModelComplexity.MEDIUM,
        "existing_hardware": (ExistingHardware.PHONES_TABLETS,),
    }
    at_49 = decide(answers=answers(latency_tolerance_ms=49, **shared))
    at_50 = decide(answers=answers(latency_tolerance_ms=50, **shared))
    assert at_49.primary_tier is Tier.ON_DEVICE
    assert "latency.very_tight" in fired(at_49)
    assert at_50.primary_tier is Tier.NEAR_EDGE
    assert "tie.local_tier" in fired(at_50)


@pytest.mark.parametrize(
    ("share", "placement", "tiers"),
    [
        (0.0099, Placement.CLOUD, (Tier.CLOUD,)),
        # At 1 % partial local inference is required; the cloud is favoured (frequent
        # changes), so the cloud stays primary with a local path for outages.
        (0.01, Placement.HYBRID, (Tier.CLOUD, Tier.ON_DEVICE)),
        (0.0999, Placement.HYBRID, (Tier.CLOUD, Tier.ON_DEVICE)),
        # At 10 % local inference must be primary; the cloud takes escalations.
        (0.10, Placement.HYBRID, (Tier.ON_DEVICE, Tier.CLOUD)),
    ],
)
def test_offline_share_thresholds(share, placement, tiers):
    result = decide(answers=answers(offline_share=share, model_changes_per_year=12))
    assert result.placement is placement
    assert result.inference_tiers == tiers


def test_intermittent_connectivity_without_cloud_preference_runs_locally_only():
    result = decide(answers=answers(offline_share=0.01))
    assert result.placement is Placement.ON_DEVICE
    assert "tie.location_local" in fired(result)


@pytest.mark.parametrize(("hours", "intermittent"), [(0.9, False), (1.0, True)])
def test_longest_outage_of_an_hour_counts_as_intermittent(hours, intermittent):
    result = decide(answers=answers(longest_outage_hours=hours))
    assert ("offline.intermittent" in fired(result)) is intermittent
    expected = Placement.ON_DEVICE if intermittent else Placement.CLOUD
    assert result.placement is expected


def test_phi_forces_local_inference_and_forbids_cloud_inference():
    # Everything else points at the cloud: loose latency, always online, low privacy answered,
    # frequent changes, a large model.
    result = decide(
        answers=answers(
            phi_involved=True,
            model_changes_per_year=52,
            model_complexity=ModelComplexity.LARGE,
        )
    )
    assert result.placement is Placement.NEAR_EDGE  # large models do not go on-device
    assert Tier.CLOUD not in result.inference_tiers
    cloud = next(part for part in result.parts if part.tier is Tier.CLOUD)
    assert cloud.inference is False
    assert "de-identified" in cloud.role
    risk_ids = {risk.id for risk in result.risks}
    assert {"risk.phi", "risk.phi_answered_low"} <= risk_ids


def test_high_privacy_keeps_inference_local_without_cloud_escalation():
    result = decide(answers=answers(privacy_risk=PrivacyRisk.HIGH, model_changes_per_year=52))
    assert result.placement is Placement.ON_DEVICE
    assert result.inference_tiers == (Tier.ON_DEVICE,)
    assert "privacy.high" in fired(result)


def test_frequent_changes_add_cloud_escalation_when_local_is_required_and_allowed():
    result = decide(answers=answers(latency_tolerance_ms=150, model_changes_per_year=12))
    assert result.placement is Placement.HYBRID
    assert result.inference_tiers == (Tier.ON_DEVICE, Tier.CLOUD)
    assert "split.cloud_escalation" in fired(result)


@pytest.mark.parametrize(("changes", "frequent"), [(11, False), (12, True)])
def test_frequent_change_threshold_is_twelve_a_year(changes, frequent):
    result = decide(answers=answers(model_changes_per_year=changes))
    assert ("change.frequent" in fired(result)) is frequent


def test_large_model_never_runs_on_device_even_with_phones_and_one_device():
    result = decide(
        answers=answers(
            latency_tolerance_ms=100,
            model_complexity=ModelComplexity.LARGE,
            existing_hardware=(ExistingHardware.PHONES_TABLETS,),
        )
    )
    assert result.primary_tier is Tier.NEAR_EDGE
    assert "model.large_not_on_device" in fired(result)


@pytest.mark.parametrize(("devices", "tier"), [(1, Tier.ON_DEVICE), (2, Tier.NEAR_EDGE)])
def test_two_devices_with_a_medium_model_share_a_gateway(devices, tier):
    result = decide(
        answers=answers(
            latency_tolerance_ms=150,
            devices_per_site=devices,
            model_complexity=ModelComplexity.MEDIUM,
        )
    )
    assert result.primary_tier is tier


def test_heavy_upload_threshold_uses_the_site_upload_in_megabits():
    # 4 devices x 60/min x 125 KB x 8 bit / 60 s / 1000 = 4.0 Mbit/s: below 5, cloud.
    light = answers(devices_per_site=4, inferences_per_device_per_minute=60, payload_kb=125)
    assert light.site_upload_mbps == pytest.approx(4.0)
    assert decide(answers=light).placement is Placement.CLOUD
    # 156.25 KB gives exactly 5 Mbit/s: heavy, so local inference is favoured.
    heavy = replace(light, payload_kb=156.25)
    assert heavy.site_upload_mbps == pytest.approx(5.0)
    result = decide(answers=heavy)
    assert "bandwidth.heavy" in fired(result)
    # Four devices with a small model: neither local tier is favoured, near-edge wins the tie.
    assert result.placement is Placement.NEAR_EDGE


def test_field_service_pattern_is_on_device_with_optional_near_edge_fallback():
    result = decide(
        answers=answers(
            workflow=Workflow.FIELD_SERVICE_TRIAGE,
            offline_share=0.3,
            longest_outage_hours=8,
            model_complexity=ModelComplexity.MEDIUM,
            existing_hardware=(ExistingHardware.PHONES_TABLETS,),
        )
    )
    assert result.placement is Placement.ON_DEVICE
    fallback = next(part for part in result.parts if part.tier is Tier.NEAR_EDGE)
    assert fallback.optional is True
    assert fallback.rule_ids == ("split.near_edge_fallback",)
    assert result.architecture.key == "field_service_triage"
    assert result.architecture_note == ""


def test_logistics_pattern_is_near_edge_with_handheld_checks_and_cloud_escalation():
    result = decide(
        answers=answers(
            workflow=Workflow.LOGISTICS_DOCK_VISION,
            latency_tolerance_ms=150,
            offline_share=0.02,
            privacy_risk=PrivacyRisk.MEDIUM,
            model_changes_per_year=12,
            devices_per_site=8,
            model_complexity=ModelComplexity.LARGE,
            existing_hardware=(ExistingHardware.PHONES_TABLETS,),
        )
    )
    assert result.placement is Placement.HYBRID
    assert result.inference_tiers == (Tier.NEAR_EDGE, Tier.CLOUD)
    assert result.local_tier is Tier.NEAR_EDGE
    quick = next(part for part in result.parts if part.tier is Tier.ON_DEVICE)
    assert quick.optional is True
    assert "Run inference locally on the gateway." in result.architecture.data_flow
    assert "Signed model updates with staged rollout." in (result.architecture.operational_controls)


def test_answer_differing_from_the_workflow_pattern_says_so():
    # A large, monthly-changing model outweighs the dock pattern's one point for local.
    result = decide(
        answers=answers(
            workflow=Workflow.LOGISTICS_DOCK_VISION,
            model_complexity=ModelComplexity.LARGE,
            model_changes_per_year=12,
        )
    )
    assert result.placement is Placement.CLOUD
    assert result.architecture.key == "logistics_dock_vision"
    assert "differs from the playbook's pattern" in result.architecture_note


def test_custom_workflow_gets_a_generic_architecture_for_its_placement():
    result = decide(answers=answers(latency_tolerance_ms=150))
    assert result.architecture.key == "custom"
    assert "Run inference locally (on-device)." in result.architecture.data_flow


@pytest.mark.parametrize(
    "changes",
    [
        {},  # cloud by tie-break, with an unused on-device/near-edge tie
        {"devices_per_site": 3},
        {"latency_tolerance_ms": 150, "model_changes_per_year": 12},
        {"offline_share": 0.05, "model_changes_per_year": 12, "devices_per_site": 3},
        {"latency_tolerance_ms": 150, "existing_hardware": (ExistingHardware.PHONES_TABLETS,)},
    ],
)
def test_every_part_names_rules_that_are_in_the_findings(changes):
    result = decide(answers=answers(**changes))
    rule_ids = fired(result)
    for part in result.parts:
        assert part.rule_ids, part
        assert set(part.rule_ids) <= rule_ids, part
    assert sum(part.tier is Tier.CLOUD for part in result.parts) == 1
    cloud = next(part for part in result.parts if part.tier is Tier.CLOUD)
    assert "cloud.brain" in cloud.rule_ids


def test_each_part_of_the_answer_names_its_rules_and_they_fired():
    result = decide(answers=answers(latency_tolerance_ms=150, model_changes_per_year=12))
    primary = result.parts[0]
    assert primary.tier is Tier.ON_DEVICE and "latency.tight" in primary.rule_ids
    finding = next(f for f in result.findings if f.rule_id == "latency.tight")
    assert finding.observed == "latency tolerance 150 ms < 200 ms"
    assert "often pushes you toward on-device or near-edge" in finding.rationale


def test_what_would_change_names_the_nearest_threshold_first():
    # 150 ms is 25 % away from the 200 ms threshold; 24 changes a year is 50 % away from 12.
    result = decide(answers=answers(latency_tolerance_ms=150, model_changes_per_year=24))
    nearest = result.what_would_change[0]
    assert nearest.answer == "latency_tolerance_ms"
    assert nearest.counterfactual == 200
    assert nearest.new_placement is Placement.CLOUD
    assert nearest.sentence.startswith(
        "If latency tolerance were 200 ms or more (now 150 ms), the answer would be cloud"
    )
    # Then one more device per site (1 -> 2 is 50 % away), then 11 changes a year (13/24).
    numeric = [item for item in result.what_would_change if item.distance is not None]
    assert [(item.answer, item.counterfactual) for item in numeric] == [
        ("latency_tolerance_ms", 200),
        ("devices_per_site", 2),
        ("model_changes_per_year", 11),
    ]
    assert numeric[2].distance == pytest.approx(13 / 24)
    assert numeric[2].new_placement is Placement.ON_DEVICE


def test_what_would_change_steps_just_below_a_strict_threshold():
    result = decide(answers=answers(latency_tolerance_ms=250))
    item = next(w for w in result.what_would_change if w.answer == "latency_tolerance_ms")
    assert item.counterfactual == 199
    assert item.new_placement is Placement.ON_DEVICE
    assert "were below 200 ms (now 250 ms)" in item.sentence


def test_every_what_if_really_changes_the_answer():
    base = answers(
        latency_tolerance_ms=150,
        offline_share=0.02,
        privacy_risk=PrivacyRisk.MEDIUM,
        model_changes_per_year=12,
        devices_per_site=8,
        model_complexity=ModelComplexity.LARGE,
        existing_hardware=(ExistingHardware.PHONES_TABLETS,),
        payload_kb=250,
        inferences_per_device_per_minute=6,
    )
    result = decide(answers=base)
    assert result.what_would_change
    for item in result.what_would_change:
        value = item.counterfactual
        if item.answer == "existing_hardware":
            value = tuple(ExistingHardware(v) for v in value)
        other = decide(answers=replace(base, **{item.answer: value}))
        assert (other.placement, other.inference_tiers) == (item.new_placement, item.new_tiers)
        assert (other.inference_tiers, other.parts) != (result.inference_tiers, result.parts)


def test_from_dict_parses_labels_and_round_trips():
    parsed = WizardAnswers.from_dict(
        {
            "workflow": "healthcare_decision_support",
            "latency_tolerance_ms": "500",
            "offline_share": 0.005,
            "privacy_risk": "HIGH",
            "phi_involved": "yes",
            "model_change_frequency": "monthly",
            "devices_per_site": 3,
            "existing_hardware": ["windows_npu_fleet"],
        }
    )
    assert parsed.model_changes_per_year == 12
    assert parsed.privacy_risk is PrivacyRisk.HIGH
    assert parsed.phi_involved is True
    assert parsed.existing_hardware == (ExistingHardware.WINDOWS_NPU_FLEET,)
    assert WizardAnswers.from_dict(parsed.to_dict()) == parsed
    json.dumps(decide(answers=parsed).to_dict())


def test_missing_required_answers_are_reported_per_field():
    with pytest.raises(PlanningInputError) as caught:
        WizardAnswers.from_dict({"devices_per_site": 2})
    assert set(caught.value.fields) == {
        "workflow",
        "latency_tolerance_ms",
        "offline_share",
        "privacy_risk",
        "model_changes_per_year",
    }
    assert caught.value.fields["workflow"] == ["This answer is required."]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"latency_tolerance_ms": -5}, "latency_tolerance_ms"),
        ({"latency_tolerance_ms": 0}, "latency_tolerance_ms"),
        ({"offline_share": 1.5}, "offline_share"),
        ({"offline_share": -0.1}, "offline_share"),
        ({"sites": 10**9}, "sites"),
        ({"devices_per_site": 2.5}, "devices_per_site"),
        ({"longest_outage_hours": float("nan")}, "longest_outage_hours"),
        ({"payload_kb": True}, "payload_kb"),
        (
            {"existing_hardware": (ExistingHardware.NONE, ExistingHardware.JETSON_CLASS)},
            "existing_hardware",
        ),
    ],
)
def test_bad_answers_name_the_field(change, field):
    with pytest.raises(PlanningInputError) as caught:
        decide(answers=answers(**change))
    assert list(caught.value.fields) == [field]


def test_bad_choices_from_a_form_name_the_field():
    with pytest.raises(PlanningInputError) as caught:
        WizardAnswers.from_dict(
            {
                "workflow": "mining",
                "latency_tolerance_ms": "fast",
                "offline_share": 0,
                "privacy_risk": "low",
                "model_changes_per_year": "sometimes",
            }
        )
    assert set(caught.value.fields) == {
        "workflow",
        "latency_tolerance_ms",
        "model_changes_per_year",
    }


def test_rules_are_versioned_data_with_unique_ids():
    ids = [rule.id for rule in RULES]
    assert len(ids) == len(set(ids))
    assert {row["id"] for row in rule_table()} == set(ids)
    tight = next(row for row in rule_table() if row["id"] == "latency.tight")
    assert tight["when"] == "latency_tolerance_ms < 200.0"
    for rule in RULES:
        assert rule.rationale.endswith("."), rule.id


@pytest.mark.parametrize("answers", [["workflow"], "logistics_dock_vision", 3, None])
def test_answers_that_are_not_an_object_are_one_field_error(answers):
    with pytest.raises(PlanningInputError) as caught:
        WizardAnswers.from_dict(answers)
    assert caught.value.fields == {"answers": ["Not an object."]}
