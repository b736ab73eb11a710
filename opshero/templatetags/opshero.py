"""Small presentation filters used across OpsHero templates."""

import json
from typing import Any

from django import template

from opshero.badges import badge_for

register = template.Library()


@register.filter
def initials(user) -> str:
    """Two letters for an avatar: first and last name, else the username's first letter."""
    first = (getattr(user, "first_name", "") or "").strip()
    last = (getattr(user, "last_name", "") or "").strip()
    if first or last:
        return (first[:1] + last[:1]).upper()
    name = user.get_username() if hasattr(user, "get_username") else str(user)
    return name[:1].upper()


def _css_class(widget) -> str:
    from django import forms

    if isinstance(widget, forms.CheckboxInput):
        return "form-check-input"
    if isinstance(widget, forms.Select | forms.SelectMultiple):
        return "form-select"
    return "form-control"


@register.inclusion_tag("opshero/partials/field.html")
def form_field(field, help_text: str = ""):
    """One form field the Tabler way: label, input with its error state, help, errors."""
    widget = field.field.widget
    css = _css_class(widget)
    if field.errors:
        css += " is-invalid"
    attrs = {"class": css}
    if field.field.required:
        attrs["required"] = True
    return {
        "field": field,
        "widget_html": field.as_widget(attrs=attrs),
        "is_checkbox": css.startswith("form-check-input"),
        "help_text": help_text or field.help_text,
    }


NOTHING = "\u2014"  # an em dash: no value


def _readable(value: Any) -> str:
    if value is None or value == "":
        return NOTHING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return str(value)


@register.filter
def audit_details(data: Any) -> list[tuple[str, str]]:
    """An audit event's data as (key, text) pairs a person reads: a list joined with commas,
    None as a dash, nested objects as compact JSON; never Python's ``repr``."""
    if not data:
        return []
    if not isinstance(data, dict):  # record_audit_event stores a dict; be safe with old rows
        data = {"data": data}
    pairs = []
    for key, value in data.items():
        if isinstance(value, list | tuple):
            text = ", ".join(_readable(item) for item in value) if value else NOTHING
        else:
            text = _readable(value)
        pairs.append((str(key), text))
    return pairs


@register.inclusion_tag("partials/status_badge.html")
def status_badge(
    status, kind: str, label: str = "", solid: bool = False, testid: str = "", css: str = ""
):
    """A status as a badge, coloured by the ``kind``'s table in ``opshero.badges``.

    ``{% status_badge device.connectivity "device" %}``; ``solid`` for a filled badge,
    ``label`` where the page names the value itself, ``testid`` and ``css`` for the markup.
    """
    value = str(status or "")
    badge = badge_for(kind, value)
    return {
        "status": value,
        "badge": badge,
        "label": label or badge.label or value,
        "solid": solid,
        "testid": testid,
        "css": css,
    }
