"""The fleet's card on the Overview page."""

from __future__ import annotations

from django.urls import reverse

from opshero.models import Organization
from opshero.overview import Kpi

from .models import Site
from .selectors import connectivity_counts


def fleet_kpis(org: Organization) -> list[Kpi]:
    counts = connectivity_counts(org=org)
    in_service = counts["online"] + counts["offline"]
    sites = Site.objects.filter(organization=org).count()
    return [
        Kpi(
            label="Devices online",
            value=f"{counts['online']} / {in_service}",
            detail=f"{counts['offline']} offline · {counts['provisioning']} provisioning · "
            f"{sites} site{'s' if sites != 1 else ''}",
            url=reverse("fleet:devices", kwargs={"org": org.slug}),
            icon="router",
        ),
    ]
