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

Cost model (all monthly, for the whole organisation; ``S`` sites, ``D`` devices per site,
``G`` gateways per site, ``p`` the placement, ``DAYS = 365.25 / 12``)::

    events        = S * D * events_per_device_per_day * DAYS          (one inference per event)
    latency       = events * (baseline_time_to_action_s - time_to_action_s[p]) / 3600
                    * value_per_hour_saved
    offline       = S * outage_hours * revenue_lost_per_outage_hour * completes_offline[p]
    outage_loss   = S * outage_hours * revenue_lost_per_outage_hour * (1 - completes_offline[p])
    compliance    = annual_compliance_cost / 12 * compliance_reduction[p]
    accuracy      = events * (baseline_error_rate - error_rate[p]) * cost_per_error
    benefit       = latency + offline + compliance + accuracy

    energy kWh    = on-device: S*D * device_watts * device_hours_per_day * DAYS / 1000
                    near-edge: S*G * gateway_watts * 24 * DAYS / 1000  (gateways never sleep)
                    cloud: 0 (in the inference price); hybrid: its local tier's
    power         = kWh * electricity_price_per_kwh * cooling_overhead_factor
    maintenance   = rollouts_per_month * (rollout_hours[p] + rollback_share * rollback_hours[p])
                    * support_hourly_rate + S * interventions_per_site[p] * cost_per_intervention
    privacy       = S * data_leaving_gb_per_site[p] * egress_price_per_gb
    running       = S*D * licence_per_device[p] + tooling[p] + support_hours[p] * hourly_rate
                    + S * bandwidth_per_site[p] + monitoring[p]
                    + events * cloud_share[p] * cloud_price_per_1000 / 1000
                    with cloud_share = 1 (cloud), hybrid_cloud_share (hybrid), 0 (local)
    operating     = power + maintenance + privacy + running
    net_monthly   = benefit - operating

Hardware: on-device buys ``S*D`` devices (``device_hardware_cost`` is the *incremental* cost
of an NPU-capable device), near-edge buys ``S*G`` gateways, cloud buys nothing, hybrid buys its
local tier's (``Scenario.hybrid_local_tier``; the hybrid split is "local tier for every event,
plus ``hybrid_cloud_share`` of events also sent to cloud inference"). The fleet is bought at
month 0 and bought again every replacement cycle (rounded to whole months) at months
``c, 2c, ...`` strictly before the horizon (a purchase at the horizon would serve only after it).

Conventions
    - Cash flows: month 0 = ``-(hardware + integration)``; months 1..H = ``net_monthly`` minus any
      replacement purchase that month. H = ``horizon_months`` (36 by default).
    - NPV discounts monthly at the rate equivalent to the annual rate,
      ``r_m = (1 + r_annual) ** (1/12) - 1``; month ``t`` is discounted by ``(1 + r_m) ** t``,
      month 0 not at all (upfront hardware at month 0).
    - TCO over the horizon = hardware purchases + integration + H * operating (undiscounted).
    - Cost per active site per month = TCO / H / S; per device = TCO / H / (S * D).
    - ROI % = (H * benefit - TCO) / TCO * 100 (undiscounted; None when TCO is 0).
    - Payback month = the first month from which the *undiscounted* cumulative cash flow stays
      >= 0 to the end of the horizon (0 if it never dips below 0; None if it never gets there),
      so a replacement purchase that drops the curve below zero again delays it.
    - Monte Carlo draws every input independently (no correlations) from Beta-PERT (lambda 4)
      or triangular distributions; ``low == high`` is a constant. Each input has its own random
      stream derived from the seed and the input's name, so results are reproducible, do not
      depend on the order of inputs or the number of sampling threads, and editing one input
      leaves the other inputs' draws unchanged.

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
        "latency.baseline_time_to_action_s", _S.LATENCY, "Time-to-action today", "s", 0, 86_400
    ),
    InputSpec(
        "latency.time_to_action_s",
        _S.LATENCY,
        "Time-to-action (capture to action)",
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
        "Revenue lost per outage hour per site",
        "per h",
        0,
        10_000_000,
    ),
    InputSpec(
        "offline.completes_offline",
        _S.OFFLINE,
        "Share of workflow completing offline",
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
        "tco.hybrid_cloud_share",
        _S.TCO,
        "Share of events a hybrid sends to the cloud",
        "share",
        0,
        1,
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


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """The fleet shape and finance conventions: plain figures, not ranges.

    ``notes`` holds the source or reasoning of each figure, keyed by field name.
    """

    sites: int
    devices_per_site: int
    gateways_per_site: int
    annual_discount_rate: float
    horizon_months: int = DEFAULT_HORIZON_MONTHS
    hybrid_local_tier: Tier = Tier.NEAR_EDGE
    notes: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sites": self.sites,
            "devices_per_site": self.devices_per_site,
            "gateways_per_site": self.gateways_per_site,
            "annual_discount_rate": self.annual_discount_rate,
            "horizon_months": self.horizon_months,
            "hybrid_local_tier": str(self.hybrid_local_tier),
            "notes": dict(self.notes),
        }


@dataclass(frozen=True, kw_only=True)
class RoiInputs:
    """A scenario: the fleet shape plus one :class:`Estimate` per name in :data:`INPUT_NAMES`."""

    scenario: Scenario
    estimates: Mapping[str, Estimate]
    name: str = ""

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
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoiInputs:
        """Parse a stored scenario; all problems are reported per field at once."""
        errors: dict[str, list[str]] = {}
        scenario_data = data.get("scenario")
        if not isinstance(scenario_data, Mapping):
            errors["scenario"] = ["The scenario (sites, devices, discount rate) is required."]
            scenario_data = {}
        values: dict[str, Any] = {}
        for key, kind in (
            ("sites", int),
            ("devices_per_site", int),
            ("gateways_per_site", int),
            ("annual_discount_rate", float),
            ("horizon_months", int),
        ):
            raw = scenario_data.get(key)
            if raw is None:
                if key != "horizon_months":
                    errors[f"scenario.{key}"] = ["This figure is required."]
                continue
            number = _number(raw)
            if number is None:
                errors[f"scenario.{key}"] = ["Enter a number."]
            elif kind is int and not number.is_integer():
                errors[f"scenario.{key}"] = ["Enter a whole number."]
            else:
                values[key] = int(number) if kind is int else number
        tier = scenario_data.get("hybrid_local_tier")
        if tier is not None:
            try:
                values["hybrid_local_tier"] = Tier(str(tier))
            except ValueError:
                errors["scenario.hybrid_local_tier"] = ["Choose on_device or near_edge."]
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
        raise_for_field_errors(errors, what="ROI scenario")
        inputs = cls(
            scenario=Scenario(**values),
            estimates=estimates,
            name=str(data.get("name", "")),
        )
        validate_inputs(inputs=inputs)
        return inputs


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
    scenario = inputs.scenario
    for key, low, high in (
        ("sites", 1, 100_000),
        ("devices_per_site", 1, 10_000),
        ("gateways_per_site", 1, 1_000),
        ("horizon_months", 1, 120),
    ):
        value = getattr(scenario, key)
        if isinstance(value, bool) or not isinstance(value, int):
            errors[f"scenario.{key}"] = ["Enter a whole number."]
        elif not low <= value <= high:
            errors[f"scenario.{key}"] = [f"Must be between {low:,} and {high:,}."]
    rate = scenario.annual_discount_rate
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
        errors["scenario.annual_discount_rate"] = ["Enter a number."]
    elif not 0 <= rate <= 1:
        errors["scenario.annual_discount_rate"] = [
            "An annual rate between 0 and 1 (e.g. 0.10 for 10 %)."
        ]
    if scenario.hybrid_local_tier not in LOCAL_TIERS:
        errors["scenario.hybrid_local_tier"] = [
            "The hybrid's local tier is on_device or near_edge."
        ]
    raise_for_field_errors(errors, what="ROI scenario")


# --- The vectorised cost model ---------------------------------------------------------------


@dataclass(frozen=True)
class _Flows:
    """One placement's monthly components as arrays, one element per draw (or per row)."""

    benefits: dict[str, np.ndarray]
    costs: dict[str, np.ndarray]
    hardware: np.ndarray  # one purchase of the placement's fleet of devices or gateways
    cycle_months: np.ndarray  # whole months between purchases
    integration: np.ndarray
    outage_loss: np.ndarray

    @property
    def benefit(self) -> np.ndarray:
        return sum(self.benefits.values())  # type: ignore[return-value]

    @property
    def operating(self) -> np.ndarray:
        return sum(self.costs.values())  # type: ignore[return-value]


def _model(v: Mapping[str, np.ndarray], scenario: Scenario) -> dict[Placement, _Flows]:
    sites = scenario.sites
    devices = sites * scenario.devices_per_site
    gateways = sites * scenario.gateways_per_site
    events = devices * v["latency.events_per_device_per_day"] * DAYS_PER_MONTH
    hourly = v["tco.support_hourly_rate"]
    outage_value = (
        sites * v["offline.outage_hours_per_site"] * v["offline.revenue_lost_per_outage_hour"]
    )
    energy_price = v["power.electricity_price_per_kwh"] * v["power.cooling_overhead_factor"]
    device_kwh = (
        devices * v["power.device_watts"] * v["power.device_hours_per_day"] * DAYS_PER_MONTH / 1000
    )
    gateway_kwh = gateways * v["power.gateway_watts"] * 24 * DAYS_PER_MONTH / 1000
    local = {
        Tier.ON_DEVICE: (
            device_kwh,
            devices * v["tco.device_hardware_cost"],
            v["tco.device_replacement_months"],
        ),
        Tier.NEAR_EDGE: (
            gateway_kwh,
            gateways * v["tco.gateway_hardware_cost"],
            v["tco.gateway_replacement_months"],
        ),
    }
    zero = np.zeros_like(events)
    flows: dict[Placement, _Flows] = {}
    for placement in PLACEMENTS:

        def per(key: str, placement: Placement = placement) -> np.ndarray:
            return v[f"{key}.{placement}"]

        if placement is Placement.CLOUD:
            kwh, hardware, cycle = zero, zero, np.full_like(events, MAX_REPLACEMENT_MONTHS)
            cloud_share: np.ndarray | float = 1.0
        else:
            tier = scenario.hybrid_local_tier if placement is Placement.HYBRID else Tier(placement)
            kwh, hardware, cycle = local[tier]
            cloud_share = v["tco.hybrid_cloud_share"] if placement is Placement.HYBRID else 0.0
        completes = per("offline.completes_offline")
        benefits = {
            "latency": events
            * (v["latency.baseline_time_to_action_s"] - per("latency.time_to_action_s"))
            / 3600
            * v["latency.value_per_hour_saved"],
            "offline": outage_value * completes,
            "compliance": v["privacy.annual_compliance_cost"]
            / 12
            * per("privacy.compliance_reduction"),
            "accuracy": events
            * (v["accuracy.baseline_error_rate"] - per("accuracy.error_rate"))
            * v["accuracy.cost_per_error"],
        }
        costs = {
            "power": kwh * energy_price,
            "maintenance": v["maintenance.rollouts_per_month"]
            * (
                per("maintenance.rollout_hours")
                + v["maintenance.rollback_share"] * per("maintenance.rollback_hours")
            )
            * hourly
            + sites
            * per("maintenance.interventions_per_site")
            * v["maintenance.cost_per_intervention"],
            "data_egress": sites
            * per("privacy.data_leaving_gb_per_site")
            * v["privacy.egress_price_per_gb"],
            "monitoring": per("accuracy.monitoring_per_month"),
            "licences": devices * per("tco.licence_per_device"),
            "tooling": per("tco.tooling_per_month"),
            "support": per("tco.support_hours_per_month") * hourly,
            "cloud_inference": events * cloud_share * v["tco.cloud_price_per_1000"] / 1000,
            "bandwidth": sites * per("tco.bandwidth_per_site"),
        }
        flows[placement] = _Flows(
            benefits=benefits,
            costs=costs,
            hardware=hardware,
            cycle_months=np.clip(np.rint(cycle), 1, MAX_REPLACEMENT_MONTHS).astype(np.int64),
            integration=per("tco.integration"),
            outage_loss=outage_value * (1 - completes),
        )
    return flows


@dataclass(frozen=True)
class _Discounting:
    """Discount factors and replacement schedules for one horizon and rate."""

    horizon: int
    monthly_rate: float
    factors: np.ndarray  # (H + 1,) month 0..H
    annuity: float  # sum of factors for months 1..H
    replacement_pv: np.ndarray  # [c] -> sum of factors at months c, 2c, ... < H
    replacement_count: np.ndarray  # [c] -> how many replacement purchases


def _discounting(scenario: Scenario) -> _Discounting:
    horizon = scenario.horizon_months
    monthly = (1 + scenario.annual_discount_rate) ** (1 / 12) - 1
    months = np.arange(horizon + 1)
    factors = (1 + monthly) ** -months.astype(float)
    cycles = np.arange(MAX_REPLACEMENT_MONTHS + 1)[:, None]
    inner = months[None, 1:horizon]  # purchases strictly before the horizon
    schedule = (inner % np.maximum(cycles, 1) == 0) & (cycles > 0)  # row 0 is never used
    return _Discounting(
        horizon=horizon,
        monthly_rate=monthly,
        factors=factors,
        annuity=float(factors[1:].sum()),
        replacement_pv=schedule @ factors[1:horizon],
        replacement_count=schedule.sum(axis=1),
    )


def _npv(flows: _Flows, disc: _Discounting) -> np.ndarray:
    net = flows.benefit - flows.operating
    return (
        -(flows.hardware + flows.integration)
        + net * disc.annuity
        - flows.hardware * disc.replacement_pv[flows.cycle_months]
    )


def _tco(flows: _Flows, disc: _Discounting) -> np.ndarray:
    purchases = 1 + disc.replacement_count[flows.cycle_months]
    return flows.hardware * purchases + flows.integration + disc.horizon * flows.operating


def _outputs(flows: _Flows, disc: _Discounting, scenario: Scenario) -> dict[str, np.ndarray]:
    tco = _tco(flows, disc)
    return {
        "npv": _npv(flows, disc),
        "net_monthly": flows.benefit - flows.operating,
        "tco": tco,
        "cost_per_site_month": tco / disc.horizon / scenario.sites,
    }


TORNADO_OUTPUTS = ("npv", "net_monthly", "tco", "cost_per_site_month")


def _likely_arrays(inputs: RoiInputs, rows: int = 1) -> dict[str, np.ndarray]:
    return {name: np.full(rows, float(inputs.estimates[name].likely)) for name in INPUT_NAMES}


# --- Deterministic result ------------------------------------------------------------------------


@dataclass(frozen=True)
class PlacementEconomics:
    """One placement's economics at the likely values, for the side-by-side table and charts."""

    placement: Placement
    monthly_benefit: float
    monthly_operating_cost: float
    net_monthly: float
    upfront: float
    hardware_purchase: float
    hardware_replacements: int
    tco: float
    cost_per_site_month: float
    cost_per_device_month: float
    npv: float
    payback_month: int | None
    roi_pct: float | None
    outage_loss_monthly: float
    benefits: dict[str, float]
    costs: dict[str, float]
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
            "tco": self.tco,
            "cost_per_site_month": self.cost_per_site_month,
            "cost_per_device_month": self.cost_per_device_month,
            "npv": self.npv,
            "payback_month": self.payback_month,
            "roi_pct": self.roi_pct,
            "outage_loss_monthly": self.outage_loss_monthly,
            "benefits": dict(self.benefits),
            "costs": dict(self.costs),
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

    def __getitem__(self, placement: Placement) -> PlacementEconomics:
        return self.placements[placement]

    def to_dict(self) -> dict[str, Any]:
        return {
            "placements": {str(p): econ.to_dict() for p, econ in self.placements.items()},
            "best_placement": str(self.best_placement),
            "horizon_months": self.horizon_months,
            "annual_discount_rate": self.annual_discount_rate,
            "monthly_discount_rate": self.monthly_discount_rate,
        }


def _payback_month(cumulative: np.ndarray) -> int | None:
    """First month from which the cumulative cash flow stays >= 0 to the horizon."""
    stays_covered = np.minimum.accumulate(cumulative[::-1])[::-1] >= 0
    if not stays_covered.any():
        return None
    return int(np.argmax(stays_covered))


def evaluate(*, inputs: RoiInputs) -> RoiResult:
    """Economics of every placement at the likely values (validates the inputs first)."""
    validate_inputs(inputs=inputs)
    scenario = inputs.scenario
    disc = _discounting(scenario)
    flows = _model(_likely_arrays(inputs), scenario)
    months = np.arange(disc.horizon + 1)
    economics: dict[Placement, PlacementEconomics] = {}
    for placement, flow in flows.items():
        benefit = float(flow.benefit[0])
        operating = float(flow.operating[0])
        hardware = float(flow.hardware[0])
        cycle = int(flow.cycle_months[0])
        upfront = hardware + float(flow.integration[0])
        cash = np.full(disc.horizon + 1, benefit - operating)
        cash[0] = -upfront
        replacement_months = (months % cycle == 0) & (months > 0) & (months < disc.horizon)
        cash[replacement_months] -= hardware
        cumulative = np.cumsum(cash)
        tco = float(_tco(flow, disc)[0])
        total_benefit = benefit * disc.horizon
        economics[placement] = PlacementEconomics(
            placement=placement,
            monthly_benefit=benefit,
            monthly_operating_cost=operating,
            net_monthly=benefit - operating,
            upfront=upfront,
            hardware_purchase=hardware,
            hardware_replacements=int(disc.replacement_count[cycle]),
            tco=tco,
            cost_per_site_month=tco / disc.horizon / scenario.sites,
            cost_per_device_month=tco / disc.horizon / (scenario.sites * scenario.devices_per_site),
            npv=float(_npv(flow, disc)[0]),
            payback_month=_payback_month(cumulative),
            roi_pct=(total_benefit - tco) / tco * 100 if tco > 0 else None,
            outage_loss_monthly=float(flow.outage_loss[0]),
            benefits={key: float(value[0]) for key, value in flow.benefits.items()},
            costs={key: float(value[0]) for key, value in flow.costs.items()},
            cumulative_cash_flow=tuple(float(x) for x in cumulative),
            cumulative_discounted_cash_flow=tuple(float(x) for x in np.cumsum(cash * disc.factors)),
        )
    best = max(PLACEMENTS, key=lambda p: (economics[p].npv, -PLACEMENTS.index(p)))
    return RoiResult(
        placements=economics,
        best_placement=best,
        horizon_months=disc.horizon,
        annual_discount_rate=scenario.annual_discount_rate,
        monthly_discount_rate=disc.monthly_rate,
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


def sample_inputs(
    *,
    inputs: RoiInputs,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    distribution: Distribution = Distribution.PERT,
    workers: int = 2,
) -> dict[str, np.ndarray]:
    """One array of ``draws`` values per input.

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
    return samples


@dataclass(frozen=True)
class Percentiles:
    p10: float
    p50: float
    p90: float

    def to_dict(self) -> dict[str, float]:
        return {"p10": self.p10, "p50": self.p50, "p90": self.p90}


@dataclass(frozen=True)
class PlacementSpread:
    placement: Placement
    npv: Percentiles
    net_monthly: Percentiles
    probability_npv_positive: float
    npv_mean: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "placement": str(self.placement),
            "npv": self.npv.to_dict(),
            "net_monthly": self.net_monthly.to_dict(),
            "probability_npv_positive": self.probability_npv_positive,
            "npv_mean": self.npv_mean,
        }


@dataclass(frozen=True)
class MonteCarloResult:
    draws: int
    seed: int
    distribution: Distribution
    placements: dict[Placement, PlacementSpread]

    def __getitem__(self, placement: Placement) -> PlacementSpread:
        return self.placements[placement]

    def to_dict(self) -> dict[str, Any]:
        return {
            "draws": self.draws,
            "seed": self.seed,
            "distribution": str(self.distribution),
            "placements": {str(p): spread.to_dict() for p, spread in self.placements.items()},
        }


def _percentiles(values: np.ndarray) -> Percentiles:
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    return Percentiles(float(p10), float(p50), float(p90))


def simulate(
    *,
    inputs: RoiInputs,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    distribution: Distribution = Distribution.PERT,
    workers: int = 2,
) -> MonteCarloResult:
    """Monte Carlo of every placement: P10/P50/P90 of NPV and net monthly, P(NPV > 0).

    All placements are computed on the same draws, so their spreads are comparable.
    """
    validate_inputs(inputs=inputs)
    distribution = _distribution(distribution)
    if not 1 <= draws <= 1_000_000:
        raise PlanningInputError(
            "Monte Carlo: draws out of range.", fields={"draws": ["Between 1 and 1,000,000."]}
        )
    scenario = inputs.scenario
    disc = _discounting(scenario)
    values = sample_inputs(
        inputs=inputs, draws=draws, seed=seed, distribution=distribution, workers=workers
    )
    spreads: dict[Placement, PlacementSpread] = {}
    for placement, flow in _model(values, scenario).items():
        npv = _npv(flow, disc)
        net = flow.benefit - flow.operating
        spreads[placement] = PlacementSpread(
            placement=placement,
            npv=_percentiles(npv),
            net_monthly=_percentiles(net),
            probability_npv_positive=float(np.count_nonzero(npv > 0) / draws),
            npv_mean=float(npv.mean()),
        )
    return MonteCarloResult(draws=draws, seed=seed, distribution=distribution, placements=spreads)


# --- Tornado ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TornadoBar:
    """The output with one input at its low and at its high, everything else at likely."""

    name: str
    label: str
    section: Section
    low: float
    high: float
    output_at_low: float
    output_at_high: float

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


def tornado(
    *, inputs: RoiInputs, placement: Placement | None = None, output: str = "npv"
) -> TornadoResult:
    """Which assumption matters most: swing each uncertain input low -> high.

    ``placement`` defaults to the one with the highest NPV at the likely values (pass the
    wizard's placement to follow the recommendation). Inputs whose low equals high are left
    out (they cannot swing). Bars are sorted by swing, largest first; equal swings keep the
    order of :data:`INPUT_NAMES`. All rows are computed in one vectorised pass.
    """
    validate_inputs(inputs=inputs)
    if output not in TORNADO_OUTPUTS:
        raise PlanningInputError(
            "Tornado: unknown output.",
            fields={"output": [f"Choose one of: {', '.join(TORNADO_OUTPUTS)}."]},
        )
    scenario = inputs.scenario
    disc = _discounting(scenario)
    uncertain = [name for name in INPUT_NAMES if not inputs.estimates[name].is_exact]
    rows = 1 + 2 * len(uncertain)
    values = _likely_arrays(inputs, rows)
    for index, name in enumerate(uncertain):
        estimate = inputs.estimates[name]
        values[name][1 + 2 * index] = estimate.low
        values[name][2 + 2 * index] = estimate.high
    flows = _model(values, scenario)
    if placement is None:
        npvs = {p: float(_npv(flow, disc)[0]) for p, flow in flows.items()}
        placement = max(PLACEMENTS, key=lambda p: (npvs[p], -PLACEMENTS.index(p)))
    result = _outputs(flows[Placement(placement)], disc, scenario)[output]
    bars = [
        TornadoBar(
            name=name,
            label=input_label(name),
            section=SPEC_BY_NAME[name].section,
            low=float(inputs.estimates[name].low),
            high=float(inputs.estimates[name].high),
            output_at_low=float(result[1 + 2 * index]),
            output_at_high=float(result[2 + 2 * index]),
        )
        for index, name in enumerate(uncertain)
    ]
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


def _e(low: float, likely: float, high: float, source: str) -> Estimate:
    return Estimate(low, likely, high, source)


def _each(
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


def _logistics() -> RoiInputs:
    a = "assumption: "
    scenario = Scenario(
        sites=3,
        devices_per_site=6,
        gateways_per_site=2,
        annual_discount_rate=0.10,
        hybrid_local_tier=Tier.NEAR_EDGE,
        notes={
            "sites": a + "an SMB operator piloting at its three busiest docks.",
            "devices_per_site": a + "six handheld scanners or dock cameras per site.",
            "gateways_per_site": a + "typical SMB dock, 2 gateways per site (one per dock bank).",
            "annual_discount_rate": a + "10 % cost of capital; use your finance team's rate.",
            "hybrid_local_tier": "playbook: the dock pattern runs primary inference near-edge.",
        },
    )
    est = {
        "latency.baseline_time_to_action_s": _e(
            8,
            12,
            20,
            a + "manual label/damage check and keying an exception per pallet today; "
            "time it over one shift.",
        ),
        **_each(
            "latency.time_to_action_s",
            on_device=(4, 6, 9),
            near_edge=(4, 6, 9),
            cloud=(6, 9, 16),
            hybrid=(4, 6, 10),
            source=a + "capture to action including the operator's confirmation; the cloud adds "
            "a ~250 KB image upload over the site WAN and queueing.",
        ),
        "latency.value_per_hour_saved": _e(
            25, 32, 45, a + "loaded dock-worker cost per hour; replace with your payroll figure."
        ),
        "latency.events_per_device_per_day": _e(
            80, 120, 200, a + "pallets or parcels checked per scanner/camera per calendar day."
        ),
        "power.device_watts": _e(
            1, 2, 4, a + "extra draw of a mobile NPU while inferring on a handheld."
        ),
        "power.device_hours_per_day": _e(8, 12, 16, a + "one to two shifts of scanning per day."),
        "power.gateway_watts": _e(
            15,
            30,
            60,
            a + "Jetson-class module under sustained vision load; check the vendor's power modes.",
        ),
        "power.electricity_price_per_kwh": _e(
            0.15, 0.25, 0.40, a + "commercial tariff range; use your electricity bill."
        ),
        "power.cooling_overhead_factor": _e(
            1.0, 1.1, 1.3, a + "gateway in a ventilated comms cabinet; 1.0 means no cooling."
        ),
        "offline.outage_hours_per_site": _e(
            1, 3, 8, a + "WAN outages per site per month; take them from router or ISP logs."
        ),
        "offline.revenue_lost_per_outage_hour": _e(
            80,
            200,
            600,
            a + "throughput delayed or lost per site while inspection and exception logging stop.",
        ),
        **_each(
            "offline.completes_offline",
            on_device=(0.85, 0.95, 1.0),
            near_edge=(0.85, 0.95, 1.0),
            cloud=(0.0, 0.0, 0.1),
            hybrid=(0.8, 0.9, 1.0),
            source=a + "local inference keeps working on the site LAN (power or LAN failures are "
            "not covered); cloud inference stops with the WAN.",
        ),
        **_each(
            "privacy.data_leaving_gb_per_site",
            on_device=(0.05, 0.2, 1.0),
            near_edge=(0.05, 0.2, 1.0),
            cloud=(5, 8.8, 15),
            hybrid=(0.5, 1.1, 3),
            source="derived: 6 devices x 120 events/day x 30.4 days x 400 KB image = 8.8 GB "
            "streamed to the cloud; local placements send events plus low-confidence samples; "
            "hybrid sends its ~10 % escalations.",
        ),
        "privacy.egress_price_per_gb": _e(
            0.0,
            0.05,
            0.15,
            a + "blended cloud ingestion and storage per GB on a wired uplink; 0 if unmetered.",
        ),
        "privacy.annual_compliance_cost": _e(
            1_000,
            4_000,
            12_000,
            a + "share of audit and privacy work attributable to dock camera footage.",
        ),
        **_each(
            "privacy.compliance_reduction",
            on_device=(0.1, 0.3, 0.5),
            near_edge=(0.1, 0.3, 0.5),
            cloud=(0.0, 0.0, 0.05),
            hybrid=(0.05, 0.2, 0.4),
            source=a + "keeping footage on site removes part of the retention and transfer "
            "controls; streaming it keeps them.",
        ),
        "maintenance.rollouts_per_month": _e(
            0.5, 1, 2, a + "monthly model updates, as answered in the wizard."
        ),
        **_each(
            "maintenance.rollout_hours",
            on_device=(2, 4, 10),
            near_edge=(1, 3, 8),
            cloud=(0.5, 1, 2),
            hybrid=(2, 4, 10),
            source=a + "staff time per staged rollout: app packaging for handhelds, fewer "
            "targets for gateways, one endpoint for the cloud, two paths for hybrid.",
        ),
        "maintenance.rollback_share": _e(0.0, 0.1, 0.25, a + "one rollout in ten rolled back."),
        **_each(
            "maintenance.rollback_hours",
            on_device=(1, 2, 6),
            near_edge=(0.5, 1, 4),
            cloud=(0.1, 0.5, 1),
            hybrid=(0.5, 1.5, 4),
            source=a + "staff time to roll back to the previous signed model.",
        ),
        **_each(
            "maintenance.interventions_per_site",
            on_device=(0.3, 1, 3),
            near_edge=(0.2, 0.5, 2),
            cloud=(0, 0.1, 0.5),
            hybrid=(0.3, 0.6, 2),
            source=a + "manual fixes per site per month (stuck device, re-enrolment, cabling).",
        ),
        "maintenance.cost_per_intervention": _e(
            40, 80, 200, a + "a remote session or a short visit by local staff."
        ),
        "accuracy.baseline_error_rate": _e(
            0.005, 0.01, 0.02, a + "share of events where a damage or label miss costs money."
        ),
        **_each(
            "accuracy.error_rate",
            on_device=(0.005, 0.008, 0.014),
            near_edge=(0.004, 0.007, 0.012),
            cloud=(0.0035, 0.0065, 0.011),
            hybrid=(0.0035, 0.0065, 0.011),
            source=a + "AI-assisted miss rate: smaller INT8 models on handhelds miss more, the "
            "largest cloud model least; validate on your own footage.",
        ),
        "accuracy.cost_per_error": _e(
            8, 20, 60, a + "average claim, relabel or re-handling cost of a miss."
        ),
        **_each(
            "accuracy.monitoring_per_month",
            on_device=(50, 150, 400),
            near_edge=(50, 120, 300),
            cloud=(30, 80, 200),
            hybrid=(80, 180, 450),
            source=a + "drift and accuracy monitoring; harder without streaming, two paths "
            "for hybrid.",
        ),
        "tco.device_hardware_cost": _e(
            150, 350, 800, a + "extra cost of an NPU-capable handheld over the current scanner."
        ),
        "tco.device_replacement_months": _e(24, 36, 48, a + "rugged handheld refresh cycle."),
        "tco.gateway_hardware_cost": _e(
            800, 1_500, 3_000, a + "Jetson-class box with enclosure, storage and PoE switch port."
        ),
        "tco.gateway_replacement_months": _e(36, 48, 60, a + "embedded gateway refresh cycle."),
        **_each(
            "tco.integration",
            on_device=(8_000, 15_000, 30_000),
            near_edge=(6_000, 12_000, 25_000),
            cloud=(4_000, 8_000, 15_000),
            hybrid=(8_000, 16_000, 32_000),
            source=a + "one-off build: mobile packaging, gateway provisioning, cloud endpoint, "
            "or both paths for hybrid.",
        ),
        **_each(
            "tco.licence_per_device",
            on_device=(0, 2, 5),
            near_edge=(0, 1, 3),
            cloud=(0, 0, 1),
            hybrid=(0, 1, 3),
            source=a + "runtime or MDM licences per device per month; many runtimes are free.",
        ),
        **_each(
            "tco.tooling_per_month",
            on_device=(100, 250, 600),
            near_edge=(100, 200, 500),
            cloud=(50, 100, 250),
            hybrid=(150, 300, 700),
            source=a + "deployment and fleet-management tooling per month.",
        ),
        **_each(
            "tco.support_hours_per_month",
            on_device=(15, 25, 50),
            near_edge=(12, 22, 45),
            cloud=(10, 18, 35),
            hybrid=(18, 28, 55),
            source=a + "support, diagnosis and model upkeep (labelling, retraining, review) "
            "hours per month after go-live.",
        ),
        "tco.support_hourly_rate": _e(50, 75, 120, a + "loaded technical staff cost per hour."),
        "tco.cloud_price_per_1000": _e(
            0.5,
            1.5,
            4.0,
            a + "managed vision inference endpoint per 1,000 images; check your "
            "provider's price list.",
        ),
        "tco.hybrid_cloud_share": _e(
            0.05, 0.1, 0.2, a + "low-confidence cases escalated to the cloud model."
        ),
        **_each(
            "tco.bandwidth_per_site",
            on_device=(0, 0, 10),
            near_edge=(0, 0, 10),
            cloud=(20, 60, 150),
            hybrid=(0, 10, 40),
            source=a + "uplink upgrade per site per month needed to stream images; none for "
            "events only.",
        ),
    }
    return RoiInputs(scenario=scenario, estimates=est, name="Logistics: dock vision")


def _field_service() -> RoiInputs:
    a = "assumption: "
    scenario = Scenario(
        sites=2,
        devices_per_site=10,
        gateways_per_site=10,
        annual_discount_rate=0.10,
        hybrid_local_tier=Tier.ON_DEVICE,
        notes={
            "sites": a + "two service depots (a 'site' here is a depot and its technicians).",
            "devices_per_site": a + "ten technicians per depot, one tablet each.",
            "gateways_per_site": a + "near-edge for field service is a truck-mounted unit "
            "(playbook), one per van.",
            "annual_discount_rate": a + "10 % cost of capital; use your finance team's rate.",
            "hybrid_local_tier": "playbook: field service is on-device-first.",
        },
    )
    est = {
        "latency.baseline_time_to_action_s": _e(
            900, 1_200, 1_800, a + "time from arriving at the equipment to a diagnosis today."
        ),
        **_each(
            "latency.time_to_action_s",
            on_device=(840, 1_020, 1_500),
            near_edge=(840, 1_020, 1_500),
            cloud=(900, 1_080, 1_700),
            hybrid=(840, 1_000, 1_500),
            source=a + "guided diagnosis saves about three minutes a job; cloud waits for "
            "signal at some sites.",
        ),
        "latency.value_per_hour_saved": _e(55, 75, 100, a + "loaded technician cost per hour."),
        "latency.events_per_device_per_day": _e(
            3, 4, 6, a + "jobs per technician per calendar day (about 5-6 per working day)."
        ),
        "power.device_watts": _e(1, 2, 3, a + "extra tablet draw while running inference."),
        "power.device_hours_per_day": _e(0.2, 0.5, 1, a + "minutes of inference per job."),
        "power.gateway_watts": _e(10, 20, 40, a + "truck-mounted embedded unit."),
        "power.electricity_price_per_kwh": _e(
            0.15, 0.25, 0.40, a + "commercial tariff range; vans charge at the depot."
        ),
        "power.cooling_overhead_factor": _e(1.0, 1.0, 1.1, a + "no active cooling."),
        "offline.outage_hours_per_site": _e(
            10, 30, 80, a + "technician-hours per depot per month without usable signal."
        ),
        "offline.revenue_lost_per_outage_hour": _e(
            5,
            15,
            40,
            a + "repeat visits and delays attributable to diagnosing without "
            "connectivity, per hour offline.",
        ),
        **_each(
            "offline.completes_offline",
            on_device=(0.8, 0.9, 1.0),
            near_edge=(0.6, 0.8, 0.95),
            cloud=(0.0, 0.0, 0.1),
            hybrid=(0.8, 0.9, 1.0),
            source=a + "on-device works anywhere; a van unit only near the van; cloud needs "
            "signal.",
        ),
        **_each(
            "privacy.data_leaving_gb_per_site",
            on_device=(0.01, 0.05, 0.2),
            near_edge=(0.01, 0.05, 0.2),
            cloud=(0.5, 1.2, 3),
            hybrid=(0.05, 0.2, 0.6),
            source="derived: 10 tablets x 4 jobs/day x 30.4 days x ~1 MB of photos = 1.2 GB "
            "to the cloud; local placements upload structured findings only.",
        ),
        "privacy.egress_price_per_gb": _e(1, 3, 8, a + "business cellular data cost per GB."),
        "privacy.annual_compliance_cost": _e(
            0, 1_000, 3_000, a + "customer-site photo handling; low for equipment data."
        ),
        **_each(
            "privacy.compliance_reduction",
            on_device=(0.1, 0.3, 0.5),
            near_edge=(0.1, 0.3, 0.5),
            cloud=(0, 0, 0.05),
            hybrid=(0.05, 0.2, 0.4),
            source=a + "fewer customer-site photos stored centrally.",
        ),
        "maintenance.rollouts_per_month": _e(
            0.25, 0.33, 0.5, a + "quarterly model updates, as answered in the wizard."
        ),
        **_each(
            "maintenance.rollout_hours",
            on_device=(2, 4, 8),
            near_edge=(4, 8, 16),
            cloud=(0.5, 1, 2),
            hybrid=(3, 5, 10),
            source=a + "app release through MDM; van units updated at the depot.",
        ),
        "maintenance.rollback_share": _e(0.0, 0.1, 0.25, a + "one rollout in ten rolled back."),
        **_each(
            "maintenance.rollback_hours",
            on_device=(1, 2, 6),
            near_edge=(2, 4, 8),
            cloud=(0.1, 0.5, 1),
            hybrid=(1, 2.5, 6),
            source=a + "staff time to roll back to the previous signed model.",
        ),
        **_each(
            "maintenance.interventions_per_site",
            on_device=(0.5, 1, 3),
            near_edge=(1, 2, 5),
            cloud=(0, 0.2, 1),
            hybrid=(0.5, 1.2, 3),
            source=a + "manual fixes per depot per month (re-install, van unit reset).",
        ),
        "maintenance.cost_per_intervention": _e(40, 80, 150, a + "technician or IT time per fix."),
        "accuracy.baseline_error_rate": _e(
            0.05, 0.08, 0.12, a + "jobs needing a second visit because of a wrong diagnosis."
        ),
        **_each(
            "accuracy.error_rate",
            on_device=(0.04, 0.065, 0.1),
            near_edge=(0.035, 0.06, 0.09),
            cloud=(0.035, 0.06, 0.09),
            hybrid=(0.035, 0.06, 0.09),
            source=a + "guided repair avoids a share of repeat visits; validate on your jobs.",
        ),
        "accuracy.cost_per_error": _e(
            80, 150, 300, a + "cost of a repeat visit (travel plus technician time)."
        ),
        **_each(
            "accuracy.monitoring_per_month",
            on_device=(30, 80, 200),
            near_edge=(30, 80, 200),
            cloud=(20, 50, 150),
            hybrid=(50, 100, 250),
            source=a + "drift signals from post-job feedback.",
        ),
        "tco.device_hardware_cost": _e(
            0,
            150,
            400,
            a + "extra for NPU-capable tablets at the next refresh; 0 if current tablets qualify.",
        ),
        "tco.device_replacement_months": _e(24, 36, 48, a + "tablet refresh cycle."),
        "tco.gateway_hardware_cost": _e(
            600, 1_200, 2_500, a + "truck-mounted embedded unit with power conditioning."
        ),
        "tco.gateway_replacement_months": _e(36, 48, 60, a + "in-vehicle unit refresh cycle."),
        **_each(
            "tco.integration",
            on_device=(6_000, 12_000, 25_000),
            near_edge=(10_000, 20_000, 40_000),
            cloud=(4_000, 8_000, 15_000),
            hybrid=(8_000, 15_000, 30_000),
            source=a + "one-off build: offline-first app, van units, or a cloud endpoint.",
        ),
        **_each(
            "tco.licence_per_device",
            on_device=(0, 1, 3),
            near_edge=(0, 2, 5),
            cloud=(0, 0, 1),
            hybrid=(0, 1, 3),
            source=a + "runtime or MDM licences per device per month.",
        ),
        **_each(
            "tco.tooling_per_month",
            on_device=(50, 150, 400),
            near_edge=(100, 250, 600),
            cloud=(50, 100, 250),
            hybrid=(100, 200, 500),
            source=a + "deployment and fleet-management tooling per month.",
        ),
        **_each(
            "tco.support_hours_per_month",
            on_device=(10, 18, 35),
            near_edge=(14, 24, 45),
            cloud=(8, 14, 28),
            hybrid=(12, 22, 40),
            source=a + "support, diagnosis and model upkeep (labelling, retraining, review) "
            "hours per month after go-live.",
        ),
        "tco.support_hourly_rate": _e(50, 75, 120, a + "loaded technical staff cost per hour."),
        "tco.cloud_price_per_1000": _e(
            1, 3, 8, a + "managed multimodal inference endpoint per 1,000 requests."
        ),
        "tco.hybrid_cloud_share": _e(
            0.1, 0.2, 0.4, a + "hard cases sent to the cloud model when signal allows."
        ),
        **_each(
            "tco.bandwidth_per_site",
            on_device=(0, 0, 10),
            near_edge=(0, 0, 10),
            cloud=(20, 50, 120),
            hybrid=(0, 15, 40),
            source=a + "larger cellular data plans per depot to upload photos.",
        ),
    }
    return RoiInputs(scenario=scenario, estimates=est, name="Field service: offline triage")


def _healthcare() -> RoiInputs:
    a = "assumption: "
    scenario = Scenario(
        sites=4,
        devices_per_site=3,
        gateways_per_site=1,
        annual_discount_rate=0.08,
        hybrid_local_tier=Tier.NEAR_EDGE,
        notes={
            "sites": a + "four outpatient clinics.",
            "devices_per_site": a + "three triage or documentation workstations per clinic.",
            "gateways_per_site": a + "one local box per clinic (playbook: 'clinics using a local "
            "box for triage support').",
            "annual_discount_rate": a + "8 % cost of capital; use your finance team's rate.",
            "hybrid_local_tier": "playbook: clinics standardise behaviour on local hardware.",
        },
    )
    est = {
        "latency.baseline_time_to_action_s": _e(
            180, 240, 360, a + "triage documentation time per patient today."
        ),
        **_each(
            "latency.time_to_action_s",
            on_device=(150, 200, 300),
            near_edge=(150, 200, 300),
            cloud=(150, 205, 310),
            hybrid=(150, 200, 300),
            source=a + "AI-assisted documentation saves about 40 s per patient; cloud adds "
            "a few seconds of upload.",
        ),
        "latency.value_per_hour_saved": _e(45, 60, 85, a + "loaded nurse cost per hour."),
        "latency.events_per_device_per_day": _e(
            15, 25, 40, a + "patients triaged per workstation per calendar day."
        ),
        "power.device_watts": _e(2, 5, 10, a + "extra draw of a Windows NPU laptop inferring."),
        "power.device_hours_per_day": _e(1, 2, 4, a + "inference time per workstation per day."),
        "power.gateway_watts": _e(20, 40, 80, a + "small local inference box."),
        "power.electricity_price_per_kwh": _e(
            0.15, 0.25, 0.40, a + "commercial tariff range; use your electricity bill."
        ),
        "power.cooling_overhead_factor": _e(
            1.0, 1.2, 1.5, a + "box in a small comms room with air conditioning."
        ),
        "offline.outage_hours_per_site": _e(0.5, 1, 4, a + "clinic internet outages per month."),
        "offline.revenue_lost_per_outage_hour": _e(
            50, 150, 400, a + "delayed documentation and rebooked appointments per hour."
        ),
        **_each(
            "offline.completes_offline",
            on_device=(0.8, 0.95, 1.0),
            near_edge=(0.8, 0.95, 1.0),
            cloud=(0.0, 0.0, 0.1),
            hybrid=(0.7, 0.85, 1.0),
            source=a + "local inference works on the clinic LAN; cloud needs the internet.",
        ),
        **_each(
            "privacy.data_leaving_gb_per_site",
            on_device=(0.01, 0.02, 0.1),
            near_edge=(0.01, 0.02, 0.1),
            cloud=(1, 3, 8),
            hybrid=(0.2, 0.5, 1.5),
            source="derived: 3 workstations x 25 patients/day x 30.4 days x ~1.3 MB of "
            "captured media = 3 GB; local placements upload de-identified results only.",
        ),
        "privacy.egress_price_per_gb": _e(
            0.02, 0.1, 0.3, a + "compliant cloud storage and ingestion per GB."
        ),
        "privacy.annual_compliance_cost": _e(
            10_000,
            25_000,
            60_000,
            a + "PHI risk assessments, audits and breach insurance "
            "share attributable to the workflow.",
        ),
        **_each(
            "privacy.compliance_reduction",
            on_device=(0.1, 0.25, 0.4),
            near_edge=(0.1, 0.25, 0.4),
            cloud=(0, 0, 0.05),
            hybrid=(0.05, 0.1, 0.25),
            source=a + "less PHI leaving the clinic narrows audit scope; the cloud path keeps it.",
        ),
        "maintenance.rollouts_per_month": _e(
            0.08, 0.17, 0.33, a + "one to four model updates a year (high-assurance)."
        ),
        **_each(
            "maintenance.rollout_hours",
            on_device=(4, 8, 16),
            near_edge=(2, 6, 12),
            cloud=(1, 2, 4),
            hybrid=(4, 8, 16),
            source=a + "staged rollout with clinical sign-off per release.",
        ),
        "maintenance.rollback_share": _e(0.0, 0.1, 0.25, a + "one rollout in ten rolled back."),
        **_each(
            "maintenance.rollback_hours",
            on_device=(1, 3, 6),
            near_edge=(0.5, 2, 4),
            cloud=(0.2, 0.5, 1),
            hybrid=(1, 2, 5),
            source=a + "staff time to roll back to the previous signed model.",
        ),
        **_each(
            "maintenance.interventions_per_site",
            on_device=(0.2, 0.5, 2),
            near_edge=(0.2, 0.5, 1.5),
            cloud=(0, 0.1, 0.5),
            hybrid=(0.2, 0.6, 2),
            source=a + "manual fixes per clinic per month.",
        ),
        "maintenance.cost_per_intervention": _e(50, 100, 200, a + "IT support time per fix."),
        "accuracy.baseline_error_rate": _e(
            0.01, 0.02, 0.04, a + "triage notes needing costly correction or follow-up."
        ),
        **_each(
            "accuracy.error_rate",
            on_device=(0.008, 0.015, 0.03),
            near_edge=(0.007, 0.014, 0.028),
            cloud=(0.007, 0.013, 0.027),
            hybrid=(0.007, 0.013, 0.027),
            source=a + "AI assistance catches a share of omissions; validate against chart review.",
        ),
        "accuracy.cost_per_error": _e(
            20, 50, 150, a + "staff time and follow-up per corrected note."
        ),
        **_each(
            "accuracy.monitoring_per_month",
            on_device=(100, 250, 500),
            near_edge=(100, 200, 450),
            cloud=(80, 150, 350),
            hybrid=(150, 300, 600),
            source=a + "calibration and drift review under clinical governance.",
        ),
        "tco.device_hardware_cost": _e(
            0,
            200,
            500,
            a + "extra for NPU-capable workstations; 0 on an existing Windows NPU fleet.",
        ),
        "tco.device_replacement_months": _e(36, 48, 60, a + "workstation refresh cycle."),
        "tco.gateway_hardware_cost": _e(
            1_500, 2_500, 5_000, a + "clinic inference box with encrypted storage."
        ),
        "tco.gateway_replacement_months": _e(36, 48, 60, a + "clinic box refresh cycle."),
        **_each(
            "tco.integration",
            on_device=(10_000, 20_000, 40_000),
            near_edge=(10_000, 18_000, 35_000),
            cloud=(8_000, 15_000, 30_000),
            hybrid=(12_000, 22_000, 45_000),
            source=a + "one-off build including EHR integration and privacy review.",
        ),
        **_each(
            "tco.licence_per_device",
            on_device=(0, 3, 8),
            near_edge=(0, 2, 6),
            cloud=(0, 1, 3),
            hybrid=(0, 3, 8),
            source=a + "runtime, MDM or clinical software licences per device per month.",
        ),
        **_each(
            "tco.tooling_per_month",
            on_device=(100, 250, 500),
            near_edge=(100, 200, 450),
            cloud=(80, 150, 350),
            hybrid=(150, 300, 600),
            source=a + "deployment, audit logging and device management tooling.",
        ),
        **_each(
            "tco.support_hours_per_month",
            on_device=(12, 22, 45),
            near_edge=(10, 20, 40),
            cloud=(8, 16, 32),
            hybrid=(15, 26, 50),
            source=a + "support, diagnosis and model upkeep (labelling, retraining, review) "
            "hours per month after go-live.",
        ),
        "tco.support_hourly_rate": _e(60, 85, 130, a + "loaded clinical IT cost per hour."),
        "tco.cloud_price_per_1000": _e(
            2, 5, 12, a + "compliant managed inference endpoint per 1,000 requests."
        ),
        "tco.hybrid_cloud_share": _e(
            0.05, 0.1, 0.2, a + "de-identified hard cases reviewed by a cloud model."
        ),
        **_each(
            "tco.bandwidth_per_site",
            on_device=(0, 0, 10),
            near_edge=(0, 0, 10),
            cloud=(10, 30, 80),
            hybrid=(0, 10, 30),
            source=a + "uplink upgrade per clinic to upload captured media.",
        ),
    }
    return RoiInputs(scenario=scenario, estimates=est, name="Healthcare: decision support")


PRESETS: dict[Workflow, Callable[[], RoiInputs]] = {
    Workflow.LOGISTICS_DOCK_VISION: _logistics,
    Workflow.FIELD_SERVICE_TRIAGE: _field_service,
    Workflow.HEALTHCARE_DECISION_SUPPORT: _healthcare,
}


def preset(*, workflow: Workflow) -> RoiInputs:
    """A fresh, editable scenario for one of the seed's workflows, every default sourced."""
    try:
        return PRESETS[Workflow(workflow)]()
    except (KeyError, ValueError):
        names = ", ".join(str(w) for w in PRESETS)
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
    "PRESETS",
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
