"""Evidence samples, their reviews, the retention schedule and its deletion report, exports.

A sample's bytes are never in the database: the object (encrypted, ``review.crypto``) is a file
in the evidence store (``review.storage``) and its wrapped data key is ``wrapped_key`` here.
Deleting a sample (retention, or no event within a day) removes both and keeps the row as a
tombstone (status ``deleted`` or ``unmatched``), so the deletion report and the reviews made on it
outlive the evidence. The event a sample belongs to lives in the telemetry store (possibly
another database), so it is named by plain ids: ``event_epoch_id`` and ``sequence``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from fleet.models import Device, Site
from modelregistry.models import ModelVersion
from opshero.models import Organization


class EvidenceSettings(models.Model):
    """An organisation's evidence retention schedule (defaults from settings when absent).

    Changed only through ``review.services.set_evidence_settings`` (admins)."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="evidence_settings"
    )
    retention_days = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(3650)]
    )
    # Clinics keep evidence a shorter time (the seed: "delete on schedule").
    clinic_retention_days = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(3650)]
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(retention_days__gte=1) & Q(clinic_retention_days__gte=1),
                name="evidence_retention_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"Evidence retention of {self.organization}"


class EvidenceSample(models.Model):
    """One low-confidence or audit case a gateway sent, encrypted at rest.

    ``pending``: stored, its inference event not yet seen (linked when it lands, refused after
    ``protocol.evidence.LINK_WINDOW_HOURS``); ``linked``: waiting in the review queue;
    ``reviewed``; ``unmatched`` and ``deleted``: object and key gone, the row kept.
    Status changes only through ``review.services`` (``review.transitions``).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for its event"
        LINKED = "linked", "Waiting for review"
        REVIEWED = "reviewed", "Reviewed"
        UNMATCHED = "unmatched", "Refused: no event within a day"
        DELETED = "deleted", "Deleted on schedule"

    class Reason(models.TextChoices):
        LOW_CONFIDENCE = "low_confidence", "Low confidence"
        AUDIT = "audit", "Random audit"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="evidence_samples")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="evidence_samples")
    epoch = models.CharField(max_length=64)
    sequence = models.BigIntegerField()
    reason = models.CharField(max_length=16, choices=Reason.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    media_type = models.CharField(max_length=32)
    size_bytes = models.PositiveIntegerField()
    # Of the plaintext: a retry of the same sample is told from a different one.
    sha256 = models.CharField(max_length=64)
    object_name = models.CharField(max_length=200)
    # nonce || AES-GCM(data key); NULL once deleted (the key is gone with the object).
    wrapped_key = models.BinaryField(null=True)
    key_version = models.PositiveSmallIntegerField(default=1)
    site_kind = models.CharField(max_length=16)
    received_at = models.DateTimeField(default=timezone.now)
    # When retention deletes it (set at receipt from the organisation's schedule and site kind).
    delete_after = models.DateTimeField()
    # The inference event, copied when linked (the telemetry store may be another database).
    event_epoch_id = models.BigIntegerField(null=True)
    event_timestamp = models.DateTimeField(null=True)
    linked_at = models.DateTimeField(null=True)
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    model_name = models.CharField(max_length=200, blank=True)
    model_version_label = models.CharField(max_length=100, blank=True)
    model_sha256 = models.CharField(max_length=64, blank=True)
    predicted_class = models.CharField(max_length=200, blank=True)
    confidence = models.FloatField(null=True)
    deleted_at = models.DateTimeField(null=True)
    deletion_run = models.ForeignKey(
        "EvidenceDeletionRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["device", "epoch", "sequence"], name="evidence_one_per_event"
            ),
            models.CheckConstraint(
                condition=Q(sequence__gte=0), name="evidence_sequence_nonnegative"
            ),
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "pending",
                        "linked",
                        "reviewed",
                        "unmatched",
                        "deleted",
                    ]
                ),
                name="evidence_status_valid",
            ),
        ]
        indexes = [
            # The review queue: a site's (and a version's) linked samples, oldest first.
            models.Index(
                fields=["organization", "status", "site", "model_version", "received_at"],
                name="review_evidence_queue",
            ),
            models.Index(fields=["status", "delete_after"], name="review_evidence_retention"),
            models.Index(fields=["status", "received_at"], name="review_evidence_pending"),
            models.Index(fields=["device", "received_at"], name="review_evidence_device_day"),
        ]

    def __str__(self) -> str:
        return f"evidence {self.id} ({self.get_status_display()})"

    @property
    def is_image(self) -> bool:
        return self.media_type.startswith("image/")

    @property
    def has_object(self) -> bool:
        return self.status in (self.Status.PENDING, self.Status.LINKED, self.Status.REVIEWED)


class Review(models.Model):
    """A person's verdict on one sample: the prediction confirmed, or corrected to ``true_class``.

    The case's figures (site, model version, predicted class, confidence, why it was sampled) are
    copied here so accuracy over time outlives the evidence's retention.
    """

    class Verdict(models.TextChoices):
        CONFIRMED = "confirmed", "Confirmed"
        CORRECTED = "corrected", "Corrected"

    sample = models.OneToOneField(EvidenceSample, on_delete=models.CASCADE, related_name="review")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    model_sha256 = models.CharField(max_length=64, blank=True)
    sample_reason = models.CharField(max_length=16, choices=EvidenceSample.Reason.choices)
    predicted_class = models.CharField(max_length=200)
    confidence = models.FloatField()
    verdict = models.CharField(max_length=12, choices=Verdict.choices)
    true_class = models.CharField(max_length=200)
    reason = models.CharField(max_length=500, blank=True)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-reviewed_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(confidence__gte=0) & Q(confidence__lte=1),
                name="review_confidence_range",
            ),
            models.CheckConstraint(
                condition=(Q(verdict="confirmed") & Q(true_class=models.F("predicted_class")))
                | (Q(verdict="corrected") & ~Q(true_class=models.F("predicted_class"))),
                name="review_verdict_matches_class",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "site", "model_version", "reviewed_at"],
                name="review_review_scope",
            ),
        ]

    def __str__(self) -> str:
        return f"review of {self.sample_id}: {self.verdict}"

    @property
    def correct(self) -> bool:
        return self.verdict == self.Verdict.CONFIRMED


class EvidenceDeletionRun(models.Model):
    """One pass of the retention task over one organisation: what it deleted, when, and why.

    The deletion report lists these; the samples point back at the run that deleted them."""

    class Cause(models.TextChoices):
        RETENTION = "retention", "Retention period over"
        UNMATCHED = "unmatched", "No inference event within a day"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    cause = models.CharField(max_length=12, choices=Cause.choices)
    ran_at = models.DateTimeField(default=timezone.now)
    samples = models.PositiveIntegerField()
    bytes = models.PositiveBigIntegerField()
    oldest_received_at = models.DateTimeField(null=True)
    newest_received_at = models.DateTimeField(null=True)

    class Meta:
        ordering = ["-ran_at"]
        indexes = [models.Index(fields=["organization", "ran_at"], name="review_deletion_org")]

    def __str__(self) -> str:
        return f"deleted {self.samples} samples ({self.cause}) at {self.ran_at:%Y-%m-%d %H:%M}"


class LabelledExport(models.Model):
    """A de-identified labelled dataset: reviewed samples with their true classes, as a zip
    whose ``manifest.json`` lists every file and its digest. Built by a worker."""

    class Status(models.TextChoices):
        BUILDING = "building", "Building"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.BUILDING)
    # {"site_ids": [...], "model_version_id": n|null, "include_device_ids": bool,
    #  "include_free_text": bool}
    options = models.JSONField(default=dict)
    samples = models.PositiveIntegerField(default=0)
    size_bytes = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    manifest_sha256 = models.CharField(max_length=64, blank=True)
    object_name = models.CharField(max_length=200, blank=True)
    # The zip is encrypted at rest like a sample (review.crypto, its own data key): with
    # identifiers or free text chosen it is no longer de-identified.
    wrapped_key = models.BinaryField(null=True)
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"export {self.id} ({self.status})"
