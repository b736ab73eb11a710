"""Template filters of the planning pages: numbers, placements and chart figures."""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.utils.html import _json_script_escapes
from django.utils.safestring import mark_safe

from roi.models import Workflow
from roi.reports import PLACEMENT_LABELS, format_money, format_number, format_share

register = template.Library()

TIER_LABELS = {"on_device": "On-device", "near_edge": "Near-edge", "cloud": "Cloud"}
TIER_ICONS = {"on_device": "device-mobile", "near_edge": "server-2", "cloud": "cloud"}


@register.filter
def figure_json(figure: dict[str, Any] | None) -> str:
    """A Plotly figure as JSON that is safe inside ``<script type="application/json">``.

    Candidate names and labels are user text: ``<``, ``>`` and ``&`` are escaped as in
    Django's ``json_script`` so nothing can close the script element.
    """
    text = json.dumps(figure or {}, separators=(",", ":"), allow_nan=False)
    return mark_safe(text.translate(_json_script_escapes))  # noqa: S308 - escaped above


@register.filter
def money(value: float | None) -> str:
    return format_money(value)


@register.filter
def signed_money(value: float | None) -> str:
    return format_money(value, signed=True)


@register.filter
def share(value: float | None) -> str:
    return format_share(value)


@register.filter
def number(value: float | None) -> str:
    return format_number(value)


@register.filter
def placement_label(value: str) -> str:
    return PLACEMENT_LABELS.get(str(value), str(value))


@register.filter
def tier_label(value: str) -> str:
    return TIER_LABELS.get(str(value), str(value))


@register.filter
def tier_icon(value: str) -> str:
    return TIER_ICONS.get(str(value), "point")


@register.filter
def workflow_label(value: str) -> str:
    try:
        return Workflow(value).label
    except ValueError:
        return str(value)


@register.filter
def get(mapping: Any, key: Any) -> Any:
    """``mapping|get:key`` for dicts whose keys are not valid template names."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def humanize_key(value: str) -> str:
    return str(value).replace("_", " ")


@register.inclusion_tag("roi/partials/assessment_result.html")
def assessment_result(result: dict[str, Any], answers: dict[str, Any] | None = None) -> dict:
    """The wizard's answer laid out: placement, parts with their rules, why, architecture,
    risks and what would change it. Works on the stored ``WizardResult.to_dict()``."""
    findings = result.get("findings", [])
    titles = {finding["rule_id"]: finding["title"] for finding in findings}
    parts = []
    for part in result.get("parts", []):
        parts.append(
            {
                **part,
                "rules": [
                    titles.get(rule_id, rule_id.replace(".", " ").replace("_", " "))
                    for rule_id in part["rule_ids"]
                ],
                "primary": part is result["parts"][0],
            }
        )
    roles = {item["tier"]: item["role"] for item in result["architecture"].get("tier_roles", [])}
    return {
        "result": result,
        "parts": parts,
        "findings": findings,
        "architecture": result["architecture"],
        "tier_roles": roles,
        "answers": answers or result.get("answers", {}),
    }
