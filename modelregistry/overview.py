"""The model registry's card on the Overview page."""

from __future__ import annotations

from django.db.models import Count, Q
from django.urls import reverse

from opshero.models import Organization
from opshero.overview import Kpi

from .models import ModelVersion


def registry_kpis(org: Organization) -> list[Kpi]:
    versions = ModelVersion.objects.filter(model__organization=org).aggregate(
        signed=Count("pk", filter=Q(status=ModelVersion.Status.SIGNED)),
        validated=Count("pk", filter=Q(status=ModelVersion.Status.VALIDATED)),
        total=Count("pk"),
    )
    return [
        Kpi(
            label="Model versions",
            value=f"{versions['signed']} signed",
            detail=f"{versions['validated']} validated, awaiting signature · "
            f"{versions['total']} in the registry",
            url=reverse("modelregistry:models", kwargs={"org": org.slug}),
            icon="cpu",
        ),
    ]
