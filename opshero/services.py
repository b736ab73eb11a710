"""Platform writes: organisations, memberships and the audit log.

Every function is one transaction and writes its audit event inside it.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.text import slugify

from . import generations
from .actors import Actor
from .audit import PlatformVerb
from .errors import Conflict, InvalidInput
from .models import ApiToken, AuditEvent, Membership, Organization
from .money import normalise_currency
from .roles import Role
from .tokens import hash_token, new_token


def record_audit_event(
    *,
    organization: Organization | None,
    actor: Actor,
    verb: str,
    target: Any = None,
    target_type: str = "",
    target_id: str = "",
    target_label: str = "",
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit event. Call it inside the transaction of the change it describes.

    ``verb`` is a member of the app's verb enum (``fleet.audit.FleetVerb``, ...; a ``StrEnum``,
    so a ``str``); it is stored as its value. ``target`` may be a model instance, from which
    type, id and label are taken. ``organization`` is None only for a change to a user's own
    account (personal API tokens), which no organisation's audit log shows.
    """
    if target is not None:
        meta = target._meta
        target_type = target_type or f"{meta.app_label}.{meta.model_name}"
        target_id = target_id or str(target.pk)
        target_label = target_label or str(target)[:200]
    if organization is not None and actor.kind != AuditEvent.ActorKind.DEVICE:
        # What a device should run may have changed: cached device answers are stale.
        generations.bump_on_commit(organization.pk)
    return AuditEvent.objects.create(
        organization=organization,
        actor_kind=actor.kind,
        actor_user=actor.user if actor.kind == AuditEvent.ActorKind.USER else None,
        actor_device_id=actor.device_id,
        actor_label=actor.label[:150],
        verb=str(verb),
        target_type=target_type,
        target_id=target_id,
        target_label=target_label,
        data=data or {},
        ip=actor.ip,
    )


@transaction.atomic
def create_organization(*, name: str, actor: Actor, slug: str = "") -> Organization:
    """Create an organisation; a user actor becomes its first admin."""
    name = name.strip()
    if not name:
        raise InvalidInput("An organisation needs a name.", fields={"name": ["Required."]})
    slug = slugify(slug or name)[:60]
    if not slug:
        raise InvalidInput(
            "The name gives an empty address; choose a slug.", fields={"slug": ["Required."]}
        )
    if Organization.objects.filter(slug=slug).exists():
        raise Conflict(
            f"An organisation with the address '{slug}' exists.", fields={"slug": ["Taken."]}
        )
    org = Organization.objects.create(name=name, slug=slug)
    if actor.user is not None:
        Membership.objects.create(user=actor.user, organization=org, role=Role.ADMIN)
    record_audit_event(
        organization=org, actor=actor, verb=PlatformVerb.ORGANIZATION_CREATED, target=org
    )
    return org


@transaction.atomic
def add_member(*, organization: Organization, username: str, role: str, actor: Actor) -> Membership:
    """Give an existing user a role in the organisation."""
    if role not in Role.values:
        raise InvalidInput(f"Unknown role '{role}'.", fields={"role": ["Unknown role."]})
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise InvalidInput(
            f"No user is called '{username}'.", fields={"username": ["No such user."]}
        )
    membership, created = Membership.objects.get_or_create(
        user=user, organization=organization, defaults={"role": role}
    )
    if not created:
        raise Conflict(
            f"{username} is already a member.", fields={"username": ["Already a member."]}
        )
    record_audit_event(
        organization=organization,
        actor=actor,
        verb=PlatformVerb.MEMBER_ADDED,
        target=membership,
        target_label=username,
        data={"role": role},
    )
    return membership


def _lock_admins(organization: Organization) -> int:
    """Count admins while holding row locks, so two demotions cannot leave none."""
    admins = Membership.objects.select_for_update().filter(
        organization=organization, role=Role.ADMIN
    )
    return len(list(admins))


@transaction.atomic
def change_member_role(*, membership: Membership, role: str, actor: Actor) -> Membership:
    """Change a member's role; an organisation always keeps at least one admin."""
    if role not in Role.values:
        raise InvalidInput(f"Unknown role '{role}'.", fields={"role": ["Unknown role."]})
    membership = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("user")
        .get(pk=membership.pk)
    )
    old = membership.role
    if old == role:
        return membership
    if old == Role.ADMIN and _lock_admins(membership.organization) <= 1:
        raise Conflict(
            "This is the organisation's last admin; make someone else admin first.",
            code="last_admin",
        )
    membership.role = role
    membership.save(update_fields=["role"])
    record_audit_event(
        organization=membership.organization,
        actor=actor,
        verb=PlatformVerb.MEMBER_ROLE_CHANGED,
        target=membership,
        target_label=membership.user.username,
        data={"from": old, "to": role},
    )
    return membership


def approver_count(organization: Organization) -> int:
    """Members who may sign models and approve rollouts."""
    from .roles import Action, roles_that_can

    return Membership.objects.filter(
        organization=organization, role__in=roles_that_can(Action.SIGN_MODELS)
    ).count()


@transaction.atomic
def set_single_approver(
    *, organization: Organization, enabled: bool, reason: str, actor: Actor
) -> Organization:
    """Relax (or restore) four-eyes for an organisation with a single approver: the uploader of
    a version may then sign it and approve its rollout. Audited with the reason; every
    signature made while it is on records it and shows a badge."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(
            "Say why: the reason is kept in the audit log.", fields={"reason": ["Required."]}
        )
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    if organization.single_approver == enabled:
        return organization
    organization.single_approver = enabled
    organization.save(update_fields=["single_approver"])
    record_audit_event(
        organization=organization,
        actor=actor,
        verb=PlatformVerb.APPROVAL_POLICY_CHANGED,
        target=organization,
        data={
            "single_approver": enabled,
            "reason": reason[:1000],
            "approvers": approver_count(organization),
        },
    )
    return organization


@transaction.atomic
def set_currency(*, organization: Organization, currency: str, actor: Actor) -> Organization:
    """Set the organisation's ISO 4217 currency (audited). Figures are relabelled, never
    converted: the planning inputs were entered in the organisation's currency."""
    try:
        code = normalise_currency(currency)
    except ValueError as exc:
        raise InvalidInput("Not a currency.", fields={"currency": [str(exc)]}) from None
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    if organization.currency == code:
        return organization
    old = organization.currency
    organization.currency = code
    organization.save(update_fields=["currency"])
    record_audit_event(
        organization=organization,
        actor=actor,
        verb=PlatformVerb.CURRENCY_CHANGED,
        target=organization,
        data={"from": old, "to": code},
    )
    return organization


@transaction.atomic
def remove_member(*, membership: Membership, actor: Actor) -> None:
    """Remove a user from the organisation; the last admin cannot be removed."""
    membership = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("user")
        .get(pk=membership.pk)
    )
    if membership.role == Role.ADMIN and _lock_admins(membership.organization) <= 1:
        raise Conflict("The organisation's last admin cannot be removed.", code="last_admin")
    username = membership.user.username
    record_audit_event(
        organization=membership.organization,
        actor=actor,
        verb=PlatformVerb.MEMBER_REMOVED,
        target=membership,
        target_label=username,
        data={"role": membership.role},
    )
    membership.delete()


@transaction.atomic
def issue_api_token(*, user, name: str = "", actor: Actor | None = None) -> tuple[ApiToken, str]:
    """Create a personal API token and audit it; returns the record and the token.

    Only the token's hash is stored: the token itself is in this return value and nowhere
    else. The audit event belongs to the user's account, not to an organisation. ``actor``
    defaults to the user (people issue their own tokens); pass it to record the address.
    """
    token = new_token()
    record = ApiToken.objects.create(
        user=user, name=name[:80], prefix=token[:12], key_hash=hash_token(token)
    )
    record_audit_event(
        organization=None,
        actor=actor or Actor.for_user(user),
        verb=PlatformVerb.API_TOKEN_ISSUED,
        target=record,
        data={"name": record.name, "prefix": record.prefix},
    )
    return record, token


@transaction.atomic
def revoke_api_token(*, token: ApiToken, actor: Actor) -> None:
    """Delete a personal API token and audit it: every later request presenting it is refused.

    Revoking a token that is already gone changes nothing and records nothing.
    """
    locked = ApiToken.objects.select_for_update().select_related("user").filter(pk=token.pk)
    record = locked.first()
    if record is None:
        return
    record_audit_event(
        organization=None,
        actor=actor,
        verb=PlatformVerb.API_TOKEN_REVOKED,
        target=record,
        data={"name": record.name, "prefix": record.prefix},
    )
    record.delete()
