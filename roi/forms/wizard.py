"""The wizard's steps: each step's answers are checked by the pure rules (``roi.rules``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django import forms

from ..models import Workflow
from ..reports import format_number
from ..rules import (
    CHANGE_FREQUENCY_PER_YEAR,
    ExistingHardware,
    ModelComplexity,
    PlanningInputError,
    PrivacyRisk,
    WizardAnswers,
)

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
    (ExistingHardware.SITE_GATEWAY.value, "Site gateways or mini-PCs (no GPU module)"),
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
