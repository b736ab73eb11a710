"""Where a new ROI scenario starts: a preset, adjusted with the assessment's facts.

One module per reference architecture of the seed (``logistics``, ``field_service``,
``healthcare``) builds a preset; ``roi.engine.preset`` returns them. Every default carries a
source. When a scenario is started from a saved assessment, the figures the planner already
answered in the wizard (sites, devices per site, how often the model changes, the inference
tiers) replace the preset's, and their source says so; everything else stays the preset's,
sources included. A custom workflow has no preset of its own, so it starts from the logistics
one with a note saying to replace the numbers. No Django here: the API and the pages call the
same function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from roi.engine import HYBRID_TIER_FIELDS, INPUT_NAMES, Estimate, RoiInputs, Scenario, preset
from roi.rules import LOCAL_TIERS, TIER_LABELS, Tier, WizardAnswers, Workflow

from ._build import plan_ramp

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


PER_DEVICE_QUANTITIES = (
    "privacy.data_leaving_gb_per_site",
    "tco.bandwidth_per_site",
    "maintenance.interventions_per_site",
)
# Two-tier shares when the assessment's tiers differ from the preset's hybrid.
PRIMARY_SHARE = 0.8


def hybrid_from_tiers(
    tiers: Sequence[Tier | str], preset_scenario: Scenario
) -> tuple[dict[str, float], str] | None:
    """Hybrid shares for an assessment's inference tiers (primary first), with their note.

    The preset's own shares stand when it already uses exactly those tiers; otherwise the
    primary tier serves 80 % of events and the others share the rest. ``None`` when the
    assessment names fewer than two tiers (the preset's hybrid stays).
    """
    chosen = list(dict.fromkeys(Tier(str(tier)) for tier in tiers))
    if len(chosen) < 2 or not any(tier in LOCAL_TIERS for tier in chosen):
        return None
    if preset_scenario.hybrid_tiers[: len(chosen)] == tuple(chosen):
        return None  # the preset already runs these tiers, primary first
    rest = (1 - PRIMARY_SHARE) / (len(chosen) - 1)
    shares = dict.fromkeys(HYBRID_TIER_FIELDS.values(), 0.0)
    for index, tier in enumerate(chosen):
        shares[HYBRID_TIER_FIELDS[tier]] = round(PRIMARY_SHARE if index == 0 else rest, 6)
    described = ", ".join(
        f"{TIER_LABELS[tier]} {shares[HYBRID_TIER_FIELDS[tier]]:.0%}" for tier in chosen
    )
    return (
        shares,
        f"the assessment's tiers, primary first: {described} of events (OpsHero default split).",
    )


def starting_inputs(
    *,
    workflow: Workflow | str | None,
    answers: WizardAnswers | None = None,
    assessment_name: str = "",
    local_tier: Tier | None = None,
    inference_tiers: Sequence[Tier | str] | None = None,
) -> tuple[RoiInputs, str]:
    """A fresh scenario for the workflow, with the assessment's answers in place.

    Sites, devices per site, the ramp (from the 90-day plan for that many sites), the
    gateways (at the preset's ratio) and every per-site quantity that grows with the devices
    (data leaving, bandwidth, interventions) follow the assessment; ``inference_tiers`` (the
    assessment's, primary first) shape the hybrid. ``local_tier`` is the older single-tier
    form of the same.
    """
    inputs, note = preset_for(workflow)
    if answers is None:
        return inputs, note
    where = (
        f"from the assessment \u201c{assessment_name}\u201d"
        if assessment_name
        else ("from the assessment")
    )
    before = inputs.scenario
    sites, per_site = int(answers.sites), int(answers.devices_per_site)
    notes = dict(before.notes)
    notes["sites"] = f"{where}: {sites} site(s)."
    notes["devices_per_site"] = f"{where}: {per_site} device(s) per site."
    changes: dict = {"sites": sites, "devices_per_site": per_site}
    # Gateways follow the devices at the preset's ratio (one per van stays one per van).
    preset_devices = max(1, before.devices_per_site)
    ratio = before.gateways_per_site / preset_devices
    gateways = max(1, round(ratio * per_site))
    changes["gateways_per_site"] = gateways
    notes["gateways_per_site"] = (
        f"{where}: {gateways} per site, the preset's ratio of {before.gateways_per_site} "
        f"gateway(s) to {before.devices_per_site} device(s)."
    )
    ramp, ramp_notes = plan_ramp(sites)
    changes.update(ramp)
    notes.update(ramp_notes)
    tiers = list(inference_tiers or ([local_tier] if local_tier is not None else []))
    if len(tiers) == 1 and tiers[0] in LOCAL_TIERS:
        tiers = [tiers[0], *[t for t in before.hybrid_tiers if t != Tier(str(tiers[0]))]]
    mix = hybrid_from_tiers(tiers, before) if tiers else None
    if mix is not None:
        shares, mix_note = mix
        changes.update(shares)
        notes["hybrid_on_device_share"] = f"{where}: {mix_note}"
    scenario = replace(before, notes=notes, **changes)
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
    # Outage hours follow the share of time the assessment says sites are offline or
    # intermittent (of a month's 730.5 hours); keep the preset's spread around it.
    outages = inputs.estimates["offline.outage_hours_per_site"]
    offline_hours = round(float(answers.offline_share) * 24 * 365.25 / 12, 4)
    if outages.likely > 0 and offline_hours > 0:
        scale_out = offline_hours / outages.likely
        low, high = outages.low * scale_out, outages.high * scale_out
    else:
        low, high = offline_hours, offline_hours
    updates["offline.outage_hours_per_site"] = Estimate(
        round(low, 4),
        offline_hours,
        round(min(high, 744.0), 4),
        f"{where}: offline or intermittent {float(answers.offline_share) * 100:g} % of the time "
        f"= {offline_hours:g} h a month; the range keeps the preset's spread.",
    )
    if per_site != before.devices_per_site:
        scale = per_site / preset_devices
        for name in INPUT_NAMES:
            if name.rsplit(".", 1)[0] not in PER_DEVICE_QUANTITIES:
                continue
            old = inputs.estimates[name]
            updates[name] = Estimate(
                round(old.low * scale, 4),
                round(old.likely * scale, 4),
                round(old.high * scale, 4),
                f"{where}: the preset's {old.low:g}\u2013{old.high:g} for "
                f"{before.devices_per_site} devices per site, scaled to {per_site}. "
                f"Preset: {old.source}",
            )
    inputs = replace(inputs, scenario=scenario).with_estimates(updates)
    return inputs, note


def local_tier_of(inference_tiers: list[str] | None) -> Tier | None:
    """The first local tier of an assessment's answer (the one a hybrid runs locally)."""
    for tier in inference_tiers or []:
        if tier in (Tier.ON_DEVICE.value, Tier.NEAR_EDGE.value):
            return Tier(tier)
    return None
