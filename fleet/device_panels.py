"""Panels that apps above fleet add to the device page, without fleet importing them.

An app registers a function in its ``AppConfig.ready()``:
``device_panels.register(fn)``, where ``fn(request, device)`` returns
``(template_name, context)`` or None (nothing to show). The device page renders every panel
in registration order; rollouts shows "the model it should run" and the deployment history.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

PanelFunction = Callable[[HttpRequest, Any], "tuple[str, dict] | None"]

_PANELS: list[PanelFunction] = []


def register(fn: PanelFunction) -> PanelFunction:
    """Add a panel (once; registering the same function again changes nothing)."""
    if fn not in _PANELS:
        _PANELS.append(fn)
    return fn


def render_panels(request: HttpRequest, device) -> list[SafeString]:
    """Every registered panel of ``device``, rendered."""
    rendered = []
    for fn in _PANELS:
        answer = fn(request, device)
        if answer is None:
            continue
        template_name, context = answer
        html = render_to_string(template_name, {"device": device, **context}, request=request)
        rendered.append(mark_safe(html))  # noqa: S308 - a template's own output
    return rendered
