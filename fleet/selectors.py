"""Fleet reads, each starting from an organisation (or, for the device API, from a device)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Case, CharField, Count, Prefetch, Q, QuerySet, Value, When
from django.utils import timezone

from onnxcheck.operators import OperatorSupport, TargetProfile
from opshero.models import AuditEvent, Organization

from .models import Device, DeviceGroup, EnrollmentToken, HardwareTarget, Site

if TYPE_CHECKING:  # filters.py builds on the vocabulary here; selectors only apply it
    from .filters import DeviceFilterSet


class Connectivity:
    """The status shown for a device: its lifecycle, with "active" split by last contact."""

    PROVISIONING = "provisioning"
    ONLINE = "online"
    OFFLINE = "offline"
    REVOKED = "revoked"
    RETIRED = "retired"
    CHOICES = (
        (PROVISIONING, "Provisioning"),
        (ONLINE, "Online"),
        (OFFLINE, "Offline"),
        (REVOKED, "Revoked"),
        (RETIRED, "Retired"),
    )


def offline_cutoff():
    return timezone.now() - timedelta(seconds=settings.DEVICE_OFFLINE_AFTER_SECONDS)


def with_connectivity(qs: QuerySet[Device]) -> QuerySet[Device]:
    """Annotate ``connectivity``: offline once an active device is silent for the threshold."""
    return qs.annotate(
        connectivity=Case(
            When(status=Device.Status.RETIRED, then=Value(Connectivity.RETIRED)),
            When(status=Device.Status.REVOKED, then=Value(Connectivity.REVOKED)),
            When(status=Device.Status.PROVISIONING, then=Value(Connectivity.PROVISIONING)),
            When(last_seen_at__gte=offline_cutoff(), then=Value(Connectivity.ONLINE)),
            default=Value(Connectivity.OFFLINE),
            output_field=CharField(),
        )
    )


def tag_filter(tags: list[str], field: str = "tags") -> Q:
    """Devices carrying any of ``tags`` (JSON text match, portable across SQLite/PostgreSQL)."""
    q = Q()
    for tag in tags:
        q |= Q(**{f"{field}__icontains": f'"{tag}"'})
    return q


def devices_for_org(
    *, org: Organization, filters: DeviceFilterSet | None = None
) -> QuerySet[Device]:
    """Devices with their site and target, annotated with connectivity, by name unless the
    filters order them otherwise; bad filter values are dropped."""
    qs = with_connectivity(
        Device.objects.filter(organization=org)
        .select_related("site", "hardware_target")
        # A target's operator list runs to hundreds of entries; lists never show it.
        .defer("hardware_target__operators", "hardware_target__source", "hardware_target__notes")
    ).order_by("name", "pk")
    return filters.apply(qs) if filters is not None else qs


def device_for_org(*, org: Organization, pk: int) -> Device | None:
    return devices_for_org(org=org).filter(pk=pk).first()


def connectivity_counts(*, org: Organization, site: Site | None = None) -> dict[str, int]:
    qs = with_connectivity(Device.objects.filter(organization=org))
    if site is not None:
        qs = qs.filter(site=site)
    counts = dict(
        qs.values_list("connectivity").annotate(n=Count("pk")).values_list("connectivity", "n")
    )
    return {key: counts.get(key, 0) for key, _ in Connectivity.CHOICES}


def sites_for_org(*, org: Organization) -> QuerySet[Site]:
    cutoff = offline_cutoff()
    return (
        Site.objects.filter(organization=org)
        .annotate(
            device_count=Count("devices", filter=~Q(devices__status=Device.Status.RETIRED)),
            online_count=Count(
                "devices",
                filter=Q(devices__status=Device.Status.ACTIVE, devices__last_seen_at__gte=cutoff),
            ),
        )
        .order_by("name")
    )


def site_choices(*, org: Organization) -> list[tuple[str, str]]:
    """(id, name) pairs for filter drop-downs, without building model instances."""
    return [
        (str(pk), name)
        for pk, name in Site.objects.filter(organization=org)
        .order_by("name")
        .values_list("pk", "name")
    ]


def target_choices(*, org: Organization) -> list[tuple[str, str]]:
    return [(str(pk), name) for pk, name in targets_for_org(org=org).values_list("pk", "name")]


def site_for_org(*, org: Organization, pk: int) -> Site | None:
    return Site.objects.filter(organization=org, pk=pk).first()


def targets_for_org(*, org: Organization) -> QuerySet[HardwareTarget]:
    """The organisation's own targets and the built-in ones."""
    return HardwareTarget.objects.filter(
        Q(organization=org) | Q(organization__isnull=True)
    ).order_by("organization_id", "name")


def target_for_org(*, org: Organization, pk: int) -> HardwareTarget | None:
    return targets_for_org(org=org).filter(pk=pk).first()


def groups_for_org(*, org: Organization) -> QuerySet[DeviceGroup]:
    """Groups by name with their static member count; the members' ids come prefetched."""
    return (
        DeviceGroup.objects.filter(organization=org)
        .annotate(static_count=Count("static_members"))
        .prefetch_related(Prefetch("static_members", queryset=Device.objects.only("pk")))
        .order_by("name")
    )


def with_member_counts(*, org: Organization, groups: Iterable[DeviceGroup]) -> list[DeviceGroup]:
    """The groups (from ``groups_for_org``), each with ``member_count`` set as ``members_of``
    counts it, in one query for all of them: a conditional count per group."""
    groups = list(groups)
    counts = {}
    for group in groups:
        match = _member_match(group.rules, [d.pk for d in group.static_members.all()])
        if match is not None:  # a group with no rules and no static members has nobody
            counts[f"group_{group.pk}"] = Count("pk", filter=match)
    found = (
        Device.objects.filter(organization=org)
        .exclude(status=Device.Status.RETIRED)
        .aggregate(**counts)
        if counts
        else {}
    )
    for group in groups:
        group.member_count = found.get(f"group_{group.pk}", 0)
    return groups


def group_for_org(*, org: Organization, pk: int) -> DeviceGroup | None:
    return DeviceGroup.objects.filter(organization=org, pk=pk).first()


def rules_query(rules: dict) -> Q | None:
    """The Q for a group's dynamic rules; None when the group has no rules."""
    parts = []
    if rules.get("site_ids"):
        parts.append(Q(site_id__in=rules["site_ids"]))
    if rules.get("site_kinds"):
        parts.append(Q(site__kind__in=rules["site_kinds"]))
    if rules.get("tags"):
        parts.append(tag_filter(rules["tags"]))
    if rules.get("placements"):
        parts.append(Q(placement__in=rules["placements"]))
    if rules.get("target_ids"):
        parts.append(Q(hardware_target_id__in=rules["target_ids"]))
    if not parts:
        return None
    q = parts[0]
    for part in parts[1:]:
        q &= part
    return q


def _member_match(rules: dict, static_ids: list[int]) -> Q | None:
    """Who belongs to a group: its static members or its rule matches; None when nobody."""
    dynamic = rules_query(rules)
    static = Q(pk__in=static_ids) if static_ids else None
    if static is not None and dynamic is not None:
        return static | dynamic
    return static if static is not None else dynamic


def group_members(
    *, org: Organization, rules: dict, static_ids: list[int] | None = None
) -> QuerySet[Device]:
    """Devices in a group: its static members plus those matching its rules, never retired.

    Takes rules and static ids rather than a saved group so the editor can preview changes.
    """
    match = _member_match(rules, static_ids or [])
    if match is None:
        return devices_for_org(org=org).none()
    return devices_for_org(org=org).filter(match).exclude(status=Device.Status.RETIRED)


def members_of(group: DeviceGroup) -> QuerySet[Device]:
    return group_members(
        org=group.organization,
        rules=group.rules,
        static_ids=list(group.static_members.values_list("pk", flat=True)),
    )


def enrollment_tokens_for_org(*, org: Organization) -> QuerySet[EnrollmentToken]:
    return EnrollmentToken.objects.filter(organization=org).select_related(
        "site", "created_by", "used_by", "device"
    )


def audit_events_for_device(*, device: Device, limit: int = 15) -> list[AuditEvent]:
    """What happened to or was done by this device, newest first."""
    return list(
        AuditEvent.objects.filter(organization_id=device.organization_id)
        .filter(
            Q(target_type="fleet.device", target_id=str(device.pk))
            | Q(actor_device_id=str(device.uid))
        )
        .order_by("-at", "-id")[:limit]
    )


def active_credential(device: Device):
    return device.credentials.filter(revoked_at__isnull=True).first()


def target_profile(target: HardwareTarget) -> TargetProfile:
    """The Django-free description of a target that the ONNX checks take."""
    return TargetProfile(
        name=target.name,
        execution_provider=target.execution_provider,
        runtime=target.runtime,
        operators=tuple(
            OperatorSupport(
                domain=op.get("domain", ""),
                op_type=op["op_type"],
                min_opset=op.get("min_opset"),
                max_opset=op.get("max_opset"),
                note=op.get("note", ""),
            )
            for op in target.operators
        ),
        static_shapes_only=target.static_shapes_only,
        quantized_only=target.quantized_only,
        max_model_bytes=target.max_model_bytes,
        memory_budget_bytes=target.memory_budget_bytes,
        source=target.source,
        documentary=target.documentary,
        onnx_opset_range=tuple(target.onnx_opset_range) if target.onnx_opset_range else None,
    )
