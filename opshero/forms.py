"""Forms of the platform pages."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm

from . import login_throttle
from .actors import client_ip
from .roles import Role


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's login form, refusing further attempts after repeated failures.

    The error for a wrong password never says whether the username exists.
    """

    error_messages = {
        **AuthenticationForm.error_messages,
        "locked": "Too many failed sign-in attempts. Wait %(minutes)s minutes and try again.",
    }

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        ip = client_ip(self.request) if self.request else None
        if username and login_throttle.is_locked(username, ip):
            raise forms.ValidationError(
                self.error_messages["locked"],
                code="locked",
                params={"minutes": max(1, settings.LOGIN_LOCKOUT_SECONDS // 60)},
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            if username:
                login_throttle.register_failure(username, ip)
            raise
        login_throttle.reset(username, ip)
        return cleaned


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class AddMemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class CurrencyForm(forms.Form):
    currency = forms.CharField(max_length=8)


class ApprovalPolicyForm(forms.Form):
    single_approver = forms.BooleanField(required=False)
    reason = forms.CharField(max_length=1000)


def apply_domain_error(form: forms.Form, error) -> None:
    """Show a service's DomainError on the form: per field where it names one, else on top."""
    placed = False
    for field_name, reasons in error.fields.items():
        target = field_name if field_name in form.fields else None
        for reason in reasons:
            form.add_error(target, reason if target else f"{field_name}: {reason}")
            placed = True
    if not placed:
        form.add_error(None, error.message)


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=80, help_text="What the token is for, e.g. “CI pipeline” or “my laptop”."
    )
