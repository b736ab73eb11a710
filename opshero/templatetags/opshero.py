"""Small presentation filters used across OpsHero templates."""

from django import template

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
