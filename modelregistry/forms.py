"""Model registry forms: a model and its gates, a version upload, a validation request."""

from __future__ import annotations

import re

from django import forms
from django.conf import settings

from onnxcheck.inputs import InputsRejected, open_axes, parse_shape_buckets
from onnxcheck.inspection import ModelMetadata
from opshero.api.parsers import UnacceptableBody, load_json_text

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
    min_variant_top1_agreement = forms.FloatField(
        required=False,
        min_value=0,
        max_value=1,
        initial=0.99,
        label="Variants: min top-1 agreement with the parent (0-1)",
    )
    min_variant_sqnr_db = forms.FloatField(
        required=False, min_value=0, initial=20.0, label="Variants: min SQNR vs the parent (dB)"
    )


def _floats(text: str, name: str) -> list[float]:
    text = (text or "").strip()
    if not text:
        return []
    try:
        return [float(part) for part in re.split(r"[,\s]+", text) if part]
    except ValueError as exc:
        raise forms.ValidationError(f"{name}: numbers separated by commas.") from exc


class IoContractMixin:
    """The upload form's I/O contract (a small model card): class labels in output order, the
    output holding the scores, preprocessing and intended use. Leaving the labels empty means no
    contract (a variant inherits its parent's); the advanced JSON field overrides the boxes."""

    def add_contract_fields(self) -> None:
        self.fields.update(
            {
                "class_labels": forms.CharField(
                    required=False,
                    widget=forms.Textarea(attrs={"rows": 3, "class": "font-monospace"}),
                    label="Class labels, one per line, in output order",
                    help_text="Checked against the model: as many labels as the score "
                    "output has classes.",
                ),
                "score_output": forms.CharField(
                    required=False,
                    max_length=200,
                    label="Output holding the scores",
                    help_text="Empty: the only float output of rank 1-2.",
                ),
                "scores": forms.ChoiceField(
                    required=False,
                    choices=[("probabilities", "Probabilities"), ("logits", "Logits")],
                    initial="probabilities",
                    label="Scores are",
                ),
                "layout": forms.ChoiceField(
                    required=False,
                    choices=[(v, v) for v in ("NCHW", "NHWC", "NC", "none")],
                    initial="NCHW",
                    label="Input layout",
                ),
                "scale": forms.FloatField(
                    required=False, initial=1.0, label="Scale (multiplies each pixel)"
                ),
                "mean": forms.CharField(
                    required=False, max_length=200, label="Mean per channel (e.g. 0.485, 0.456)"
                ),
                "std": forms.CharField(
                    required=False, max_length=200, label="Std per channel (e.g. 0.229, 0.224)"
                ),
                "color_order": forms.ChoiceField(
                    required=False,
                    choices=[(v, v) for v in ("RGB", "BGR", "none")],
                    initial="RGB",
                    label="Colour order",
                ),
                "intended_use": forms.CharField(
                    required=False,
                    max_length=2000,
                    widget=forms.Textarea(attrs={"rows": 2}),
                    label="Intended use",
                ),
                "io_contract": forms.CharField(
                    required=False,
                    widget=forms.Textarea(attrs={"rows": 3, "class": "font-monospace"}),
                    label="I/O contract as JSON (advanced; overrides the boxes)",
                ),
            }
        )

    def clean_contract(self, cleaned: dict) -> None:
        raw = (cleaned.get("io_contract") or "").strip()
        if raw:
            try:
                cleaned["io_contract"] = load_json_text(raw, field="io_contract")
            except UnacceptableBody as exc:
                self.add_error("io_contract", exc.message)
            except ValueError as exc:
                self.add_error("io_contract", f"Not JSON: {exc}.")
            return
        labels = [line.strip() for line in (cleaned.get("class_labels") or "").splitlines()]
        labels = [label for label in labels if label]
        if not labels:
            cleaned["io_contract"] = None
            return
        try:
            mean = _floats(cleaned.get("mean"), "Mean")
            std = _floats(cleaned.get("std"), "Std")
        except forms.ValidationError as exc:
            self.add_error("mean", exc)
            return
        cleaned["io_contract"] = {
            "labels": labels,
            "score_output": (cleaned.get("score_output") or "").strip() or None,
            "scores": cleaned.get("scores") or "probabilities",
            "preprocessing": {
                "layout": cleaned.get("layout") or "none",
                "scale": cleaned.get("scale") if cleaned.get("scale") is not None else 1.0,
                "mean": mean,
                "std": std,
                "color_order": cleaned.get("color_order") or "none",
            },
            "intended_use": (cleaned.get("intended_use") or "").strip(),
        }


def _parse_buckets(text: str):
    """The raw-JSON (advanced) field: JSON in the form :func:`parse_shape_buckets` accepts."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = load_json_text(text, field="shape_buckets")
    except UnacceptableBody as exc:
        raise forms.ValidationError(exc.message) from exc
    except ValueError as exc:
        raise forms.ValidationError(f"Not JSON: {exc}.") from exc
    try:
        return parse_shape_buckets(value, max_axis_size=settings.VALIDATION_MAX_AXIS_SIZE)
    except InputsRejected as exc:
        raise forms.ValidationError(exc.message, code=exc.code) from exc


_SIZES_RE = re.compile(r"^\s*\d+(\s*,\s*\d+)*\s*$")


AXIS_FIELD_PREFIX = "axis__"


class ShapeEditorMixin:
    """One box per dynamic axis of the model (field ``axis__<key>``, ``key`` as in a bucket:
    ``x[2]`` or a meaningful name), prefilled with a suggested size; what the boxes say becomes
    ``{key: [sizes]}`` unless the raw-JSON ``shape_buckets`` field (the advanced fallback) is
    filled. A box takes one size or several (``1, 8``: one bucket each)."""

    shape_axes: list[dict]

    def add_shape_editor(self, axes: list[dict], *, prefill: bool, from_data: bool) -> None:
        self.shape_axes = []
        for entry in axes:
            name = f"{AXIS_FIELD_PREFIX}{entry['key']}"
            sample_axis = entry.get("axis") == 0
            dim = entry.get("dim")
            spelled = f" '{dim}'" if isinstance(dim, str) else ""
            suggested = entry.get("suggested")
            data_fixed = from_data and not sample_axis
            self.fields[name] = forms.CharField(
                required=False,
                label=f"{', '.join(entry.get('axes') or [entry['key']])}{spelled}",
                help_text=f"e.g. {suggested}: {entry['reason']}" if entry.get("reason") else "",
                initial=entry.get("initial", suggested if prefill and not data_fixed else ""),
                widget=forms.TextInput(
                    attrs={
                        "inputmode": "numeric",
                        "placeholder": (
                            "from the uploaded inputs"
                            if data_fixed
                            else ("" if suggested is None else str(suggested))
                        ),
                        "data-shape-axis": entry["key"],
                        "data-testid": f"shape-axis-{entry['key']}",
                    }
                ),
            )
            self.shape_axes.append({**entry, "field": name})

    def axis_fields(self):
        return [self[entry["field"]] for entry in getattr(self, "shape_axes", [])]

    def clean_shape_editor(self, cleaned: dict) -> None:
        if cleaned.get("shape_buckets") is not None or not getattr(self, "shape_axes", None):
            return
        spec: dict[str, list[int]] = {}
        for entry in self.shape_axes:
            text = (cleaned.get(entry["field"]) or "").strip()
            if not text:
                continue
            if not _SIZES_RE.match(text):
                self.add_error(entry["field"], "A size such as 224, or sizes such as 1, 8.")
                continue
            spec[entry["key"]] = [int(part) for part in text.split(",")]
        if spec:
            try:
                cleaned["shape_buckets"] = parse_shape_buckets(
                    spec, max_axis_size=settings.VALIDATION_MAX_AXIS_SIZE
                )
            except InputsRejected as exc:
                self.add_error("shape_buckets", exc.message)


class UploadForm(IoContractMixin, ShapeEditorMixin, forms.Form):
    version = forms.CharField(max_length=40, help_text="e.g. 1.4.0")
    artifact = forms.FileField(
        label="ONNX model or bundle",
        help_text="The .onnx file with its weights inside, or a .zip/.tar bundle of the model "
        "and its external-data files.",
        allow_empty_file=True,
    )
    inputs_file = forms.FileField(
        required=False,
        label="Representative inputs (.npz, optional)",
        help_text="Arrays named after the model inputs, plus an optional 'labels' array.",
    )
    shape_buckets = forms.CharField(
        required=False,
        label="Shape buckets as JSON (advanced, optional)",
        help_text='e.g. {"images[2]": [640], "images[3]": [640]} or {"batch": [1, 8]}; or set '
        "sizes in the boxes when you validate.",
    )
    release_notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, axes: list[dict] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_contract_fields()
        self.shape_axes = []
        if axes is not None:  # the model was read (the editor fragment): boxes with suggestions
            self.add_shape_editor(axes, prefill=True, from_data=False)
        elif self.is_bound:  # boxes the editor fragment added come back with the upload
            keys = [
                k.removeprefix(AXIS_FIELD_PREFIX)
                for k in self.data
                if k.startswith(AXIS_FIELD_PREFIX)
            ]
            self.add_shape_editor([{"key": key} for key in keys], prefill=False, from_data=False)

    def clean_shape_buckets(self):
        return _parse_buckets(self.cleaned_data["shape_buckets"])

    def clean(self):
        cleaned = super().clean()
        self.clean_shape_editor(cleaned)
        self.clean_contract(cleaned)
        return cleaned


class ValidateForm(ShapeEditorMixin, forms.Form):
    target = forms.ModelChoiceField(queryset=None, label="Hardware target")
    shape_buckets = forms.CharField(
        required=False,
        label="Shape buckets as JSON (advanced, optional)",
        help_text='Overrides the boxes above, e.g. {"x[2]": [224], "batch": [1, 8]}',
    )
    use_uploaded_inputs = forms.BooleanField(
        required=False, initial=True, label="Use the uploaded representative inputs"
    )

    def __init__(self, *args, targets=None, version=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].queryset = targets
        self.shape_axes = []
        if version is not None and version.metadata:
            metadata = ModelMetadata.from_dict(version.metadata)
            axes = open_axes(metadata.inputs, hints=dict(metadata.metadata_props))
            stored = version.shape_buckets
            if isinstance(stored, dict) and stored:
                # Boxes start with the upload's buckets, so what is posted is complete.
                for entry in axes:
                    sizes = next(
                        (stored[k] for k in [entry["key"], *entry["axes"]] if k in stored), None
                    )
                    sizes = [sizes] if isinstance(sizes, int) else sizes
                    entry["initial"] = (
                        ", ".join(map(str, sizes)) if isinstance(sizes, list) and sizes else ""
                    )
            # An explicit bucket list stays as uploaded: empty boxes keep it.
            self.add_shape_editor(axes, prefill=not stored, from_data=bool(version.inputs_file))

    def clean_shape_buckets(self):
        return _parse_buckets(self.cleaned_data["shape_buckets"])

    def clean(self):
        cleaned = super().clean()
        self.clean_shape_editor(cleaned)
        return cleaned


class ReviewForm(forms.Form):
    """An approver's decision on a run whose latency gate stayed inconclusive."""

    decision = forms.ChoiceField(
        choices=[("accept", "Accept: the latency is good enough"), ("reject", "Reject")],
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Kept with the run and in the audit log, e.g. what you measured on the device.",
    )
