"""Planning objects for tests, made through the real services (so audited and validated)."""

from __future__ import annotations

import copy
from typing import Any

from opshero.actors import Actor
from roi import services
from roi.demo import ANSWERS, CANDIDATES
from roi.engine import preset
from roi.rules import Workflow

SYSTEM = Actor.system("tests")


def dock_answers(**changes: Any) -> dict[str, Any]:
    """The demo's logistics answers (near-edge with optional on-device checks)."""
    return {**copy.deepcopy(ANSWERS), **changes}


def candidates() -> list[dict[str, Any]]:
    return copy.deepcopy(CANDIDATES)


def logistics_inputs() -> dict[str, Any]:
    return preset(workflow=Workflow.LOGISTICS_DOCK_VISION).to_dict()


def make_assessment(org, *, name: str = "Dock assessment", **changes: Any):
    return services.create_assessment(
        organization=org, actor=SYSTEM, answers=dock_answers(**changes), name=name
    )


def make_scorecard(org, *, name: str = "Dock stacks", assessment=None):
    return services.create_scorecard(
        organization=org,
        actor=SYSTEM,
        name=name,
        candidates=candidates(),
        weights={"update_strategy": 1.5},
        assessment=assessment,
    )


def make_scenario(org, *, name: str = "Dock pilot", assessment=None):
    return services.create_scenario(
        organization=org,
        actor=SYSTEM,
        name=name,
        inputs=logistics_inputs(),
        assessment=assessment,
        workflow=Workflow.LOGISTICS_DOCK_VISION.value,
    )


def make_plan(org, *, assessment=None, scenario=None, name: str = "Dock plan"):
    assessment = assessment or make_assessment(org)
    return services.create_plan(
        organization=org, actor=SYSTEM, assessment=assessment, scenario=scenario, name=name
    )


def make_planning(org) -> dict[str, Any]:
    """One of everything, linked the way a planner would link them."""
    assessment = make_assessment(org)
    scenario = make_scenario(org, assessment=assessment)
    return {
        "assessment": assessment,
        "scorecard": make_scorecard(org, assessment=assessment),
        "scenario": scenario,
        "plan": make_plan(org, assessment=assessment, scenario=scenario),
    }


def calculator_data(*, name: str = "Pilot", focus: str = "", **overrides: str) -> dict[str, str]:
    """What the calculator page posts for the logistics preset; ``overrides`` by field name
    (e.g. ``{"tco.support_hourly_rate.likely": "90"}`` via ``**{...}``)."""
    from roi.engine import RoiInputs
    from roi.forms import CalculatorForm

    form = CalculatorForm(inputs=RoiInputs.from_dict(logistics_inputs()), name=name, focus=focus)
    data = dict(form.raw)
    data.update(overrides)
    return data


def scorecard_data(*, name: str = "Stacks", **overrides: str) -> dict[str, str]:
    """What the scorecard editor posts for the demo candidates."""
    from roi.forms import ScorecardForm

    form = ScorecardForm(initial={"candidates": candidates(), "weights": {}}, name=name)
    data: dict[str, str] = {"name": name, "count": str(len(form.candidates))}
    if form.red_flags_rank_last:
        data["red_flags_rank_last"] = "on"  # the checkbox, ticked by default
    for index, candidate in enumerate(form.candidates):
        for key in ("name", "hardware", "runtime", "toolchain"):
            data[f"c{index}.{key}"] = candidate[key]
        for category, cell in candidate["scores"].items():
            data[f"c{index}.{category}.score"] = cell["score"]
            data[f"c{index}.{category}.evidence"] = cell["evidence"]
    for category, weight in form.weights.items():
        data[f"w.{category}"] = weight
    data.update(overrides)
    return data
