"""Forms of the fleet pages. They parse and type-check; services decide what is allowed."""

from __future__ import annotations

import re
import zoneinfo

from django import forms

from .models import ExecutionProvider, Placement, Site

DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
_WINDOW_RE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)\s+(\d\d:\d\d)\s*-\s*(\d\d:\d\d)$", re.I)


def windows_to_text(windows: list[dict]) -> str:
    return "\n".join(f"{DAYS[w['day']]} {w['start']}-{w['end']}" for w in windows)


class TagsField(forms.CharField):
    """Tags typed as "a, b; c"; the service normalises them."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "Comma-separated, e.g. cold-chain, pilot")
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(value)
        return value


class SiteForm(forms.Form):
    name = forms.CharField(max_length=120)
    kind = forms.ChoiceField(choices=Site.Kind.choices)
    region = forms.CharField(max_length=80, required=False)
    time_zone = forms.CharField(
        max_length=64, initial="UTC", help_text="IANA name, e.g. Europe/Berlin"
    )
    expected_connectivity = forms.FloatField(
        min_value=0,
        max_value=100,
        initial=99,
        label="Expected time online (%)",
        help_text="Share of time the site has a working uplink.",
    )
    maintenance_windows = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line, e.g. 'Sun 02:00-05:00' (site time).",
    )
    tags = TagsField()
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_maintenance_windows(self) -> list[dict]:
        windows, errors = [], []
        for number, line in enumerate(self.cleaned_data["maintenance_windows"].splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            match = _WINDOW_RE.match(line)
            if not match:
                errors.append(f"Line {number}: write it as 'Sun 02:00-05:00'.")
                continue
            day = [d.lower() for d in DAYS].index(match.group(1).lower())
            windows.append({"day": day, "start": match.group(2), "end": match.group(3)})
        if errors:
            raise forms.ValidationError(errors)
        return windows

    def clean_time_zone(self) -> str:
        # Checked here too so that every mistake on the form shows at once.
        name = self.cleaned_data["time_zone"].strip()
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise forms.ValidationError(
                f"'{name}' is not an IANA time zone, e.g. Europe/Berlin."
            ) from exc
        return name

    def clean_expected_connectivity(self) -> float:
        return self.cleaned_data["expected_connectivity"] / 100

    @classmethod
    def initial_for(cls, site: Site) -> dict:
        return {
            "name": site.name,
            "kind": site.kind,
            "region": site.region,
            "time_zone": site.time_zone,
            "expected_connectivity": round(site.expected_connectivity * 100, 2),
            "maintenance_windows": windows_to_text(site.maintenance_windows),
            "tags": site.tags,
            "notes": site.notes,
        }


class DeviceForm(forms.Form):
    name = forms.CharField(max_length=120)
    serial = forms.CharField(max_length=120)
    site = forms.ModelChoiceField(queryset=Site.objects.none())
    placement = forms.ChoiceField(choices=Placement.choices, initial=Placement.NEAR_EDGE)
    hardware_target = forms.ModelChoiceField(queryset=None, required=False)
    tags = TagsField()
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, org=None, targets=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = Site.objects.filter(organization=org)
        self.fields["hardware_target"].queryset = targets


class EnrollmentTokenForm(forms.Form):
    site = forms.ModelChoiceField(queryset=Site.objects.none())
    placement = forms.ChoiceField(choices=Placement.choices, initial=Placement.NEAR_EDGE)
    hardware_target = forms.ModelChoiceField(queryset=None, required=False)
    expires_in_hours = forms.FloatField(
        min_value=0.1, max_value=720, initial=24, label="Valid for (hours)"
    )
    note = forms.CharField(max_length=200, required=False)

    def __init__(self, *args, org=None, targets=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = Site.objects.filter(organization=org)
        self.fields["hardware_target"].queryset = targets


class CsvImportForm(forms.Form):
    file = forms.FileField(help_text="UTF-8 CSV with a header row.")


class GroupForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    site_ids = forms.TypedMultipleChoiceField(coerce=int, required=False, label="Sites")
    site_kinds = forms.MultipleChoiceField(
        choices=Site.Kind.choices, required=False, label="Site kinds"
    )
    tags = TagsField(label="Any of these tags")
    placements = forms.MultipleChoiceField(choices=Placement.choices, required=False)
    target_ids = forms.TypedMultipleChoiceField(
        coerce=int, required=False, label="Hardware targets"
    )
    static_members = forms.TypedMultipleChoiceField(
        coerce=int, required=False, label="Always include"
    )

    def __init__(self, *args, sites=(), targets=(), devices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site_ids"].choices = [(s.pk, s.name) for s in sites]
        self.fields["target_ids"].choices = [(t.pk, t.name) for t in targets]
        self.fields["static_members"].choices = [(d.pk, f"{d.name} ({d.serial})") for d in devices]

    def rules(self) -> dict:
        data = self.cleaned_data
        tags = [t.strip() for t in re.split(r"[;,]", data.get("tags") or "") if t.strip()]
        return {
            "site_ids": data.get("site_ids") or [],
            "site_kinds": data.get("site_kinds") or [],
            "tags": tags,
            "placements": data.get("placements") or [],
            "target_ids": data.get("target_ids") or [],
        }


class TargetForm(forms.Form):
    name = forms.CharField(max_length=120)
    runtime = forms.CharField(max_length=80, initial="onnxruntime")
    execution_provider = forms.ChoiceField(choices=ExecutionProvider.choices)
    static_shapes_only = forms.BooleanField(required=False)
    quantized_only = forms.BooleanField(required=False)
    max_model_mb = forms.FloatField(required=False, min_value=0.001, label="Max model size (MB)")
    memory_budget_mb = forms.FloatField(required=False, min_value=0.001, label="Memory budget (MB)")
    typical_power_watts = forms.FloatField(required=False, min_value=0.01, max_value=10_000)
    operators = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "class": "font-monospace"}),
        required=False,
        help_text="One per line: OpType, domain:OpType, or OpType 7-13 for an opset range.",
    )
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    _OP_RE = re.compile(r"^(?:(?P<domain>[\w.]+):)?(?P<op>\w+)(?:\s+(?P<min>\d+)?-(?P<max>\d+)?)?$")

    def clean_operators(self) -> list[dict]:
        ops, errors = [], []
        for number, line in enumerate(self.cleaned_data["operators"].splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            match = self._OP_RE.match(line)
            if not match:
                errors.append(
                    f"Line {number}: '{line[:40]}' is not OpType, domain:OpType or 'OpType 7-13'."
                )
                continue
            ops.append(
                {
                    "domain": match.group("domain") or "",
                    "op_type": match.group("op"),
                    "min_opset": int(match.group("min")) if match.group("min") else None,
                    "max_opset": int(match.group("max")) if match.group("max") else None,
                    "note": "",
                }
            )
        if errors:
            raise forms.ValidationError(errors[:20])
        return ops

    def service_values(self) -> dict:
        data = dict(self.cleaned_data)
        mb = 1024 * 1024
        data["max_model_bytes"] = (
            int(data.pop("max_model_mb") * mb) if data.get("max_model_mb") else None
        )
        data["memory_budget_bytes"] = (
            int(data.pop("memory_budget_mb") * mb) if data.get("memory_budget_mb") else None
        )
        data.pop("max_model_mb", None)
        data.pop("memory_budget_mb", None)
        return data

    @staticmethod
    def operators_text(operators: list[dict]) -> str:
        lines = []
        for op in operators:
            name = f"{op['domain']}:{op['op_type']}" if op.get("domain") else op["op_type"]
            if op.get("min_opset") or op.get("max_opset"):
                name += f" {op.get('min_opset') or ''}-{op.get('max_opset') or ''}"
            lines.append(name)
        return "\n".join(lines)


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=200, required=False)


class OperatingPolicyForm(forms.Form):
    """A site's operating policy or a lane's override; the service checks the ranges, so its
    reasons show on the fields here exactly as the API gives them."""

    review_threshold = forms.FloatField(
        label="Review threshold",
        help_text="Confidence below which a case goes to a human (0 to 1).",
        widget=forms.NumberInput(attrs={"step": "0.01"}),
    )
    evidence_sampling_rate = forms.FloatField(
        label="Evidence sampling rate",
        help_text="Share of low-confidence cases sent as evidence (0 to 1; 0 sends none).",
        widget=forms.NumberInput(attrs={"step": "0.01"}),
    )
    evidence_audit_rate = forms.FloatField(
        label="Audit sampling rate",
        help_text="Share of all cases, confident ones too, sent for review (0 to 1; 0 sends none).",
        widget=forms.NumberInput(attrs={"step": "0.01"}),
    )
    evidence_daily_cap = forms.IntegerField(
        label="Evidence samples per device and day", help_text="0 sends none."
    )
    image_evidence = forms.BooleanField(
        required=False,
        label="Images may be sent as evidence",
        help_text="Off keeps images on site.",
    )
    telemetry_interval_s = forms.IntegerField(
        label="Telemetry interval (s)", help_text="Seconds between telemetry batches (10 to 3600)."
    )
    desired_poll_interval_s = forms.IntegerField(
        label="Desired-state poll interval (s)",
        help_text="Seconds between polls for what to run (15 to 3600).",
    )
