"""Forms of the telemetry pages: alert notification channels."""

from __future__ import annotations

from django import forms
from django.core.validators import validate_email

from .models import ALERT_EVENTS, NotificationChannel

_EVENT_CHOICES = [(str(event), event.label) for event in ALERT_EVENTS]


class ChannelForm(forms.Form):
    """A new webhook or e-mail channel; the service checks the URL and the name."""

    kind = forms.ChoiceField(choices=NotificationChannel.Kind.choices)
    name = forms.CharField(max_length=120)
    url = forms.URLField(
        max_length=500,
        required=False,
        label="Webhook URL",
        assume_scheme="https",
        help_text="Receives a signed JSON POST for every event.",
    )
    recipients = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="E-mail addresses, one per line or separated by commas.",
    )
    events = forms.MultipleChoiceField(
        choices=_EVENT_CHOICES,
        initial=[value for value, _ in _EVENT_CHOICES],
        widget=forms.CheckboxSelectMultiple,
    )

    def clean_recipients(self) -> list[str]:
        raw = self.cleaned_data["recipients"].replace(",", "\n")
        addresses = [line.strip() for line in raw.splitlines() if line.strip()]
        for address in addresses:
            try:
                validate_email(address)
            except forms.ValidationError as exc:
                raise forms.ValidationError(f"{address} is not an e-mail address.") from exc
        return addresses

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind == NotificationChannel.Kind.WEBHOOK and not data.get("url"):
            self.add_error("url", "A webhook needs a URL.")
        if kind == NotificationChannel.Kind.EMAIL and not data.get("recipients"):
            self.add_error("recipients", "Give at least one e-mail address.")
        return data


class AlertResolveForm(forms.Form):
    """Resolving an alert by hand: what was done, for whoever reads the alert later."""

    resolution = forms.CharField(max_length=300, required=False, widget=forms.Textarea)


class AlertAcknowledgeForm(forms.Form):
    """Acknowledging takes no input; a form so the shared POST flow applies."""
