"""Reads of staged rollouts, always scoped to an organisation."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Max, Q, QuerySet

from fleet.models import Device
from modelregistry.models import DeviceAssignment
from opshero.models import AuditEvent, Organization

from .models import CanaryVerdict, DeploymentAction, Rollout, RolloutApproval, Wave

A = DeploymentAction.Status


def rollouts_for_org(*, org: Organization, status: str | None = None) -> QuerySet[Rollout]:
    """The organisation's rollouts, newest first, with their device count."""
    query = (
        Rollout.objects.filter(organization=org)
        .select_related("model", "version", "created_by")
        .annotate(device_total=Count("actions"))
        .order_by("-created_at", "-pk")
    )
    if status:
        query = query.filter(status=status)
    return query


def rollout_for_org(*, org: Organization, pk: int) -> Rollout | None:
    return (
        Rollout.objects.filter(organization=org, pk=pk)
        .select_related("model", "version", "created_by", "signature", "organization")
        .first()
    )


def approval_queue(*, org: Organization) -> QuerySet[Rollout]:
    """Rollouts waiting for an approver's decision, oldest first."""
    return rollouts_for_org(org=org, status=Rollout.Status.PENDING_APPROVAL).order_by(
        "submitted_at", "pk"
    )


def standing_approval(rollout: Rollout) -> RolloutApproval | None:
    return (
        rollout.approvals.filter(voided_at__isnull=True)
        .select_related("decided_by")
        .order_by("-decided_at")
        .first()
    )


@dataclass(frozen=True)
class WaveProgress:
    wave: Wave
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return self.wave.device_count

    def share(self, *states: str) -> float:
        return sum(self.counts.get(s, 0) for s in states) / self.total if self.total else 0.0

    @property
    def healthy_pct(self) -> float:
        return 100 * self.share(A.HEALTHY)

    @property
    def installing_pct(self) -> float:
        return 100 * self.share(A.NOTIFIED, A.DOWNLOADING, A.VERIFYING, A.INSTALLED)

    @property
    def bad_pct(self) -> float:
        return 100 * self.share(A.FAILED, A.TIMED_OUT)

    @property
    def back_pct(self) -> float:
        return 100 * self.share(A.ROLLED_BACK)

    @property
    def duration(self) -> timedelta | None:
        if self.wave.started_at and self.wave.finished_at:
            return self.wave.finished_at - self.wave.started_at
        return None


def wave_progress(rollout: Rollout) -> list[WaveProgress]:
    """Each wave with its device counts per state (two queries)."""
    waves = list(rollout.waves.order_by("number"))
    counts: dict[int, dict[str, int]] = {wave.pk: {} for wave in waves}
    for wave_id, status, n in (
        DeploymentAction.objects.filter(rollout=rollout)
        .values_list("wave_id", "status")
        .annotate(n=Count("pk"))
        .values_list("wave_id", "status", "n")
    ):
        counts[wave_id][status] = n
    return [WaveProgress(wave=wave, counts=counts[wave.pk]) for wave in waves]


def state_counts(rollout: Rollout) -> dict[str, int]:
    counts = dict(
        DeploymentAction.objects.filter(rollout=rollout)
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    return {status: counts.get(status, 0) for status, _ in A.choices}


def verdicts_for(rollout: Rollout) -> list[CanaryVerdict]:
    return list(
        CanaryVerdict.objects.filter(rollout=rollout)
        .select_related("wave")
        .order_by("wave__number", "round", "pk")
    )


@dataclass(frozen=True)
class RolloutMeasures:
    """Rollout time (approval → every device healthy), rollback time (decision → every
    device back), and the failure reasons by code."""

    rollout_time: timedelta | None
    rollback_time: timedelta | None
    rollback_waiting: int
    failure_reasons: dict[str, int]


def rollout_measures(rollout: Rollout) -> RolloutMeasures:
    actions = DeploymentAction.objects.filter(rollout=rollout)
    rollout_time = None
    if rollout.status == Rollout.Status.COMPLETED and rollout.approved_at:
        last = actions.filter(status=A.HEALTHY).aggregate(last=Max("healthy_at"))["last"]
        rollout_time = (last or rollout.finished_at) - rollout.approved_at
    rollback_time = None
    if rollout.rollback_started_at and rollout.rollback_finished_at:
        rollback_time = rollout.rollback_finished_at - rollout.rollback_started_at
    waiting = actions.filter(rollback_requested_at__isnull=False).exclude(status=A.ROLLED_BACK)
    reasons = Counter(
        dict(
            actions.filter(status__in=[A.FAILED, A.TIMED_OUT])
            .values_list("reason_code")
            .annotate(n=Count("pk"))
            .values_list("reason_code", "n")
        )
    )
    return RolloutMeasures(
        rollout_time=rollout_time,
        rollback_time=rollback_time,
        rollback_waiting=waiting.count(),
        failure_reasons={code or "unspecified": n for code, n in reasons.items()},
    )


def timeline(rollout: Rollout, limit: int = 60) -> list[AuditEvent]:
    """What happened to the rollout, newest first (its audit events)."""
    return list(
        AuditEvent.objects.filter(
            organization_id=rollout.organization_id,
            target_type="rollouts.rollout",
            target_id=str(rollout.pk),
        ).order_by("-at", "-id")[:limit]
    )


def actions_for_rollout(
    *, rollout: Rollout, status: str | None = None
) -> QuerySet[DeploymentAction]:
    query = DeploymentAction.objects.filter(rollout=rollout).select_related("device", "wave")
    if status:
        query = query.filter(status=status)
    return query.order_by("wave__number", "device__name")


def deployments_for_device(*, device: Device, limit: int = 10) -> list[DeploymentAction]:
    """The device's deployment history, newest first."""
    return list(
        DeploymentAction.objects.filter(device=device)
        .select_related("rollout__version", "rollout__model", "previous_version", "wave")
        .order_by("-updated_at", "-pk")[:limit]
    )


def assignments_for_device(*, device: Device) -> list[DeviceAssignment]:
    return list(
        DeviceAssignment.objects.filter(device=device).select_related(
            "model", "version", "previous_version"
        )
    )


@dataclass(frozen=True)
class DurationFigures:
    """Rollout or rollback durations of finished rollouts: what the plan's field sources read."""

    minutes: tuple[float, ...]
    devices: int
    first: datetime | None
    last: datetime | None

    @property
    def median(self) -> float | None:
        values = sorted(self.minutes)
        if not values:
            return None
        middle = len(values) // 2
        return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def completed_durations(
    *, org: Organization, since: datetime, model=None
) -> dict[str, DurationFigures]:
    """Rollout time (approval → the last device healthy) of rollouts completed since ``since``
    and rollback time (decision → the last device back) of rollbacks finished since then,
    optionally for one model. A fixed number of queries."""
    rollouts = Rollout.objects.filter(organization=org).filter(
        Q(status=Rollout.Status.COMPLETED, finished_at__gte=since)
        | Q(rollback_finished_at__gte=since)
    )
    if model is not None:
        rollouts = rollouts.filter(model=model)
    rollouts = list(rollouts.annotate(device_total=Count("actions")))
    last_healthy = dict(
        DeploymentAction.objects.filter(rollout__in=rollouts, status=A.HEALTHY)
        .values_list("rollout_id")
        .annotate(last=Max("healthy_at"))
        .values_list("rollout_id", "last")
    )
    made: dict[str, list] = {"rollout": [], "rollback": []}
    for rollout in rollouts:
        if rollout.status == Rollout.Status.COMPLETED and rollout.approved_at:
            end = last_healthy.get(rollout.pk) or rollout.finished_at
            made["rollout"].append((end, (end - rollout.approved_at).total_seconds() / 60, rollout))
        if rollout.rollback_started_at and rollout.rollback_finished_at:
            span = rollout.rollback_finished_at - rollout.rollback_started_at
            made["rollback"].append(
                (rollout.rollback_finished_at, span.total_seconds() / 60, rollout)
            )
    return {
        kind: DurationFigures(
            minutes=tuple(minutes for _, minutes, _ in rows),
            devices=sum(r.device_total for _, _, r in rows),
            first=min((end for end, _, _ in rows), default=None),
            last=max((end for end, _, _ in rows), default=None),
        )
        for kind, rows in made.items()
    }


def unassigned_versions(*, org: Organization, reported: dict[int, set[str]]) -> dict[int, set[str]]:
    """Of the (device → reported version sha256s) given, those the device was never assigned
    by any rollout or assignment (the device page's flag)."""
    if not reported:
        return {}
    known: dict[int, set[str]] = {}
    for device_id, sha in DeploymentAction.objects.filter(
        organization=org, device_id__in=list(reported)
    ).values_list("device_id", "rollout__version__sha256"):
        known.setdefault(device_id, set()).add(sha)
    for device_id, sha in DeploymentAction.objects.filter(
        organization=org, device_id__in=list(reported), previous_version__isnull=False
    ).values_list("device_id", "previous_version__sha256"):
        known.setdefault(device_id, set()).add(sha)
    for device_id, sha in DeviceAssignment.objects.filter(
        organization=org, device_id__in=list(reported)
    ).values_list("device_id", "version__sha256"):
        known.setdefault(device_id, set()).add(sha)
    return {
        device_id: shas - known.get(device_id, set())
        for device_id, shas in reported.items()
        if shas - known.get(device_id, set())
    }
