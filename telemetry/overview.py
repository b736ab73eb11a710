"""Fleet health's cards on the Overview page (field figures, from the rollups)."""

from __future__ import annotations

from django.urls import reverse

from opshero.models import Organization
from opshero.overview import Kpi

from .selectors import KPI_MINUTES, fleet_kpis

NO_DATA = "no data yet"


def health_kpis(org: Organization) -> list[Kpi]:
    """Four cards; a figure nothing was measured for says so rather than showing 0."""
    kpis = fleet_kpis(org=org)
    health_url = reverse("telemetry:health", kwargs={"org": org.slug})
    worst = next((s for s in kpis.p95_by_site if s.latency.p95 is not None), None)
    live = kpis.open_alerts + kpis.acknowledged_alerts
    return [
        Kpi(
            label="Throttled devices",
            value=(
                f"{kpis.throttled_devices} / {kpis.reporting_devices}"
                if kpis.reporting_devices
                else NO_DATA
            ),
            detail=(
                f"of the devices reporting health at {kpis.latest_minute:%H:%M}"
                if kpis.latest_minute
                else "no device reported health in the last 10 minutes"
            ),
            url=health_url,
            icon="temperature",
        ),
        Kpi(
            label="Events per minute",
            value=NO_DATA if kpis.events_per_minute is None else f"{kpis.events_per_minute:,.1f}",
            detail=f"inferences, mean of the last {KPI_MINUTES} complete minutes",
            url=health_url,
            icon="activity",
        ),
        Kpi(
            label="Open alerts",
            value=str(live),
            detail=f"{kpis.open_alerts} open · {kpis.acknowledged_alerts} acknowledged",
            url=reverse("telemetry:alerts", kwargs={"org": org.slug}),
            icon="alert-triangle",
        ),
        Kpi(
            label="Worst site P95",
            value=NO_DATA if worst is None else f"{worst.latency.p95:,.1f} ms",
            detail=(
                f"{worst.site_name}, inference latency this hour and the last (field)"
                if worst
                else "no site reported inferences this hour or the last"
            ),
            url=health_url,
            icon="clock",
        ),
    ]
