"""Names shared by every app: one case-insensitive uniqueness rule for sites, targets, groups and
models, so they all refuse a clash the same way."""

from __future__ import annotations

from typing import Any

from .errors import Conflict, InvalidInput


def unique_name(queryset, name: Any, *, noun: str, exclude: Any = None) -> str:
    """A stripped, non-empty name no other row of ``queryset`` has (case-insensitive)."""
    name = (name or "").strip()
    if not name:
        raise InvalidInput(f"A {noun} needs a name.", fields={"name": ["Required."]})
    clash = queryset.filter(name__iexact=name)
    if exclude is not None:
        clash = clash.exclude(pk=exclude.pk)
    if clash.exists():
        raise Conflict(
            f"A {noun} called '{name}' exists.",
            fields={"name": [f"Another {noun} has this name."]},
        )
    return name
