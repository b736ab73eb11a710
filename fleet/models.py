"""Sites, hardware targets, devices, device groups, enrollment tokens and device credentials."""

from __future__ import annotations

import uuid
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from opshero.models import Organization

# What a device may say about itself, in characters (bytes for the hardware facts as JSON).
# Every writer refuses longer values with a 422 naming the field (nothing is cut silently):
# enrollment, status reports, the device forms and API, and CSV import; pages and exports show
# what is stored, so the same limits hold wherever the text is shown.
DEVICE_TEXT_LIMITS = {
    "serial": 120,
    "name": 120,
    "agent_version": 40,
    "runtime_version": 40,
    "reported_model_version": 120,
}
HARDWARE_FACTS_MAX_BYTES = 4096
HARDWARE_FACTS_MAX_KEYS = 64


class Placement(models.TextChoices):
    """Where inference runs (the seed's three locations)."""

    ON_DEVICE = "on_device", "On-device"
    NEAR_EDGE = "near_edge", "Near-edge gateway"
    CLOUD = "cloud", "Cloud"


class Site(models.Model):
    """A place where AI runs: a dock, hub, clinic, field team or shop."""

    class Kind(models.TextChoices):
        DOCK = "dock", "Logistics dock"
        HUB = "hub", "Hub"
        CLINIC = "clinic", "Clinic"
        FIELD = "field", "Field team"
        RETAIL = "retail", "Retail"
        OTHER = "other", "Other"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="sites")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.OTHER)
    region = models.CharField(max_length=80, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    # Share of time the site is expected online (0..1); offline planning reads it.
    expected_connectivity = models.FloatField(default=1.0)
    # [{"day": 0-6 (Monday=0), "start": "HH:MM", "end": "HH:MM"}] in the site's time zone.
    maintenance_windows = models.JSONField(default=list, blank=True)
    tags = models.JSONField(default=list, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="site_name_unique"),
            models.CheckConstraint(
                condition=Q(expected_connectivity__gte=0) & Q(expected_connectivity__lte=1),
                name="site_connectivity_share",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            zoneinfo.ZoneInfo(self.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationError({"time_zone": f"Unknown time zone '{self.time_zone}'."}) from exc


class ExecutionProvider(models.TextChoices):
    CPU = "CPU", "CPU"
    NNAPI = "NNAPI", "NNAPI (Android)"
    COREML = "CoreML", "Core ML (Apple)"
    QNN = "QNN", "QNN (Qualcomm)"
    TENSORRT = "TensorRT", "TensorRT (NVIDIA)"
    CUDA = "CUDA", "CUDA (NVIDIA)"
    OPENVINO = "OpenVINO", "OpenVINO (Intel)"
    DIRECTML = "DirectML", "DirectML (Windows)"
    OTHER = "other", "Other"


class HardwareTarget(models.Model):
    """A runtime + accelerator profile that models are validated against.

    Built-in targets (organization NULL) are shared by every organisation and read-only; an
    organisation adds its own or clones a built-in one to adjust it.
    """

    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="hardware_targets",
    )
    name = models.CharField(max_length=120)
    builtin_key = models.CharField(max_length=40, blank=True)  # stable id of a built-in profile
    runtime = models.CharField(max_length=80, help_text="e.g. onnxruntime 1.32.0")
    execution_provider = models.CharField(max_length=16, choices=ExecutionProvider.choices)
    # [{"domain": "", "op_type": "Conv", "min_opset": 1, "max_opset": null, "note": ""}]
    operators = models.JSONField(default=list, blank=True)
    static_shapes_only = models.BooleanField(default=False)
    quantized_only = models.BooleanField(default=False)
    max_model_bytes = models.BigIntegerField(null=True, blank=True)
    memory_budget_bytes = models.BigIntegerField(null=True, blank=True)
    typical_power_watts = models.FloatField(null=True, blank=True)
    source = models.TextField(blank=True, help_text="Where the operator list comes from")
    # Documentary: the operator list comes from a vendor's published table and validation never
    # runs on this hardware; findings are operator support only, latency is the lab CPU's.
    documentary = models.BooleanField(default=False)
    # The ai.onnx opsets the runtime's table documents, [lowest, highest] (e.g. TensorRT 9-24).
    onnx_opset_range = models.JSONField(null=True, blank=True)
    notes = models.TextField(blank=True)
    cloned_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="clones"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["organization_id", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"],
                name="target_name_unique_per_org",
                condition=Q(organization__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["builtin_key"],
                name="target_builtin_key_unique",
                condition=Q(organization__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_builtin(self) -> bool:
        return self.organization_id is None


class Device(models.Model):
    """A phone, handheld, gateway or cloud endpoint that runs a model.

    ``status`` is the lifecycle (provisioning → active ⇄ revoked → retired), changed only through
    ``fleet.services.transition_device``; whether an active device is currently offline is
    derived from ``last_seen_at`` by the selectors, so it is always current without a
    background job.
    """

    class Status(models.TextChoices):
        PROVISIONING = "provisioning", "Provisioning"
        ACTIVE = "active", "Active"
        REVOKED = "revoked", "Revoked"
        RETIRED = "retired", "Retired"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="devices")
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="devices")
    name = models.CharField(max_length=DEVICE_TEXT_LIMITS["name"])
    serial = models.CharField(max_length=DEVICE_TEXT_LIMITS["serial"])
    placement = models.CharField(
        max_length=16, choices=Placement.choices, default=Placement.NEAR_EDGE
    )
    hardware_target = models.ForeignKey(
        HardwareTarget, on_delete=models.PROTECT, null=True, blank=True, related_name="devices"
    )
    agent_version = models.CharField(max_length=DEVICE_TEXT_LIMITS["agent_version"], blank=True)
    runtime_version = models.CharField(max_length=DEVICE_TEXT_LIMITS["runtime_version"], blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROVISIONING)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    tags = models.JSONField(default=list, blank=True)
    hardware_facts = models.JSONField(default=dict, blank=True)
    reported_model_version = models.CharField(
        max_length=DEVICE_TEXT_LIMITS["reported_model_version"], blank=True
    )
    notes = models.TextField(blank=True)
    enrolled_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "serial"], name="device_serial_unique"),
        ]
        indexes = [
            models.Index(fields=["organization", "site"], name="device_org_site"),
            models.Index(fields=["organization", "status", "last_seen_at"], name="device_status"),
            models.Index(fields=["organization", "name"], name="device_org_name"),
        ]

    def __str__(self) -> str:
        return self.name


class DeviceCredential(models.Model):
    """A device's Ed25519 public key. One is active at a time; rotation and revocation keep
    the history so audit events and old signatures stay explainable.

    A fingerprint appears once in the whole table, across organisations and including revoked
    keys: one key never signs for two devices, and a retired key is never bound again.
    """

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="credentials")
    public_key = models.CharField(max_length=64)  # base64 of the 32 raw bytes
    fingerprint = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=32, blank=True)  # rotated | revoked | retired

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["device"],
                condition=Q(revoked_at__isnull=True),
                name="one_active_credential_per_device",
            ),
            models.UniqueConstraint(fields=["fingerprint"], name="credential_fingerprint_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.device} key {self.fingerprint[:16]}"


class DeviceNonce(models.Model):
    """Every nonce a device used inside the clock window: the one replay record (fleet.replay),
    so a Redis outage or restart cannot let a captured request through twice."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+")
    nonce = models.CharField(max_length=64)
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "nonce"], name="device_nonce_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.device_id}:{self.nonce}"


class EnrollmentToken(models.Model):
    """A one-time secret that lets one gateway enroll at one site. Only its hash is stored."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="enrollment_tokens"
    )
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="enrollment_tokens")
    placement = models.CharField(
        max_length=16, choices=Placement.choices, default=Placement.NEAR_EDGE
    )
    hardware_target = models.ForeignKey(
        HardwareTarget, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Re-enrollment of an existing (revoked) device keeps its id and history.
    device = models.ForeignKey(
        Device, on_delete=models.CASCADE, null=True, blank=True, related_name="reenrollment_tokens"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=16)
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        Device, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… for {self.site}"

    @property
    def state(self) -> str:
        if self.used_at:
            return "used"
        if self.expires_at <= timezone.now():
            return "expired"
        return "open"


class DeviceGroup(models.Model):
    """A named set of devices that rollouts target: static members, dynamic rules, or both.

    ``rules`` (all optional, AND across keys, OR within a key):
    {"site_ids": [..], "site_kinds": [..], "tags": [..], "placements": [..], "target_ids": [..]}
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="device_groups"
    )
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    rules = models.JSONField(default=dict, blank=True)
    static_members = models.ManyToManyField(Device, blank=True, related_name="static_groups")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="group_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name


# --- the site operating policy --------------------------------------------------------------------

# What a gateway applies at the edge, in the order the pages and the API list them. Each entry is
# (kind, lowest, highest): the model's CheckConstraints and the service's refusals both read it.
POLICY_LIMITS: dict[str, tuple[type, float, float]] = {
    "review_threshold": (float, 0.0, 1.0),
    "evidence_sampling_rate": (float, 0.0, 1.0),
    "evidence_audit_rate": (float, 0.0, 1.0),
    "evidence_daily_cap": (int, 0, 100_000),
    "image_evidence": (bool, 0, 1),
    "telemetry_interval_s": (int, 10, 3600),
    "desired_poll_interval_s": (int, 15, 3600),
}
POLICY_FIELDS = tuple(POLICY_LIMITS)

# Defaults of a site without a policy of its own. A clinic gets the strictest: nothing leaves the
# site as evidence (no sampling, no cap, no images) and more cases go to a human.
STANDARD_POLICY_DEFAULTS: dict[str, object] = {
    "review_threshold": 0.6,
    "evidence_sampling_rate": 0.05,
    # A random share of *all* cases (confident ones too) sent for review, so that measured
    # accuracy is not only that of the hard cases.
    "evidence_audit_rate": 0.01,
    "evidence_daily_cap": 50,
    "image_evidence": True,
    "telemetry_interval_s": 60,
    "desired_poll_interval_s": 60,
}
CLINIC_POLICY_DEFAULTS: dict[str, object] = {
    **STANDARD_POLICY_DEFAULTS,
    "review_threshold": 0.7,
    "evidence_sampling_rate": 0.0,
    "evidence_audit_rate": 0.0,
    "evidence_daily_cap": 0,
    "image_evidence": False,
}


def _policy_range_constraints(prefix: str) -> list[models.CheckConstraint]:
    checks = []
    for name, (kind, low, high) in POLICY_LIMITS.items():
        if kind is bool:
            continue
        checks.append(
            models.CheckConstraint(
                condition=Q(**{f"{name}__gte": low}) & Q(**{f"{name}__lte": high}),
                name=f"{prefix}_{name}_range",
            )
        )
    return checks


class OperatingPolicy(models.Model):
    """How a site's gateways behave at the edge: the confidence below which a case goes to a
    human, how much low-confidence evidence they may send, and how often they report and poll.

    Set for one site, or for one device group (a lane, overriding the sites of its devices);
    exactly one of ``site`` and ``group``. A site without a row uses the defaults of its kind
    (``fleet.selectors.policy_defaults``). ``revision`` rises by one on every change, also
    across a clear and a new policy for the same site or group, so a device never sees it go
    back; every revision is kept in ``OperatingPolicyRevision``. Changed only through
    ``fleet.services.set_operating_policy`` and ``clear_operating_policy``.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="operating_policies"
    )
    site = models.OneToOneField(
        Site, on_delete=models.CASCADE, null=True, blank=True, related_name="operating_policy"
    )
    group = models.OneToOneField(
        DeviceGroup,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="operating_policy",
    )
    # Confidences below this go to human review (0..1).
    review_threshold = models.FloatField(default=STANDARD_POLICY_DEFAULTS["review_threshold"])
    # Share of the low-confidence cases a gateway sends as evidence samples (0..1).
    evidence_sampling_rate = models.FloatField(
        default=STANDARD_POLICY_DEFAULTS["evidence_sampling_rate"]
    )
    # Evidence samples per device and day at most; the server refuses samples beyond it.
    # Share of all cases a gateway sends as audit samples, whatever their confidence (0..1).
    evidence_audit_rate = models.FloatField(default=STANDARD_POLICY_DEFAULTS["evidence_audit_rate"])
    evidence_daily_cap = models.PositiveIntegerField(
        default=STANDARD_POLICY_DEFAULTS["evidence_daily_cap"]
    )
    image_evidence = models.BooleanField(default=STANDARD_POLICY_DEFAULTS["image_evidence"])
    # Set only when an admin let images leave a clinic site (fleet.services): at a clinic,
    # ``image_evidence`` counts only with it (fleet.selectors._clinic_evidence).
    clinic_images_allowed = models.BooleanField(default=False)
    telemetry_interval_s = models.PositiveIntegerField(
        default=STANDARD_POLICY_DEFAULTS["telemetry_interval_s"]
    )
    desired_poll_interval_s = models.PositiveIntegerField(
        default=STANDARD_POLICY_DEFAULTS["desired_poll_interval_s"]
    )
    revision = models.PositiveIntegerField(default=1)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(site__isnull=False) & Q(group__isnull=True))
                | (Q(site__isnull=True) & Q(group__isnull=False)),
                name="policy_site_xor_group",
            ),
            models.CheckConstraint(condition=Q(revision__gte=1), name="policy_revision_positive"),
            *_policy_range_constraints("policy"),
        ]

    def __str__(self) -> str:
        scope = f"site {self.site}" if self.site_id else f"group {self.group}"
        return f"Operating policy of {scope}"

    def values(self) -> dict[str, object]:
        """The policy's values by name, as stored in a revision."""
        return {name: getattr(self, name) for name in POLICY_FIELDS}


class OperatingPolicyRevision(models.Model):
    """One revision of a site's or group's operating policy, kept for history.

    Keeps the site or group as well as the policy: clearing a policy (back to the defaults, or
    removing a lane's override) deletes the policy row but not its history; that revision is
    recorded with ``cleared`` and the values that apply afterwards.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    policy = models.ForeignKey(
        OperatingPolicy,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="revisions",
    )
    site = models.ForeignKey(
        Site, on_delete=models.CASCADE, null=True, blank=True, related_name="policy_revisions"
    )
    group = models.ForeignKey(
        DeviceGroup,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="policy_revisions",
    )
    revision = models.PositiveIntegerField()
    values = models.JSONField(default=dict)
    cleared = models.BooleanField(default=False)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    changed_by_label = models.CharField(max_length=150, blank=True)
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-revision", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(site__isnull=False) & Q(group__isnull=True))
                | (Q(site__isnull=True) & Q(group__isnull=False)),
                name="policy_revision_site_xor_group",
            ),
            models.UniqueConstraint(
                fields=["site", "revision"],
                condition=Q(site__isnull=False),
                name="policy_revision_unique_per_site",
            ),
            models.UniqueConstraint(
                fields=["group", "revision"],
                condition=Q(group__isnull=False),
                name="policy_revision_unique_per_group",
            ),
        ]

    def __str__(self) -> str:
        return f"revision {self.revision}"
