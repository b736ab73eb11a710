"""The one place that decides between a full page and an HTMX fragment."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers


def wants_fragment(request: HttpRequest) -> bool:
    """An HTMX request that is not a boosted navigation nor a history restore."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render_page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    fragment: str | None = None,
    status: int = 200,
) -> HttpResponse:
    """Render ``template``, or only ``fragment`` when HTMX asks for a piece of the page.

    The full template includes the fragment, so both render the same markup.
    """
    name = fragment if fragment and wants_fragment(request) else template
    response = render(request, name, context, status=status)
    # The same URL answers with two different bodies; caches must keep them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response
