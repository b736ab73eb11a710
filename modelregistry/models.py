"""The model registry: models (``MlModel``) with their release gates, uploaded versions,
validation runs per hardware target, signing keys and signatures."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from fleet.models import HardwareTarget
from opshero.models import Organization


class MlModel(models.Model):
    """A model an organisation ships (e.g. "dock damage detector"), with its release gates.

    ``release_counter`` only grows: every signature takes the next value, so a gateway that
    has installed release N refuses any manifest below N (anti-rollback).
    """

    class Task(models.TextChoices):
        CLASSIFICATION = "classification", "Classification"
        DETECTION = "detection", "Detection"
        SEGMENTATION = "segmentation", "Segmentation"
        REGRESSION = "regression", "Regression"
        OTHER = "other", "Other"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="models")
    name = models.CharField(max_length=120)
    task = models.CharField(max_length=16, choices=Task.choices, default=Task.CLASSIFICATION)
    workflow = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Gates (None disables one): P95 budget on the target, INT8 accuracy drop, calibration.
    latency_budget_ms = models.FloatField(null=True, blank=True, default=200.0)
    max_int8_drop_points = models.FloatField(null=True, blank=True, default=1.0)
    max_ece = models.FloatField(null=True, blank=True, default=0.05)
    min_accuracy = models.FloatField(null=True, blank=True)
    # Variant gates (agreement with the parent on the parent's inputs; decide without labels).
    min_variant_top1_agreement = models.FloatField(null=True, blank=True, default=0.99)
    min_variant_sqnr_db = models.FloatField(null=True, blank=True, default=20.0)
    release_counter = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="model_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class ModelVersion(models.Model):
    """One uploaded artifact of a model. ``status`` changes only through
    ``modelregistry.services.transition_version``:

    uploaded → validating → validated | rejected → signed → retired
    (validated/rejected/signed may be validated again; any state but retired may be retired)
    """

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        VALIDATING = "validating", "Validating"
        VALIDATED = "validated", "Validated"
        REJECTED = "rejected", "Rejected"
        SIGNED = "signed", "Signed"
        RETIRED = "retired", "Retired"

    class ArtifactKind(models.TextChoices):
        ONNX = "onnx", "ONNX file"
        BUNDLE = "bundle", "Bundle (model + external data)"

    model = models.ForeignKey(MlModel, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=40)
    # The stored artifact as uploaded and downloaded: the .onnx file, or the bundle archive.
    artifact = models.FileField(upload_to="artifacts/", max_length=300)
    artifact_kind = models.CharField(
        max_length=8, choices=ArtifactKind.choices, default=ArtifactKind.ONNX
    )
    file_name = models.CharField(max_length=200)  # the user's file name (stored and signed)
    # The model file's path inside a bundle (the file name for a single .onnx), and every file
    # of the artifact with its own SHA-256 and size: [{"path", "sha256", "size"}].
    entrypoint = models.CharField(max_length=255, blank=True)
    files = models.JSONField(default=list)
    # What the outputs mean (protocol.contract.IoContract.to_dict()); signed into the manifest.
    io_contract = models.JSONField(null=True, blank=True)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    release_notes = models.TextField(blank=True)
    derived_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="derivatives"
    )
    variant_kind = models.CharField(max_length=16, blank=True)  # "", "int8", "fp16"
    # How a produced INT8 variant was calibrated: "uploaded", "synthetic" or "" (not static).
    variant_calibration = models.CharField(max_length=16, blank=True)
    # Registering a variant the run marked not registrable needs an audited reason.
    registration_override = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UPLOADED)
    metadata = models.JSONField(default=dict)  # onnxcheck.inspection.ModelMetadata.to_dict()
    inputs_file = models.FileField(upload_to="inputs/", max_length=300, blank=True)
    inputs_sha256 = models.CharField(max_length=64, blank=True)
    shape_buckets = models.JSONField(null=True, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="model_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} {self.version}"


class ValidationRun(models.Model):
    """One validation of a version on one hardware target with one input set.

    Re-running creates a new run with the next ``number``; the report of each is kept.
    ``status`` changes only through ``modelregistry.services.transition_run``:
    queued → running → passed | failed | error | needs review (running again when a redelivered
    message restarts it; error also when its worker attempts run out or it stops reporting).
    *Needs review*: the latency gate stayed inconclusive after a re-measure; an approver accepts
    (passed) or rejects (failed) it with a reason (``review_reason``, ``reviewed_by``).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        NEEDS_REVIEW = "needs_review", "Needs review"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"
        ERROR = "error", "Error"

    FINISHED = (Status.PASSED, Status.FAILED, Status.ERROR)
    # The worker is done with these; only a review moves a needs-review run on.
    MEASURED = (*FINISHED, Status.NEEDS_REVIEW)

    version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="validation_runs"
    )
    target = models.ForeignKey(HardwareTarget, on_delete=models.PROTECT, related_name="+")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    synthetic_inputs = models.BooleanField(default=True)
    shape_buckets = models.JSONField(null=True, blank=True)
    gates = models.JSONField(default=dict)
    steps = models.JSONField(default=list)  # StepResult.to_dict() as each step finishes
    report = models.JSONField(null=True, blank=True)
    report_digest = models.CharField(max_length=64, blank=True)
    reasons = models.JSONField(default=list)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    review_reason = models.TextField(blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "target", "number"], name="validation_run_number_unique"
            ),
        ]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="validation_run_status")]

    def __str__(self) -> str:
        return f"{self.version} on {self.target} #{self.number}"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def is_measured(self) -> bool:
        """The worker is done (finished, or waiting for an approver's review)."""
        return self.status in self.MEASURED


class SigningKey(models.Model):
    """An organisation's model-signing key (ECDSA P-256). The private key is stored encrypted
    with a key from the environment and is never shown; ``key_id`` is the public key's
    SHA-256 fingerprint. ``status`` (active → retired, for good) changes only through
    ``modelregistry.signing_services.transition_signing_key``."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="signing_keys"
    )
    key_id = models.CharField(max_length=64, unique=True)
    public_pem = models.TextField()
    private_key_encrypted = models.BinaryField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(status="active"),
                name="one_active_signing_key_per_org",
            ),
        ]

    def __str__(self) -> str:
        return f"key {self.key_id[:16]}… ({self.status})"


class ModelSignature(models.Model):
    """A signed manifest for one version: the DSSE envelope devices verify before loading."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="signatures")
    key = models.ForeignKey(SigningKey, on_delete=models.PROTECT, related_name="signatures")
    release_counter = models.PositiveIntegerField()
    manifest = models.JSONField()
    envelope = models.TextField()
    expires_at = models.DateTimeField()
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    # Signed although no target measured accuracy on labelled inputs: the approver's reason.
    accuracy_waiver = models.TextField(blank=True)
    # Signed by the version's uploader under the organisation's single-approver setting.
    four_eyes_relaxed = models.BooleanField(default=False)
    # A re-issue (rollback under anti-rollback, or a rollout of an older signed version): the
    # human signature it re-issues with a higher release counter, signed by the system.
    reissue_of = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="reissues"
    )
    reissue_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.version} release {self.release_counter}"

    @property
    def approved_signature(self) -> ModelSignature:
        """The human signature this one derives from (itself when it is not a re-issue)."""
        return self.reissue_of if self.reissue_of_id else self

    @property
    def targets(self) -> list[dict]:
        """The targets this signature covers, each with its report digest (manifest v2)."""
        return list(self.manifest.get("targets") or [])


class DeviceAssignment(models.Model):
    """What one device should run of one model: the version, since when, and the version to
    fall back to. A gateway may run several models, so there is one row per (device, model).

    Rollouts write it only through ``modelregistry.assignment_services``; the device API, the
    device page and telemetry read it. ``rollout_id`` names the rollout that set it (a plain
    id: rollouts live above the registry)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    device = models.ForeignKey("fleet.Device", on_delete=models.CASCADE, related_name="assignments")
    model = models.ForeignKey(MlModel, on_delete=models.CASCADE, related_name="assignments")
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    previous_version = models.ForeignKey(
        ModelVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    rollout_id = models.BigIntegerField(null=True, blank=True)
    # The deployment action the device reports status against (rollouts.DeploymentAction).
    action_id = models.BigIntegerField(null=True, blank=True)
    # "install" for a new version, "rollback" when the previous one is re-issued.
    purpose = models.CharField(max_length=16, default="install")
    since = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["device_id", "model_id"]
        constraints = [
            models.UniqueConstraint(fields=["device", "model"], name="assignment_device_model"),
        ]
        indexes = [models.Index(fields=["organization", "model"], name="assignment_org_model")]

    def __str__(self) -> str:
        return f"{self.device_id} → {self.version_id}"
