"""Organisations (tenants), memberships with roles, and the audit log."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .money import DEFAULT_CURRENCY, normalise_currency
from .roles import Action, Role, role_can


def validate_currency(value: str) -> None:
    try:
        if normalise_currency(value) != value:
            raise ValidationError("Use the upper-case ISO 4217 code, such as EUR.")
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


class Organization(models.Model):
    """A tenant. Every domain object belongs to exactly one organisation."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    # Four-eyes: whoever uploaded a model version cannot sign it, nor approve its rollout. An
    # organisation with a single approver may relax that (audited; every signature made under
    # it carries a visible badge): ``opshero.services.set_single_approver``.
    single_approver = models.BooleanField(default=False)
    # Raw telemetry events older than this are deleted on schedule and refused on arrival, so a
    # late replay never re-inserts deleted data (telemetry.retention).
    telemetry_retention_days = models.PositiveSmallIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(3650)]
    )
    # Every money figure the organisation enters and sees is in this ISO 4217 currency; nothing
    # converts (opshero.money).
    currency = models.CharField(
        max_length=3, default=DEFAULT_CURRENCY, validators=[validate_currency]
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role inside one organisation. A user may belong to several organisations."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["organization__name", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="membership_unique"),
            models.CheckConstraint(
                condition=Q(role__in=[r.value for r in Role]), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} as {self.role}"

    def can(self, action: Action) -> bool:
        return role_can(self.role, action)


class AuditEvent(models.Model):
    """An immutable record of a change: who (user or device) did what to which object.

    Written by service functions inside the same transaction as the change, so an event
    exists if and only if the change committed. The actor label is a snapshot so that the
    history stays readable after users or devices are deleted.
    """

    class ActorKind(models.TextChoices):
        USER = "user", "User"
        DEVICE = "device", "Device"
        SYSTEM = "system", "System"

    # Empty for a change to a user's own account (personal API tokens): such an event belongs
    # to no organisation, so no organisation's audit log, page or API shows it.
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="audit_events", null=True, blank=True
    )
    actor_kind = models.CharField(max_length=8, choices=ActorKind.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Devices live in a higher app (fleet); the audit log refers to them by id only.
    actor_device_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=150)
    verb = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["organization", "-at"], name="audit_org_at"),
            models.Index(fields=["organization", "verb"], name="audit_org_verb"),
            models.Index(fields=["organization", "target_type", "target_id"], name="audit_target"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.verb} {self.target_label}"


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 is stored; the token is shown once at creation."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=80, blank=True)
    prefix = models.CharField(max_length=16)  # shown in lists so users can tell tokens apart
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"
