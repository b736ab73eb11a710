"""Model registry forms: a model and its gates, a version upload, a validation request."""

from __future__ import annotations

import json

from django import forms

from .models import MlModel


class MlModelForm(forms.Form):
    name = forms.CharField(max_length=120)
    task = forms.ChoiceField(choices=MlModel.Task.choices)
    workflow = forms.CharField(max_length=200, required=False, help_text="e.g. dock damage triage")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    latency_budget_ms = forms.FloatField(
        required=False, min_value=0.001, label="P95 latency budget (ms)", initial=200
    )
    max_int8_drop_points = forms.FloatField(
        required=False, min_value=0, label="Max INT8 accuracy drop (points)", initial=1.0
    )
    max_ece = forms.FloatField(
        required=False, min_value=0, max_value=1, label="Max calibration error (ECE)", initial=0.05
    )
    min_accuracy = forms.FloatField(
        required=False, min_value=0, max_value=1, label="Min accuracy (0-1)"
    )


class UploadForm(forms.Form):
    version = forms.CharField(max_length=40, help_text="e.g. 1.4.0")
    artifact = forms.FileField(
        label="ONNX model", help_text="The .onnx file (weights inside).", allow_empty_file=True
    )
    inputs_file = forms.FileField(
        required=False,
        label="Representative inputs (.npz, optional)",
        help_text="Arrays named after the model inputs, plus an optional 'labels' array.",
    )
    shape_buckets = forms.CharField(
        required=False,
        label="Shape buckets for dynamic axes (JSON, optional)",
        help_text='e.g. {"batch": [1, 8]} or {"images[2]": [640, 1280]}',
    )
    release_notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_shape_buckets(self):
        return _parse_buckets(self.cleaned_data["shape_buckets"])


def _parse_buckets(text: str):
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise forms.ValidationError(f"Not JSON: {exc}.") from exc
    if not isinstance(value, dict | list):
        raise forms.ValidationError('Write an object such as {"batch": [1, 8]}.')
    return value


class ValidateForm(forms.Form):
    target = forms.ModelChoiceField(queryset=None, label="Hardware target")
    shape_buckets = forms.CharField(
        required=False,
        label="Shape buckets (JSON, optional)",
        help_text='Overrides the upload\'s buckets, e.g. {"batch": [1, 8]}',
    )
    use_uploaded_inputs = forms.BooleanField(
        required=False, initial=True, label="Use the uploaded representative inputs"
    )

    def __init__(self, *args, targets=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].queryset = targets

    def clean_shape_buckets(self):
        return _parse_buckets(self.cleaned_data["shape_buckets"])
