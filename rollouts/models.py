"""Staged rollouts: a signed model version reaching devices wave by wave, with four-eyes
approval, per-device deployment actions, canary verdicts on model behaviour and rollback.

Three state machines, each changed only through its transition function in
``rollouts.transitions`` (a test scans for other writes):

- ``Rollout``: draft → pending approval → approved | rejected → running ⇄ paused →
  completed | aborted | rolled back (a rejected rollout may go back to draft; a pending one
  may be withdrawn to draft; an approved one may be aborted before it starts).
- ``Wave``: pending → running → soaking → done | failed (running → failed too).
- ``DeploymentAction``: pending → notified → downloading → verifying → installed → healthy,
  or failed | timed out | rolled back. Forward jumps are allowed (a device may report
  *installed* before the server saw *downloading*); going backwards never is.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from fleet.models import Device
from modelregistry.models import MlModel, ModelSignature, ModelVersion
from opshero.models import Organization


class HoldKind(models.TextChoices):
    """What paused a rollout."""

    MANUAL = "manual", "Paused by a person"
    ERRORS = "errors", "Error threshold"
    ANALYSIS = "analysis", "Canary analysis failed"
    DECISION = "decision", "Analysis inconclusive: an approver decides"
    ROLLBACK = "rollback", "A wave was rolled back"


class Rollout(models.Model):
    """One signed model version going to a target (sites and/or device groups) in waves."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PENDING_APPROVAL = "pending_approval", "Pending approval"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        ABORTED = "aborted", "Aborted"
        ROLLED_BACK = "rolled_back", "Rolled back"

    # While in these states the rollout holds its (device, model) claims.
    ACTIVE = (Status.DRAFT, Status.PENDING_APPROVAL, Status.APPROVED, Status.RUNNING, Status.PAUSED)
    FINISHED = (Status.COMPLETED, Status.ABORTED, Status.ROLLED_BACK, Status.REJECTED)

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    model = models.ForeignKey(MlModel, on_delete=models.PROTECT, related_name="rollouts")
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="rollouts")
    name = models.CharField(max_length=160)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    # Targets as chosen (ids of the organisation's sites and device groups) and the canary.
    target_site_ids = models.JSONField(default=list)
    target_group_ids = models.JSONField(default=list)
    canary_site_ids = models.JSONField(default=list)
    seed = models.BigIntegerField()
    # rollouts.planning.AnalysisSettings.to_dict(): thresholds, device soak, auto-rollback.
    analysis_settings = models.JSONField(default=dict)
    # [{"device_id", "device", "site", "reason"}]: every targeted device left out, and why.
    exclusions = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The manifest devices get (set when the rollout starts; a re-issue when needed).
    signature = models.ForeignKey(
        ModelSignature, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Why it is paused, what paused it, and whether an approver must decide (an inconclusive
    # analysis twice). Resuming accepts only what ``hold_kind`` names.
    hold_reason = models.TextField(blank=True)
    hold_kind = models.CharField(max_length=12, choices=HoldKind.choices, blank=True)
    needs_decision = models.BooleanField(default=False)
    # What the plan was made from: approval is refused when the evidence or the signed
    # manifest changed since (the exclusions were worked out against these).
    plan_evidence_digest = models.CharField(max_length=64, blank=True)
    plan_manifest_digest = models.CharField(max_length=64, blank=True)
    rollback_reason = models.TextField(blank=True)
    rollback_started_at = models.DateTimeField(null=True, blank=True)
    rollback_finished_at = models.DateTimeField(null=True, blank=True)
    # Devices asked to go back that never said they were back by the rollback deadline.
    rollback_stragglers = models.PositiveIntegerField(default=0)
    # The re-issued manifest of the previous version that a rollback sends.
    rollback_signatures = models.JSONField(default=dict)  # {version_id: signature_id}
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["organization", "status"], name="rollout_org_status")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class Wave(models.Model):
    """One step of a rollout: the canary (``number`` 0) or a share of the remaining devices."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SOAKING = "soaking", "Soaking"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="waves")
    number = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=80)
    # Percentage of the devices outside the canary this wave brings to the version in total
    # (10, 50, 100); None for the canary.
    share_percent = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    soak_minutes = models.PositiveIntegerField(default=30)
    success_threshold = models.FloatField(default=0.95)
    error_threshold = models.FloatField(default=0.05)
    device_deadline_minutes = models.PositiveIntegerField(default=60)
    device_count = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    soak_started_at = models.DateTimeField(null=True, blank=True)
    soak_until = models.DateTimeField(null=True, blank=True)
    extended = models.BooleanField(default=False)
    # An approver resumed past the error threshold: it is not judged again for this wave.
    errors_accepted = models.BooleanField(default=False)
    # An approver accepted an inconclusive analysis: the wave may finish on it.
    inconclusive_accepted = models.BooleanField(default=False)
    outcome = models.TextField(blank=True)  # why it finished or failed, in words
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["rollout_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["rollout", "number"], name="wave_number_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.rollout} · {self.name}"


class DeploymentAction(models.Model):
    """One device's part in a rollout. ``active`` is the claim that makes a second rollout of
    the same model to the same device impossible (a partial unique constraint)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        NOTIFIED = "notified", "Notified"
        DOWNLOADING = "downloading", "Downloading"
        VERIFYING = "verifying", "Verifying"
        INSTALLED = "installed", "Installed"
        HEALTHY = "healthy", "Healthy"
        FAILED = "failed", "Failed"
        TIMED_OUT = "timed_out", "Timed out"
        ROLLED_BACK = "rolled_back", "Rolled back"

    # Still working towards healthy, so the device deadline applies.
    IN_FLIGHT = (Status.NOTIFIED, Status.DOWNLOADING, Status.VERIFYING)
    # The device runs (or ran) the new version.
    SWITCHED = (Status.INSTALLED, Status.HEALTHY)
    BAD = (Status.FAILED, Status.TIMED_OUT)

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="actions")
    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="actions")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="deployments")
    model = models.ForeignKey(MlModel, on_delete=models.CASCADE, related_name="+")
    site_id = models.BigIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    # The version the device should run before this rollout (None: nothing of this model).
    previous_version = models.ForeignKey(
        ModelVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    active = models.BooleanField(default=True)
    # A failure's code and the device's words ("signature_invalid", "health_check_failed"...).
    reason_code = models.CharField(max_length=40, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    installed_at = models.DateTimeField(null=True, blank=True)
    # The device said the model loaded and served inferences (healthy once the soak is over).
    confirmed_at = models.DateTimeField(null=True, blank=True)
    inferences_served = models.PositiveIntegerField(default=0)
    healthy_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    rollback_requested_at = models.DateTimeField(null=True, blank=True)
    rolled_back_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["wave_id", "device_id"]
        constraints = [
            models.UniqueConstraint(fields=["rollout", "device"], name="action_rollout_device"),
            models.UniqueConstraint(
                fields=["device", "model"],
                condition=Q(active=True),
                name="one_active_rollout_per_device_model",
            ),
        ]
        indexes = [
            models.Index(fields=["rollout", "status"], name="action_rollout_status"),
            models.Index(fields=["wave", "status"], name="action_wave_status"),
            models.Index(fields=["device", "-updated_at"], name="action_device_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.device_id} in {self.rollout_id}: {self.status}"


class RolloutApproval(models.Model):
    """An approver's decision, pinned to what it was given: the artifact digest, the signed
    manifest's content and the validation evidence. Void if any of them changes."""

    class Decision(models.TextChoices):
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="approvals")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    reason = models.TextField(blank=True)
    artifact_sha256 = models.CharField(max_length=64)
    manifest_digest = models.CharField(max_length=64)
    evidence_digest = models.CharField(max_length=64)
    signature = models.ForeignKey(ModelSignature, on_delete=models.PROTECT, related_name="+")
    # Approved by the rollout's creator under the organisation's single-approver setting.
    four_eyes_relaxed = models.BooleanField(default=False)
    decided_at = models.DateTimeField(default=timezone.now)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-decided_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.rollout} {self.decision}"


class CanaryVerdict(models.Model):
    """One check of a wave's canary analysis with every number it used
    (``rollouts.analysis.CheckVerdict``)."""

    class Outcome(models.TextChoices):
        PASS = "pass", "Pass"
        FAIL = "fail", "Fail"
        INCONCLUSIVE = "inconclusive", "Inconclusive"

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="verdicts")
    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="verdicts")
    round = models.PositiveSmallIntegerField(default=1)  # 2 after the soak was extended
    check_name = models.CharField(max_length=32)
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    summary = models.TextField()
    figures = models.JSONField(default=dict)
    # "peers": same sites on the previous version; "before": the same devices before.
    baseline = models.CharField(max_length=8)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    evaluated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["wave_id", "round", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["wave", "round", "check_name"], name="verdict_wave_round_check"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.wave} {self.check_name}: {self.outcome}"
