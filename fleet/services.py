"""Fleet writes: sites, hardware targets, devices, groups, enrollment, credentials, CSV import.

Each function is one transaction with its audit event inside it. Validation errors name the
field and the reason (``InvalidInput.fields``) so forms and the API show them where they belong.
"""

from __future__ import annotations

import json
import re
import secrets
import zoneinfo
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from opshero.actors import Actor
from opshero.errors import Conflict, Forbidden, InvalidInput, Unauthenticated
from opshero.models import Membership, Organization
from opshero.naming import unique_name
from opshero.roles import Action, roles_that_can
from opshero.services import record_audit_event
from opshero.tokens import hash_token
from protocol import device_auth

from . import credential_cache, selectors
from .audit import FleetVerb
from .models import (
    DEVICE_TEXT_LIMITS,
    HARDWARE_FACTS_MAX_BYTES,
    HARDWARE_FACTS_MAX_KEYS,
    POLICY_LIMITS,
    Device,
    DeviceCredential,
    DeviceGroup,
    EnrollmentToken,
    ExecutionProvider,
    HardwareTarget,
    OperatingPolicy,
    OperatingPolicyRevision,
    Placement,
    Site,
)

ENROLLMENT_TOKEN_PREFIX = "ohe_"  # noqa: S105 - a public marker, not a secret
MAX_TAGS = 20
_TAG_RE = re.compile(r"^[\w.:/-]{1,40}$")
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


# --- value checks shared by forms, API and CSV import ---------------------------------------------


def normalize_tags(tags: Any, *, field_name: str = "tags") -> list[str]:
    """Tags as a sorted list of distinct short words; a string may separate them with , or ;."""
    if tags is None or tags == "":
        return []
    if isinstance(tags, str):
        tags = re.split(r"[;,]", tags)
    if not isinstance(tags, list | tuple):
        raise InvalidInput("Tags must be a list of words.", fields={field_name: ["Not a list."]})
    cleaned = sorted({str(t).strip() for t in tags if str(t).strip()})
    bad = [t for t in cleaned if not _TAG_RE.match(t)]
    if bad:
        raise InvalidInput(
            f"Tag '{bad[0][:50]}' is not allowed.",
            fields={field_name: [f"'{bad[0][:50]}': use letters, digits and . _ : / - (max 40)."]},
        )
    if len(cleaned) > MAX_TAGS:
        raise InvalidInput(
            "Too many tags.", fields={field_name: [f"At most {MAX_TAGS} tags per object."]}
        )
    return cleaned


def check_device_text(name: str, value: Any, *, field_name: str | None = None) -> str:
    """A device text field stripped, or InvalidInput naming the field when it is longer than
    ``DEVICE_TEXT_LIMITS`` allows: long values are refused everywhere, never cut silently."""
    text = str(value or "").strip()
    limit = DEVICE_TEXT_LIMITS[name]
    if len(text) > limit:
        field_name = field_name or name
        raise InvalidInput(
            f"{field_name} is longer than {limit} characters.",
            fields={field_name: [f"At most {limit} characters ({len(text)} given)."]},
        )
    return text


def check_hardware_facts(hardware: Any) -> dict[str, Any]:
    """What a device reports about its hardware: an object of at most
    ``HARDWARE_FACTS_MAX_KEYS`` entries and ``HARDWARE_FACTS_MAX_BYTES`` as compact JSON."""
    if hardware in (None, ""):
        return {}
    if not isinstance(hardware, dict):
        raise InvalidInput("hardware must be an object.", fields={"hardware": ["Not an object."]})
    if len(hardware) > HARDWARE_FACTS_MAX_KEYS:
        raise InvalidInput(
            "hardware has too many entries.",
            fields={"hardware": [f"At most {HARDWARE_FACTS_MAX_KEYS} entries."]},
        )
    size = len(json.dumps(hardware, separators=(",", ":"), ensure_ascii=False).encode())
    if size > HARDWARE_FACTS_MAX_BYTES:
        raise InvalidInput(
            "hardware is too large.",
            fields={"hardware": [f"At most {HARDWARE_FACTS_MAX_BYTES} bytes as JSON ({size})."]},
        )
    return hardware


def validate_maintenance_windows(windows: Any) -> list[dict]:
    """[{"day": 0-6, "start": "HH:MM", "end": "HH:MM"}]; end after start (no midnight wrap)."""
    if windows in (None, ""):
        return []
    if not isinstance(windows, list):
        raise InvalidInput(
            "Maintenance windows must be a list.", fields={"maintenance_windows": ["Not a list."]}
        )
    cleaned, errors = [], []
    for index, window in enumerate(windows, start=1):
        if not isinstance(window, dict):
            errors.append(f"Window {index}: not an object with day, start and end.")
            continue
        day, start, end = window.get("day"), window.get("start", ""), window.get("end", "")
        if not isinstance(day, int) or isinstance(day, bool) or not 0 <= day <= 6:
            errors.append(f"Window {index}: day must be 0 (Monday) to 6 (Sunday).")
            continue
        if not (isinstance(start, str) and _TIME_RE.match(start)) or not (
            isinstance(end, str) and (_TIME_RE.match(end) or end == "24:00")
        ):
            errors.append(f"Window {index}: start and end must be HH:MM (24-hour).")
            continue
        if end <= start:
            errors.append(f"Window {index}: end {end} is not after start {start}.")
            continue
        cleaned.append({"day": day, "start": start, "end": end})
    if errors:
        raise InvalidInput(
            "Some maintenance windows are invalid.", fields={"maintenance_windows": errors}
        )
    return sorted(cleaned, key=lambda w: (w["day"], w["start"]))


def _check_time_zone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(
            f"Unknown time zone '{name}'.",
            fields={"time_zone": [f"'{name}' is not an IANA time zone, e.g. Europe/Berlin."]},
        ) from exc
    return name


def _check_share(value: Any, field_name: str) -> float:
    try:
        share = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            "Not a number.", fields={field_name: ["A number between 0 and 1."]}
        ) from exc
    if not 0 <= share <= 1:
        raise InvalidInput(
            f"{field_name} must be between 0 and 1.",
            fields={field_name: ["Share of time online: between 0 and 1 (e.g. 0.95)."]},
        )
    return share


def _check_choice(value: str, choices: type, field_name: str) -> str:
    if value not in choices.values:
        allowed = ", ".join(choices.values)
        raise InvalidInput(
            f"'{value}' is not a valid {field_name}.",
            fields={field_name: [f"'{value}' is not one of: {allowed}."]},
        )
    return value


def _changes(instance, values: dict[str, Any]) -> dict[str, list]:
    """Field → [old, new] for the values that differ (what the audit event records)."""
    diff = {}
    for name, new in values.items():
        old = getattr(instance, name)
        old_cmp = old.pk if hasattr(old, "pk") else old
        new_cmp = new.pk if hasattr(new, "pk") else new
        if old_cmp != new_cmp:
            diff[name] = [
                str(old) if hasattr(old, "pk") else old,
                str(new) if hasattr(new, "pk") else new,
            ]
    return diff


# --- sites ----------------------------------------------------------------------------------------

SITE_FIELDS = (
    "name",
    "kind",
    "region",
    "time_zone",
    "expected_connectivity",
    "maintenance_windows",
    "tags",
    "notes",
)


def _clean_site_values(org: Organization, values: dict[str, Any], *, site: Site | None) -> dict:
    cleaned = {k: v for k, v in values.items() if k in SITE_FIELDS}
    if "name" in cleaned:
        cleaned["name"] = unique_name(
            Site.objects.filter(organization=org), cleaned["name"], noun="site", exclude=site
        )
    if "kind" in cleaned:
        _check_choice(cleaned["kind"], Site.Kind, "kind")
    if "time_zone" in cleaned:
        _check_time_zone(cleaned["time_zone"])
    if "expected_connectivity" in cleaned:
        cleaned["expected_connectivity"] = _check_share(
            cleaned["expected_connectivity"], "expected_connectivity"
        )
    if "maintenance_windows" in cleaned:
        cleaned["maintenance_windows"] = validate_maintenance_windows(
            cleaned["maintenance_windows"]
        )
    if "tags" in cleaned:
        cleaned["tags"] = normalize_tags(cleaned["tags"])
    return cleaned


@transaction.atomic
def create_site(*, organization: Organization, actor: Actor, **values: Any) -> Site:
    """Register a site. ``values`` are Site fields (name, kind, region, time_zone, ...)."""
    if "name" not in values:
        raise InvalidInput("A site needs a name.", fields={"name": ["Required."]})
    cleaned = _clean_site_values(organization, values, site=None)
    site = Site.objects.create(organization=organization, **cleaned)
    record_audit_event(
        organization=organization, actor=actor, verb=FleetVerb.SITE_CREATED, target=site
    )
    return site


@transaction.atomic
def update_site(*, site: Site, actor: Actor, **values: Any) -> Site:
    """Change a site's fields (audited with the changes); refuses a name another site has (409)
    or an unknown kind, time zone, window or tag (422)."""
    cleaned = _clean_site_values(site.organization, values, site=site)
    diff = _changes(site, cleaned)
    if not diff:
        return site
    for name, value in cleaned.items():
        setattr(site, name, value)
    site.save()
    record_audit_event(
        organization=site.organization,
        actor=actor,
        verb=FleetVerb.SITE_UPDATED,
        target=site,
        data=diff,
    )
    return site


@transaction.atomic
def delete_site(*, site: Site, actor: Actor) -> None:
    """Delete a site (its enrollment tokens go with it); refuses a site that still has
    devices (409)."""
    if site.devices.exists():
        raise Conflict(
            f"{site.name} still has {site.devices.count()} devices; move or retire them first.",
            code="site_has_devices",
        )
    record_audit_event(
        organization=site.organization, actor=actor, verb=FleetVerb.SITE_DELETED, target=site
    )
    site.delete()


# --- hardware targets -----------------------------------------------------------------------------


def _provider_name(raw: str) -> str:
    """Map onnxruntime provider names (e.g. 'NnapiExecutionProvider') to ExecutionProvider."""
    short = raw.removesuffix("ExecutionProvider").lower()
    for choice in ExecutionProvider.values:
        if choice.lower() == short:
            return choice
    return ExecutionProvider.OTHER


BUILTIN_TARGET_NAMES = {
    "cpu": "x86/ARM CPU (onnxruntime)",
    "nnapi": "Android NPU (NNAPI)",
    "coreml-mlprogram": "Apple Neural Engine (Core ML, ML Program)",
    "coreml-neuralnetwork": "Apple Neural Engine (Core ML, NeuralNetwork)",
    "tensorrt": "NVIDIA GPU (TensorRT, documentary)",
    "openvino": "Intel CPU/GPU/NPU (OpenVINO, documentary)",
    "qnn": "Qualcomm NPU (QNN, documentary)",
}


def sync_builtin_targets(*, using: str = "default") -> list[HardwareTarget]:
    """Create or refresh the built-in targets from the installed onnxruntime's operator lists."""
    from onnxcheck.operators import builtin_profiles

    synced = []
    for profile in builtin_profiles():
        key = slugify(profile.name)[:40]
        values = {
            "name": BUILTIN_TARGET_NAMES.get(key, profile.name),
            "runtime": profile.runtime,
            "execution_provider": _provider_name(profile.execution_provider),
            "operators": [
                {
                    "domain": op.domain,
                    "op_type": op.op_type,
                    "min_opset": op.min_opset,
                    "max_opset": op.max_opset,
                    "note": op.note,
                }
                for op in profile.operators
            ],
            "static_shapes_only": profile.static_shapes_only,
            "quantized_only": profile.quantized_only,
            "max_model_bytes": profile.max_model_bytes,
            "memory_budget_bytes": profile.memory_budget_bytes,
            "source": profile.source,
            "documentary": profile.documentary,
            "onnx_opset_range": list(profile.onnx_opset_range)
            if profile.onnx_opset_range
            else None,
        }
        target, _ = HardwareTarget.objects.using(using).update_or_create(
            organization=None, builtin_key=key, defaults=values
        )
        synced.append(target)
    return synced


TARGET_FIELDS = (
    "name",
    "runtime",
    "execution_provider",
    "operators",
    "static_shapes_only",
    "quantized_only",
    "max_model_bytes",
    "memory_budget_bytes",
    "typical_power_watts",
    "source",
    "notes",
    "documentary",
)


def _clean_operators(operators: Any) -> list[dict]:
    if not isinstance(operators, list):
        raise InvalidInput("Operators must be a list.", fields={"operators": ["Not a list."]})
    cleaned, errors = [], []
    for index, op in enumerate(operators, start=1):
        if not isinstance(op, dict) or not str(op.get("op_type", "")).strip():
            errors.append(f"Entry {index}: needs at least op_type.")
            continue
        domain = str(op.get("domain") or "").strip()
        domain = "" if domain == "ai.onnx" else domain
        entry = {
            "domain": domain,
            "op_type": str(op["op_type"]).strip(),
            "min_opset": op.get("min_opset"),
            "max_opset": op.get("max_opset"),
            "note": str(op.get("note") or "")[:300],
        }
        for bound in ("min_opset", "max_opset"):
            value = entry[bound]
            if value is not None and (not isinstance(value, int) or not 1 <= value <= 100):
                errors.append(f"Entry {index}: {bound} must be an opset number or empty.")
        cleaned.append(entry)
    if errors:
        raise InvalidInput("Some operators are invalid.", fields={"operators": errors})
    return cleaned


def _clean_target_values(org: Organization, values: dict[str, Any], *, target=None) -> dict:
    cleaned = {k: v for k, v in values.items() if k in TARGET_FIELDS}
    if "name" in cleaned:
        cleaned["name"] = unique_name(
            HardwareTarget.objects.filter(organization=org),
            cleaned["name"],
            noun="target",
            exclude=target,
        )
    if "execution_provider" in cleaned:
        _check_choice(cleaned["execution_provider"], ExecutionProvider, "execution_provider")
    if "operators" in cleaned:
        cleaned["operators"] = _clean_operators(cleaned["operators"])
    for name in ("max_model_bytes", "memory_budget_bytes"):
        if cleaned.get(name) is not None and cleaned[name] <= 0:
            raise InvalidInput(f"{name} must be positive.", fields={name: ["Must be positive."]})
    if cleaned.get("typical_power_watts") is not None and not (
        0 < cleaned["typical_power_watts"] <= 10_000
    ):
        raise InvalidInput(
            "Power must be between 0 and 10,000 W.",
            fields={"typical_power_watts": ["Between 0 and 10,000 W."]},
        )
    return cleaned


@transaction.atomic
def create_target(*, organization: Organization, actor: Actor, **values: Any) -> HardwareTarget:
    """Add an organisation's own hardware target; refuses a missing name, runtime or execution
    provider, a name in use or malformed operators and limits."""
    for required in ("name", "runtime", "execution_provider"):
        if not values.get(required):
            raise InvalidInput(f"{required} is required.", fields={required: ["Required."]})
    cleaned = _clean_target_values(organization, values)
    target = HardwareTarget.objects.create(organization=organization, **cleaned)
    record_audit_event(
        organization=organization, actor=actor, verb=FleetVerb.TARGET_CREATED, target=target
    )
    return target


@transaction.atomic
def clone_target(
    *, organization: Organization, source: HardwareTarget, actor: Actor, name: str = ""
) -> HardwareTarget:
    """Copy a built-in (or own) target into the organisation, to adjust it."""
    name = name.strip() or f"{source.name} (copy)"
    values = {f: getattr(source, f) for f in TARGET_FIELDS}
    values["name"] = name
    cleaned = _clean_target_values(organization, values)
    target = HardwareTarget.objects.create(organization=organization, cloned_from=source, **cleaned)
    record_audit_event(
        organization=organization,
        actor=actor,
        verb=FleetVerb.TARGET_CLONED,
        target=target,
        data={"from": source.name},
    )
    return target


@transaction.atomic
def update_target(*, target: HardwareTarget, actor: Actor, **values: Any) -> HardwareTarget:
    """Change an organisation's own target (audited with the changes); refuses built-in targets
    (409: clone them) and malformed values."""
    if target.is_builtin:
        raise Conflict("Built-in targets are read-only; clone it to change it.", code="builtin")
    cleaned = _clean_target_values(target.organization, values, target=target)
    diff = _changes(target, {k: v for k, v in cleaned.items() if k != "operators"})
    if "operators" in cleaned and cleaned["operators"] != target.operators:
        diff["operators"] = [len(target.operators), len(cleaned["operators"])]
    if not diff:
        return target
    for name, value in cleaned.items():
        setattr(target, name, value)
    target.save()
    record_audit_event(
        organization=target.organization,
        actor=actor,
        verb=FleetVerb.TARGET_UPDATED,
        target=target,
        data=diff,
    )
    return target


# --- the device state machine ---------------------------------------------------------------------

D = Device.Status
DEVICE_TRANSITIONS: dict[str, set[str]] = {
    D.PROVISIONING: {D.ACTIVE, D.RETIRED},
    # active → active: an active device without a live key (never expected) enrolls again.
    D.ACTIVE: {D.ACTIVE, D.REVOKED, D.RETIRED},
    D.REVOKED: {D.ACTIVE, D.RETIRED},  # → active: re-enrollment with a token for this device
    D.RETIRED: set(),
}


def transition_device(*, device: Device, to: str, **changes: Any) -> Device:
    """The only place a device's status changes; refuses transitions the lifecycle lacks.

    ``changes`` are other fields of the device (timestamps, enrollment facts) saved with it.
    """
    if "status" in changes:
        raise TypeError("Pass the new status as `to`, not in `changes`.")
    if to not in DEVICE_TRANSITIONS[device.status]:
        raise Conflict(
            f"Device {device.name} is {device.get_status_display().lower()}; it cannot "
            f"become {Device.Status(to).label.lower()}.",
            code="invalid_transition",
        )
    if device.status == D.ACTIVE and to != D.ACTIVE:
        # Its key is revoked by the caller, which invalidates too; this covers any transition
        # out of active added later (fleet/credential_cache.py).
        credential_cache.invalidate_on_commit(device.uid)
    for name, value in changes.items():
        setattr(device, name, value)
    device.status = to
    device.save(update_fields=["status", *changes])
    return device


# --- devices --------------------------------------------------------------------------------------

DEVICE_FIELDS = (
    "name",
    "serial",
    "site",
    "placement",
    "hardware_target",
    "agent_version",
    "runtime_version",
    "tags",
    "notes",
)


def _clean_device_values(org: Organization, values: dict[str, Any], *, device=None) -> dict:
    cleaned = {k: v for k, v in values.items() if k in DEVICE_FIELDS}
    if "name" in cleaned:
        cleaned["name"] = check_device_text("name", cleaned["name"])
        if not cleaned["name"]:
            raise InvalidInput("A device needs a name.", fields={"name": ["Required."]})
    if "serial" in cleaned:
        cleaned["serial"] = check_device_text("serial", cleaned["serial"])
        if not cleaned["serial"]:
            raise InvalidInput("A device needs a serial.", fields={"serial": ["Required."]})
        clash = Device.objects.filter(organization=org, serial=cleaned["serial"])
        if device is not None:
            clash = clash.exclude(pk=device.pk)
        other = clash.first()
        if other is not None:
            raise Conflict(
                f"Serial '{cleaned['serial']}' is already registered ({other.name}).",
                fields={"serial": [f"Already registered to {other.name}."]},
            )
    if "site" in cleaned and (cleaned["site"] is None or cleaned["site"].organization_id != org.id):
        raise InvalidInput(
            "Unknown site.", fields={"site": ["Choose a site of this organisation."]}
        )
    if "placement" in cleaned:
        _check_choice(cleaned["placement"], Placement, "placement")
    target = cleaned.get("hardware_target")
    if target is not None and target.organization_id not in (None, org.id):
        raise InvalidInput(
            "Unknown hardware target.", fields={"hardware_target": ["Not available here."]}
        )
    for name in ("agent_version", "runtime_version"):
        if name in cleaned:
            cleaned[name] = check_device_text(name, cleaned[name])
    if "tags" in cleaned:
        cleaned["tags"] = normalize_tags(cleaned["tags"])
    return cleaned


@transaction.atomic
def register_device(*, organization: Organization, actor: Actor, **values: Any) -> Device:
    """Pre-register a device (status provisioning) so that its gateway can enroll into it."""
    for required in ("name", "serial", "site"):
        if not values.get(required):
            raise InvalidInput(f"{required} is required.", fields={required: ["Required."]})
    cleaned = _clean_device_values(organization, values)
    device = Device.objects.create(organization=organization, **cleaned)
    record_audit_event(
        organization=organization, actor=actor, verb=FleetVerb.DEVICE_REGISTERED, target=device
    )
    return device


@transaction.atomic
def update_device(*, device: Device, actor: Actor, **values: Any) -> Device:
    """Change a device's descriptive fields (name, serial, site, tags, ...; never its status);
    refuses a retired device or a serial already registered (409)."""
    if device.status == Device.Status.RETIRED:
        raise Conflict("A retired device cannot be changed.", code="device_retired")
    cleaned = _clean_device_values(device.organization, values, device=device)
    diff = _changes(device, cleaned)
    if not diff:
        return device
    for name, value in cleaned.items():
        setattr(device, name, value)
    device.save()
    record_audit_event(
        organization=device.organization,
        actor=actor,
        verb=FleetVerb.DEVICE_UPDATED,
        target=device,
        data=diff,
    )
    return device


def _revoke_credentials(device: Device, reason: str) -> int:
    credential_cache.invalidate_on_commit(device.uid)
    return device.credentials.filter(revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_reason=reason
    )


@transaction.atomic
def revoke_device(*, device: Device, actor: Actor, reason: str = "") -> Device:
    """Revoke the device's key: its next request is refused. Re-enroll it with a new token."""
    device = Device.objects.select_for_update().get(pk=device.pk)
    if device.status == Device.Status.RETIRED:
        raise Conflict("The device is retired.", code="device_retired")
    revoked = _revoke_credentials(device, "revoked")
    if not revoked:
        raise Conflict("The device has no active key to revoke.", code="no_active_key")
    transition_device(device=device, to=Device.Status.REVOKED)
    record_audit_event(
        organization=device.organization,
        actor=actor,
        verb=FleetVerb.DEVICE_REVOKED,
        target=device,
        data={"reason": reason[:200]} if reason else {},
    )
    return device


@transaction.atomic
def retire_device(*, device: Device, actor: Actor, reason: str = "") -> Device:
    """Take a device out of service for good: keys revoked, excluded from rollouts."""
    device = Device.objects.select_for_update().get(pk=device.pk)
    if device.status == Device.Status.RETIRED:
        raise Conflict("The device is already retired.", code="device_retired")
    _revoke_credentials(device, "retired")
    transition_device(device=device, to=Device.Status.RETIRED, retired_at=timezone.now())
    EnrollmentToken.objects.filter(device=device, used_at__isnull=True).delete()
    record_audit_event(
        organization=device.organization,
        actor=actor,
        verb=FleetVerb.DEVICE_RETIRED,
        target=device,
        data={"reason": reason[:200]} if reason else {},
    )
    return device


# --- enrollment -----------------------------------------------------------------------------------


@transaction.atomic
def create_enrollment_token(
    *,
    organization: Organization,
    site: Site,
    actor: Actor,
    placement: str = Placement.NEAR_EDGE,
    hardware_target: HardwareTarget | None = None,
    expires_in: timedelta = timedelta(hours=24),
    device: Device | None = None,
    note: str = "",
) -> tuple[EnrollmentToken, str]:
    """A one-time token for one gateway at ``site``; the token itself is returned only here."""
    if site.organization_id != organization.id:
        raise InvalidInput(
            "Unknown site.", fields={"site": ["Choose a site of this organisation."]}
        )
    _check_choice(placement, Placement, "placement")
    if hardware_target is not None and hardware_target.organization_id not in (
        None,
        organization.id,
    ):
        raise InvalidInput("Unknown target.", fields={"hardware_target": ["Not available here."]})
    if not timedelta(minutes=5) <= expires_in <= timedelta(days=30):
        raise InvalidInput(
            "Expiry must be between 5 minutes and 30 days.",
            fields={"expires_in": ["Between 5 minutes and 30 days."]},
        )
    if device is not None:
        if device.organization_id != organization.id:
            raise InvalidInput("Unknown device.", fields={"device": ["Not in this organisation."]})
        if device.status == Device.Status.RETIRED:
            raise Conflict("A retired device cannot be re-enrolled.", code="device_retired")
    token = ENROLLMENT_TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = EnrollmentToken.objects.create(
        organization=organization,
        site=site,
        placement=placement,
        hardware_target=hardware_target,
        device=device,
        token_hash=hash_token(token),
        prefix=token[:12],
        note=note[:200],
        created_by=actor.user,
        expires_at=timezone.now() + expires_in,
    )
    record_audit_event(
        organization=organization,
        actor=actor,
        verb=FleetVerb.ENROLLMENT_TOKEN_CREATED,
        target=record,
        target_label=f"token {record.prefix}… for {site.name}",
        data={
            "site": site.name,
            "expires_at": record.expires_at.isoformat(),
            "device": device.name if device else None,
        },
    )
    return record, token


@dataclass(frozen=True)
class EnrollmentFacts:
    """What a gateway says about itself when it enrolls."""

    serial: str
    name: str = ""
    agent_version: str = ""
    runtime_version: str = ""
    hardware: dict[str, Any] = field(default_factory=dict)


def _token_for_enrollment(token: str) -> EnrollmentToken:
    if not isinstance(token, str) or not token.startswith(ENROLLMENT_TOKEN_PREFIX):
        raise Unauthenticated("This is not an OpsHero enrollment token.", code="invalid_token")
    record = (
        EnrollmentToken.objects.select_for_update(of=("self",))
        .select_related("organization", "site", "hardware_target", "device")
        .filter(token_hash=hash_token(token))
        .first()
    )
    if record is None:
        raise Unauthenticated("Unknown enrollment token.", code="invalid_token")
    if record.used_at is not None:
        raise Unauthenticated(
            f"This token was already used at {record.used_at:%Y-%m-%d %H:%M} UTC; "
            "ask an admin for a new one.",
            code="token_used",
        )
    if record.expires_at <= timezone.now():
        raise Unauthenticated(
            f"This token expired at {record.expires_at:%Y-%m-%d %H:%M} UTC; "
            "ask an admin for a new one.",
            code="token_expired",
        )
    return record


def _already_enrolled(serial: str) -> Conflict:
    return Conflict(
        f"Serial {serial} is already enrolled; revoke it first to enroll it again.",
        fields={"serial": ["Already enrolled."]},
        code="already_enrolled",
    )


def _key_in_use() -> Conflict:
    return Conflict(
        "This public key is already registered; every device needs its own key.",
        fields={"public_key": ["Already in use by a device."]},
        code="key_in_use",
    )


def _device_to_enroll(record: EnrollmentToken, serial: str) -> Device | None:
    """The existing device this enrollment binds a key to (locked), or None for a new serial.

    A token made for a device re-enrolls that device only. Any other token claims a serial
    only when it was pre-registered at the token's own site: a token of one site never takes
    over (and moves) a device registered at another.
    """
    if record.device is not None:
        device = Device.objects.select_for_update().get(pk=record.device_id)
        if device.serial != serial:
            raise Conflict(
                f"This token re-enrolls serial {device.serial}, not {serial}.",
                fields={"serial": ["Does not match the device this token is for."]},
                code="serial_mismatch",
            )
    else:
        device = (
            Device.objects.select_for_update()
            .filter(organization=record.organization, serial=serial)
            .first()
        )
        if device is None:
            return None
        if device.site_id != record.site_id:
            raise Conflict(
                f"Serial {serial} is registered at another site; use a token of that site, "
                "or move the device first.",
                fields={"serial": ["Registered at another site."]},
                code="serial_at_other_site",
            )
    # A re-enrollment token of a device retired since is refused by the lifecycle
    # (retired -> active does not exist) in transition_device.
    if device.status == Device.Status.RETIRED and record.device is None:
        raise Conflict(
            f"Serial {serial} belongs to a retired device.",
            fields={"serial": ["Retired; register the hardware under a new serial."]},
            code="device_retired",
        )
    if device.status == Device.Status.REVOKED and record.device is None:
        raise Conflict(
            f"Serial {serial} was revoked; re-enroll it with a token made for this device "
            "(device page → Re-enroll).",
            fields={"serial": ["Revoked; needs a re-enrollment token."]},
            code="device_revoked",
        )
    if device.credentials.filter(revoked_at__isnull=True).exists():
        raise _already_enrolled(serial)
    return device


@transaction.atomic
def enroll_device(
    *, token: str, public_key: str, facts: EnrollmentFacts, ip: str | None = None
) -> Device:
    """Bind a gateway's public key to a device of the token's organisation (one use only).

    A new serial creates a device at the token's site; a serial pre-registered at that site
    (CSV import, no key yet) is taken over; a token made for a specific device re-enrolls it
    after a revocation. Refuses (409) a serial or key already bound, also when a concurrent
    enrollment binds it first: the database's unique constraints settle the race.
    """
    record = _token_for_enrollment(token)
    org = record.organization
    try:
        key = device_auth.load_public_key(public_key)
    except device_auth.DeviceAuthError as exc:
        raise InvalidInput(exc.message, fields={"public_key": [exc.message]}) from exc
    key_text = device_auth.canonical_public_key(key)
    fingerprint = device_auth.key_fingerprint(key)
    serial = check_device_text("serial", facts.serial)
    if not serial:
        raise InvalidInput("A serial is required.", fields={"serial": ["1 to 120 characters."]})
    name = check_device_text("name", facts.name)
    agent_version = check_device_text("agent_version", facts.agent_version)
    runtime_version = check_device_text("runtime_version", facts.runtime_version)
    hardware = check_hardware_facts(facts.hardware)
    if DeviceCredential.objects.filter(fingerprint=fingerprint).exists():
        raise _key_in_use()

    device = _device_to_enroll(record, serial)
    now = timezone.now()
    changes: dict[str, Any] = {}
    if device is None:
        try:
            with transaction.atomic():
                device = Device.objects.create(
                    organization=org,
                    site=record.site,
                    name=name or serial,
                    serial=serial,
                    placement=record.placement,
                    hardware_target=record.hardware_target,
                )
        except IntegrityError as exc:  # device_serial_unique: another gateway won the race
            raise _already_enrolled(serial) from exc
    elif device.hardware_target is None and record.hardware_target is not None:
        changes["hardware_target"] = record.hardware_target
    transition_device(
        device=device,
        to=Device.Status.ACTIVE,
        agent_version=agent_version,
        runtime_version=runtime_version,
        hardware_facts=hardware,
        enrolled_at=now,
        last_seen_at=now,
        **changes,
    )
    try:
        with transaction.atomic():
            DeviceCredential.objects.create(
                device=device, public_key=key_text, fingerprint=fingerprint
            )
    except IntegrityError as exc:
        # A concurrent enrollment committed this key first (credential_fingerprint_unique) or a
        # key for this device (one_active_credential_per_device).
        if DeviceCredential.objects.filter(fingerprint=fingerprint).exists():
            raise _key_in_use() from exc
        raise _already_enrolled(serial) from exc
    record.used_at = now
    record.used_by = device
    record.save(update_fields=["used_at", "used_by"])
    record_audit_event(
        organization=org,
        actor=Actor.for_device(device.uid, device.name, ip=ip),
        verb=FleetVerb.DEVICE_ENROLLED,
        target=device,
        data={"token": record.prefix, "site": record.site.name, "key_fingerprint": fingerprint},
    )
    return device


@transaction.atomic
def rotate_device_key(
    *, device: Device, new_public_key: str, proof: str, ip: str | None = None
) -> DeviceCredential:
    """Replace the device's key. The request carrying this is signed with the old key; the
    proof is a signature by the new key, so nobody can rotate to a key they do not hold."""
    try:
        key = device_auth.load_public_key(new_public_key)
        key_text = device_auth.canonical_public_key(key)
        device_auth.verify_rotation_proof(
            new_public_key=key,
            device_id=str(device.uid),
            new_public_key_text=new_public_key,
            proof=proof,
        )
    except device_auth.DeviceAuthError as exc:
        field_name = "proof" if exc.code == "bad_rotation_proof" else "new_public_key"
        raise InvalidInput(exc.message, fields={field_name: [exc.message]}, code=exc.code) from exc
    fingerprint = device_auth.key_fingerprint(key)
    if DeviceCredential.objects.filter(fingerprint=fingerprint).exists():
        raise Conflict(
            "This public key is already registered.",
            fields={"new_public_key": ["Already in use."]},
            code="key_in_use",
        )
    old = DeviceCredential.objects.select_for_update().filter(
        device=device, revoked_at__isnull=True
    )
    old_fingerprints = list(old.values_list("fingerprint", flat=True))
    old.update(revoked_at=timezone.now(), revoked_reason="rotated")
    credential_cache.invalidate_on_commit(device.uid)
    try:
        with transaction.atomic():
            credential = DeviceCredential.objects.create(
                device=device, public_key=key_text, fingerprint=fingerprint
            )
    except IntegrityError as exc:  # a concurrent enrollment or rotation bound this key first
        raise Conflict(
            "This public key is already registered.",
            fields={"new_public_key": ["Already in use."]},
            code="key_in_use",
        ) from exc
    record_audit_event(
        organization=device.organization,
        actor=Actor.for_device(device.uid, device.name, ip=ip),
        verb=FleetVerb.DEVICE_KEY_ROTATED,
        target=device,
        data={"from": old_fingerprints[0] if old_fingerprints else None, "to": fingerprint},
    )
    return credential


@transaction.atomic
def set_demo_device_key(*, device: Device, public_key: str, actor: Actor) -> DeviceCredential:
    """Bind a key the demo fleet holds to a seeded demo device (``manage.py demo_fleet``).

    Seeding enrolls the demo devices with keys it throws away, so the simulated gateways get
    fresh ones from the server side, without the old key's signature a real rotation needs.
    That is only acceptable for demo data: refused in production and for a device that is not
    active; the old key is kept as rotated and the change is audited as a demo action.
    """
    if settings.PRODUCTION:
        raise Forbidden("Demo device keys are not set in production.", code="demo_in_production")
    device = Device.objects.select_for_update().get(pk=device.pk)
    if device.status != Device.Status.ACTIVE:
        raise Conflict(
            f"{device.name} is {device.get_status_display().lower()}; only an active demo "
            "device gets a simulator key.",
            code="device_not_active",
        )
    try:
        key = device_auth.load_public_key(public_key)
    except device_auth.DeviceAuthError as exc:
        raise InvalidInput(exc.message, fields={"public_key": [exc.message]}) from exc
    fingerprint = device_auth.key_fingerprint(key)
    if DeviceCredential.objects.filter(fingerprint=fingerprint).exists():
        raise _key_in_use()
    old = list(
        device.credentials.filter(revoked_at__isnull=True).values_list("fingerprint", flat=True)
    )
    _revoke_credentials(device, "rotated")
    credential = DeviceCredential.objects.create(
        device=device, public_key=device_auth.canonical_public_key(key), fingerprint=fingerprint
    )
    record_audit_event(
        organization=device.organization,
        actor=actor,
        verb=FleetVerb.DEVICE_DEMO_KEY_SET,
        target=device,
        data={"from": old[0] if old else None, "to": fingerprint, "demo": True},
    )
    return credential


@transaction.atomic
def report_device_status(
    *,
    device: Device,
    agent_version: str | None = None,
    runtime_version: str | None = None,
    model_version: str | None = None,
    hardware: dict | None = None,
) -> Device:
    """A device reports what it runs; version changes are audited, plain check-ins are not."""
    values = {
        "agent_version": agent_version,
        "runtime_version": runtime_version,
        "reported_model_version": model_version,
    }
    fields = {"reported_model_version": "model_version"}
    checked = {
        name: check_device_text(name, value, field_name=fields.get(name, name))
        for name, value in values.items()
        if value is not None
    }
    hardware = check_hardware_facts(hardware) if hardware is not None else None
    changed = {}
    for name, value in checked.items():
        if getattr(device, name) != value:
            changed[name] = [getattr(device, name), value]
            setattr(device, name, value)
    if hardware is not None and hardware != device.hardware_facts:
        device.hardware_facts = hardware
    device.last_seen_at = timezone.now()
    device.save()
    if changed:
        record_audit_event(
            organization=device.organization,
            actor=Actor.for_device(device.uid, device.name),
            verb=FleetVerb.DEVICE_VERSIONS_REPORTED,
            target=device,
            data=changed,
        )
    return device


# --- groups ---------------------------------------------------------------------------------------

GROUP_RULE_KEYS = {
    "site_ids": int,
    "site_kinds": str,
    "tags": str,
    "placements": str,
    "target_ids": int,
}


def clean_group_rules(org: Organization, rules: Any) -> dict[str, list]:
    """Check a group's rules (sites, site kinds, tags, placements, targets) as sorted lists;
    refuses unknown rules and ids that are not the organisation's (422)."""
    if rules in (None, ""):
        return {}
    if not isinstance(rules, dict):
        raise InvalidInput("Rules must be an object.", fields={"rules": ["Not an object."]})
    unknown = sorted(set(rules) - set(GROUP_RULE_KEYS))
    if unknown:
        raise InvalidInput(
            f"Unknown rule '{unknown[0]}'.",
            fields={"rules": [f"Unknown rule(s): {', '.join(unknown)}."]},
        )
    cleaned: dict[str, list] = {}
    for key, kind in GROUP_RULE_KEYS.items():
        values = rules.get(key) or []
        if not isinstance(values, list) or not all(
            isinstance(v, kind) and not isinstance(v, bool) for v in values
        ):
            raise InvalidInput(
                f"Rule '{key}' must be a list.",
                fields={"rules": [f"{key}: a list of {kind.__name__} values."]},
            )
        if values:
            cleaned[key] = sorted(set(values))
    if "site_ids" in cleaned:
        found = set(
            Site.objects.filter(organization=org, pk__in=cleaned["site_ids"]).values_list(
                "pk", flat=True
            )
        )
        if missing := sorted(set(cleaned["site_ids"]) - found):
            raise InvalidInput(
                "Unknown site in rules.", fields={"rules": [f"Unknown site id(s): {missing}."]}
            )
    if "target_ids" in cleaned:
        found = set(
            HardwareTarget.objects.filter(
                pk__in=cleaned["target_ids"], organization__in=[org]
            ).values_list("pk", flat=True)
        ) | set(
            HardwareTarget.objects.filter(
                pk__in=cleaned["target_ids"], organization__isnull=True
            ).values_list("pk", flat=True)
        )
        if missing := sorted(set(cleaned["target_ids"]) - found):
            raise InvalidInput(
                "Unknown target in rules.",
                fields={"rules": [f"Unknown hardware target id(s): {missing}."]},
            )
    for key, choices in (("site_kinds", Site.Kind), ("placements", Placement)):
        if bad := sorted(set(cleaned.get(key, [])) - set(choices.values)):
            raise InvalidInput(
                f"Unknown value in {key}.", fields={"rules": [f"{key}: unknown {bad}."]}
            )
    if "tags" in cleaned:
        cleaned["tags"] = normalize_tags(cleaned["tags"], field_name="rules")
    return cleaned


def _clean_members(org: Organization, members: Any) -> list[Device]:
    if members in (None, ""):
        return []
    ids = [m.pk if isinstance(m, Device) else m for m in members]
    devices = list(Device.objects.filter(organization=org, pk__in=ids))
    if len(devices) != len(set(ids)):
        raise InvalidInput(
            "Unknown device in members.", fields={"static_members": ["Unknown device id(s)."]}
        )
    return devices


@transaction.atomic
def create_group(
    *,
    organization: Organization,
    actor: Actor,
    name: str,
    description: str = "",
    rules: Any = None,
    static_members: Any = None,
) -> DeviceGroup:
    """Create a device group from rules and static members; refuses a name in use, unknown
    rules or devices of another organisation."""
    name = unique_name(DeviceGroup.objects.filter(organization=organization), name, noun="group")
    cleaned_rules = clean_group_rules(organization, rules)
    members = _clean_members(organization, static_members)
    group = DeviceGroup.objects.create(
        organization=organization, name=name, description=description, rules=cleaned_rules
    )
    group.static_members.set(members)
    record_audit_event(
        organization=organization,
        actor=actor,
        verb=FleetVerb.GROUP_CREATED,
        target=group,
        data={"rules": cleaned_rules, "static_members": len(members)},
    )
    return group


@transaction.atomic
def update_group(*, group: DeviceGroup, actor: Actor, **values: Any) -> DeviceGroup:
    """Rename a group or change its description, rules or static members (audited only when
    something changed); refuses what ``create_group`` refuses."""
    org = group.organization
    diff: dict[str, Any] = {}
    if "name" in values:
        name = unique_name(
            DeviceGroup.objects.filter(organization=org),
            values["name"],
            noun="group",
            exclude=group,
        )
        if name != group.name:
            diff["name"] = [group.name, name]
            group.name = name
    if "description" in values and values["description"] != group.description:
        group.description = values["description"] or ""
        diff["description"] = "changed"
    if "rules" in values:
        rules = clean_group_rules(org, values["rules"])
        if rules != group.rules:
            diff["rules"] = [group.rules, rules]
            group.rules = rules
    group.save()
    if "static_members" in values:
        members = _clean_members(org, values["static_members"])
        before = set(group.static_members.values_list("pk", flat=True))
        after = {d.pk for d in members}
        if before != after:
            group.static_members.set(members)
            diff["static_members"] = [len(before), len(after)]
    if diff:
        record_audit_event(
            organization=org, actor=actor, verb=FleetVerb.GROUP_UPDATED, target=group, data=diff
        )
    return group


@transaction.atomic
def delete_group(*, group: DeviceGroup, actor: Actor) -> None:
    """Delete a group; its devices stay as they are."""
    record_audit_event(
        organization=group.organization, actor=actor, verb=FleetVerb.GROUP_DELETED, target=group
    )
    group.delete()


# --- operating policy -----------------------------------------------------------------------------

_POLICY_HINTS = {
    "review_threshold": "Confidence below which a case goes to a human: between 0 and 1.",
    "evidence_sampling_rate": "Share of low-confidence cases sent as evidence: between 0 and 1.",
    "evidence_audit_rate": "Share of all cases sent as audit evidence: between 0 and 1.",
    "evidence_daily_cap": "Evidence samples per device and day: a whole number from 0.",
    "image_evidence": "Whether images may be sent as evidence: true or false.",
    "telemetry_interval_s": "Seconds between telemetry batches: a whole number from 10 to 3600.",
    "desired_poll_interval_s": "Seconds between desired-state polls: from 15 to 3600.",
}


def clean_policy_values(values: dict[str, Any]) -> dict[str, Any]:
    """Policy values typed and range-checked; one InvalidInput naming every bad field, and
    unknown names refused rather than ignored."""
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(values) - set(POLICY_LIMITS))
    for name in unknown:
        errors[name] = [f"Unknown policy setting; use one of: {', '.join(POLICY_LIMITS)}."]
    cleaned: dict[str, Any] = {}
    for name, value in values.items():
        if name not in POLICY_LIMITS:
            continue
        kind, low, high = POLICY_LIMITS[name]
        if kind is bool:
            if not isinstance(value, bool):
                errors[name] = [_POLICY_HINTS[name]]
            else:
                cleaned[name] = value
            continue
        number = None
        if not isinstance(value, bool) and isinstance(value, int | float | str):
            try:
                number = float(value)
            except ValueError:
                number = None
        if number is None or number != number:  # not a number, or NaN
            errors[name] = [f"Not a number. {_POLICY_HINTS[name]}"]
            continue
        if kind is int and not number.is_integer():
            errors[name] = [f"Not a whole number. {_POLICY_HINTS[name]}"]
            continue
        if not low <= number <= high:
            shown = int(number) if kind is int else number
            errors[name] = [f"{shown} is out of range. {_POLICY_HINTS[name]}"]
            continue
        cleaned[name] = int(number) if kind is int else number
    if errors:
        names = ", ".join(sorted(errors))
        raise InvalidInput(f"Some policy settings are invalid: {names}.", fields=errors)
    return cleaned


def _policy_scope(
    organization: Organization, site: Site | None, group: DeviceGroup | None
) -> dict[str, Any]:
    if (site is None) == (group is None):
        raise InvalidInput(
            "A policy is for one site or one device group.",
            fields={"scope": ["Give exactly one of site and group."]},
        )
    owner = site if site is not None else group
    if owner.organization_id != organization.pk:  # callers look it up in the org; belt and braces
        raise InvalidInput("Unknown site or group.", fields={"scope": ["Not this organisation's."]})
    return {"site": site} if site is not None else {"group": group}


def _check_clinic_images(*, organization: Organization, actor: Actor) -> None:
    """Images leave a clinic only when an admin says so: the seed's strictest case keeps them on
    site by default. (A lane never decides a clinic's evidence: fleet.selectors.)"""
    user = actor.user if actor.kind == "user" else None
    is_admin = (
        user is not None
        and Membership.objects.filter(
            organization=organization,
            user=user,
            role__in=roles_that_can(Action.ENABLE_CLINIC_IMAGES),
        ).exists()
    )
    if not is_admin:
        raise Forbidden(
            "Only an admin may let images leave a clinic site as evidence.",
            code="clinic_images_admin_only",
        )


def _next_policy_revision(organization: Organization, scope: dict[str, Any]) -> int:
    """One above the highest revision this site or group ever had, cleared ones included."""
    last = (
        OperatingPolicyRevision.objects.filter(organization=organization, **scope)
        .order_by("-revision")
        .values_list("revision", flat=True)
        .first()
    )
    return (last or 0) + 1


def _scope_defaults(scope: dict[str, Any]) -> dict[str, Any]:
    """Where a new policy starts: a site's kind defaults; a lane's, the standard ones."""
    site = scope.get("site")
    return selectors.policy_defaults(site.kind if site is not None else "")


@transaction.atomic
def set_operating_policy(
    *,
    organization: Organization,
    actor: Actor,
    site: Site | None = None,
    group: DeviceGroup | None = None,
    **values: Any,
) -> OperatingPolicy:
    """Create or change the operating policy of a site, or a device group's override (a lane).

    ``values`` are policy settings (``POLICY_FIELDS``); those left out keep their value (a new
    policy starts from the site kind's defaults, a lane's from the standard ones). Each change
    raises ``revision`` by one, keeps a revision row and is audited with the values before and
    after; a call that changes nothing changes nothing. Refuses values out of range, naming
    every field (422).
    """
    scope = _policy_scope(organization, site, group)
    cleaned = clean_policy_values(values)
    policy = (
        OperatingPolicy.objects.select_for_update()
        .filter(organization=organization, **scope)
        .first()
    )
    at_clinic = site is not None and site.kind == Site.Kind.CLINIC
    clinic_images = bool(policy and policy.clinic_images_allowed)
    if at_clinic and cleaned.get("image_evidence") and not clinic_images:
        _check_clinic_images(organization=organization, actor=actor)  # refuses all but admins
        clinic_images = True
    if at_clinic and cleaned.get("image_evidence") is False:
        clinic_images = False
    user = actor.user if actor.kind == "user" else None
    if policy is None:
        before = _scope_defaults(scope)
        after = {**before, **cleaned}
        policy = OperatingPolicy(
            organization=organization,
            revision=_next_policy_revision(organization, scope),
            **scope,
            **after,
        )
        verb = FleetVerb.OPERATING_POLICY_CREATED
    else:
        before = policy.values()
        after = {**before, **cleaned}
        if after == before and clinic_images == policy.clinic_images_allowed:
            return policy
        for name, value in after.items():
            setattr(policy, name, value)
        policy.revision += 1
        verb = FleetVerb.OPERATING_POLICY_UPDATED
    policy.clinic_images_allowed = clinic_images
    policy.updated_by = user
    policy.updated_at = timezone.now()
    try:  # two first saves at once meet the unique site/group and revision constraints
        with transaction.atomic():
            policy.save()
            OperatingPolicyRevision.objects.create(
                organization=organization,
                policy=policy,
                revision=policy.revision,
                values=after,
                changed_by=user,
                changed_by_label=actor.label[:150],
                changed_at=policy.updated_at,
                **scope,
            )
    except IntegrityError as exc:
        raise Conflict(
            "The policy was changed at the same time; reload it and try again.",
            code="policy_changed",
        ) from exc
    owner = site if site is not None else group
    record_audit_event(
        organization=organization,
        actor=actor,
        verb=verb,
        target=owner,
        data={
            "scope": "site" if site is not None else "group",
            "revision": policy.revision,
            "before": before,
            "after": after,
            "changed": sorted(name for name in after if after[name] != before.get(name)),
        },
    )
    return policy


@transaction.atomic
def clear_operating_policy(*, policy: OperatingPolicy, actor: Actor) -> None:
    """Remove a policy: a lane's override goes (its devices follow their sites' policies
    again), a site goes back to its kind's defaults. The history stays, with a last revision
    marked cleared holding what applies afterwards; audited."""
    policy = (
        OperatingPolicy.objects.select_for_update(of=("self",))
        .select_related("site", "group")
        .get(pk=policy.pk)
    )
    scope = {"site": policy.site} if policy.site_id else {"group": policy.group}
    before = policy.values()
    after = _scope_defaults(scope) if policy.site_id else None
    revision = policy.revision + 1
    user = actor.user if actor.kind == "user" else None
    OperatingPolicyRevision.objects.create(
        organization_id=policy.organization_id,
        policy=None,
        revision=revision,
        values=after or {},
        cleared=True,
        changed_by=user,
        changed_by_label=actor.label[:150],
        **scope,
    )
    record_audit_event(
        organization=policy.organization,
        actor=actor,
        verb=FleetVerb.OPERATING_POLICY_CLEARED,
        target=policy.site if policy.site_id else policy.group,
        data={
            "scope": "site" if policy.site_id else "group",
            "revision": revision,
            "before": before,
            "after": after if after is not None else "the sites' policies",
        },
    )
    policy.delete()
