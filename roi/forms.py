"""Forms of the planning pages: wizard steps, the ROI calculator, the scorecard, plan targets.

Ranges and consistency rules live in the pure modules (``roi.rules``, ``roi.engine``,
``roi.scorecard``, ``roi.plan``); the forms here only turn posted text into their input shape
and put their per-field reasons back next to the right input. Every form keeps the raw text
that was posted, so an error never loses what the user typed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django import forms

from opshero.errors import DomainError

from .engine import (
    INPUT_SPECS,
    PLACEMENTS,
    SECTION_LABELS,
    SPEC_BY_NAME,
    RoiInputs,
    Section,
)
from .models import Workflow
from .reports import PLACEMENT_LABELS, format_number
from .rules import (
    CHANGE_FREQUENCY_PER_YEAR,
    ExistingHardware,
    ModelComplexity,
    PlanningInputError,
    PrivacyRisk,
    WizardAnswers,
)
from .scorecard import CATEGORY_LABELS, CATEGORY_QUESTIONS, Category, default_weights

# --- Wizard -------------------------------------------------------------------------------------

# Values that let one step be validated by the pure rules before later steps are answered; a
# placeholder never reaches a saved assessment (the result step needs every real answer).
PLACEHOLDER_ANSWERS: dict[str, Any] = {
    "workflow": "custom",
    "latency_tolerance_ms": 1000,
    "offline_share": 0,
    "privacy_risk": "low",
    "model_changes_per_year": 4,
}

CHANGE_LABELS = {
    "daily": "Daily",
    "weekly": "Weekly",
    "biweekly": "Every two weeks",
    "monthly": "Monthly",
    "quarterly": "Quarterly",
    "half_yearly": "Twice a year",
    "yearly": "Once a year",
    "never": "Practically never",
}

WORKFLOW_HINTS = {
    Workflow.LOGISTICS_DOCK_VISION: "Detect damage, verify labels and classify exceptions.",
    Workflow.FIELD_SERVICE_TRIAGE: "Technicians diagnose equipment on site, often without signal.",
    Workflow.HEALTHCARE_DECISION_SUPPORT: "Triage or documentation support with minimal PHI "
    "exposure.",
    Workflow.CUSTOM: "Another workflow: the rules place it from your answers alone.",
}

HARDWARE_CHOICES = [
    (ExistingHardware.PHONES_TABLETS.value, "Phones or tablets (mobile NPUs)"),
    (ExistingHardware.WINDOWS_NPU_FLEET.value, "A Windows fleet with NPUs"),
    (ExistingHardware.JETSON_CLASS.value, "Jetson-class edge boxes"),
]


def _change_choices(current: float | None = None) -> list[tuple[str, str]]:
    choices = [
        (format_number(per_year), f"{CHANGE_LABELS[label]} ({per_year:g} a year)")
        for label, per_year in CHANGE_FREQUENCY_PER_YEAR.items()
    ]
    if current is not None and format_number(current) not in {value for value, _ in choices}:
        choices.append((format_number(current), f"{current:g} a year"))
    return choices


class WizardStepForm(forms.Form):
    """One wizard step: the answers it sets are checked by the pure rules with the answers given
    so far, and the reasons land on this step's inputs."""

    #: answer key -> form field that carries it
    answer_fields: dict[str, str] = {}

    def __init__(self, *args: Any, previous: Mapping[str, Any] | None = None, **kwargs: Any):
        self.previous = dict(previous or {})
        super().__init__(*args, **kwargs)

    @classmethod
    def initial_from(cls, answers: Mapping[str, Any]) -> dict[str, Any]:
        initial = {}
        for key, form_field in cls.answer_fields.items():
            if key in answers:
                value = answers[key]
                is_number = isinstance(value, int | float) and not isinstance(value, bool)
                initial[form_field] = format_number(value) if is_number else value
        return initial

    def to_answers(self) -> dict[str, Any]:
        return {key: self.cleaned_data.get(name) for key, name in self.answer_fields.items()}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        answers = {**PLACEHOLDER_ANSWERS, **self.previous, **self.to_answers()}
        try:
            WizardAnswers.from_dict(answers)
        except PlanningInputError as exc:
            for key, reasons in exc.fields.items():
                name = self.answer_fields.get(key)
                for reason in reasons:
                    if name:
                        self.add_error(name, reason)
        return cleaned


class WorkflowStep(WizardStepForm):
    answer_fields = {"workflow": "workflow"}
    workflow = forms.ChoiceField(
        label="Which workflow are you planning?",
        choices=Workflow.choices,
        widget=forms.RadioSelect,
    )


class LatencyStep(WizardStepForm):
    answer_fields = {"latency_tolerance_ms": "latency_tolerance_ms"}
    latency_tolerance_ms = forms.FloatField(
        label="Latency tolerance (ms)",
        help_text="From capture to the prediction being usable in the workflow. Under 200 ms "
        "often pushes inference onto the device or a site gateway.",
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )


class OfflineStep(WizardStepForm):
    answer_fields = {"offline_share": "offline_percent", "longest_outage_hours": "longest_outage"}
    offline_percent = forms.FloatField(
        label="Share of operating time offline or intermittently connected (%)",
        min_value=0,
        max_value=100,
        help_text="1 % is about 7 hours a month; 10 % about three days.",
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )
    longest_outage = forms.FloatField(
        label="Longest outage (hours)",
        required=False,
        help_text="The longest a site has been without connectivity; 0 if none.",
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )

    @classmethod
    def initial_from(cls, answers: Mapping[str, Any]) -> dict[str, Any]:
        initial = {}
        if "offline_share" in answers:
            initial["offline_percent"] = format_number(float(answers["offline_share"]) * 100)
        if "longest_outage_hours" in answers:
            initial["longest_outage"] = format_number(float(answers["longest_outage_hours"]))
        return initial

    def to_answers(self) -> dict[str, Any]:
        percent = self.cleaned_data.get("offline_percent")
        return {
            "offline_share": None if percent is None else round(percent / 100, 6),
            "longest_outage_hours": self.cleaned_data.get("longest_outage") or 0.0,
        }


class PrivacyStep(WizardStepForm):
    answer_fields = {"privacy_risk": "privacy_risk", "phi_involved": "phi_involved"}
    privacy_risk = forms.ChoiceField(
        label="Privacy or regulatory risk of the data",
        choices=[
            (PrivacyRisk.LOW.value, "Low: nothing sensitive in the inputs"),
            (PrivacyRisk.MEDIUM.value, "Medium: people or customer sites appear in the inputs"),
            (PrivacyRisk.HIGH.value, "High: regulated or sensitive data"),
        ],
        widget=forms.RadioSelect,
    )
    phi_involved = forms.BooleanField(
        label="Protected health information (PHI) is involved", required=False
    )


class ChangeStep(WizardStepForm):
    answer_fields = {"model_changes_per_year": "model_changes_per_year"}
    model_changes_per_year = forms.TypedChoiceField(
        label="How often will the model change?",
        coerce=float,
        choices=_change_choices(),
        widget=forms.RadioSelect,
        help_text="Frequent iteration favours the cloud; slower-changing, high-assurance "
        "workflows can favour the edge.",
    )

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        current = self.previous.get("model_changes_per_year")
        self.fields["model_changes_per_year"].choices = _change_choices(current)

    @classmethod
    def initial_from(cls, answers: Mapping[str, Any]) -> dict[str, Any]:
        if "model_changes_per_year" not in answers:
            return {}
        return {"model_changes_per_year": format_number(float(answers["model_changes_per_year"]))}


class FleetStep(WizardStepForm):
    answer_fields = {
        "devices_per_site": "devices_per_site",
        "sites": "sites",
        "payload_kb": "payload_kb",
        "inferences_per_device_per_minute": "inferences_per_device_per_minute",
        "model_complexity": "model_complexity",
        "existing_hardware": "existing_hardware",
    }
    sites = forms.IntegerField(
        label="Sites", initial=1, widget=forms.TextInput(attrs={"inputmode": "numeric"})
    )
    devices_per_site = forms.IntegerField(
        label="Devices per site", initial=1, widget=forms.TextInput(attrs={"inputmode": "numeric"})
    )
    payload_kb = forms.FloatField(
        label="Payload per inference (KB)",
        required=False,
        help_text="e.g. a 400 KB image; leave empty if unknown.",
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )
    inferences_per_device_per_minute = forms.FloatField(
        label="Inferences per device per minute",
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )
    model_complexity = forms.ChoiceField(
        label="Model complexity",
        choices=[
            (ModelComplexity.SMALL.value, "Small (fits a phone comfortably)"),
            (ModelComplexity.MEDIUM.value, "Medium"),
            (ModelComplexity.LARGE.value, "Large (heavy vision or language model)"),
        ],
        initial=ModelComplexity.MEDIUM.value,
    )
    existing_hardware = forms.MultipleChoiceField(
        label="Hardware you already have",
        choices=HARDWARE_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
    )

    def to_answers(self) -> dict[str, Any]:
        data = super().to_answers()
        data["payload_kb"] = data.get("payload_kb") or 0.0
        data["inferences_per_device_per_minute"] = (
            data.get("inferences_per_device_per_minute") or 0.0
        )
        data["existing_hardware"] = list(data.get("existing_hardware") or [])
        return data


class ResultStep(forms.Form):
    name = forms.CharField(
        label="Name this assessment",
        max_length=120,
        required=False,
        help_text="Shown in the organisation's list; the link to it never changes.",
    )


@dataclass(frozen=True)
class WizardStep:
    key: str
    title: str
    question: str
    form_class: type[forms.Form]
    icon: str

    @property
    def answer_keys(self) -> tuple[str, ...]:
        return tuple(getattr(self.form_class, "answer_fields", {}))


WIZARD_STEPS: tuple[WizardStep, ...] = (
    WizardStep("workflow", "Workflow", "Which workflow are you planning?", WorkflowStep, "route"),
    WizardStep(
        "latency", "Latency", "How much latency can the workflow tolerate?", LatencyStep, "clock"
    ),
    WizardStep(
        "offline",
        "Connectivity",
        "Will the environment be offline or intermittently connected?",
        OfflineStep,
        "wifi-off",
    ),
    WizardStep(
        "privacy", "Privacy", "Is the data privacy or regulatory risk high?", PrivacyStep, "lock"
    ),
    WizardStep("change", "Model changes", "How often will models change?", ChangeStep, "refresh"),
    WizardStep(
        "fleet",
        "Fleet and hardware",
        "How big is the fleet, what does it send, what do you already have?",
        FleetStep,
        "devices",
    ),
    WizardStep("result", "Result", "Where inference should run, and why", ResultStep, "compass"),
)
STEP_BY_KEY = {step.key: step for step in WIZARD_STEPS}
# Answers every saved assessment must have before the result can be decided.
REQUIRED_STEP_KEYS = ("workflow", "latency", "offline", "privacy", "change", "fleet")


# --- Inline errors that do not re-render inputs -----------------------------------------------


def slot_id(name: str) -> str:
    """The id of the element that shows a field's errors (dots are awkward in selectors)."""
    return "err-" + name.replace(".", "-").replace("[", "-").replace("]", "")


@dataclass
class ErrorSlot:
    id: str
    errors: list[str]


# --- ROI calculator -----------------------------------------------------------------------------

POINTS = ("low", "likely", "high")
SCENARIO_INTEGER_FIELDS = ("sites", "devices_per_site", "gateways_per_site", "horizon_months")
SCENARIO_LABELS = {
    "sites": ("Active sites", ""),
    "devices_per_site": ("Devices per site", ""),
    "gateways_per_site": ("Gateways per site", "for near-edge"),
    "annual_discount_rate_pct": ("Discount rate", "% per year"),
    "horizon_months": ("Horizon", "months"),
    "hybrid_local_tier": ("Hybrid runs locally", ""),
}


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


@dataclass
class SectionGroup:
    key: str
    label: str
    groups: list[InputGroup]

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
        raw["scenario.hybrid_local_tier"] = str(scenario.hybrid_local_tier)
        for key, note in scenario.notes.items():
            target = "annual_discount_rate_pct" if key == "annual_discount_rate" else key
            raw[f"scenario.notes.{target}"] = note
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
        scenario["hybrid_local_tier"] = self.raw.get("scenario.hybrid_local_tier") or None
        notes = {}
        for key in SCENARIO_LABELS:
            note = self.raw.get(f"scenario.notes.{key}", "")
            if note:
                notes["annual_discount_rate" if key == "annual_discount_rate_pct" else key] = note
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
                        target = (
                            "scenario.annual_discount_rate_pct"
                            if key == "scenario.annual_discount_rate"
                            else key
                        )
                        self.errors.setdefault(target, []).extend(reasons)
                if self.errors:
                    self.inputs = None
        return self.inputs is not None and not self.errors

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
                placeholder = {"annual_discount_rate": 0.1, "hybrid_local_tier": "near_edge"}
                repaired["scenario"][field_name] = placeholder.get(field_name, 1)
        try:
            RoiInputs.from_dict(repaired)
        except PlanningInputError as exc:
            return {key: reasons for key, reasons in exc.fields.items() if key not in first.fields}
        return {}

    def add_domain_error(self, error: DomainError) -> None:
        placed = False
        for key, reasons in error.fields.items():
            target = "scenario.annual_discount_rate_pct" if key.endswith("discount_rate") else key
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

    def sections(self) -> list[SectionGroup]:
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
                        unit=spec.unit,
                        low=self.raw.get(f"{input_name}.low", ""),
                        likely=self.raw.get(f"{input_name}.likely", ""),
                        high=self.raw.get(f"{input_name}.high", ""),
                        source=self.raw.get(f"{input_name}.source", ""),
                        errors=self.errors.get(input_name, []),
                    )
                )
            grouped[spec.section].append(InputGroup(spec.key, spec.label, spec.unit, rows))
        return [
            SectionGroup(section.value, SECTION_LABELS[section], groups)
            for section, groups in grouped.items()
        ]

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

CANDIDATE_TEXT = ("name", "hardware", "runtime", "toolchain")
SCORE_CHOICES = ("1", "2", "3", "4", "5")


@dataclass
class ScoreCell:
    category: str
    score: str
    evidence: str
    errors: list[str]
    slot: str
    score_name: str
    evidence_name: str


@dataclass
class CandidateColumn:
    index: int
    name: str
    hardware: str
    runtime: str
    toolchain: str
    cells: dict[str, ScoreCell]
    errors: dict[str, list[str]]


class ScorecardForm:
    """Candidates x the eight categories, weights and a name, as posted.

    Field names: ``c<i>.name`` / ``.hardware`` / ``.runtime`` / ``.toolchain``,
    ``c<i>.<category>.score`` / ``.evidence``, ``w.<category>``; ``count`` says how many
    candidate columns were on the page.
    """

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        initial: Mapping[str, Any] | None = None,
        name: str = "",
        max_candidates: int = 8,
    ) -> None:
        self.is_bound = data is not None
        self.errors: dict[str, list[str]] = {}
        self.non_field_errors: list[str] = []
        self.max_candidates = max_candidates
        if data is not None:
            try:
                count = int(str(data.get("count", "0")))
            except ValueError:
                count = 0
            count = max(0, min(count, max_candidates))
            self.name = str(data.get("name", "")).strip()
            self.candidates = [self._candidate_from_post(data, i) for i in range(count)]
            self.weights = {str(cat): str(data.get(f"w.{cat}", "")).strip() for cat in Category}
        else:
            initial = initial or {}
            self.name = name
            self.candidates = [
                self._candidate_from_dict(raw) for raw in initial.get("candidates", [])
            ]
            weights = {
                **{str(k): v for k, v in default_weights().items()},
                **(initial.get("weights") or {}),
            }
            self.weights = {str(cat): format_number(float(weights[str(cat)])) for cat in Category}

    @staticmethod
    def _candidate_from_post(data: Mapping[str, Any], index: int) -> dict[str, Any]:
        prefix = f"c{index}."
        candidate: dict[str, Any] = {
            key: str(data.get(prefix + key, "")).strip() for key in CANDIDATE_TEXT
        }
        candidate["scores"] = {
            str(cat): {
                "score": str(data.get(f"{prefix}{cat}.score", "")).strip(),
                "evidence": str(data.get(f"{prefix}{cat}.evidence", "")).strip(),
            }
            for cat in Category
        }
        return candidate

    @staticmethod
    def _candidate_from_dict(raw: Mapping[str, Any]) -> dict[str, Any]:
        candidate = {key: str(raw.get(key, "") or "") for key in CANDIDATE_TEXT}
        scores = raw.get("scores") or {}
        candidate["scores"] = {
            str(cat): {
                "score": str((scores.get(str(cat)) or {}).get("score", "")),
                "evidence": str((scores.get(str(cat)) or {}).get("evidence", "")),
            }
            for cat in Category
        }
        return candidate

    def add_candidate(self) -> None:
        if len(self.candidates) < self.max_candidates:
            blank: dict[str, Any] = dict.fromkeys(CANDIDATE_TEXT, "")
            blank["scores"] = {str(cat): {"score": "", "evidence": ""} for cat in Category}
            self.candidates.append(blank)

    def remove_candidate(self, index: int) -> None:
        if 0 <= index < len(self.candidates):
            del self.candidates[index]

    def cleaned(self) -> dict[str, Any]:
        """Candidates and weights in ``roi.scorecard.Scorecard.from_dict`` shape."""
        candidates = []
        for candidate in self.candidates:
            scores = {}
            for cat, cell in candidate["scores"].items():
                if cell["score"] != "":
                    scores[cat] = {"score": cell["score"], "evidence": cell["evidence"]}
            candidates.append({**{k: candidate[k] for k in CANDIDATE_TEXT}, "scores": scores})
        weights: dict[str, Any] = {}
        for cat, value in self.weights.items():
            try:
                weights[cat] = float(value)
            except ValueError:
                self.errors.setdefault(f"w.{cat}", []).append("Enter a number.")
        return {"name": self.name, "candidates": candidates, "weights": weights}

    def is_valid(self) -> bool:
        """Read what was posted into ``cleaned_data``; True when nothing needs fixing yet."""
        self.cleaned_data = self.cleaned()
        return not self.errors

    def add_domain_error(self, error: DomainError) -> None:
        placed = False
        for key, reasons in error.fields.items():
            target = self._field_for(key)
            if target:
                self.errors.setdefault(target, []).extend(reasons)
                placed = True
        if not placed:
            self.non_field_errors.append(error.message)

    @staticmethod
    def _field_for(key: str) -> str | None:
        # candidates[2].scores.update_strategy -> c2.update_strategy.score
        if key.startswith("candidates[") and "]." in key:
            index, rest = key[len("candidates[") :].split("].", 1)
            if rest.startswith("scores."):
                return f"c{index}.{rest[len('scores.') :]}.score"
            return f"c{index}.{rest}"
        if key.startswith("weights."):
            return f"w.{key[len('weights.') :]}"
        if key in ("weights", "candidates", "name"):
            return key
        return None

    def columns(self) -> list[CandidateColumn]:
        columns = []
        for index, candidate in enumerate(self.candidates):
            cells = {}
            for cat in Category:
                key = str(cat)
                score_name = f"c{index}.{key}.score"
                cells[key] = ScoreCell(
                    category=key,
                    score=candidate["scores"][key]["score"],
                    evidence=candidate["scores"][key]["evidence"],
                    errors=self.errors.get(score_name, []),
                    slot=slot_id(score_name),
                    score_name=score_name,
                    evidence_name=f"c{index}.{key}.evidence",
                )
            errors = {key: self.errors.get(f"c{index}.{key}", []) for key in CANDIDATE_TEXT}
            columns.append(
                CandidateColumn(
                    index=index,
                    cells=cells,
                    errors=errors,
                    **{key: candidate[key] for key in CANDIDATE_TEXT},
                )
            )
        return columns

    def categories(self) -> list[dict[str, Any]]:
        return [
            {
                "key": str(cat),
                "label": CATEGORY_LABELS[cat],
                "questions": CATEGORY_QUESTIONS[cat],
                "weight": self.weights[str(cat)],
                "weight_name": f"w.{cat}",
                "weight_errors": self.errors.get(f"w.{cat}", []),
                "slot": slot_id(f"w.{cat}"),
                "red_flag": cat in (Category.UPDATE_STRATEGY, Category.OBSERVABILITY),
            }
            for cat in Category
        ]

    def error_slots(self) -> list[ErrorSlot]:
        names = ["name", "candidates", "weights"]
        for index in range(len(self.candidates)):
            names += [f"c{index}.{key}" for key in CANDIDATE_TEXT]
            names += [f"c{index}.{cat}.score" for cat in Category]
        names += [f"w.{cat}" for cat in Category]
        return [ErrorSlot(slot_id(name), self.errors.get(name, [])) for name in names]

    def error_summary(self) -> list[str]:
        lines = list(self.non_field_errors)
        labels = {str(cat): CATEGORY_LABELS[cat] for cat in Category}
        for key, reasons in self.errors.items():
            if key.startswith("c") and "." in key:
                index, rest = key[1:].split(".", 1)
                name = (
                    self.candidates[int(index)]["name"]
                    if index.isdigit() and int(index) < len(self.candidates)
                    else ""
                ) or f"Candidate {int(index) + 1 if index.isdigit() else '?'}"
                part = labels.get(rest.removesuffix(".score"), rest)
                lines += [f"{name} · {part}: {reason}" for reason in reasons]
            elif key.startswith("w."):
                lines += [f"Weight of {labels.get(key[2:], key[2:])}: {r}" for r in reasons]
            else:
                lines += reasons
        return lines


# --- Plan ---------------------------------------------------------------------------------------


class PlanTargetsForm(forms.Form):
    """Success-metric targets; empty derived targets fall back to the wizard's answers."""

    latency_p95_ms = forms.FloatField(label="P95 time-to-action (ms)", required=False)
    offline_coverage_pct = forms.FloatField(
        label="Workflow completing offline (%)", required=False, min_value=0, max_value=100
    )
    accuracy_pct = forms.FloatField(label="Accuracy (%)", min_value=0, max_value=100)
    int8_accuracy_drop_points = forms.FloatField(label="INT8 accuracy drop (points)")
    operator_coverage_pct = forms.FloatField(
        label="Operator coverage (%)", min_value=0, max_value=100
    )
    ece = forms.FloatField(label="Calibration error (ECE)")
    rollout_hours = forms.FloatField(label="Rollout time (h)", required=False)
    rollback_minutes = forms.FloatField(label="Rollback time (min)", required=False)
    time_to_diagnose_hours = forms.FloatField(label="Time to diagnose (h)")

    PERCENT = {
        "offline_coverage_pct": "offline_coverage",
        "accuracy_pct": "accuracy",
        "operator_coverage_pct": "operator_coverage",
    }

    def show_current(self, metrics: list[Mapping[str, Any]]) -> None:
        """Show the target in force as the placeholder of targets derived from the answers."""
        current = {metric["key"]: metric for metric in metrics}
        derived = {
            "latency_p95_ms": ("latency_p95", 1),
            "offline_coverage_pct": ("offline_coverage", 100),
            "rollout_hours": ("rollout_time", 1),
            "rollback_minutes": ("rollback_time", 1),
        }
        for name, (key, scale) in derived.items():
            if key in current:
                value = format_number(current[key]["target"] * scale)
                self.fields[name].widget.attrs["placeholder"] = f"{value} (from the answers)"
            else:
                self.fields[name].widget.attrs["placeholder"] = "not in this plan"

    @classmethod
    def initial_from(cls, targets: Mapping[str, Any]) -> dict[str, Any]:
        initial: dict[str, Any] = {}
        for name in cls.base_fields:
            key = cls.PERCENT.get(name, name)
            value = targets.get(key)
            if value is None:
                continue
            initial[name] = format_number(value * 100 if name in cls.PERCENT else value)
        return initial

    def targets(self) -> dict[str, Any]:
        values = {}
        for name, value in self.cleaned_data.items():
            key = self.PERCENT.get(name, name)
            if value is None:
                continue
            values[key] = value / 100 if name in self.PERCENT else value
        return values

    def apply_error(self, error: DomainError) -> None:
        reverse = {key: name for name, key in self.PERCENT.items()}
        placed = False
        for key, reasons in error.fields.items():
            name = reverse.get(key, key)
            if name in self.fields:
                for reason in reasons:
                    self.add_error(name, reason)
                placed = True
        if not placed:
            self.add_error(None, error.message)
