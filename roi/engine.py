"""ROI/TCO calculator: four placements side by side, with ranges, Monte Carlo and a tornado.

Every uncertain input is an :class:`Estimate` (low / likely / high plus its source). Inputs are
grouped as the seed's seven ROI sections (latency, power, offline, privacy, maintenance,
accuracy, TCO) and declared once in :data:`INPUT_SPECS`, which gives each input its flat name
(``section.field`` or ``section.field.placement``), label, unit and plausible range. Forms, the
tornado chart, measurements and validation errors all use the same flat names.

Baseline
    **Today without AI.** Benefits are what each placement changes against the current
    process; costs are the *extra* costs of running it. Costs common to every placement and to
    today (cameras, the workflow itself) are left out; the one-off integration project is per
    placement (``tco.integration``), and model upkeep (labelling, retraining, review) belongs in
    each placement's support hours. Cloud training compute is assumed equal across placements
    and left out. NPV > 0 means "better than carrying on without AI"; compare placements by
    the difference of their NPVs.

Cost model (monthly at full roll-out, for the whole organisation; ``S`` sites, ``D`` devices
per site, ``G`` gateways per site, ``p`` the placement, ``DAYS = 365.25 / 12``,
``HOURS = 24 * DAYS``)::

    events        = S * D * events_per_device_per_day * DAYS          (one inference per event)
    available     = 1 - outage_hours / HOURS * (1 - completes_offline[p])
    latency       = events * (baseline_time_to_action_s - time_to_action_s[p]) / 3600
                    * value_per_hour_saved * available
    accuracy      = events * (baseline_error_rate - error_rate[p]) * cost_per_error * available
    compliance    = annual_compliance_cost / 12 * compliance_reduction[p]
    benefit       = latency + accuracy + compliance

    wan_outages   = S * outage_hours * revenue_lost_per_outage_hour * (1 - completes_offline[p])
                    (a placement that needs the WAN loses the workflow while it is down; local
                    inference is credited only with what it keeps working, never with
                    "rescuing" today's outages)
    energy kWh    = on-device tier: S * ceil(share * D) * device_watts * device_hours * DAYS / 1000
                    near-edge tier: S * G * gateway_watts * 24 * DAYS / 1000 (gateways never sleep)
    power         = kWh * electricity_price_per_kwh * cooling_overhead_factor
    variable      = power + S * interventions_per_site[p] * cost_per_intervention
                    + S * data_leaving_gb_per_site[p] * egress_price_per_gb
                    + S * D * licence_per_device[p] + S * bandwidth_per_site[p]
                    + events * cloud_share * cloud_price_per_1000 / 1000 + wan_outages
    fixed         = rollouts_per_month * (rollout_hours[p] + rollback_share * rollback_hours[p])
                    * support_hourly_rate + monitoring[p] + tooling[p]
                    + support_hours[p] * support_hourly_rate

Tiers: on-device, near-edge and cloud are one tier each (share 1). The hybrid is the
scenario's mix of tiers (``Scenario.hybrid_*_share``, adding up to 1): each local tier buys its
own hardware (on-device: ``ceil(share * D)`` NPU devices per site at the *incremental*
``device_hardware_cost``; near-edge: every site's ``G`` gateways), the cloud tier pays per
inference for its share. So "near-edge plus selective on-device" and "cloud primary, near-edge
for outages" are both costed with the hardware they really need.

The ramp (``Scenario``): nothing is live during ``build_months``; then ``pilot_sites`` go live
for ``pilot_months``; then ``rollout_sites_per_month`` more a month. In month ``t`` the variable
benefits and costs are scaled by the share of sites live; the fixed costs run from the first
live month; each site's hardware is bought the month before it goes live and again every
replacement cycle (whole months) strictly before the horizon. At the horizon the hardware still
in service is worth its straight-line residual value, ``cost * (1 - age / cycle)``, unless the
scenario says ``residual_value = none``.

Conventions
    - Cash flows: month 0 = ``-integration`` (plus hardware for sites live in month 1); month
      ``t`` = live share x (benefit - variable) - fixed (once live) - hardware bought that
      month; month H also + residual value. H = ``horizon_months`` (36 by default).
    - NPV discounts monthly at the rate equivalent to the annual rate,
      ``r_m = (1 + r_annual) ** (1/12) - 1``; month ``t`` is discounted by ``(1 + r_m) ** t``.
    - TCO over the horizon = hardware bought - residual value + integration + running costs
      as they are incurred (undiscounted).
    - Cost per active site per month = TCO / live site-months; per device = that / D.
    - ROI % = (benefits as incurred - TCO) / TCO * 100 (undiscounted; None when TCO is 0).
    - Payback month = the first month from which the *undiscounted* cumulative cash flow stays
      >= 0 to the end of the horizon (0 if it never dips below 0; None if it never gets there).
    - Monte Carlo draws every input from Beta-PERT (lambda 4) or triangular distributions;
      ``low == high`` is a constant. Each input has its own random stream derived from the seed
      and the input's name, so results are reproducible and do not depend on the number of
      sampling threads. Inputs in a declared :class:`Correlation` group are then reordered so
      their ranks follow a Gaussian copula (``rho`` 1: one shared percentile), which keeps each
      input's own distribution: today's time-to-action and every placement's are drawn
      together, so a saving is never the gap between two unrelated draws.
    - With-AI time-to-action and error rate must be at most today's at each of low / likely /
      high unless ``Scenario.allow_worse_than_today``.

Money is in the organisation's currency; nothing here converts currencies.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np

from roi.rules import (
    LOCAL_TIERS,
    Placement,
    PlanningInputError,
    Tier,
    Workflow,
    raise_for_field_errors,
)

PLACEMENTS: tuple[Placement, ...] = (
    Placement.ON_DEVICE,
    Placement.NEAR_EDGE,
    Placement.CLOUD,
    Placement.HYBRID,
)
DAYS_PER_MONTH = 365.25 / 12
DEFAULT_HORIZON_MONTHS = 36
DEFAULT_DRAWS = 10_000
PERT_LAMBDA = 4.0
MAX_REPLACEMENT_MONTHS = 240


class Section(StrEnum):
    """The seed's seven ROI checklist sections."""

    LATENCY = "latency"
    POWER = "power"
    OFFLINE = "offline"
    PRIVACY = "privacy"
    MAINTENANCE = "maintenance"
    ACCURACY = "accuracy"
    TCO = "tco"


SECTION_LABELS = {
    Section.LATENCY: "Latency and workflow impact",
    Section.POWER: "Power and utilisation",
    Section.OFFLINE: "Offline capability",
    Section.PRIVACY: "Privacy and compliance",
    Section.MAINTENANCE: "Maintenance, updates and support burden",
    Section.ACCURACY: "Accuracy and drift",
    Section.TCO: "Total cost of ownership",
}


@dataclass(frozen=True)
class InputSpec:
    """One ROI input: where it sits, what it means, and the range a sane value falls in."""

    key: str
    section: Section
    label: str
    unit: str
    minimum: float
    maximum: float
    per_placement: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        if self.per_placement:
            return tuple(f"{self.key}.{placement}" for placement in PLACEMENTS)
        return (self.key,)


_MONEY = 1e9  # no SMB input in currency plausibly reaches a billion
_S = Section

INPUT_SPECS: tuple[InputSpec, ...] = (
    InputSpec(
        "latency.baseline_time_to_action_s",
        _S.LATENCY,
        "Task time per event today (capture to action, by people)",
        "s",
        0,
        86_400,
    ),
    InputSpec(
        "latency.time_to_action_s",
        _S.LATENCY,
        "Task time per event with AI (capture to action, incl. the operator)",
        "s",
        0,
        86_400,
        per_placement=True,
    ),
    InputSpec(
        "latency.value_per_hour_saved", _S.LATENCY, "Value of an hour saved", "per h", 0, 100_000
    ),
    InputSpec(
        "latency.events_per_device_per_day",
        _S.LATENCY,
        "Events per device per day",
        "/day",
        0,
        10_000_000,
    ),
    InputSpec(
        "power.device_watts", _S.POWER, "Extra power per device while inferring", "W", 0, 1_000
    ),
    InputSpec("power.device_hours_per_day", _S.POWER, "Device inference hours per day", "h", 0, 24),
    InputSpec("power.gateway_watts", _S.POWER, "Power per gateway", "W", 0, 10_000),
    InputSpec("power.electricity_price_per_kwh", _S.POWER, "Electricity price", "per kWh", 0, 10),
    InputSpec(
        "power.cooling_overhead_factor", _S.POWER, "Cooling overhead factor (1 = none)", "x", 1, 5
    ),
    InputSpec(
        "offline.outage_hours_per_site",
        _S.OFFLINE,
        "Outage hours per site per month",
        "h/month",
        0,
        744,
    ),
    InputSpec(
        "offline.revenue_lost_per_outage_hour",
        _S.OFFLINE,
        "Revenue lost per hour the workflow stops, per site",
        "per h",
        0,
        10_000_000,
    ),
    InputSpec(
        "offline.completes_offline",
        _S.OFFLINE,
        "Share of the workflow that keeps working in a WAN outage",
        "share",
        0,
        1,
        per_placement=True,
    ),
    InputSpec(
        "privacy.data_leaving_gb_per_site",
        _S.PRIVACY,
        "Data leaving each site per month",
        "GB/month",
        0,
        10_000_000,
        per_placement=True,
    ),
    InputSpec(
        "privacy.egress_price_per_gb", _S.PRIVACY, "Price per GB leaving the site", "per GB", 0, 100
    ),
    InputSpec(
        "privacy.annual_compliance_cost",
        _S.PRIVACY,
        "Expected annual compliance cost",
        "per year",
        0,
        _MONEY,
    ),
    InputSpec(
        "privacy.compliance_reduction",
        _S.PRIVACY,
        "Compliance cost reduction",
        "share",
        0,
        1,
        per_placement=True,
    ),
    InputSpec(
        "maintenance.rollouts_per_month",
        _S.MAINTENANCE,
        "Model rollouts per month",
        "/month",
        0,
        1_000,
    ),
    InputSpec(
        "maintenance.rollout_hours",
        _S.MAINTENANCE,
        "Staff hours per rollout",
        "h",
        0,
        10_000,
        per_placement=True,
    ),
    InputSpec(
        "maintenance.rollback_share", _S.MAINTENANCE, "Share of rollouts rolled back", "share", 0, 1
    ),
    InputSpec(
        "maintenance.rollback_hours",
        _S.MAINTENANCE,
        "Staff hours per rollback",
        "h",
        0,
        10_000,
        per_placement=True,
    ),
    InputSpec(
        "maintenance.interventions_per_site",
        _S.MAINTENANCE,
        "Manual interventions per site per month",
        "/month",
        0,
        10_000,
        per_placement=True,
    ),
    InputSpec(
        "maintenance.cost_per_intervention",
        _S.MAINTENANCE,
        "Cost per manual intervention",
        "each",
        0,
        1_000_000,
    ),
    InputSpec(
        "accuracy.baseline_error_rate", _S.ACCURACY, "Costly error rate today", "share", 0, 1
    ),
    InputSpec(
        "accuracy.error_rate",
        _S.ACCURACY,
        "Costly error rate with AI",
        "share",
        0,
        1,
        per_placement=True,
    ),
    InputSpec("accuracy.cost_per_error", _S.ACCURACY, "Cost per error", "each", 0, 10_000_000),
    InputSpec(
        "accuracy.monitoring_per_month",
        _S.ACCURACY,
        "Accuracy and drift monitoring",
        "per month",
        0,
        _MONEY,
        per_placement=True,
    ),
    InputSpec(
        "tco.device_hardware_cost", _S.TCO, "Extra hardware cost per device", "each", 0, 1_000_000
    ),
    InputSpec(
        "tco.device_replacement_months",
        _S.TCO,
        "Device replacement cycle",
        "months",
        1,
        MAX_REPLACEMENT_MONTHS,
    ),
    InputSpec(
        "tco.gateway_hardware_cost", _S.TCO, "Hardware cost per gateway", "each", 0, 10_000_000
    ),
    InputSpec(
        "tco.gateway_replacement_months",
        _S.TCO,
        "Gateway replacement cycle",
        "months",
        1,
        MAX_REPLACEMENT_MONTHS,
    ),
    InputSpec(
        "tco.integration",
        _S.TCO,
        "One-off integration project",
        "once",
        0,
        _MONEY,
        per_placement=True,
    ),
    InputSpec(
        "tco.licence_per_device",
        _S.TCO,
        "Licences per device per month",
        "per month",
        0,
        100_000,
        per_placement=True,
    ),
    InputSpec(
        "tco.tooling_per_month",
        _S.TCO,
        "Deployment and management tooling",
        "per month",
        0,
        _MONEY,
        per_placement=True,
    ),
    InputSpec(
        "tco.support_hours_per_month",
        _S.TCO,
        "Support hours per month",
        "h/month",
        0,
        100_000,
        per_placement=True,
    ),
    InputSpec("tco.support_hourly_rate", _S.TCO, "Support hourly rate", "per h", 0, 100_000),
    InputSpec(
        "tco.cloud_price_per_1000",
        _S.TCO,
        "Cloud price per 1,000 inferences",
        "per 1,000",
        0,
        100_000,
    ),
    InputSpec(
        "tco.bandwidth_per_site",
        _S.TCO,
        "Extra bandwidth cost per site per month",
        "per month",
        0,
        10_000_000,
        per_placement=True,
    ),
)

SPEC_BY_NAME: dict[str, InputSpec] = {name: spec for spec in INPUT_SPECS for name in spec.names}
INPUT_NAMES: tuple[str, ...] = tuple(SPEC_BY_NAME)


def input_label(name: str) -> str:
    """Human label of a flat input name, with the placement when it has one."""
    spec = SPEC_BY_NAME[name]
    if spec.per_placement:
        placement = name.rsplit(".", 1)[1].replace("_", "-")
        return f"{spec.label} ({placement})"
    return spec.label


# --- Inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """A three-point estimate and where it comes from (a measurement, a quote, an assumption)."""

    low: float
    likely: float
    high: float
    source: str = ""

    @classmethod
    def exactly(cls, value: float, *, source: str = "") -> Estimate:
        """A known value: low, likely and high all equal (e.g. a measured figure)."""
        return cls(value, value, value, source)

    @property
    def is_exact(self) -> bool:
        return self.low == self.high

    def to_dict(self) -> dict[str, Any]:
        return {"low": self.low, "likely": self.likely, "high": self.high, "source": self.source}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Estimate:
        return cls(
            low=data["low"],
            likely=data["likely"],
            high=data["high"],
            source=str(data.get("source", "")),
        )


class Distribution(StrEnum):
    PERT = "pert"
    TRIANGULAR = "triangular"


@dataclass(frozen=True)
class Correlation:
    """Inputs drawn together in the Monte Carlo (a Gaussian copula on their ranks).

    ``rho`` is the correlation of any two members' normal scores.

    ``rho`` 1 means one shared percentile: when today's time-to-action is drawn at its 80th
    percentile, so is every placement's, and the saving is never the difference of two
    unrelated draws. A group with ``rho`` 1 also swings as one bar in the tornado.
    """

    key: str
    label: str
    names: tuple[str, ...]
    rho: float = 1.0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "names": list(self.names),
            "rho": self.rho,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Correlation:
        return cls(
            key=str(data["key"]),
            label=str(data.get("label", data["key"])),
            names=tuple(str(name) for name in data.get("names", ())),
            rho=float(data.get("rho", 1.0)),
            note=str(data.get("note", "")),
        )


def _placement_names(key: str) -> tuple[str, ...]:
    return tuple(f"{key}.{placement}" for placement in PLACEMENTS)


# With-AI inputs and the "today" input they improve on (lower is better for both).
IMPROVEMENT_PAIRS: dict[str, str] = {
    "latency.time_to_action_s": "latency.baseline_time_to_action_s",
    "accuracy.error_rate": "accuracy.baseline_error_rate",
}

DEFAULT_CORRELATIONS: tuple[Correlation, ...] = (
    Correlation(
        "time_to_action",
        "Task time per event today and with AI",
        ("latency.baseline_time_to_action_s", *_placement_names("latency.time_to_action_s")),
        note="A slow dock is slow with or without AI: today's figure and every placement's "
        "are drawn at the same percentile, so the time saved is never the gap between two "
        "unrelated draws.",
    ),
    Correlation(
        "error_rate",
        "Error rate today and with AI",
        ("accuracy.baseline_error_rate", *_placement_names("accuracy.error_rate")),
        note="Hard footage is hard for people and models alike: today's error rate and each "
        "placement's are drawn at the same percentile.",
    ),
    Correlation(
        "integration",
        "Integration project, every placement",
        _placement_names("tco.integration"),
        note="One team builds whichever placement is chosen: if the project overruns, it "
        "overruns for all of them.",
    ),
    Correlation(
        "support",
        "Support hours, every placement",
        _placement_names("tco.support_hours_per_month"),
        note="The same operations team supports whichever placement runs.",
    ),
)


class ResidualValue(StrEnum):
    """What the hardware still in service is worth at the horizon."""

    STRAIGHT_LINE = "straight_line"
    NONE = "none"


RESIDUAL_LABELS = {
    ResidualValue.STRAIGHT_LINE: "Straight-line residual value at the horizon",
    ResidualValue.NONE: "No residual value (hardware written off at the horizon)",
}

HYBRID_TIER_FIELDS: dict[Tier, str] = {
    Tier.ON_DEVICE: "hybrid_on_device_share",
    Tier.NEAR_EDGE: "hybrid_near_edge_share",
    Tier.CLOUD: "hybrid_cloud_share",
}


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """The fleet shape, the roll-out ramp and the finance conventions: plain figures.

    ``notes`` holds the source or reasoning of each figure, keyed by field name.

    The hybrid is two (or three) tiers, each with the share of events it serves:
    ``hybrid_on_device_share`` + ``hybrid_near_edge_share`` + ``hybrid_cloud_share`` = 1. Each
    local tier in the mix buys its own hardware (on-device: NPU devices for its share of each
    site's devices, rounded up; near-edge: every site's gateways), the cloud tier pays per
    inference for its share.

    The ramp: nothing is live during ``build_months``; then ``pilot_sites`` go live for
    ``pilot_months``; then ``rollout_sites_per_month`` more each month (0: all the rest at
    once). Benefits and per-site costs follow the live sites, fixed running costs start with
    the first live site, and each site's hardware is bought the month before it goes live.
    All zero (the default of a bare scenario) means every site from month 1.
    """

    sites: int
    devices_per_site: int
    gateways_per_site: int
    annual_discount_rate: float
    horizon_months: int = DEFAULT_HORIZON_MONTHS
    hybrid_on_device_share: float = 0.0
    hybrid_near_edge_share: float = 0.9
    hybrid_cloud_share: float = 0.1
    build_months: int = 0
    pilot_sites: int = 0
    pilot_months: int = 0
    rollout_sites_per_month: int = 0
    residual_value: ResidualValue = ResidualValue.STRAIGHT_LINE
    allow_worse_than_today: bool = False
    notes: Mapping[str, str] = field(default_factory=dict)

    @property
    def hybrid_shares(self) -> dict[Tier, float]:
        return {tier: float(getattr(self, name)) for tier, name in HYBRID_TIER_FIELDS.items()}

    @property
    def hybrid_tiers(self) -> tuple[Tier, ...]:
        """The hybrid's tiers that serve events, the largest share first."""
        shares = self.hybrid_shares
        order = list(HYBRID_TIER_FIELDS)
        live = [tier for tier in order if shares[tier] > 0]
        return tuple(sorted(live, key=lambda tier: (-shares[tier], order.index(tier))))

    @property
    def hybrid_local_tier(self) -> Tier:
        """The hybrid's main local tier (the local tier with the largest share)."""
        local = [tier for tier in self.hybrid_tiers if tier in LOCAL_TIERS]
        return local[0] if local else Tier.NEAR_EDGE

    @property
    def has_ramp(self) -> bool:
        return bool(
            self.build_months
            or (self.pilot_sites and self.pilot_months)
            or (self.rollout_sites_per_month and self.rollout_sites_per_month < self.sites)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "sites": self.sites,
            "devices_per_site": self.devices_per_site,
            "gateways_per_site": self.gateways_per_site,
            "annual_discount_rate": self.annual_discount_rate,
            "horizon_months": self.horizon_months,
            "hybrid_on_device_share": self.hybrid_on_device_share,
            "hybrid_near_edge_share": self.hybrid_near_edge_share,
            "hybrid_cloud_share": self.hybrid_cloud_share,
            "build_months": self.build_months,
            "pilot_sites": self.pilot_sites,
            "pilot_months": self.pilot_months,
            "rollout_sites_per_month": self.rollout_sites_per_month,
            "residual_value": str(self.residual_value),
            "allow_worse_than_today": self.allow_worse_than_today,
            "notes": dict(self.notes),
        }


SCENARIO_INTEGERS = (
    "sites",
    "devices_per_site",
    "gateways_per_site",
    "horizon_months",
    "build_months",
    "pilot_sites",
    "pilot_months",
    "rollout_sites_per_month",
)
SCENARIO_FLOATS = (
    "annual_discount_rate",
    "hybrid_on_device_share",
    "hybrid_near_edge_share",
    "hybrid_cloud_share",
)
_REQUIRED_SCENARIO = ("sites", "devices_per_site", "gateways_per_site", "annual_discount_rate")
_LEGACY_CLOUD_SHARE = "tco.hybrid_cloud_share"


@dataclass(frozen=True, kw_only=True)
class RoiInputs:
    """A scenario: the fleet shape plus one :class:`Estimate` per name in :data:`INPUT_NAMES`.

    ``correlations`` declares which inputs the Monte Carlo draws together.
    """

    scenario: Scenario
    estimates: Mapping[str, Estimate]
    name: str = ""
    correlations: tuple[Correlation, ...] = DEFAULT_CORRELATIONS

    def estimate(self, name: str) -> Estimate:
        return self.estimates[name]

    def with_estimates(self, updates: Mapping[str, Estimate]) -> RoiInputs:
        """A copy with some estimates replaced (unknown names are a validation error later)."""
        return replace(self, estimates={**self.estimates, **updates})

    def with_scenario(self, **changes: Any) -> RoiInputs:
        return replace(self, scenario=replace(self.scenario, **changes))

    def sections(self) -> dict[Section, list[tuple[str, InputSpec, Estimate]]]:
        """Inputs grouped by the seed's ROI sections, in form order."""
        grouped: dict[Section, list[tuple[str, InputSpec, Estimate]]] = {s: [] for s in Section}
        for name in INPUT_NAMES:
            if name in self.estimates:
                spec = SPEC_BY_NAME[name]
                grouped[spec.section].append((name, spec, self.estimates[name]))
        return grouped

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scenario": self.scenario.to_dict(),
            "estimates": {name: est.to_dict() for name, est in self.estimates.items()},
            "correlations": [item.to_dict() for item in self.correlations],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoiInputs:
        """Parse a stored scenario; all problems are reported per field at once.

        Scenarios saved before the hybrid had tiers (``hybrid_local_tier`` plus an estimate
        ``tco.hybrid_cloud_share``) are read as that local tier for the rest of the events and
        the cloud for the likely share.
        """
        errors: dict[str, list[str]] = {}
        scenario_data = data.get("scenario")
        if not isinstance(scenario_data, Mapping):
            errors["scenario"] = ["The scenario (sites, devices, discount rate) is required."]
            scenario_data = {}
        values: dict[str, Any] = {}
        for key in SCENARIO_INTEGERS + SCENARIO_FLOATS:
            raw = scenario_data.get(key)
            if raw is None:
                if key in _REQUIRED_SCENARIO:
                    errors[f"scenario.{key}"] = ["This figure is required."]
                continue
            number = _number(raw)
            if number is None:
                errors[f"scenario.{key}"] = ["Enter a number."]
            elif key in SCENARIO_INTEGERS and not number.is_integer():
                errors[f"scenario.{key}"] = ["Enter a whole number."]
            else:
                values[key] = int(number) if key in SCENARIO_INTEGERS else number
        residual = scenario_data.get("residual_value")
        if residual is not None:
            try:
                values["residual_value"] = ResidualValue(str(residual))
            except ValueError:
                errors["scenario.residual_value"] = [
                    f"Choose one of: {', '.join(item.value for item in ResidualValue)}."
                ]
        worse = scenario_data.get("allow_worse_than_today")
        if worse is not None:
            values["allow_worse_than_today"] = bool(worse)
        notes = scenario_data.get("notes") or {}
        values["notes"] = {str(k): str(v) for k, v in dict(notes).items()}

        estimates: dict[str, Estimate] = {}
        raw_estimates = data.get("estimates")
        if not isinstance(raw_estimates, Mapping):
            errors["estimates"] = ["The estimates are required."]
            raw_estimates = {}
        for name, raw in raw_estimates.items():
            if not isinstance(raw, Mapping):
                errors[str(name)] = ["Give low, likely and high."]
                continue
            parsed = {part: _number(raw.get(part)) for part in ("low", "likely", "high")}
            bad = [part for part, number in parsed.items() if number is None]
            if bad:
                errors[str(name)] = [f"Enter a number for {', '.join(bad)}."]
                continue
            estimates[str(name)] = Estimate(
                parsed["low"],  # type: ignore[arg-type]
                parsed["likely"],  # type: ignore[arg-type]
                parsed["high"],  # type: ignore[arg-type]
                str(raw.get("source", "")),
            )
        _read_legacy_hybrid(scenario_data, estimates, values, errors)
        correlations = DEFAULT_CORRELATIONS
        raw_correlations = data.get("correlations")
        if raw_correlations is not None:
            try:
                correlations = tuple(Correlation.from_dict(item) for item in raw_correlations)
            except (KeyError, TypeError, ValueError):
                errors["correlations"] = ["Each correlation needs a key, names and a rho."]
        raise_for_field_errors(errors, what="ROI scenario")
        inputs = cls(
            scenario=Scenario(**values),
            estimates=estimates,
            name=str(data.get("name", "")),
            correlations=correlations,
        )
        validate_inputs(inputs=inputs)
        return inputs


def _read_legacy_hybrid(
    scenario_data: Mapping[str, Any],
    estimates: dict[str, Estimate],
    values: dict[str, Any],
    errors: dict[str, list[str]],
) -> None:
    legacy_share = estimates.pop(_LEGACY_CLOUD_SHARE, None)
    tier = scenario_data.get("hybrid_local_tier")
    if any(name in values for name in HYBRID_TIER_FIELDS.values()):
        return
    if tier is None and legacy_share is None:
        return
    try:
        local = Tier(str(tier)) if tier is not None else Tier.NEAR_EDGE
    except ValueError:
        errors["scenario.hybrid_local_tier"] = ["Choose on_device or near_edge."]
        return
    if local not in LOCAL_TIERS:
        errors["scenario.hybrid_local_tier"] = ["Choose on_device or near_edge."]
        return
    cloud = float(legacy_share.likely) if legacy_share is not None else 0.1
    cloud = min(max(cloud, 0.0), 1.0)
    values.update(dict.fromkeys(HYBRID_TIER_FIELDS.values(), 0.0))
    values[HYBRID_TIER_FIELDS[local]] = 1.0 - cloud
    values["hybrid_cloud_share"] = cloud


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _estimate_errors(estimate: Estimate, spec: InputSpec) -> list[str]:
    problems: list[str] = []
    points = {"low": estimate.low, "likely": estimate.likely, "high": estimate.high}
    for part, value in points.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{part} must be a number.")
        elif not math.isfinite(value):
            problems.append(f"{part} must be a finite number.")
        elif value < spec.minimum:
            bound = "negative" if spec.minimum == 0 else f"below {spec.minimum:g}"
            problems.append(f"{part} ({value:g}) cannot be {bound}.")
        elif value > spec.maximum:
            problems.append(
                f"{part} ({value:g}) is beyond the plausible maximum of {spec.maximum:g}"
                + (" (a share is between 0 and 1)." if spec.unit == "share" else ".")
            )
    if problems:
        return problems
    if estimate.low > estimate.likely:
        problems.append(f"low ({estimate.low:g}) is greater than likely ({estimate.likely:g}).")
    if estimate.likely > estimate.high:
        problems.append(f"likely ({estimate.likely:g}) is greater than high ({estimate.high:g}).")
    return problems


def _worse_than_today(inputs: RoiInputs) -> dict[str, list[str]]:
    """With-AI estimates above today's at any of low / likely / high (lower is better)."""
    errors: dict[str, list[str]] = {}
    for key, baseline_name in IMPROVEMENT_PAIRS.items():
        today = inputs.estimates.get(baseline_name)
        if today is None:
            continue
        for name in _placement_names(key):
            with_ai = inputs.estimates.get(name)
            if with_ai is None:
                continue
            worse = [
                f"{part} {getattr(with_ai, part):g} > {getattr(today, part):g}"
                for part in ("low", "likely", "high")
                if getattr(with_ai, part) > getattr(today, part)
            ]
            if worse:
                errors[name] = [
                    f"With AI this is worse than today ({', '.join(worse)}): each of low, "
                    f"likely and high should be at most today's "
                    f"({SPEC_BY_NAME[baseline_name].label.lower()}). If AI really makes it "
                    "worse, tick \u201cwith-AI figures may be worse than today\u201d."
                ]
    return errors


def _correlation_errors(inputs: RoiInputs) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    seen: dict[str, str] = {}
    for group in inputs.correlations:
        problems = []
        if not 0 < group.rho <= 1 or not math.isfinite(group.rho):
            problems.append("rho is a correlation between 0 (exclusive) and 1.")
        for name in group.names:
            if name not in SPEC_BY_NAME:
                problems.append(f"unknown input {name!r}.")
            elif name in seen:
                problems.append(f"{input_label(name)} is already in \u201c{seen[name]}\u201d.")
            else:
                seen[name] = group.label
        if problems:
            errors[f"correlations.{group.key}"] = problems
    return errors


def validate_inputs(*, inputs: RoiInputs) -> None:
    """Check every estimate and the scenario; raise :class:`PlanningInputError` per field."""
    errors: dict[str, list[str]] = {}
    for name in INPUT_NAMES:
        estimate = inputs.estimates.get(name)
        if estimate is None:
            errors[name] = ["This estimate is required."]
        else:
            errors[name] = _estimate_errors(estimate, SPEC_BY_NAME[name])
    for name in inputs.estimates:
        if name not in SPEC_BY_NAME:
            errors[name] = ["Unknown input."]
    if not inputs.scenario.allow_worse_than_today and not any(errors.values()):
        errors.update(_worse_than_today(inputs))
    errors.update(_correlation_errors(inputs))
    scenario = inputs.scenario
    for key, low, high in (
        ("sites", 1, 100_000),
        ("devices_per_site", 1, 10_000),
        ("gateways_per_site", 1, 1_000),
        ("horizon_months", 1, 120),
        ("build_months", 0, 60),
        ("pilot_months", 0, 60),
        ("pilot_sites", 0, 100_000),
        ("rollout_sites_per_month", 0, 100_000),
    ):
        value = getattr(scenario, key)
        if isinstance(value, bool) or not isinstance(value, int):
            errors[f"scenario.{key}"] = ["Enter a whole number."]
        elif not low <= value <= high:
            errors[f"scenario.{key}"] = [f"Must be between {low:,} and {high:,}."]
    pilots, sites = scenario.pilot_sites, scenario.sites
    if isinstance(pilots, int) and isinstance(sites, int) and 1 <= sites < pilots:
        errors["scenario.pilot_sites"] = [
            f"The pilot cannot have more sites ({pilots:,}) than the scenario ({sites:,})."
        ]
    rate = scenario.annual_discount_rate
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
        errors["scenario.annual_discount_rate"] = ["Enter a number."]
    elif not 0 <= rate <= 1:
        errors["scenario.annual_discount_rate"] = [
            "An annual rate between 0 and 1 (e.g. 0.10 for 10 %)."
        ]
    shares_ok = True
    for key in HYBRID_TIER_FIELDS.values():
        value = getattr(scenario, key)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            errors[f"scenario.{key}"] = ["Enter a share between 0 and 1."]
            shares_ok = False
        elif not 0 <= value <= 1:
            errors[f"scenario.{key}"] = ["A share is between 0 and 1."]
            shares_ok = False
    if shares_ok:
        shares = scenario.hybrid_shares
        total = sum(shares.values())
        if abs(total - 1) > 1e-6:
            errors["scenario.hybrid_cloud_share"] = [
                f"The hybrid's shares of events add up to {total:g}; they must add up to 1."
            ]
        elif not any(shares[tier] > 0 for tier in LOCAL_TIERS):
            errors["scenario.hybrid_on_device_share"] = [
                "A hybrid needs a local tier (on-device or near-edge) serving some events."
            ]
    if not isinstance(scenario.residual_value, ResidualValue):
        errors["scenario.residual_value"] = ["Choose straight_line or none."]
    raise_for_field_errors(errors, what="ROI scenario")


# --- The vectorised cost model ---------------------------------------------------------------

HOURS_PER_MONTH = 24 * DAYS_PER_MONTH


@dataclass(frozen=True)
class _Hardware:
    """One tier's hardware: the cost of equipping one site, and whole months between buys."""

    tier: Tier
    per_site: np.ndarray
    cycle_months: np.ndarray  # int, 1..MAX_REPLACEMENT_MONTHS


@dataclass(frozen=True)
class _Flows:
    """One placement's monthly components at full roll-out, one element per draw (or row).

    ``variable`` benefits and costs scale with the live sites; ``fixed`` costs run from the
    first live site.
    """

    benefits: dict[str, np.ndarray]
    variable_costs: dict[str, np.ndarray]
    fixed_costs: dict[str, np.ndarray]
    hardware: tuple[_Hardware, ...]
    integration: np.ndarray
    outage_loss: np.ndarray

    @property
    def costs(self) -> dict[str, np.ndarray]:
        return {**self.variable_costs, **self.fixed_costs}

    @property
    def benefit(self) -> np.ndarray:
        return sum(self.benefits.values())  # type: ignore[return-value]

    @property
    def variable_cost(self) -> np.ndarray:
        return sum(self.variable_costs.values())  # type: ignore[return-value]

    @property
    def fixed_cost(self) -> np.ndarray:
        return sum(self.fixed_costs.values())  # type: ignore[return-value]

    @property
    def operating(self) -> np.ndarray:
        return self.variable_cost + self.fixed_cost

    @property
    def hardware_per_site(self) -> np.ndarray:
        """Equipping one site with every tier's hardware."""
        total = np.zeros_like(self.integration)
        for item in self.hardware:
            total = total + item.per_site
        return total


def _cycle(value: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(value), 1, MAX_REPLACEMENT_MONTHS).astype(np.int64)


def _model(v: Mapping[str, np.ndarray], scenario: Scenario) -> dict[Placement, _Flows]:
    sites = scenario.sites
    per_site_devices = scenario.devices_per_site
    devices = sites * per_site_devices
    events = devices * v["latency.events_per_device_per_day"] * DAYS_PER_MONTH
    hourly = v["tco.support_hourly_rate"]
    outage_hours = v["offline.outage_hours_per_site"]
    outage_value = sites * outage_hours * v["offline.revenue_lost_per_outage_hour"]
    outage_share = np.minimum(outage_hours / HOURS_PER_MONTH, 1.0)
    energy_price = v["power.electricity_price_per_kwh"] * v["power.cooling_overhead_factor"]
    device_kwh_each = (
        v["power.device_watts"] * v["power.device_hours_per_day"] * DAYS_PER_MONTH / 1000
    )
    gateway_kwh = sites * scenario.gateways_per_site * v["power.gateway_watts"] * 24
    gateway_kwh = gateway_kwh * DAYS_PER_MONTH / 1000
    device_cycle = _cycle(v["tco.device_replacement_months"])
    gateway_cycle = _cycle(v["tco.gateway_replacement_months"])

    def tiers_of(placement: Placement) -> dict[Tier, float]:
        if placement is Placement.HYBRID:
            return {tier: share for tier, share in scenario.hybrid_shares.items() if share > 0}
        return {Tier(placement): 1.0}

    flows: dict[Placement, _Flows] = {}
    for placement in PLACEMENTS:

        def per(key: str, placement: Placement = placement) -> np.ndarray:
            return v[f"{key}.{placement}"]

        kwh = np.zeros_like(events)
        hardware: list[_Hardware] = []
        cloud_share = 0.0
        for tier, share in tiers_of(placement).items():
            if tier is Tier.ON_DEVICE:
                # NPU devices for the tier's share of each site's devices, rounded up.
                equipped = math.ceil(share * per_site_devices - 1e-9)
                kwh = kwh + sites * equipped * device_kwh_each
                hardware.append(
                    _Hardware(tier, equipped * v["tco.device_hardware_cost"], device_cycle)
                )
            elif tier is Tier.NEAR_EDGE:
                kwh = kwh + gateway_kwh  # gateways never sleep, whatever share they serve
                hardware.append(
                    _Hardware(
                        tier,
                        scenario.gateways_per_site * v["tco.gateway_hardware_cost"],
                        gateway_cycle,
                    )
                )
            else:
                cloud_share = share
        completes = per("offline.completes_offline")
        # What keeps working in an outage: the AI's benefits stop for the rest of it.
        available = 1 - outage_share * (1 - completes)
        benefits = {
            "latency": events
            * (v["latency.baseline_time_to_action_s"] - per("latency.time_to_action_s"))
            / 3600
            * v["latency.value_per_hour_saved"]
            * available,
            "compliance": v["privacy.annual_compliance_cost"]
            / 12
            * per("privacy.compliance_reduction"),
            "accuracy": events
            * (v["accuracy.baseline_error_rate"] - per("accuracy.error_rate"))
            * v["accuracy.cost_per_error"]
            * available,
        }
        outage_loss = outage_value * (1 - completes)
        variable_costs = {
            "power": kwh * energy_price,
            "interventions": sites
            * per("maintenance.interventions_per_site")
            * v["maintenance.cost_per_intervention"],
            "data_egress": sites
            * per("privacy.data_leaving_gb_per_site")
            * v["privacy.egress_price_per_gb"],
            "licences": devices * per("tco.licence_per_device"),
            "cloud_inference": events * cloud_share * v["tco.cloud_price_per_1000"] / 1000,
            "bandwidth": sites * per("tco.bandwidth_per_site"),
            "wan_outages": outage_loss,
        }
        fixed_costs = {
            "rollouts": v["maintenance.rollouts_per_month"]
            * (
                per("maintenance.rollout_hours")
                + v["maintenance.rollback_share"] * per("maintenance.rollback_hours")
            )
            * hourly,
            "monitoring": per("accuracy.monitoring_per_month"),
            "tooling": per("tco.tooling_per_month"),
            "support": per("tco.support_hours_per_month") * hourly,
        }
        flows[placement] = _Flows(
            benefits=benefits,
            variable_costs=variable_costs,
            fixed_costs=fixed_costs,
            hardware=tuple(hardware),
            integration=per("tco.integration"),
            outage_loss=outage_loss,
        )
    return flows


COST_LABELS = {
    "power": "Power and cooling",
    "interventions": "Manual interventions",
    "data_egress": "Data leaving the sites",
    "licences": "Licences",
    "cloud_inference": "Cloud inference",
    "bandwidth": "Extra bandwidth",
    "wan_outages": "Revenue lost in WAN outages",
    "rollouts": "Rollouts and rollbacks",
    "monitoring": "Accuracy and drift monitoring",
    "tooling": "Deployment tooling",
    "support": "Support",
}
BENEFIT_LABELS = {
    "latency": "Time saved",
    "compliance": "Compliance cost avoided",
    "accuracy": "Errors avoided",
}


# --- The ramp and the time line ----------------------------------------------------------------


@dataclass(frozen=True)
class Cohort:
    """Sites that go live together: hardware bought the month before ``live_month``."""

    live_month: int
    sites: int
    label: str

    def to_dict(self) -> dict[str, Any]:
        return {"live_month": self.live_month, "sites": self.sites, "label": self.label}


def ramp_cohorts(scenario: Scenario) -> tuple[Cohort, ...]:
    """The scenario's go-live schedule within the horizon (see :class:`Scenario`)."""
    cohorts: list[Cohort] = []
    remaining = scenario.sites
    month = scenario.build_months + 1
    if scenario.pilot_sites > 0 and scenario.pilot_months > 0:
        pilot = min(scenario.pilot_sites, remaining)
        cohorts.append(Cohort(month, pilot, "pilot"))
        remaining -= pilot
        month += scenario.pilot_months
    pace = scenario.rollout_sites_per_month or remaining
    while remaining > 0 and month <= scenario.horizon_months:
        batch = min(pace, remaining)
        cohorts.append(Cohort(month, batch, "roll-out"))
        remaining -= batch
        month += 1
    return tuple(cohorts)


@dataclass(frozen=True)
class _Timeline:
    """Everything that depends only on the scenario: discounting, the ramp, hardware buys."""

    horizon: int
    monthly_rate: float
    factors: np.ndarray  # (H + 1,) month 0..H
    live_share: np.ndarray  # (H + 1,) share of the sites live in month t (0 at month 0)
    fixed_on: np.ndarray  # (H + 1,) 1 from the first live month
    site_months: float  # sum of live sites over months 1..H
    purchases: np.ndarray  # [c, t] -> sites equipped at month t with a c-month cycle
    residual: np.ndarray  # [c] -> site-equivalents of hardware value left at the horizon
    cohorts: tuple[Cohort, ...]
    residual_value: ResidualValue
    live_pv: float = 0.0  # sum of live_share discounted
    fixed_pv: float = 0.0
    purchases_pv: np.ndarray | None = None  # [c] -> discounted site-purchases
    purchases_total: np.ndarray | None = None  # [c] -> site-purchases over the horizon
    live_cum: np.ndarray | None = None  # (H + 1,) cumulative live share
    fixed_cum: np.ndarray | None = None
    purchases_cum: np.ndarray | None = None  # [c, t] cumulative site-purchases


def _timeline(scenario: Scenario) -> _Timeline:
    horizon = scenario.horizon_months
    monthly = (1 + scenario.annual_discount_rate) ** (1 / 12) - 1
    months = np.arange(horizon + 1)
    factors = (1 + monthly) ** -months.astype(float)
    cohorts = ramp_cohorts(scenario)
    live = np.zeros(horizon + 1)
    for cohort in cohorts:
        live[cohort.live_month :] += cohort.sites
    cycles = np.arange(MAX_REPLACEMENT_MONTHS + 1)
    purchases = np.zeros((MAX_REPLACEMENT_MONTHS + 1, horizon + 1))
    residual = np.zeros(MAX_REPLACEMENT_MONTHS + 1)
    safe = np.maximum(cycles, 1)
    for cohort in cohorts:
        bought = cohort.live_month - 1
        # Buys at bought, bought + c, ... strictly before the horizon (row 0 is never used).
        at = (months[None, :] >= bought) & ((months[None, :] - bought) % safe[:, None] == 0)
        at &= months[None, :] < horizon
        purchases += cohort.sites * at
        last = bought + (horizon - 1 - bought) // safe * safe
        age = horizon - last
        residual += cohort.sites * np.clip(1 - age / safe, 0, 1)
    purchases[0] = 0
    residual[0] = 0
    first = cohorts[0].live_month if cohorts else horizon + 1
    fixed_on = (months >= first).astype(float)
    fixed_on[0] = 0
    if scenario.residual_value is ResidualValue.NONE:
        residual = np.zeros_like(residual)
    return _Timeline(
        horizon=horizon,
        monthly_rate=monthly,
        factors=factors,
        live_share=live / scenario.sites,
        fixed_on=fixed_on,
        site_months=float(live[1:].sum()),
        purchases=purchases,
        residual=residual,
        cohorts=cohorts,
        residual_value=scenario.residual_value,
        live_pv=float(live[:] @ factors) / scenario.sites,
        fixed_pv=float(fixed_on @ factors),
        purchases_pv=purchases @ factors,
        purchases_total=purchases.sum(axis=1),
        live_cum=np.cumsum(live / scenario.sites),
        fixed_cum=np.cumsum(fixed_on),
        purchases_cum=np.cumsum(purchases, axis=1),
    )


def _npv(flow: _Flows, line: _Timeline) -> np.ndarray:
    """The NPV per row without building the monthly cash flows (same sum as ``_cash``)."""
    npv = (
        (flow.benefit - flow.variable_cost) * line.live_pv
        - flow.fixed_cost * line.fixed_pv
        - flow.integration
    )
    end = line.factors[line.horizon]
    for item in flow.hardware:
        npv = npv - item.per_site * (
            line.purchases_pv[item.cycle_months] - line.residual[item.cycle_months] * end
        )
    return npv


def _cumulative(flow: _Flows, line: _Timeline, dtype: type = np.float64) -> np.ndarray:
    """Undiscounted cumulative cash flow per row and month, (rows, H + 1).

    The Monte Carlo asks for float32 (only the sign of each month matters for the payback
    month, and half the memory traffic halves the time); the deterministic result is float64.
    """
    net = (flow.benefit - flow.variable_cost).astype(dtype)
    cumulative = np.multiply.outer(net, line.live_cum.astype(dtype))
    cumulative -= np.multiply.outer(flow.fixed_cost.astype(dtype), line.fixed_cum.astype(dtype))
    cumulative -= flow.integration.astype(dtype)[:, None]
    purchases = line.purchases_cum.astype(dtype, copy=False)
    for item in flow.hardware:
        bought = purchases[item.cycle_months]  # (rows, H + 1), a new array
        bought *= item.per_site.astype(dtype)[:, None]
        cumulative -= bought
        cumulative[:, line.horizon] += item.per_site * line.residual[item.cycle_months]
    return cumulative


def _cash(flow: _Flows, line: _Timeline) -> np.ndarray:
    """Undiscounted cash flow per row and month, (rows, H + 1)."""
    variable_net = flow.benefit - flow.variable_cost
    cash = np.outer(variable_net, line.live_share) - np.outer(flow.fixed_cost, line.fixed_on)
    cash[:, 0] -= flow.integration
    for item in flow.hardware:
        cash -= item.per_site[:, None] * line.purchases[item.cycle_months]
        cash[:, line.horizon] += item.per_site * line.residual[item.cycle_months]
    return cash


def _hardware_totals(flow: _Flows, line: _Timeline) -> tuple[np.ndarray, np.ndarray]:
    """Undiscounted hardware bought over the horizon and its residual value, per row."""
    bought = np.zeros_like(flow.integration)
    left = np.zeros_like(flow.integration)
    for item in flow.hardware:
        bought = bought + item.per_site * line.purchases_total[item.cycle_months]
        left = left + item.per_site * line.residual[item.cycle_months]
    return bought, left


def _tco(flow: _Flows, line: _Timeline) -> np.ndarray:
    """Hardware bought less its residual value, integration, and running costs as live."""
    bought, left = _hardware_totals(flow, line)
    running = flow.variable_cost * line.live_share.sum() + flow.fixed_cost * line.fixed_on.sum()
    return bought - left + flow.integration + running


def _payback_months(cumulative: np.ndarray) -> np.ndarray:
    """Per row: first month from which the cumulative stays >= 0; -1 when it never does."""
    # The month after the last month below zero (0 if it never dips; never if the last is).
    below = cumulative < 0
    last = cumulative.shape[1] - 1
    from_end = np.argmax(below[:, ::-1], axis=1)  # 0 when the horizon itself is below
    month = last - from_end + 1
    month[~below.any(axis=1)] = 0
    month[below[:, last]] = -1
    return month


def _outputs(flow: _Flows, line: _Timeline, scenario: Scenario) -> dict[str, np.ndarray]:
    tco = _tco(flow, line)
    site_months = max(line.site_months, 1e-12)
    return {
        "npv": _npv(flow, line),
        "net_monthly": flow.benefit - flow.operating,
        "tco": tco,
        "cost_per_site_month": tco / site_months,
        "cost_per_device_month": tco / (site_months * scenario.devices_per_site),
    }


TORNADO_OUTPUTS = ("npv", "net_monthly", "tco", "cost_per_site_month")


def _likely_arrays(inputs: RoiInputs, rows: int = 1) -> dict[str, np.ndarray]:
    return {name: np.full(rows, float(inputs.estimates[name].likely)) for name in INPUT_NAMES}


# --- Deterministic result ------------------------------------------------------------------------


@dataclass(frozen=True)
class PlacementEconomics:
    """One placement's economics at the likely values, for the side-by-side table and charts.

    Monthly figures (benefit, costs, net) are at full roll-out; the cash flows follow the ramp.
    """

    placement: Placement
    monthly_benefit: float
    monthly_operating_cost: float
    net_monthly: float
    upfront: float
    hardware_purchase: float
    hardware_replacements: int
    hardware_bought: float
    residual_value: float
    tco: float
    cost_per_site_month: float
    cost_per_device_month: float
    npv: float
    payback_month: int | None
    roi_pct: float | None
    outage_loss_monthly: float
    benefits: dict[str, float]
    costs: dict[str, float]
    tiers: tuple[str, ...]
    cumulative_cash_flow: tuple[float, ...]  # undiscounted, month 0..H (break-even chart)
    cumulative_discounted_cash_flow: tuple[float, ...]  # ends at the NPV

    def to_dict(self) -> dict[str, Any]:
        return {
            "placement": str(self.placement),
            "monthly_benefit": self.monthly_benefit,
            "monthly_operating_cost": self.monthly_operating_cost,
            "net_monthly": self.net_monthly,
            "upfront": self.upfront,
            "hardware_purchase": self.hardware_purchase,
            "hardware_replacements": self.hardware_replacements,
            "hardware_bought": self.hardware_bought,
            "residual_value": self.residual_value,
            "tco": self.tco,
            "cost_per_site_month": self.cost_per_site_month,
            "cost_per_device_month": self.cost_per_device_month,
            "npv": self.npv,
            "payback_month": self.payback_month,
            "roi_pct": self.roi_pct,
            "outage_loss_monthly": self.outage_loss_monthly,
            "benefits": dict(self.benefits),
            "costs": dict(self.costs),
            "tiers": list(self.tiers),
            "cumulative_cash_flow": list(self.cumulative_cash_flow),
            "cumulative_discounted_cash_flow": list(self.cumulative_discounted_cash_flow),
        }


@dataclass(frozen=True)
class RoiResult:
    """All four placements at the likely values; ``best_placement`` has the highest NPV."""

    placements: dict[Placement, PlacementEconomics]
    best_placement: Placement
    horizon_months: int
    annual_discount_rate: float
    monthly_discount_rate: float
    cohorts: tuple[Cohort, ...] = ()
    residual_value: ResidualValue = ResidualValue.STRAIGHT_LINE

    def __getitem__(self, placement: Placement) -> PlacementEconomics:
        return self.placements[placement]

    def to_dict(self) -> dict[str, Any]:
        return {
            "placements": {str(p): econ.to_dict() for p, econ in self.placements.items()},
            "best_placement": str(self.best_placement),
            "horizon_months": self.horizon_months,
            "annual_discount_rate": self.annual_discount_rate,
            "monthly_discount_rate": self.monthly_discount_rate,
            "cohorts": [cohort.to_dict() for cohort in self.cohorts],
            "residual_value": str(self.residual_value),
        }


def _payback_month(cumulative: np.ndarray) -> int | None:
    """First month from which the cumulative cash flow stays >= 0 to the horizon."""
    month = int(_payback_months(cumulative[None, :])[0])
    return None if month < 0 else month


def evaluate(*, inputs: RoiInputs) -> RoiResult:
    """Economics of every placement at the likely values (validates the inputs first)."""
    validate_inputs(inputs=inputs)
    scenario = inputs.scenario
    line = _timeline(scenario)
    flows = _model(_likely_arrays(inputs), scenario)
    economics: dict[Placement, PlacementEconomics] = {}
    for placement, flow in flows.items():
        benefit = float(flow.benefit[0])
        operating = float(flow.operating[0])
        cash = _cash(flow, line)[0]
        cumulative = np.cumsum(cash)
        out = _outputs(flow, line, scenario)
        tco = float(out["tco"][0])
        bought, left = (float(x[0]) for x in _hardware_totals(flow, line))
        purchase = float(flow.hardware_per_site[0]) * scenario.sites
        total_benefit = benefit * float(line.live_share.sum())
        replacements = 0
        if flow.hardware:
            first = flow.hardware[0]
            buys = int(line.purchases[int(first.cycle_months[0])].astype(bool).sum())
            replacements = max(0, buys - len(line.cohorts))
        economics[placement] = PlacementEconomics(
            placement=placement,
            monthly_benefit=benefit,
            monthly_operating_cost=operating,
            net_monthly=benefit - operating,
            upfront=float(-cash[0]),
            hardware_purchase=purchase,
            hardware_replacements=replacements,
            hardware_bought=bought,
            residual_value=left,
            tco=tco,
            cost_per_site_month=float(out["cost_per_site_month"][0]),
            cost_per_device_month=float(out["cost_per_device_month"][0]),
            npv=float(out["npv"][0]),
            payback_month=_payback_month(cumulative),
            roi_pct=(total_benefit - tco) / tco * 100 if tco > 0 else None,
            outage_loss_monthly=float(flow.outage_loss[0]),
            benefits={key: float(value[0]) for key, value in flow.benefits.items()},
            costs={key: float(value[0]) for key, value in flow.costs.items()},
            tiers=tuple(str(item.tier) for item in flow.hardware)
            + (("cloud",) if float(flow.costs["cloud_inference"][0]) > 0 else ()),
            cumulative_cash_flow=tuple(float(x) for x in cumulative),
            cumulative_discounted_cash_flow=tuple(float(x) for x in np.cumsum(cash * line.factors)),
        )
    best = max(PLACEMENTS, key=lambda p: (economics[p].npv, -PLACEMENTS.index(p)))
    return RoiResult(
        placements=economics,
        best_placement=best,
        horizon_months=line.horizon,
        annual_discount_rate=scenario.annual_discount_rate,
        monthly_discount_rate=line.monthly_rate,
        cohorts=line.cohorts,
        residual_value=scenario.residual_value,
    )


# --- Monte Carlo ------------------------------------------------------------------------------


def _stream(seed: int, name: str) -> np.random.Generator:
    """The input's own random stream: depends on the seed and the name only."""
    return np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(zlib.crc32(name.encode()),))
    )


def _sample_one(
    estimate: Estimate, *, rng: np.random.Generator, draws: int, distribution: Distribution
) -> np.ndarray:
    low, mode, high = float(estimate.low), float(estimate.likely), float(estimate.high)
    if low == high:
        return np.full(draws, low)
    if distribution is Distribution.TRIANGULAR:
        return rng.triangular(low, mode, high, size=draws)
    span = high - low
    alpha = 1 + PERT_LAMBDA * (mode - low) / span
    beta = 1 + PERT_LAMBDA * (high - mode) / span
    return low + span * rng.beta(alpha, beta, size=draws)


def _distribution(value: Distribution | str) -> Distribution:
    try:
        return Distribution(value)
    except ValueError:
        choices = ", ".join(item.value for item in Distribution)
        raise PlanningInputError(
            "Monte Carlo: unknown distribution.",
            fields={"distribution": [f"Choose one of: {choices}."]},
        ) from None


def _couple(samples: dict[str, np.ndarray], inputs: RoiInputs, seed: int, draws: int) -> None:
    """Reorder each correlated group's draws so their ranks follow a Gaussian copula.

    Each input keeps exactly its own values (its marginal distribution is untouched); only
    which draw gets which value changes. With ``rho`` 1 every member gets the ranks of the
    group's shared normal, i.e. all members are drawn at one shared percentile.
    """
    for group in inputs.correlations:
        members = [name for name in group.names if not inputs.estimates[name].is_exact]
        if not members:
            continue
        shared = _stream(seed, f"correlation:{group.key}").standard_normal(draws)
        shared_order = np.argsort(shared) if group.rho >= 1 else None
        for name in members:
            if shared_order is not None:
                order = shared_order
            else:
                own = _stream(seed, f"correlation:{group.key}:{name}").standard_normal(draws)
                # Loading sqrt(rho) on the shared factor: any two members correlate at rho.
                order = np.argsort(math.sqrt(group.rho) * shared + math.sqrt(1 - group.rho) * own)
            # The draw with the k-th smallest latent value gets the k-th smallest sample.
            coupled = np.empty(draws)
            coupled[order] = np.sort(samples[name])
            samples[name] = coupled


def sample_inputs(
    *,
    inputs: RoiInputs,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    distribution: Distribution = Distribution.PERT,
    workers: int = 2,
) -> dict[str, np.ndarray]:
    """One array of ``draws`` values per input, correlated groups coupled.

    Sampling is spread over ``workers`` threads (numpy releases the GIL while drawing); the
    result is identical whatever ``workers`` is, because each input has its own stream.
    """
    distribution = _distribution(distribution)
    names = [name for name in INPUT_NAMES if not inputs.estimates[name].is_exact]
    samples = {
        name: np.full(draws, float(inputs.estimates[name].low))
        for name in INPUT_NAMES
        if inputs.estimates[name].is_exact
    }

    def draw(chunk: list[str]) -> dict[str, np.ndarray]:
        return {
            name: _sample_one(
                inputs.estimates[name],
                rng=_stream(seed, name),
                draws=draws,
                distribution=distribution,
            )
            for name in chunk
        }

    if workers <= 1 or len(names) < 2:
        samples.update(draw(names))
    else:
        chunks = [names[index::workers] for index in range(workers)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for part in pool.map(draw, chunks):
                samples.update(part)
    _couple(samples, inputs, seed, draws)
    return samples


@dataclass(frozen=True)
class Percentiles:
    p10: float
    p50: float
    p90: float

    def to_dict(self) -> dict[str, float]:
        return {"p10": self.p10, "p50": self.p50, "p90": self.p90}


@dataclass(frozen=True)
class MonthPercentiles:
    """Percentiles of the payback month; ``None`` is "not within the horizon"."""

    p10: int | None
    p50: int | None
    p90: int | None

    def to_dict(self) -> dict[str, int | None]:
        return {"p10": self.p10, "p50": self.p50, "p90": self.p90}


@dataclass(frozen=True)
class PlacementSpread:
    placement: Placement
    npv: Percentiles
    net_monthly: Percentiles
    probability_npv_positive: float
    npv_mean: float
    cost_per_site_month: Percentiles
    cost_per_device_month: Percentiles
    payback_month: MonthPercentiles
    probability_payback: float  # share of draws paying back within the horizon
    share_negative_saving: float  # draws where the AI makes time or errors worse than today

    def to_dict(self) -> dict[str, Any]:
        return {
            "placement": str(self.placement),
            "npv": self.npv.to_dict(),
            "net_monthly": self.net_monthly.to_dict(),
            "probability_npv_positive": self.probability_npv_positive,
            "npv_mean": self.npv_mean,
            "cost_per_site_month": self.cost_per_site_month.to_dict(),
            "cost_per_device_month": self.cost_per_device_month.to_dict(),
            "payback_month": self.payback_month.to_dict(),
            "probability_payback": self.probability_payback,
            "share_negative_saving": self.share_negative_saving,
        }


@dataclass(frozen=True)
class MonteCarloResult:
    draws: int
    seed: int
    distribution: Distribution
    placements: dict[Placement, PlacementSpread]
    correlations: tuple[Correlation, ...] = ()

    def __getitem__(self, placement: Placement) -> PlacementSpread:
        return self.placements[placement]

    def to_dict(self) -> dict[str, Any]:
        return {
            "draws": self.draws,
            "seed": self.seed,
            "distribution": str(self.distribution),
            "placements": {str(p): spread.to_dict() for p, spread in self.placements.items()},
            "correlations": [item.to_dict() for item in self.correlations],
        }


def _percentiles(values: np.ndarray) -> Percentiles:
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    return Percentiles(float(p10), float(p50), float(p90))


def _month_percentiles(months: np.ndarray, horizon: int) -> MonthPercentiles:
    # "Never" sorts after every month; percentiles of whole months use the nearest rank.
    ordered = np.where(months < 0, horizon + 1, months)
    picks = np.percentile(ordered, [10, 50, 90], method="inverted_cdf")
    return MonthPercentiles(*(None if pick > horizon else int(pick) for pick in picks))


def simulate(
    *,
    inputs: RoiInputs,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    distribution: Distribution = Distribution.PERT,
    workers: int = 2,
) -> MonteCarloResult:
    """Monte Carlo of every placement: P10/P50/P90 of NPV, net monthly, cost per site and
    device per month and payback month; P(NPV > 0).

    All placements are computed on the same draws, so their spreads are comparable.
    """
    validate_inputs(inputs=inputs)
    distribution = _distribution(distribution)
    if not 1 <= draws <= 1_000_000:
        raise PlanningInputError(
            "Monte Carlo: draws out of range.", fields={"draws": ["Between 1 and 1,000,000."]}
        )
    scenario = inputs.scenario
    line = _timeline(scenario)
    values = sample_inputs(
        inputs=inputs, draws=draws, seed=seed, distribution=distribution, workers=workers
    )

    def spread_of(item: tuple[Placement, _Flows]) -> PlacementSpread:
        placement, flow = item
        out = _outputs(flow, line, scenario)
        npv = out["npv"]
        payback = _payback_months(_cumulative(flow, line, np.float32))
        worse = (
            values["latency.baseline_time_to_action_s"]
            < values[f"latency.time_to_action_s.{placement}"]
        ) | (values["accuracy.baseline_error_rate"] < values[f"accuracy.error_rate.{placement}"])
        return PlacementSpread(
            placement=placement,
            npv=_percentiles(npv),
            net_monthly=_percentiles(out["net_monthly"]),
            probability_npv_positive=float(np.count_nonzero(npv > 0) / draws),
            npv_mean=float(npv.mean()),
            cost_per_site_month=_percentiles(out["cost_per_site_month"]),
            cost_per_device_month=_percentiles(out["cost_per_device_month"]),
            payback_month=_month_percentiles(payback, line.horizon),
            probability_payback=float(np.count_nonzero(payback >= 0) / draws),
            share_negative_saving=float(np.count_nonzero(worse) / draws),
        )

    flows = list(_model(values, scenario).items())
    if workers <= 1:
        results = [spread_of(item) for item in flows]
    else:  # numpy releases the GIL on the (draws x months) arrays; results do not depend on it
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(spread_of, flows))
    spreads = {spread.placement: spread for spread in results}
    return MonteCarloResult(
        draws=draws,
        seed=seed,
        distribution=distribution,
        placements=spreads,
        correlations=inputs.correlations,
    )


# --- Tornado ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TornadoBar:
    """The output with one input (or one fully correlated group) at its low and at its high,
    everything else at likely."""

    name: str
    label: str
    section: Section
    low: float
    high: float
    output_at_low: float
    output_at_high: float
    members: tuple[str, ...] = ()

    @property
    def swing(self) -> float:
        return abs(self.output_at_high - self.output_at_low)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "section": str(self.section),
            "low": self.low,
            "high": self.high,
            "output_at_low": self.output_at_low,
            "output_at_high": self.output_at_high,
            "swing": self.swing,
            "members": list(self.members),
        }


@dataclass(frozen=True)
class TornadoResult:
    placement: Placement
    output: str
    base: float
    bars: tuple[TornadoBar, ...]  # biggest swing first

    def to_dict(self) -> dict[str, Any]:
        return {
            "placement": str(self.placement),
            "output": self.output,
            "base": self.base,
            "bars": [bar.to_dict() for bar in self.bars],
        }


def _swing_units(inputs: RoiInputs) -> list[tuple[str, tuple[str, ...]]]:
    """What swings together: each fully correlated group as one, every other input alone."""
    uncertain = [name for name in INPUT_NAMES if not inputs.estimates[name].is_exact]
    grouped: dict[str, str] = {}
    for group in inputs.correlations:
        if group.rho >= 1:
            for name in group.names:
                grouped[name] = group.key
    units: list[tuple[str, tuple[str, ...]]] = []
    seen: set[str] = set()
    for name in uncertain:
        key = grouped.get(name)
        if key is None:
            units.append((name, (name,)))
        elif key not in seen:
            seen.add(key)
            group = next(item for item in inputs.correlations if item.key == key)
            members = tuple(member for member in group.names if member in uncertain)
            units.append((f"correlation:{key}", members))
    return units


def tornado(
    *, inputs: RoiInputs, placement: Placement | None = None, output: str = "npv"
) -> TornadoResult:
    """Which assumption matters most: swing each uncertain input low -> high.

    A fully correlated group (``rho`` 1) swings as one bar, its members low together and
    high together, as the Monte Carlo draws them. ``placement`` defaults to the one with the
    highest NPV at the likely values (pass the wizard's placement to follow the
    recommendation). Inputs whose low equals high are left out (they cannot swing). Bars are
    sorted by swing, largest first; equal swings keep the order of :data:`INPUT_NAMES`. All
    rows are computed in one vectorised pass.
    """
    validate_inputs(inputs=inputs)
    if output not in TORNADO_OUTPUTS:
        raise PlanningInputError(
            "Tornado: unknown output.",
            fields={"output": [f"Choose one of: {', '.join(TORNADO_OUTPUTS)}."]},
        )
    scenario = inputs.scenario
    line = _timeline(scenario)
    units = _swing_units(inputs)
    rows = 1 + 2 * len(units)
    values = _likely_arrays(inputs, rows)
    for index, (_, members) in enumerate(units):
        for name in members:
            estimate = inputs.estimates[name]
            values[name][1 + 2 * index] = estimate.low
            values[name][2 + 2 * index] = estimate.high
    flows = _model(values, scenario)
    if placement is None:
        npvs = {p: float(_npv(flow, line)[0]) for p, flow in flows.items()}
        placement = max(PLACEMENTS, key=lambda p: (npvs[p], -PLACEMENTS.index(p)))
    result = _outputs(flows[Placement(placement)], line, scenario)[output]
    labels = {group.key: group.label for group in inputs.correlations}
    bars = []
    focus = str(Placement(placement))
    for index, (key, members) in enumerate(units):
        # A group's low and high are shown for the member of the placement in focus.
        shown = next((name for name in members if name.endswith(f".{focus}")), members[0])
        first = inputs.estimates[shown]
        if key.startswith("correlation:"):
            label = f"{labels[key.split(':', 1)[1]]} (drawn together)"
        else:
            label = input_label(key)
        bars.append(
            TornadoBar(
                name=key,
                label=label,
                section=SPEC_BY_NAME[members[0]].section,
                low=float(first.low),
                high=float(first.high),
                output_at_low=float(result[1 + 2 * index]),
                output_at_high=float(result[2 + 2 * index]),
                members=members,
            )
        )
    bars.sort(key=lambda bar: -bar.swing)  # sort is stable: ties keep input order
    return TornadoResult(
        placement=Placement(placement), output=output, base=float(result[0]), bars=tuple(bars)
    )


@dataclass(frozen=True)
class Analysis:
    """Everything the calculator page shows for one scenario."""

    deterministic: RoiResult
    monte_carlo: MonteCarloResult
    tornado: TornadoResult

    def to_dict(self) -> dict[str, Any]:
        return {
            "deterministic": self.deterministic.to_dict(),
            "monte_carlo": self.monte_carlo.to_dict(),
            "tornado": self.tornado.to_dict(),
        }


def analyse(
    *,
    inputs: RoiInputs,
    placement: Placement | None = None,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    distribution: Distribution = Distribution.PERT,
    tornado_output: str = "npv",
    workers: int = 2,
) -> Analysis:
    """Deterministic economics, Monte Carlo and tornado in one call."""
    deterministic = evaluate(inputs=inputs)
    return Analysis(
        deterministic=deterministic,
        monte_carlo=simulate(
            inputs=inputs, draws=draws, seed=seed, distribution=distribution, workers=workers
        ),
        tornado=tornado(
            inputs=inputs,
            placement=placement or deterministic.best_placement,
            output=tornado_output,
        ),
    )


# --- Planned vs measured ----------------------------------------------------------------------


@dataclass(frozen=True)
class MeasuredAssumption:
    name: str
    label: str
    planned: Estimate
    measured: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "planned": self.planned.to_dict(),
            "measured": self.measured,
        }


@dataclass(frozen=True)
class PlannedVsMeasured:
    planned: RoiResult
    measured: RoiResult
    replaced: tuple[MeasuredAssumption, ...]
    measured_inputs: RoiInputs

    def to_dict(self) -> dict[str, Any]:
        return {
            "planned": self.planned.to_dict(),
            "measured": self.measured.to_dict(),
            "replaced": [item.to_dict() for item in self.replaced],
        }


def recompute_with_measurements(
    *, inputs: RoiInputs, measured: Mapping[str, float], source: str = "measured"
) -> PlannedVsMeasured:
    """Replace named assumptions with measured values and return both results.

    Each measured input collapses to ``Estimate.exactly(value)``, so it also stops swinging in
    the tornado and stops varying in the Monte Carlo. Unknown names or out-of-range values
    raise :class:`PlanningInputError` naming the input.
    """
    errors: dict[str, list[str]] = {}
    updates: dict[str, Estimate] = {}
    replaced: list[MeasuredAssumption] = []
    for name, value in measured.items():
        spec = SPEC_BY_NAME.get(name)
        if spec is None:
            errors[name] = ["Unknown input; measurements replace named ROI inputs."]
            continue
        estimate = Estimate.exactly(value, source=f"{source}: {value:g} {spec.unit}".strip())
        problems = _estimate_errors(estimate, spec)
        if problems:
            errors[name] = [f"Measured value {value!r} is not usable: {problems[0]}"]
            continue
        updates[name] = estimate
        replaced.append(
            MeasuredAssumption(name, input_label(name), inputs.estimates[name], float(value))
        )
    raise_for_field_errors(errors, what="Measurements")
    measured_inputs = inputs.with_estimates(updates)
    return PlannedVsMeasured(
        planned=evaluate(inputs=inputs),
        measured=evaluate(inputs=measured_inputs),
        replaced=tuple(replaced),
        measured_inputs=measured_inputs,
    )


# --- Presets -------------------------------------------------------------------------------
# The presets live in ``roi.presets`` (one module per reference architecture); ``preset`` and
# ``PRESETS`` stay importable from here.


def _presets() -> dict[Workflow, Callable[[], RoiInputs]]:
    from roi.presets import field_service, healthcare, logistics

    return {
        Workflow.LOGISTICS_DOCK_VISION: logistics.build,
        Workflow.FIELD_SERVICE_TRIAGE: field_service.build,
        Workflow.HEALTHCARE_DECISION_SUPPORT: healthcare.build,
    }


def __getattr__(name: str) -> Any:
    if name == "PRESETS":
        return _presets()
    raise AttributeError(name)


def preset(*, workflow: Workflow) -> RoiInputs:
    """A fresh, editable scenario for one of the seed's workflows, every default sourced."""
    presets = _presets()
    try:
        return presets[Workflow(workflow)]()
    except (KeyError, ValueError):
        names = ", ".join(str(w) for w in presets)
        raise PlanningInputError(
            "No preset for this workflow.",
            fields={"workflow": [f"Presets exist for: {names}; start a custom one from them."]},
        ) from None


def estimate_names(*, sections: Iterable[Section] | None = None) -> tuple[str, ...]:
    """Flat input names, optionally limited to some sections (for forms and exports)."""
    wanted = set(sections) if sections is not None else set(Section)
    return tuple(name for name in INPUT_NAMES if SPEC_BY_NAME[name].section in wanted)


__all__ = [
    "DEFAULT_DRAWS",
    "INPUT_NAMES",
    "INPUT_SPECS",
    "PLACEMENTS",
    "SPEC_BY_NAME",
    "TORNADO_OUTPUTS",
    "Analysis",
    "Distribution",
    "Estimate",
    "InputSpec",
    "MeasuredAssumption",
    "MonteCarloResult",
    "Percentiles",
    "PlacementEconomics",
    "PlacementSpread",
    "PlannedVsMeasured",
    "RoiInputs",
    "RoiResult",
    "Scenario",
    "Section",
    "TornadoBar",
    "TornadoResult",
    "analyse",
    "estimate_names",
    "evaluate",
    "input_label",
    "preset",
    "recompute_with_measurements",
    "sample_inputs",
    "simulate",
    "tornado",
    "validate_inputs",
]
