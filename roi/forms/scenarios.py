"""The ROI calculator form: low / likely / high per input, grouped by the seed's sections."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opshero.errors import DomainError

from ..engine import (
    INPUT_SPECS,
    PLACEMENTS,
    RESIDUAL_LABELS,
    SECTION_LABELS,
    SPEC_BY_NAME,
    ResidualValue,
    RoiInputs,
    Section,
)
from ..reports import PLACEMENT_LABELS, current_currency, format_number
from ..rules import (
    PlanningInputError,
)
from .common import ErrorSlot, slot_id

# --- ROI calculator -----------------------------------------------------------------------------

POINTS = ("low", "likely", "high")
SCENARIO_INTEGER_FIELDS = (
    "sites",
    "devices_per_site",
    "gateways_per_site",
    "horizon_months",
    "build_months",
    "pilot_sites",
    "pilot_months",
    "rollout_sites_per_month",
)
# Shares of events the hybrid's tiers serve, entered as percentages.
HYBRID_PERCENT_FIELDS = {
    "hybrid_on_device_pct": "hybrid_on_device_share",
    "hybrid_near_edge_pct": "hybrid_near_edge_share",
    "hybrid_cloud_pct": "hybrid_cloud_share",
}
NOTE_TARGETS = {"annual_discount_rate_pct": "annual_discount_rate", **HYBRID_PERCENT_FIELDS}
NOTE_SOURCES = {value: key for key, value in NOTE_TARGETS.items()}
# Units of money inputs (``roi.engine.INPUT_SPECS``): shown with the organisation's currency.
MONEY_UNITS = frozenset(
    {"per h", "each", "per month", "per kWh", "per GB", "per year", "once", "per 1,000"}
)
SCENARIO_LABELS = {
    "sites": ("Active sites", ""),
    "devices_per_site": ("Devices per site", ""),
    "gateways_per_site": ("Gateways per site", "for near-edge"),
    "annual_discount_rate_pct": ("Discount rate", "% per year"),
    "horizon_months": ("Horizon", "months"),
    "build_months": ("Build before anything is live", "months"),
    "pilot_sites": ("Pilot sites", ""),
    "pilot_months": ("Pilot length", "months"),
    "rollout_sites_per_month": ("Roll-out pace after the pilot", "sites a month; 0 = all at once"),
    "hybrid_on_device_pct": ("Hybrid: events served on-device", "%"),
    "hybrid_near_edge_pct": ("Hybrid: events served near-edge", "%"),
    "hybrid_cloud_pct": ("Hybrid: events served in the cloud", "%"),
    "residual_value": ("Hardware value at the horizon", ""),
    "allow_worse_than_today": ("With-AI figures may be worse than today", ""),
}
SCENARIO_GROUPS = (
    (
        "Fleet and finance",
        (
            "sites",
            "devices_per_site",
            "gateways_per_site",
            "annual_discount_rate_pct",
            "horizon_months",
            "residual_value",
        ),
    ),
    ("Roll-out ramp", ("build_months", "pilot_sites", "pilot_months", "rollout_sites_per_month")),
    ("Hybrid tiers", ("hybrid_on_device_pct", "hybrid_near_edge_pct", "hybrid_cloud_pct")),
    ("Checks", ("allow_worse_than_today",)),
)


@dataclass
class EstimateRow:
    name: str
    label: str
    sublabel: str
    unit: str
    low: str
    likely: str
    high: str
    source: str
    errors: list[str] = field(default_factory=list)
    swing: float = 0.0  # how far this input moves the NPV between its low and high
    top: bool = False  # one of the three inputs that move the NPV most

    @property
    def full_label(self) -> str:
        return f"{self.label} ({self.sublabel})" if self.sublabel else self.label

    @property
    def dom_id(self) -> str:
        return self.name.replace(".", "-")

    @property
    def slot(self) -> str:
        return slot_id(self.name)


@dataclass
class InputGroup:
    key: str
    label: str
    unit: str
    rows: list[EstimateRow]

    @property
    def swing(self) -> float:
        return max((row.swing for row in self.rows), default=0.0)


@dataclass
class SectionGroup:
    key: str
    label: str
    groups: list[InputGroup]

    @property
    def swing(self) -> float:
        return max((group.swing for group in self.groups), default=0.0)

    @property
    def error_count(self) -> int:
        return sum(bool(row.errors) for group in self.groups for row in group.rows)


class CalculatorForm:
    """The calculator's ~80 three-point estimates and the fleet shape, as posted.

    Not a ``django.forms.Form``: the inputs are declared once in ``roi.engine.INPUT_SPECS`` and
    validated by the engine, which reports every problem by the input's flat name (e.g.
    ``latency.time_to_action_s.cloud``). Field names in the page are that name plus
    ``.low`` / ``.likely`` / ``.high`` / ``.source``.
    """

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        inputs: RoiInputs | None = None,
        name: str = "",
        focus: str = "",
    ) -> None:
        self.is_bound = data is not None
        self.errors: dict[str, list[str]] = {}
        self.non_field_errors: list[str] = []
        self.inputs: RoiInputs | None = None
        self.raw: dict[str, str] = {}
        if data is not None:
            self.raw = {key: str(data.get(key, "")).strip() for key in self._field_names()}
            self.raw["name"] = str(data.get("name", "")).strip()
            self.raw["focus"] = str(data.get("focus", "")).strip()
        elif inputs is not None:
            self.raw = self._raw_from(inputs)
            self.raw["name"] = name or inputs.name
            self.raw["focus"] = focus
            self.inputs = inputs
        self._validated = False

    # -- names --

    @staticmethod
    def _field_names() -> list[str]:
        names = []
        for spec in INPUT_SPECS:
            for input_name in spec.names:
                names += [f"{input_name}.{point}" for point in (*POINTS, "source")]
        for key in SCENARIO_LABELS:
            names += [f"scenario.{key}", f"scenario.notes.{key}"]
        return names

    @staticmethod
    def _raw_from(inputs: RoiInputs) -> dict[str, str]:
        raw: dict[str, str] = {}
        for input_name, estimate in inputs.estimates.items():
            raw[f"{input_name}.low"] = format_number(estimate.low)
            raw[f"{input_name}.likely"] = format_number(estimate.likely)
            raw[f"{input_name}.high"] = format_number(estimate.high)
            raw[f"{input_name}.source"] = estimate.source
        scenario = inputs.scenario
        for key in SCENARIO_INTEGER_FIELDS:
            raw[f"scenario.{key}"] = str(getattr(scenario, key))
        raw["scenario.annual_discount_rate_pct"] = format_number(
            round(scenario.annual_discount_rate * 100, 6)
        )
        for key, share_key in HYBRID_PERCENT_FIELDS.items():
            raw[f"scenario.{key}"] = format_number(round(getattr(scenario, share_key) * 100, 6))
        raw["scenario.residual_value"] = str(scenario.residual_value)
        raw["scenario.allow_worse_than_today"] = "on" if scenario.allow_worse_than_today else ""
        for key, note in scenario.notes.items():
            raw[f"scenario.notes.{NOTE_SOURCES.get(key, key)}"] = note
        return raw

    # -- validation --

    def to_dict(self) -> dict[str, Any]:
        """The posted values in ``RoiInputs.from_dict`` shape (numbers parsed there)."""
        estimates = {}
        for spec in INPUT_SPECS:
            for input_name in spec.names:
                estimates[input_name] = {
                    point: self.raw.get(f"{input_name}.{point}", "") for point in POINTS
                }
                estimates[input_name]["source"] = self.raw.get(f"{input_name}.source", "")
        scenario: dict[str, Any] = {}
        for key in SCENARIO_INTEGER_FIELDS:
            scenario[key] = self.raw.get(f"scenario.{key}") or None
        if scenario["horizon_months"] is None:
            # The engine would quietly fall back to 36 months; a cleared field is a mistake.
            self.errors["scenario.horizon_months"] = ["This figure is required."]
        for key, share_key in HYBRID_PERCENT_FIELDS.items():
            text = self.raw.get(f"scenario.{key}", "") or "0"
            try:
                scenario[share_key] = round(float(text) / 100, 8)
            except ValueError:
                self.errors[f"scenario.{key}"] = ["Enter a percentage (e.g. 80)."]
                scenario[share_key] = None
        scenario["residual_value"] = self.raw.get("scenario.residual_value") or None
        scenario["allow_worse_than_today"] = bool(self.raw.get("scenario.allow_worse_than_today"))
        notes = {}
        for key in SCENARIO_LABELS:
            note = self.raw.get(f"scenario.notes.{key}", "")
            if note:
                notes[NOTE_TARGETS.get(key, key)] = note
        scenario["notes"] = notes
        rate = self.raw.get("scenario.annual_discount_rate_pct", "")
        try:
            percent = float(rate)
        except ValueError:
            self.errors["scenario.annual_discount_rate_pct"] = ["Enter a number (e.g. 10)."]
            percent = None
        if percent is not None and not 0 <= percent <= 100:
            self.errors["scenario.annual_discount_rate_pct"] = ["Between 0 and 100 % a year."]
        scenario["annual_discount_rate"] = None if percent is None else round(percent / 100, 8)
        return {"name": self.raw.get("name", ""), "scenario": scenario, "estimates": estimates}

    def is_valid(self) -> bool:
        if not self._validated:
            self._validated = True
            if self.is_bound:
                data = self.to_dict()
                try:
                    self.inputs = RoiInputs.from_dict(data)
                except PlanningInputError as exc:
                    self.inputs = None
                    for key, reasons in {**self._range_errors(data, exc), **exc.fields}.items():
                        if key == "scenario.annual_discount_rate" and (
                            "scenario.annual_discount_rate_pct" in self.errors
                        ):
                            continue
                        self.errors.setdefault(self._target(key), []).extend(reasons)
                if self.errors:
                    self.inputs = None
        return self.inputs is not None and not self.errors

    @staticmethod
    def _target(key: str) -> str:
        """The form field that shows an engine error about ``key``."""
        if key.startswith("scenario."):
            field_name = key.removeprefix("scenario.")
            return f"scenario.{NOTE_SOURCES.get(field_name, field_name)}"
        return key

    @staticmethod
    def _range_errors(data: dict[str, Any], first: PlanningInputError) -> dict[str, list[str]]:
        """Range and order problems of the inputs that did parse.

        The engine parses first and checks ranges only once everything is a number; a person
        fixing a form wants every problem at once, so the unparseable values are stood in for
        by valid placeholders and the rest is checked again.
        """
        repaired = {
            "name": data["name"],
            "scenario": dict(data["scenario"]),
            "estimates": dict(data["estimates"]),
        }
        for key in first.fields:
            if key in SPEC_BY_NAME:
                bound = SPEC_BY_NAME[key].minimum
                repaired["estimates"][key] = {"low": bound, "likely": bound, "high": bound}
            elif key.startswith("scenario."):
                field_name = key.removeprefix("scenario.")
                placeholder = {
                    "annual_discount_rate": 0.1,
                    "residual_value": "straight_line",
                    "hybrid_on_device_share": 0.0,
                    "hybrid_near_edge_share": 0.9,
                    "hybrid_cloud_share": 0.1,
                    "pilot_sites": 0,
                    "build_months": 0,
                    "pilot_months": 0,
                    "rollout_sites_per_month": 0,
                }
                repaired["scenario"][field_name] = placeholder.get(field_name, 1)
        try:
            RoiInputs.from_dict(repaired)
        except PlanningInputError as exc:
            return {key: reasons for key, reasons in exc.fields.items() if key not in first.fields}
        return {}

    def add_domain_error(self, error: DomainError) -> None:
        placed = False
        for key, reasons in error.fields.items():
            target = self._target(key)
            if target in self.raw or target == "name":
                self.errors.setdefault(target, []).extend(reasons)
                placed = True
        if not placed:
            self.non_field_errors.append(error.message)

    # -- presentation --

    @property
    def name(self) -> str:
        return self.raw.get("name", "")

    @property
    def focus(self) -> str:
        return self.raw.get("focus", "")

    @staticmethod
    def _unit(unit: str) -> str:
        """A money unit carries the organisation's currency ("EUR per h")."""
        code = current_currency()
        return f"{code} {unit}" if code and unit in MONEY_UNITS else unit

    def sections(self, influence: Mapping[str, float] | None = None) -> list[SectionGroup]:
        """The inputs by the seed's ROI sections.

        With ``influence`` (input name -> how far it swings the NPV, from the tornado), the
        sections come most influential first, and so do the inputs inside each; the page opens
        the first and folds the rest.
        """
        grouped: dict[Section, list[InputGroup]] = {section: [] for section in Section}
        for spec in INPUT_SPECS:
            rows = []
            for input_name in spec.names:
                sublabel = (
                    PLACEMENT_LABELS[input_name.rsplit(".", 1)[1]] if spec.per_placement else ""
                )
                rows.append(
                    EstimateRow(
                        name=input_name,
                        label=spec.label,
                        sublabel=sublabel,
                        unit=self._unit(spec.unit),
                        low=self.raw.get(f"{input_name}.low", ""),
                        likely=self.raw.get(f"{input_name}.likely", ""),
                        high=self.raw.get(f"{input_name}.high", ""),
                        source=self.raw.get(f"{input_name}.source", ""),
                        errors=self.errors.get(input_name, []),
                        swing=(influence or {}).get(input_name, 0.0),
                    )
                )
            group = InputGroup(spec.key, spec.label, self._unit(spec.unit), rows)
            grouped[spec.section].append(group)
        sections = [
            SectionGroup(section.value, SECTION_LABELS[section], groups)
            for section, groups in grouped.items()
        ]
        if influence:
            order = list(Section)
            for section in sections:
                section.groups.sort(key=lambda group: -group.swing)
            sections.sort(key=lambda item: (-item.swing, order.index(Section(item.key))))
            top = sorted(influence.values(), reverse=True)[:3]
            threshold = top[-1] if top else 0
            for section in sections:
                for group in section.groups:
                    for row in group.rows:
                        row.top = threshold > 0 and row.swing >= threshold
        return sections

    def scenario_groups(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """The scenario's figures in their groups (fleet, ramp, hybrid tiers, checks)."""
        by_key = {item["key"]: item for item in self.scenario_fields()}
        return [(label, [by_key[key] for key in keys]) for label, keys in SCENARIO_GROUPS]

    @staticmethod
    def _display(key: str, value: str) -> str:
        """A scenario figure as a person reads it (the report)."""
        if key == "residual_value":
            try:
                return RESIDUAL_LABELS[ResidualValue(value)]
            except ValueError:
                return value
        if key == "allow_worse_than_today":
            return "yes" if value else "no"
        return value

    def scenario_fields(self) -> list[dict[str, Any]]:
        fields = []
        for key, (label, unit) in SCENARIO_LABELS.items():
            name = f"scenario.{key}"
            fields.append(
                {
                    "key": key,
                    "name": name,
                    "dom_id": name.replace(".", "-"),
                    "label": label,
                    "unit": unit,
                    "value": self.raw.get(name, ""),
                    "display": self._display(key, self.raw.get(name, "")),
                    "note": self.raw.get(f"scenario.notes.{key}", ""),
                    "note_name": f"scenario.notes.{key}",
                    "errors": self.errors.get(name, []),
                    "slot": slot_id(name),
                }
            )
        return fields

    SHOWN_ERRORS = "_shown_errors"

    def error_slots(self, shown: str = "") -> list[ErrorSlot]:
        """The error slots to refresh out of band: the inputs wrong now, and those the page
        still shows as wrong (``shown``, the page's own list), which this answer clears.

        Refreshing only these keeps a valid recompute's answer free of some ninety empty
        out-of-band swaps.
        """
        names = [f"scenario.{key}" for key in SCENARIO_LABELS]
        names += [n for spec in INPUT_SPECS for n in spec.names]
        names.append("name")
        wanted = set(self.errors) | {name for name in shown.split(",") if name}
        return [
            ErrorSlot(slot_id(name), self.errors.get(name, [])) for name in names if name in wanted
        ]

    @property
    def shown_errors(self) -> str:
        """What the page shows as wrong after this answer (sent back on the next recompute)."""
        return ",".join(sorted(self.errors))

    def error_summary(self) -> list[tuple[str, str, list[str]]]:
        """(anchor id, label, reasons) for the errors list above the results."""
        labels = {f"scenario.{key}": label for key, (label, _unit) in SCENARIO_LABELS.items()}
        for spec in INPUT_SPECS:
            for input_name in spec.names:
                suffix = input_name.rsplit(".", 1)[1] if spec.per_placement else ""
                place = f" ({PLACEMENT_LABELS[suffix]})" if suffix else ""
                labels[input_name] = f"{spec.label}{place}"
        labels["name"] = "Scenario name"
        return [
            (key.replace(".", "-"), labels.get(key, key), reasons)
            for key, reasons in self.errors.items()
        ]

    @staticmethod
    def placement_choices() -> list[tuple[str, str]]:
        return [(str(p), PLACEMENT_LABELS[str(p)]) for p in PLACEMENTS]


# --- Scorecard --------------------------------------------------------------------------------
