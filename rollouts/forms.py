"""Forms of the rollout pages: the planning wizard (with its wave table) and the decisions."""

from __future__ import annotations

from django import forms
from django.utils import timezone

from fleet.models import DeviceGroup, Site
from modelregistry import assignment_services
from modelregistry.models import ModelVersion

from .analysis import Thresholds
from .models import DeploymentAction
from .planning import AnalysisSettings, WaveSpec, default_waves

DEFAULTS = Thresholds()
PLAN_DEFAULTS = AnalysisSettings()

# Field of the wizard ← field a service names in InvalidInput.
SERVICE_FIELDS = {
    "site_ids": "sites",
    "group_ids": "groups",
    "canary_site_ids": "canary_sites",
    "version": "version",
    "seed": "seed",
}


class VersionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: ModelVersion) -> str:
        signature = assignment_services.live_signature(obj)
        if signature is None:
            return f"{obj.model.name} {obj.version} · signed, no live signature"
        expires = timezone.localtime(signature.expires_at).strftime("%Y-%m-%d")
        return (
            f"{obj.model.name} {obj.version} · signed, release {signature.release_counter}, "
            f"expires {expires}"
        )


class WaveForm(forms.Form):
    """One row of the wave table; share blank = the canary (first row only); a row without a
    name is not a wave (the spare empty row, or one the user cleared)."""

    name = forms.CharField(max_length=80, required=False)
    share_percent = forms.FloatField(required=False, min_value=0.01, max_value=100)
    soak_minutes = forms.IntegerField(required=False, min_value=0, max_value=7 * 24 * 60)
    success_pct = forms.FloatField(required=False, min_value=0.01, max_value=100)
    error_pct = forms.FloatField(required=False, min_value=0.01, max_value=100)
    device_deadline_minutes = forms.IntegerField(required=False, min_value=1, max_value=7 * 24 * 60)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.use_required_attribute = False
        for name, field in self.fields.items():
            css = "form-control form-control-sm"
            if self.is_bound and name in self.errors:
                css += " is-invalid"
            field.widget.attrs["class"] = css
            field.widget.attrs["aria-label"] = name.replace("_", " ")

    def clean(self):
        cleaned = super().clean()
        if (cleaned.get("name") or "").strip():
            for name in ("soak_minutes", "success_pct", "error_pct", "device_deadline_minutes"):
                if cleaned.get(name) is None and name not in self.errors:
                    self.add_error(name, "Required for a wave.")
        return cleaned


WaveFormSet = forms.formset_factory(WaveForm, extra=1, max_num=8)


def wave_initial() -> list[dict]:
    return [
        {
            "name": spec.name,
            "share_percent": spec.share_percent,
            "soak_minutes": spec.soak_minutes,
            "success_pct": round(spec.success_threshold * 100, 2),
            "error_pct": round(spec.error_threshold * 100, 2),
            "device_deadline_minutes": spec.device_deadline_minutes,
        }
        for spec in default_waves()
    ]


class RolloutPlanForm(forms.Form):
    """The wizard: what goes where, in which waves, judged by which thresholds.

    ``clean`` turns the rows into ``WaveSpec``s and the thresholds into ``AnalysisSettings``
    (``self.waves`` and ``self.analysis``), so the preview and create share one reading."""

    name = forms.CharField(max_length=160, required=False)
    version = VersionChoiceField(queryset=ModelVersion.objects.none(), empty_label=None)
    sites = forms.ModelMultipleChoiceField(
        queryset=Site.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )
    groups = forms.ModelMultipleChoiceField(
        queryset=DeviceGroup.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )
    canary_sites = forms.ModelMultipleChoiceField(
        queryset=Site.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )
    latency_budget_pct = forms.FloatField(
        initial=DEFAULTS.latency_budget_pct,
        min_value=0,
        max_value=1000,
        help_text="A wave fails when its P95 latency is more than this many percent above the "
        "baseline's (Mann-Whitney test on the latency sketches).",
    )
    max_confidence_drop = forms.FloatField(
        initial=DEFAULTS.max_confidence_drop,
        min_value=0,
        max_value=1,
        help_text="Largest drop of the mean confidence allowed (0.05 = five hundredths).",
    )
    max_class_shift = forms.FloatField(
        initial=DEFAULTS.max_class_shift,
        min_value=0,
        max_value=0.83,
        help_text="Largest Jensen-Shannon distance between the class mix of the wave and of "
        "the baseline (0 = the same mix).",
    )
    max_low_confidence_increase = forms.FloatField(
        initial=DEFAULTS.max_low_confidence_increase,
        min_value=0,
        max_value=1,
        help_text=f"Largest rise of the share of inferences below confidence "
        f"{DEFAULTS.low_confidence:g} (0.05 = five percentage points; two-proportion test).",
    )
    max_throttling_increase = forms.FloatField(
        initial=DEFAULTS.max_throttling_increase,
        min_value=0,
        max_value=1,
        help_text="Largest rise of the share of time the devices report thermal throttling.",
    )
    max_failed_load_share = forms.FloatField(
        initial=DEFAULTS.max_failed_load_share,
        min_value=0,
        max_value=1,
        help_text="Largest share of crashes and failed model loads among the health reports.",
    )
    min_events = forms.IntegerField(
        initial=DEFAULTS.min_events,
        min_value=1,
        help_text="Fewer inferences than this on either side and a check is inconclusive: the "
        "soak is extended once, then an approver decides.",
    )
    min_reviews = forms.IntegerField(
        initial=DEFAULTS.min_reviews,
        min_value=0,
        max_value=100_000,
        required=False,
        help_text="Field accuracy from reviews: judged once the wave's sites have this many "
        "reviews of the new version (0: off). Fewer, and the gate says not evaluated.",
    )
    max_reviewed_accuracy_drop = forms.FloatField(
        initial=DEFAULTS.max_reviewed_accuracy_drop,
        min_value=0,
        max_value=1,
        required=False,
        help_text="Largest drop of reviewed accuracy against the previous version at the same "
        "sites (0.05 = five percentage points).",
    )
    reviewed_accuracy_floor = forms.FloatField(
        initial=DEFAULTS.reviewed_accuracy_floor,
        min_value=0,
        max_value=1,
        required=False,
        help_text="Reviewed accuracy the new version must reach whatever the baseline (0: none).",
    )
    device_soak_minutes = forms.IntegerField(
        initial=PLAN_DEFAULTS.device_soak_minutes,
        min_value=0,
        max_value=24 * 60,
        help_text="How long an installed device must serve inferences before it counts as "
        "healthy (installed is not healthy).",
    )
    auto_rollback = forms.BooleanField(
        initial=PLAN_DEFAULTS.auto_rollback,
        required=False,
        help_text="When a wave's analysis fails, roll that wave back at once (else only pause).",
    )
    seed = forms.IntegerField(
        required=False,
        min_value=0,
        help_text="Which devices fall into which wave is random but reproducible from this "
        "seed; leave blank for a random one.",
    )

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].queryset = (
            ModelVersion.objects.filter(model__organization=org, status=ModelVersion.Status.SIGNED)
            .select_related("model")
            .order_by("model__name", "-created_at")
        )
        sites = Site.objects.filter(organization=org).order_by("name")
        self.fields["sites"].queryset = sites
        self.fields["canary_sites"].queryset = sites
        self.fields["groups"].queryset = DeviceGroup.objects.filter(organization=org).order_by(
            "name"
        )
        data = args[0] if args else kwargs.get("data")
        self.wave_rows = WaveFormSet(
            data if self.is_bound else None,
            prefix="wave",
            initial=None if self.is_bound else wave_initial(),
        )
        self.waves: list[WaveSpec] = []
        self.analysis: AnalysisSettings | None = None

    def is_valid(self) -> bool:
        rows_valid = self.wave_rows.is_valid()
        valid = super().is_valid()
        if valid and not rows_valid:
            self.add_error(None, "Check the wave table: a row has a value out of range.")
        return valid and rows_valid

    def clean_canary_sites(self):
        chosen = self.cleaned_data.get("canary_sites")
        if chosen is not None and len(chosen) > 2:
            raise forms.ValidationError("Choose one or two canary sites, not more.")
        return chosen

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("sites") and not cleaned.get("groups"):
            self.add_error("sites", "Choose at least one site or device group to roll out to.")
        if not self.wave_rows.is_valid():
            return cleaned
        waves = []
        for row in self.wave_rows.cleaned_data:
            if not row or not (row.get("name") or "").strip():
                continue
            try:
                waves.append(
                    WaveSpec(
                        name=row["name"].strip(),
                        share_percent=row.get("share_percent"),
                        soak_minutes=row["soak_minutes"],
                        success_threshold=row["success_pct"] / 100,
                        error_threshold=row["error_pct"] / 100,
                        device_deadline_minutes=row["device_deadline_minutes"],
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                self.add_error(None, f"Wave table: {exc}")
                return cleaned
        if not waves:
            self.add_error(None, "Wave table: a rollout needs at least one wave.")
        self.waves = waves
        try:
            self.analysis = AnalysisSettings(
                thresholds=Thresholds(
                    **{
                        **DEFAULTS.to_dict(),
                        **{
                            name: cleaned[name]
                            for name in (
                                "latency_budget_pct",
                                "max_confidence_drop",
                                "max_class_shift",
                                "max_low_confidence_increase",
                                "max_throttling_increase",
                                "max_failed_load_share",
                                "min_events",
                                "min_reviews",
                                "max_reviewed_accuracy_drop",
                                "reviewed_accuracy_floor",
                            )
                            if cleaned.get(name) is not None
                        },
                    }
                ),
                device_soak_minutes=cleaned.get("device_soak_minutes")
                if cleaned.get("device_soak_minutes") is not None
                else PLAN_DEFAULTS.device_soak_minutes,
                auto_rollback=bool(cleaned.get("auto_rollback")),
            )
        except ValueError as exc:
            self.add_error(None, f"Thresholds: {exc}")
        return cleaned

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "version": data["version"],
            "site_ids": [site.pk for site in data.get("sites") or []],
            "group_ids": [group.pk for group in data.get("groups") or []],
            "canary_site_ids": [site.pk for site in data.get("canary_sites") or []],
            "waves": self.waves,
        }


def apply_plan_error(form: RolloutPlanForm, error) -> None:
    """A service's DomainError on the wizard: the service's field names mapped to the form's."""
    placed = False
    for name, reasons in (error.fields or {}).items():
        target = SERVICE_FIELDS.get(name)
        for reason in reasons:
            form.add_error(target, reason if target else f"{error.message} {reason}".strip())
            placed = True
    if not placed:
        form.add_error(None, error.message)


class RejectForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        required=False,  # the service refuses an empty reason, with its own words
    )


class ReasonForm(forms.Form):
    """Pause, abort and roll back take an optional reason (and roll back a wave)."""

    reason = forms.CharField(max_length=500, required=False)
    wave = forms.IntegerField(required=False, min_value=0)


class ActionFilterForm(forms.Form):
    status = forms.ChoiceField(
        choices=[("", "All states"), *DeploymentAction.Status.choices], required=False
    )
