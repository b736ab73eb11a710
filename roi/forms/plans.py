"""The 90-day plan's start date and success-metric targets."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from django import forms

from opshero.errors import DomainError

from ..reports import format_number

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


class PlanStartForm(forms.Form):
    """Day 1 of the plan; the dates of every phase and task follow from it."""

    #: Dates a plan can start on: wide enough for any real plan, and day 90 stays a real date.
    EARLIEST = date(2000, 1, 1)
    LATEST = date(2100, 12, 31)

    start_date = forms.DateField(
        label="Start date (day 1)",
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={
            "required": "Give the day the plan starts.",
            "invalid": "Enter a real date as YYYY-MM-DD, for example 2026-03-02.",
        },
    )

    def clean_start_date(self) -> date:
        value = self.cleaned_data["start_date"]
        if not self.EARLIEST <= value <= self.LATEST:
            raise forms.ValidationError(
                f"Choose a date between {self.EARLIEST:%-d %b %Y} and {self.LATEST:%-d %b %Y}."
            )
        return value
