"""Review reads, always scoped to an organisation."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db.models import QuerySet

from fleet.models import Device
from opshero.models import Organization
from telemetry.selectors import FoundEvents, events_by_reference

from .models import EvidenceSample, EvidenceSettings


def evidence_settings_for(*, org: Organization) -> EvidenceSettings:
    """The organisation's retention schedule (the settings' defaults until an admin sets one)."""
    current = EvidenceSettings.objects.filter(organization=org).first()
    if current is None:
        current = EvidenceSettings(
            organization=org,
            retention_days=settings.EVIDENCE_RETENTION_DAYS,
            clinic_retention_days=min(
                settings.EVIDENCE_CLINIC_RETENTION_DAYS, settings.EVIDENCE_RETENTION_DAYS
            ),
        )
    return current


def find_inference_events(*, device: Device, refs: Iterable[tuple[str, int]]) -> FoundEvents:
    return events_by_reference(device_id=device.pk, refs=refs)


def class_names_for(sample: EvidenceSample) -> list[str]:
    """The model's class names from its I/O contract, in the contract's order ([] if unknown)."""
    version = sample.model_version
    if version is None or not version.io_contract:
        return []
    return [str(name) for name in (version.io_contract or {}).get("labels") or []]


def samples_for_org(*, org: Organization) -> QuerySet[EvidenceSample]:
    return EvidenceSample.objects.filter(organization=org)


def sample_for_org(*, org: Organization, pk) -> EvidenceSample | None:
    try:
        return (
            EvidenceSample.objects.select_related("site", "device", "model_version__model")
            .filter(organization=org, pk=pk)
            .first()
        )
    except (ValueError, TypeError):  # not a UUID
        return None
