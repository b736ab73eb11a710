"""Issue 18: the wizard's rationale is true, the workflow enters the rules, the vocabulary has
its own module and nothing a person reads is a raw key or a number misattributed to the seed."""

from __future__ import annotations

import itertools
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import roi.rules
import roi.vocabulary
from roi.rules import (
    LOCAL_TIERS,
    RULES,
    TIE_BREAKS,
    ExistingHardware,
    ModelComplexity,
    Placement,
    PrivacyRisk,
    Tier,
    WizardAnswers,
    Workflow,
    decide,
)

REPO = Path(__file__).resolve().parents[2]


def answers(**changes) -> WizardAnswers:
    base = WizardAnswers(
        workflow=Workflow.CUSTOM,
        latency_tolerance_ms=1000,
        offline_share=0.0,
        privacy_risk=PrivacyRisk.LOW,
        model_changes_per_year=4,
        model_complexity=ModelComplexity.SMALL,
    )
    return replace(base, **changes)


def finding(result, rule_id):
    return next(f for f in result.findings if f.rule_id == rule_id)


# --- Vocabulary ---------------------------------------------------------------------------------

MOVED = (
    "PlanningInputError",
    "raise_for_field_errors",
    "Workflow",
    "PrivacyRisk",
    "ModelComplexity",
    "ExistingHardware",
    "Tier",
    "Placement",
    "LOCAL_TIERS",
    "TIER_LABELS",
    "TIER_PLACES",
    "HARDWARE_LABELS",
    "CHANGE_FREQUENCY_PER_YEAR",
)


@pytest.mark.parametrize("name", MOVED)
def test_vocabulary_lives_in_its_own_module_and_rules_re_exports_it(name):
    assert getattr(roi.rules, name) is getattr(roi.vocabulary, name)
    assert name in roi.vocabulary.__all__


def test_moved_classes_and_functions_are_defined_in_the_vocabulary():
    for name in ("PlanningInputError", "raise_for_field_errors", "Workflow", "Tier", "Placement"):
        assert getattr(roi.vocabulary, name).__module__ == "roi.vocabulary", name


def test_vocabulary_imports_no_django():
    probe = (
        "import sys, roi.vocabulary\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'roi')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "", "PYTHONPATH": str(REPO)},
    )
    assert done.stdout.strip() == "['roi', 'roi.vocabulary']"


# --- Tie-breaks and overridden rules ------------------------------------------------------------


def test_medium_privacy_against_frequent_changes_is_not_called_nothing_favours_local():
    result = decide(answers=answers(privacy_risk=PrivacyRisk.MEDIUM, model_changes_per_year=12))
    ids = {f.rule_id for f in result.findings}
    assert "tie.location_cloud" not in ids
    assert "tie.location_privacy" in ids
    # The privacy rule decided the primary tier; the cloud still takes the fast-changing part.
    assert result.primary_tier in (Tier.ON_DEVICE, Tier.NEAR_EDGE)
    assert Tier.CLOUD in result.inference_tiers
    assert "privacy.medium" in result.parts[0].rule_ids
    cloud = next(part for part in result.parts if part.tier is Tier.CLOUD)
    assert "change.frequent" in cloud.rule_ids
    for text in [result.summary, *(f.rationale for f in result.findings)]:
        assert "Nothing requires or favours local inference" not in text


def test_an_even_tie_without_a_privacy_concern_names_both_sides():
    # Heavy uploads favour local (+1), monthly changes favour the cloud (+1): a real tie.
    result = decide(
        answers=answers(
            model_changes_per_year=12,
            devices_per_site=4,
            payload_kb=200,
            inferences_per_device_per_minute=60,
        )
    )
    assert result.placement is Placement.CLOUD
    ids = [f.rule_id for f in result.findings]
    assert "tie.location_even" in ids and "tie.location_cloud" not in ids
    heavy = finding(result, "bandwidth.heavy")
    assert heavy.overridden_by == ("change.frequent", "tie.location_even")
    assert heavy.overridden_note.startswith("Overridden by")
    assert "Frequent model changes favour the cloud" in heavy.overridden_note


def test_neutral_answers_still_say_nothing_favours_local():
    result = decide(answers=answers())
    assert [f.rule_id for f in result.findings if f.rule_id.startswith("tie.location")] == [
        "tie.location_cloud"
    ]


def test_a_rule_beaten_by_a_stronger_one_is_listed_as_overridden_not_as_a_reason():
    # High privacy forbids cloud inference: the monthly changes' cloud preference lost.
    result = decide(answers=answers(privacy_risk=PrivacyRisk.HIGH, model_changes_per_year=12))
    change = finding(result, "change.frequent")
    assert change.overridden_by == ("privacy.high",)
    assert change.overridden_note == (
        "Overridden by \u201cHigh privacy risk keeps raw data local\u201d."
    )
    assert change.to_dict()["overridden_by"] == ["privacy.high"]
    # Overridden findings come after the ones that decided, and no part cites them.
    flags = [f.overridden for f in result.findings]
    assert flags == sorted(flags)
    assert all("change.frequent" not in part.rule_ids for part in result.parts)


def test_a_large_model_overrides_the_on_device_preference_of_phones():
    result = decide(
        answers=answers(
            latency_tolerance_ms=150,
            model_complexity=ModelComplexity.LARGE,
            existing_hardware=(ExistingHardware.PHONES_TABLETS,),
        )
    )
    assert result.primary_tier is Tier.NEAR_EDGE
    assert finding(result, "hardware.device_npu").overridden_by == ("model.large_not_on_device",)
    assert not finding(result, "model.large_not_on_device").overridden


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"privacy_risk": PrivacyRisk.MEDIUM, "model_changes_per_year": 12},
        {"latency_tolerance_ms": 150, "model_changes_per_year": 12},
        {"privacy_risk": PrivacyRisk.HIGH, "model_changes_per_year": 12},
        {"offline_share": 0.05, "model_changes_per_year": 12, "devices_per_site": 3},
        {"workflow": Workflow.LOGISTICS_DOCK_VISION, "model_changes_per_year": 12},
    ],
)
def test_parts_never_cite_an_overridden_rule(changes):
    result = decide(answers=answers(**changes))
    overridden = {f.rule_id for f in result.findings if f.overridden}
    for part in result.parts:
        assert not overridden & set(part.rule_ids), part


# --- Honest sources -----------------------------------------------------------------------------

# The only numbers the seed itself gives: "<200ms" and "multiple devices" (two or more).
SEED_THRESHOLDS = {("latency_tolerance_ms", 200.0), ("devices_per_site", 2)}


def test_thresholds_not_in_the_seed_are_labelled_opshero_defaults():
    for rule in RULES:
        numbers = {
            (cond.fact, cond.value)
            for group in rule.when
            for cond in group
            if isinstance(cond.value, int | float) and not isinstance(cond.value, bool)
        }
        if numbers - SEED_THRESHOLDS:
            assert "OpsHero default" in rule.source, (rule.id, rule.source)
        assert rule.source.lower() != "playbook, threshold is an opshero assumption"


def test_tie_breaks_are_labelled_as_opshero_not_the_playbook():
    result = decide(answers=answers())
    tie = finding(result, "tie.location_cloud")
    assert tie.source == "OpsHero tie-break"
    assert set(TIE_BREAKS) >= {"tie.location_privacy", "tie.location_even"}


# --- Plain language -----------------------------------------------------------------------------


def test_observed_text_has_no_raw_keys():
    result = decide(
        answers=answers(
            workflow=Workflow.LOGISTICS_DOCK_VISION,
            latency_tolerance_ms=150,
            privacy_risk=PrivacyRisk.MEDIUM,
            model_changes_per_year=12,
            devices_per_site=8,
            model_complexity=ModelComplexity.LARGE,
            existing_hardware=(ExistingHardware.PHONES_TABLETS,),
        )
    )
    texts = [f.observed for f in result.findings]
    joined = " ".join(texts)
    for raw in ("near_edge", "on_device", "phones_tablets", "(one of", "logistics_dock"):
        assert raw not in joined, raw
    assert "primary inference: near-edge" in joined
    assert "existing hardware include phones or tablets" in joined


# --- The workflow enters the rules --------------------------------------------------------------


def test_healthcare_weighs_toward_local_through_privacy():
    plain = decide(answers=answers(model_changes_per_year=12))
    clinic = decide(
        answers=answers(workflow=Workflow.HEALTHCARE_DECISION_SUPPORT, model_changes_per_year=12)
    )
    assert plain.placement is Placement.CLOUD
    assert clinic.primary_tier in (Tier.ON_DEVICE, Tier.NEAR_EDGE)
    assert "workflow.healthcare_privacy" in clinic.parts[0].rule_ids
    assert "tie.location_privacy" in {f.rule_id for f in clinic.findings}


def test_field_service_weighs_toward_on_device_for_offline_work():
    result = decide(answers=answers(workflow=Workflow.FIELD_SERVICE_TRIAGE, devices_per_site=3))
    assert result.placement is Placement.ON_DEVICE
    assert "workflow.field_service_offline" in result.parts[0].rule_ids
    assert "workflow.field_service_on_device" in result.parts[0].rule_ids


def test_logistics_dock_puts_primary_inference_on_a_near_edge_gateway():
    result = decide(answers=answers(workflow=Workflow.LOGISTICS_DOCK_VISION))
    assert result.placement is Placement.NEAR_EDGE
    assert result.architecture_note == ""  # matches the seed's dock pattern
    assert "workflow.dock_near_edge" in result.parts[0].rule_ids


LATENCIES = (50, 150, 199, 200, 1000)
OFFLINE = ((0.0, 0.0), (0.02, 0.0), (0.0, 2.0), (0.2, 8.0))
CHANGES = (1, 4, 12, 52)


@pytest.mark.parametrize("workflow", list(Workflow))
def test_the_workflow_never_breaks_the_seeds_four_rules(workflow):
    combos = itertools.product(
        LATENCIES, OFFLINE, list(PrivacyRisk), CHANGES, list(ModelComplexity), (1, 4)
    )
    for latency, (share, outage), privacy, changes, complexity, devices in combos:
        result = decide(
            answers=answers(
                workflow=workflow,
                latency_tolerance_ms=latency,
                offline_share=share,
                longest_outage_hours=outage,
                privacy_risk=privacy,
                model_changes_per_year=changes,
                model_complexity=complexity,
                devices_per_site=devices,
            )
        )
        local = [tier for tier in result.inference_tiers if tier in LOCAL_TIERS]
        case = (workflow, latency, share, outage, privacy, changes, complexity, devices)
        if latency < 200:  # tight latency: primary inference is local
            assert result.primary_tier is not Tier.CLOUD, case
        if share >= 0.01 or outage >= 1:  # intermittent: at least partial local inference
            assert local, case
        if privacy is PrivacyRisk.HIGH:  # high privacy: local, no raw inputs to the cloud
            assert Tier.CLOUD not in result.inference_tiers, case
        if changes >= 12 and privacy is not PrivacyRisk.HIGH:  # frequent: the cloud takes part
            assert Tier.CLOUD in result.inference_tiers, case
