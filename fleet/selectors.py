"""Fleet reads, each starting from an organisation (or, for the device API, from a device)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Case, CharField, Count, Prefetch, Q, QuerySet, Value, When
from django.utils import timezone

from onnxcheck.operators import OperatorSupport, TargetProfile
from opshero.models import AuditEvent, Organization

from .models import (
    CLINIC_POLICY_DEFAULTS,
    POLICY_FIELDS,
    STANDARD_POLICY_DEFAULTS,
    Device,
    DeviceGroup,
    EnrollmentToken,
    HardwareTarget,
    OperatingPolicy,
    OperatingPolicyRevision,
    Site,
)

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


# --- operating policy -----------------------------------------------------------------------------


def policy_defaults(site_kind: str) -> dict[str, object]:
    """The policy of a site that has none of its own: the strictest for a clinic (no evidence
    leaves the site, more cases go to a human), the standard one for every other kind."""
    source = CLINIC_POLICY_DEFAULTS if site_kind == Site.Kind.CLINIC else STANDARD_POLICY_DEFAULTS
    return dict(source)


class PolicySource:
    DEFAULT = "default"
    SITE = "site"
    GROUP = "group"


@dataclass(frozen=True)
class EffectivePolicy:
    """The operating policy that applies to a device (or to a site's devices outside a lane).

    ``source`` says where it comes from: the site kind's defaults, the site's policy or a
    group's override (``policy_id`` is the row, None for defaults; ``revision`` is 0 for
    defaults). ``etag_part`` is a short digest of the source and every value: it changes when
    any effective value or the source changes, and only then, so the desired-state answer can
    build its ETag from it.
    """

    review_threshold: float
    evidence_sampling_rate: float
    evidence_audit_rate: float
    evidence_daily_cap: int
    image_evidence: bool
    telemetry_interval_s: int
    desired_poll_interval_s: int
    source: str
    source_label: str
    revision: int
    policy_id: int | None
    etag_part: str
    # The kind of the device's site (a clinic's gateways label answers "assistive, not a
    # decision"); not a policy value, so not in ``values()``.
    site_kind: str = ""

    def values(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in POLICY_FIELDS}


# The settings that decide what evidence leaves a site.
EVIDENCE_FIELDS = (
    "evidence_sampling_rate",
    "evidence_audit_rate",
    "evidence_daily_cap",
    "image_evidence",
)


def _default_label(site_kind: str) -> str:
    if site_kind == Site.Kind.CLINIC:
        return "Defaults for a clinic (strictest)"
    return "Standard defaults"


def _effective(
    values: dict, *, source: str, label: str, revision: int, policy_id: int | None, scope: str
) -> EffectivePolicy:
    typed = {name: values[name] for name in POLICY_FIELDS}
    digest = hashlib.sha256(
        json.dumps([source, scope, typed], sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()[:16]
    return EffectivePolicy(
        **typed,
        source=source,
        source_label=label,
        revision=revision,
        policy_id=policy_id,
        etag_part=digest,
    )


def _from_policy(policy: OperatingPolicy, *, label: str) -> EffectivePolicy:
    source, scope = (
        (PolicySource.SITE, f"site:{policy.site_id}")
        if policy.site_id
        else (PolicySource.GROUP, f"group:{policy.group_id}")
    )
    return _effective(
        policy.values(),
        source=source,
        label=label,
        revision=policy.revision,
        policy_id=policy.pk,
        scope=scope,
    )


def _site_effective(
    *, site_id: int, kind: str, name: str, policy: OperatingPolicy | None
) -> EffectivePolicy:
    if policy is not None:
        return _from_policy(policy, label=f"Site policy · {name}")
    return _effective(
        policy_defaults(kind),
        source=PolicySource.DEFAULT,
        label=_default_label(kind),
        revision=0,
        policy_id=None,
        scope=f"kind:{kind}",
    )


def effective_site_policy(*, site: Site) -> EffectivePolicy:
    """What a site's devices outside any lane run: its own policy or its kind's defaults."""
    return _site_effective(
        site_id=site.pk,
        kind=site.kind,
        name=site.name,
        policy=OperatingPolicy.objects.filter(site=site).first(),
    )


def _device_matches(*, device: Device, site_kind: str, rules: dict, static_ids: set[int]) -> bool:
    """``_member_match`` evaluated in Python for one device: static member, or every rule
    key matching (AND across keys, OR within one); never a retired device."""
    if device.status == Device.Status.RETIRED:
        return False
    if device.pk in static_ids:
        return True
    checks = []
    if rules.get("site_ids"):
        checks.append(device.site_id in {int(v) for v in rules["site_ids"]})
    if rules.get("site_kinds"):
        checks.append(site_kind in rules["site_kinds"])
    if rules.get("tags"):
        # tag_filter matches a tag as a JSON string, case-insensitively.
        wanted = {str(t).lower() for t in rules["tags"]}
        checks.append(any(str(t).lower() in wanted for t in device.tags or []))
    if rules.get("placements"):
        checks.append(device.placement in rules["placements"])
    if rules.get("target_ids"):
        checks.append(device.hardware_target_id in {int(v) for v in rules["target_ids"]})
    return bool(checks) and all(checks)


def _static_ids_by_group(group_ids: Iterable[int]) -> dict[int, set[int]]:
    through = DeviceGroup.static_members.through
    found: dict[int, set[int]] = {}
    for group_id, device_id in through.objects.filter(
        devicegroup_id__in=list(group_ids)
    ).values_list("devicegroup_id", "device_id"):
        found.setdefault(group_id, set()).add(device_id)
    return found


def groups_of_device(device: Device) -> list[DeviceGroup]:
    """The groups ``device`` belongs to now (static member or rule match), by id.

    The reverse of ``members_of``: an organisation has few groups, so their rules are read in
    two queries and evaluated here rather than one query per group.
    """
    groups = list(DeviceGroup.objects.filter(organization_id=device.organization_id).order_by("pk"))
    if not groups:
        return []
    static = _static_ids_by_group(g.pk for g in groups)
    kind = Site.objects.filter(pk=device.site_id).values_list("kind", flat=True).first() or ""
    return [
        g
        for g in groups
        if _device_matches(
            device=device, site_kind=kind, rules=g.rules or {}, static_ids=static.get(g.pk, set())
        )
    ]


def effective_policies(*, devices: Iterable[Device]) -> dict[int, EffectivePolicy]:
    """The effective policy of each device, by device id, in at most three queries whatever
    the number of devices (policies with their groups, sites, the lanes' static members).

    A device in a group with a policy gets that group's policy (a lane); in several such
    groups, the group with the lowest id wins: groups are not ordered otherwise, and the
    oldest override staying in force when a new group is added is the least surprising.
    Otherwise the device's site policy applies, else the defaults of the site's kind.
    """
    devices = list(devices)
    if not devices:
        return {}
    org_ids = {d.organization_id for d in devices}
    site_ids = {d.site_id for d in devices}
    policies = list(
        OperatingPolicy.objects.filter(organization_id__in=org_ids)
        .filter(Q(site_id__in=site_ids) | Q(group__isnull=False))
        .select_related("group")
    )
    site_policies = {p.site_id: p for p in policies if p.site_id}
    group_policies = sorted((p for p in policies if p.group_id), key=lambda p: p.group_id)
    sites = {
        pk: (kind, name)
        for pk, kind, name in Site.objects.filter(pk__in=site_ids).values_list("pk", "kind", "name")
    }
    static = _static_ids_by_group(p.group_id for p in group_policies) if group_policies else {}
    result = {}
    for device in devices:
        kind, name = sites.get(device.site_id, ("", ""))
        chosen = next(
            (
                p
                for p in group_policies
                if p.group.organization_id == device.organization_id
                and _device_matches(
                    device=device,
                    site_kind=kind,
                    rules=p.group.rules or {},
                    static_ids=static.get(p.group_id, set()),
                )
            ),
            None,
        )
        site_policy = site_policies.get(device.site_id)
        site_level = _site_effective(
            site_id=device.site_id, kind=kind, name=name, policy=site_policy
        )
        if chosen is not None:
            result[device.pk] = _from_policy(chosen, label=f"Lane override · {chosen.group.name}")
        else:
            result[device.pk] = site_level
        if kind == Site.Kind.CLINIC:
            result[device.pk] = _clinic_evidence(
                result[device.pk], site_level=site_level, site_policy=site_policy
            )
        result[device.pk] = replace(result[device.pk], site_kind=kind)
    return result


def _clinic_evidence(
    effective: EffectivePolicy, *, site_level: EffectivePolicy, site_policy: OperatingPolicy | None
) -> EffectivePolicy:
    """What evidence leaves a clinic is decided for the site, never by a lane: the evidence
    settings come from the site's own policy (or the clinic defaults, which send none), and
    images only when an admin allowed them for this site (``clinic_images_allowed``), so a
    lane, a later change of the site's kind or an approver's edit cannot let them out."""
    values = effective.values()
    for name in EVIDENCE_FIELDS:
        values[name] = getattr(site_level, name)
    values["image_evidence"] = bool(
        site_level.image_evidence and site_policy is not None and site_policy.clinic_images_allowed
    )
    if values == effective.values():
        return effective
    return _effective(
        values,
        source=effective.source,
        label=effective.source_label,
        revision=effective.revision,
        policy_id=effective.policy_id,
        scope=f"clinic:{effective.etag_part}",
    )


def effective_policy(*, device: Device) -> EffectivePolicy:
    """The operating policy ``device`` runs (see ``effective_policies`` for the precedence)."""
    return effective_policies(devices=[device])[device.pk]


def operating_policy_for_site(*, org: Organization, site: Site) -> OperatingPolicy | None:
    """The site's own policy row, None while it uses its kind's defaults."""
    return OperatingPolicy.objects.filter(organization=org, site=site).first()


def operating_policy_for_group(*, org: Organization, group: DeviceGroup) -> OperatingPolicy | None:
    """The group's override, None when its devices follow their sites' policies."""
    return OperatingPolicy.objects.filter(organization=org, group=group).first()


def policy_revisions(
    *,
    org: Organization,
    site: Site | None = None,
    group: DeviceGroup | None = None,
    limit: int = 10,
) -> list[OperatingPolicyRevision]:
    """The latest revisions of a site's or a group's policy, newest first (cleared ones too)."""
    qs = OperatingPolicyRevision.objects.filter(organization=org)
    qs = qs.filter(site=site) if site is not None else qs.filter(group=group)
    return list(qs.select_related("changed_by").order_by("-revision", "-pk")[:limit])
