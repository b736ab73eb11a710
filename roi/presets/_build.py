"""Shorthands the preset modules share."""

from __future__ import annotations

import math

from roi.engine import PLACEMENTS, Estimate
from roi.rules import Placement


def e(low: float, likely: float, high: float, source: str) -> Estimate:
    return Estimate(low, likely, high, source)


def each(
    key: str,
    *,
    on_device: tuple[float, float, float],
    near_edge: tuple[float, float, float],
    cloud: tuple[float, float, float],
    hybrid: tuple[float, float, float],
    source: str,
) -> dict[str, Estimate]:
    ranges = {
        Placement.ON_DEVICE: on_device,
        Placement.NEAR_EDGE: near_edge,
        Placement.CLOUD: cloud,
        Placement.HYBRID: hybrid,
    }
    return {f"{key}.{p}": Estimate(*ranges[p], source=source) for p in PLACEMENTS}


def plan_ramp(sites: int) -> tuple[dict[str, int], dict[str, str]]:
    """The roll-out ramp of the seed's 90-day plan, with the note of each figure.

    Days 1-70 choose, build and field-test (two months with nothing live), days 71-90 ship a
    staged rollout to 1-2 sites (a one-month pilot), then the remaining sites follow within a
    quarter (an OpsHero default, not the seed's).
    """
    pilot = 1 if sites <= 3 else 2
    rest = max(0, sites - pilot)
    pace = max(1, math.ceil(rest / 3)) if rest else 0
    figures = {
        "build_months": 2,
        "pilot_sites": min(pilot, sites),
        "pilot_months": 1,
        "rollout_sites_per_month": pace,
    }
    notes = {
        "build_months": "90-day plan: days 1-70 choose, build and field-test; nothing is live.",
        "pilot_sites": "90-day plan: days 71-90 start with 1-2 sites.",
        "pilot_months": "90-day plan: the pilot runs days 71-90, about a month.",
        "rollout_sites_per_month": "OpsHero default: the remaining sites within a quarter "
        "after the pilot; set your own pace.",
    }
    return figures, notes
