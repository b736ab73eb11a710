"""Forms of the review data pages: the retention schedule and a labelled export's options."""

from __future__ import annotations

from django import forms

from fleet.models import Site
from modelregistry.models import ModelVersion


class EvidenceSettingsForm(forms.Form):
    """The retention schedule (``review.services.set_evidence_settings`` checks the rules)."""

    retention_days = forms.IntegerField(
        label="Retention (days)",
        min_value=1,
        max_value=3650,
        help_text="Evidence of docks, field service and other sites is deleted this many days "
        "after it was received.",
    )
    clinic_retention_days = forms.IntegerField(
        label="Clinic retention (days)",
        min_value=1,
        max_value=3650,
        help_text="Clinics keep evidence a shorter time: at most the retention above.",
    )


class LabelledExportForm(forms.Form):
    """What a labelled export holds; identifiers and free text are left out unless chosen."""

    sites = forms.ModelMultipleChoiceField(
        queryset=Site.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
        help_text="None chosen: every site.",
    )
    model_version = forms.ModelChoiceField(
        queryset=ModelVersion.objects.none(),
        required=False,
        empty_label="Every model version",
    )
    include_device_ids = forms.BooleanField(
        required=False,
        label="Include device ids and site names",
        help_text="Off by default: the dataset then names no device, serial or site.",
    )
    include_free_text = forms.BooleanField(
        required=False,
        label="Include free text (review reasons, the other keys of JSON samples)",
        help_text="Off by default: what people typed may name patients, staff or places.",
    )

    def __init__(self, *args, sites: list[Site], versions: list[ModelVersion], **kwargs):
        super().__init__(*args, **kwargs)
        # The choices the page already read: no second query per field.
        site_field = self.fields["sites"]
        site_field.queryset = Site.objects.filter(pk__in=[s.pk for s in sites])
        site_field.choices = [(site.pk, site.name) for site in sites]
        version_field = self.fields["model_version"]
        version_field.queryset = ModelVersion.objects.filter(pk__in=[v.pk for v in versions])
        version_field.choices = [("", "Every model version")] + [
            (version.pk, f"{version.model.name} {version.version}") for version in versions
        ]
