"""Telemetry pages: the ingest page (lag, backlog, held batches, the last day's totals)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from opshero.htmx import render_page
from opshero.tenancy import org_view

from . import selectors

POLL_SECONDS = 5


@require_GET
@never_cache
@org_view()
def ingest(request: HttpRequest) -> HttpResponse:
    """The ingest page; an HTMX poll gets only the panel, refreshed every few seconds."""
    context = {
        "overview": selectors.ingest_overview(org=request.org),
        "max_attempts": settings.TELEMETRY_MAX_INGEST_ATTEMPTS,
        "poll_seconds": POLL_SECONDS,
    }
    return render_page(
        request,
        "telemetry/ingest.html",
        context,
        fragment="telemetry/partials/ingest_panel.html",
    )
