"""The fleet's cards on the Overview page."""

from __future__ import annotations

from django.db.models import Count, Q
from django.urls import reverse

from opshero.models import Organization
from opshero.overview import Kpi

from .models import ModelVersion, Site
from .selectors import connectivity_counts


def fleet_kpis(org: Organization) -> list[Kpi]:
    counts = connectivity_counts(org=org)
    in_service = counts["online"] + counts["offline"]
    sites = Site.objects.filter(organization=org).count()
    versions = ModelVersion.objects.filter(model__organization=org).aggregate(
        signed=Count("pk", filter=Q(status=ModelVersion.Status.SIGNED)),
        validated=Count("pk", filter=Q(status=ModelVersion.Status.VALIDATED)),
        total=Count("pk"),
    )
    return [
        Kpi(
            label="Devices online",
            value=f"{counts['online']} / {in_service}",
            detail=f"{counts['offline']} offline · {counts['provisioning']} provisioning · "
            f"{sites} site{'s' if sites != 1 else ''}",
            url=reverse("fleet:devices", kwargs={"org": org.slug}),
            icon="router",
        ),
        Kpi(
            label="Model versions",
            value=f"{versions['signed']} signed",
            detail=f"{versions['validated']} validated, awaiting signature · "
            f"{versions['total']} in the registry",
            url=reverse("fleet:models", kwargs={"org": org.slug}),
            icon="cpu",
        ),
    ]
