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
    return events_by_reference(
        device_id=device.pk, organization_id=device.organization_id, refs=refs
    )


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


# --- the review queue ---------------------------------------------------------------------------
#
# The queue page's cost does not grow with the number of waiting samples: the lanes (site x
# model version) and their counts are one GROUP BY, and the current and next items are LIMIT
# queries along the ``review_evidence_queue`` index (organization, status, site, model_version,
# received_at).

from dataclasses import dataclass  # noqa: E402  (imports of this section, kept with it)
from datetime import datetime  # noqa: E402

from django.db.models import Count, Min  # noqa: E402


@dataclass(frozen=True)
class QueueLane:
    """The waiting (linked) samples of one site and one model version."""

    site_id: int
    site_name: str
    site_kind: str
    model_version_id: int | None
    model_label: str
    waiting: int
    oldest_received_at: datetime

    @property
    def version_param(self) -> str:
        """The ``version`` query parameter naming this lane (``none``: an unregistered model)."""
        return str(self.model_version_id) if self.model_version_id is not None else "none"


def queue_lanes(*, org: Organization, reason: str | None = None) -> list[QueueLane]:
    """Every lane with waiting samples, the one waiting longest first (three queries)."""
    from fleet.models import Site
    from modelregistry.models import ModelVersion

    waiting = EvidenceSample.objects.filter(organization=org, status=EvidenceSample.Status.LINKED)
    if reason:
        waiting = waiting.filter(reason=reason)
    rows = list(
        waiting.order_by()
        .values("site_id", "model_version_id")
        # Only columns of the queue index: PostgreSQL counts from the index alone.
        .annotate(waiting=Count("*"), oldest=Min("received_at"))
        .order_by("oldest", "site_id")
    )
    sites = {
        s["pk"]: s
        for s in Site.objects.filter(organization=org, pk__in={r["site_id"] for r in rows}).values(
            "pk", "name", "kind"
        )
    }
    version_ids = {r["model_version_id"] for r in rows if r["model_version_id"] is not None}
    versions = {
        v["pk"]: f"{v['model__name']} {v['version']}"
        for v in ModelVersion.objects.filter(model__organization=org, pk__in=version_ids).values(
            "pk", "version", "model__name"
        )
    }
    lanes = []
    for row in rows:
        site = sites.get(row["site_id"], {"name": "?", "kind": ""})
        label = versions.get(row["model_version_id"]) or "a model not in the registry"
        lanes.append(
            QueueLane(
                site_id=row["site_id"],
                site_name=site["name"],
                site_kind=site["kind"],
                model_version_id=row["model_version_id"],
                model_label=label,
                waiting=row["waiting"],
                oldest_received_at=row["oldest"],
            )
        )
    return lanes


def _lane_samples(
    *, org_id: int, site_id: int, model_version_id: int | None, reason: str | None
) -> QuerySet[EvidenceSample]:
    samples = EvidenceSample.objects.filter(
        organization_id=org_id, status=EvidenceSample.Status.LINKED, site_id=site_id
    )
    if model_version_id is None:
        samples = samples.filter(model_version__isnull=True)
    else:
        samples = samples.filter(model_version_id=model_version_id)
    if reason:
        samples = samples.filter(reason=reason)
    return samples.select_related("site", "model_version__model").order_by("received_at", "pk")


def first_in_lane(
    *, org: Organization, site_id: int, model_version_id: int | None, reason: str | None = None
) -> tuple[EvidenceSample | None, EvidenceSample | None]:
    """The lane's oldest waiting sample and the one after it (one LIMIT 2 query)."""
    found = list(
        _lane_samples(
            org_id=org.pk, site_id=site_id, model_version_id=model_version_id, reason=reason
        )[:2]
    )
    return (found[0] if found else None), (found[1] if len(found) > 1 else None)


def next_in_lane(*, sample: EvidenceSample, reason: str | None = None) -> EvidenceSample | None:
    """The waiting sample after ``sample`` in its lane (received later; same time: larger id).

    Two LIMIT 1 queries along the queue index at most, wherever ``sample`` is in the lane."""
    lane = _lane_samples(
        org_id=sample.organization_id,
        site_id=sample.site_id,
        model_version_id=sample.model_version_id,
        reason=reason,
    )
    same_time = lane.filter(received_at=sample.received_at, pk__gt=sample.pk).first()
    if same_time is not None:
        return same_time
    return lane.filter(received_at__gt=sample.received_at).first()
