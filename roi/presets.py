"""Where a new ROI scenario starts: the engine's preset, adjusted with the assessment's facts.

The engine's three presets (``roi.engine.preset``) carry a source for every default. When a
scenario is started from a saved assessment, the figures the planner already answered in the
wizard (sites, devices per site, how often the model changes) replace the preset's, and their
source says so; everything else stays the preset's, sources included. A custom workflow has no
preset of its own, so it starts from the logistics one with a note saying to replace the
numbers. No Django here: the API and the pages call the same function.
"""

from __future__ import annotations

from dataclasses import replace

from roi.engine import Estimate, RoiInputs, preset
from roi.rules import Tier, WizardAnswers, Workflow

FALLBACK_WORKFLOW = Workflow.LOGISTICS_DOCK_VISION
PRESET_WORKFLOWS: tuple[Workflow, ...] = (
    Workflow.LOGISTICS_DOCK_VISION,
    Workflow.FIELD_SERVICE_TRIAGE,
    Workflow.HEALTHCARE_DECISION_SUPPORT,
)


def preset_for(workflow: Workflow | str | None) -> tuple[RoiInputs, str]:
    """The preset for ``workflow`` and a note when another workflow's preset stands in."""
    try:
        chosen = Workflow(workflow) if workflow else FALLBACK_WORKFLOW
    except ValueError:
        chosen = FALLBACK_WORKFLOW
    if chosen in PRESET_WORKFLOWS:
        return preset(workflow=chosen), ""
    note = (
        "There is no preset for a custom workflow: the logistics dock-vision defaults stand in. "
        "Replace each figure with your own and note its source."
    )
    return preset(workflow=FALLBACK_WORKFLOW), note


def starting_inputs(
    *,
    workflow: Workflow | str | None,
    answers: WizardAnswers | None = None,
    assessment_name: str = "",
    local_tier: Tier | None = None,
) -> tuple[RoiInputs, str]:
    """A fresh scenario for the workflow, with the assessment's answers in place.

    ``local_tier`` is the assessment's local inference tier; the scenario's hybrid runs there.
    """
    inputs, note = preset_for(workflow)
    if answers is None:
        return inputs, note
    where = (
        f"from the assessment \u201c{assessment_name}\u201d"
        if assessment_name
        else ("from the assessment")
    )
    notes = dict(inputs.scenario.notes)
    notes["sites"] = f"{where}: {answers.sites} site(s)."
    notes["devices_per_site"] = f"{where}: {answers.devices_per_site} device(s) per site."
    changes: dict = {"sites": int(answers.sites), "devices_per_site": int(answers.devices_per_site)}
    # Gateways follow the devices at the preset's ratio (one per van stays one per van).
    preset_devices = max(1, inputs.scenario.devices_per_site)
    ratio = inputs.scenario.gateways_per_site / preset_devices
    gateways = max(1, round(ratio * int(answers.devices_per_site)))
    changes["gateways_per_site"] = gateways
    notes["gateways_per_site"] = (
        f"{where}: {gateways} per site, the preset's ratio of {inputs.scenario.gateways_per_site} "
        f"gateway(s) to {inputs.scenario.devices_per_site} device(s)."
    )
    if local_tier is not None and local_tier != inputs.scenario.hybrid_local_tier:
        changes["hybrid_local_tier"] = local_tier
        notes["hybrid_local_tier"] = f"{where}: local inference runs {local_tier.value}."
    scenario = replace(inputs.scenario, notes=notes, **changes)
    updates: dict[str, Estimate] = {}
    # Rollouts follow the model change rate answered in the wizard; keep the preset's spread.
    rollouts = inputs.estimates["maintenance.rollouts_per_month"]
    likely = answers.model_changes_per_year / 12
    if rollouts.likely > 0:
        low = rollouts.low / rollouts.likely * likely
        high = rollouts.high / rollouts.likely * likely
    else:
        low, high = likely, likely
    updates["maintenance.rollouts_per_month"] = Estimate(
        round(low, 4),
        round(likely, 4),
        round(high, 4),
        f"{where}: {answers.model_changes_per_year:g} model changes a year; the range keeps "
        "the preset's spread.",
    )
    inputs = replace(inputs, scenario=scenario).with_estimates(updates)
    return inputs, note


def local_tier_of(inference_tiers: list[str] | None) -> Tier | None:
    """The first local tier of an assessment's answer (the one a hybrid runs locally)."""
    for tier in inference_tiers or []:
        if tier in (Tier.ON_DEVICE.value, Tier.NEAR_EDGE.value):
            return Tier(tier)
    return None
