"""Roles and what each may do: the one place that decides it.

Views, API views and services ask ``role_can(role, action)`` (or the helpers built on it in
``opshero.tenancy`` and ``opshero.api.permissions``); nothing else compares role names.
"""

from __future__ import annotations

from enum import StrEnum

from django.db import models


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    PLANNER = "planner", "Planner"
    REVIEWER = "reviewer", "Reviewer"
    APPROVER = "approver", "Approver"
    ADMIN = "admin", "Admin"


ROLE_DESCRIPTIONS = {
    Role.VIEWER: "Reads every page of the organisation; changes nothing.",
    Role.PLANNER: (
        "Ops leader: placement decisions, stack scorecards, ROI scenarios, the 90-day plan."
    ),
    Role.REVIEWER: (
        "Confirms or corrects the model's answers on evidence samples in the review queue."
    ),
    Role.APPROVER: "Technical manager: fleet, models, validation, signing and rollout approval.",
    Role.ADMIN: (
        "Members and roles, enrollment tokens and signing keys, plus everything an approver does."
    ),
}


class Action(StrEnum):
    """Things a member can do inside an organisation."""

    VIEW = "org.view"
    VIEW_AUDIT = "audit.view"
    MANAGE_MEMBERS = "members.manage"
    MANAGE_FLEET = "fleet.manage"  # sites, devices, groups, hardware targets
    ENROLL_DEVICES = "fleet.enroll"  # create enrollment tokens
    REVOKE_DEVICES = "fleet.revoke"  # revoke or retire device credentials
    EDIT_PLANS = "plan.edit"  # wizard assessments, scorecards, ROI scenarios, 90-day plans
    MANAGE_MODELS = "models.manage"  # create models, upload versions, run validations
    SIGN_MODELS = "models.sign"  # sign a validated version (four-eyes starts here)
    REVIEW_VALIDATIONS = "validations.review"  # accept or reject an inconclusive latency verdict
    MANAGE_SIGNING_KEYS = "signing_keys.manage"  # create, rotate, retire signing keys
    MANAGE_NOTIFICATIONS = "notifications.manage"  # alert webhooks and e-mail channels
    ACKNOWLEDGE_ALERTS = "alerts.acknowledge"  # acknowledge and resolve field alerts
    MANAGE_ROLLOUTS = "rollouts.manage"  # plan, submit, pause, resume, advance, abort, roll back
    APPROVE_ROLLOUTS = "rollouts.approve"  # approve or reject a submitted rollout (four-eyes)
    REVIEW_EVIDENCE = "evidence.review"  # see evidence samples, confirm or correct predictions
    EXPORT_EVIDENCE = "evidence.export"  # download the de-identified labelled dataset
    MANAGE_EVIDENCE = "evidence.manage"  # evidence retention schedule
    ENABLE_CLINIC_IMAGES = "fleet.clinic_image_evidence"  # let images leave a clinic site


_EVERYONE = frozenset(Role)

PERMISSIONS: dict[Action, frozenset[Role]] = {
    Action.VIEW: _EVERYONE,
    Action.VIEW_AUDIT: frozenset({Role.APPROVER, Role.ADMIN}),
    Action.MANAGE_MEMBERS: frozenset({Role.ADMIN}),
    Action.MANAGE_FLEET: frozenset({Role.APPROVER, Role.ADMIN}),
    Action.ENROLL_DEVICES: frozenset({Role.ADMIN}),
    Action.REVOKE_DEVICES: frozenset({Role.APPROVER, Role.ADMIN}),
    Action.EDIT_PLANS: frozenset({Role.PLANNER, Role.ADMIN}),
    Action.MANAGE_MODELS: frozenset({Role.APPROVER, Role.ADMIN}),
    # Signing vouches for a model reaching devices: the technical manager's decision alone.
    Action.SIGN_MODELS: frozenset({Role.APPROVER}),
    # Deciding a verdict the measurement could not is the same person's call as signing.
    Action.REVIEW_VALIDATIONS: frozenset({Role.APPROVER}),
    Action.MANAGE_SIGNING_KEYS: frozenset({Role.ADMIN}),
    # A webhook's secret is a credential of the receiving system, like a signing key.
    Action.MANAGE_NOTIFICATIONS: frozenset({Role.ADMIN}),
    # Taking on an alert is the operators' work: whoever runs the fleet, not the planners.
    Action.ACKNOWLEDGE_ALERTS: frozenset({Role.APPROVER, Role.ADMIN}),
    # Running the fleet's changes, and stopping them, is the operators' work.
    Action.MANAGE_ROLLOUTS: frozenset({Role.APPROVER, Role.ADMIN}),
    # Approving a rollout vouches for it reaching devices, like signing: approvers only, and
    # never the rollout's creator (rollouts.services.approve_rollout).
    Action.APPROVE_ROLLOUTS: frozenset({Role.APPROVER}),
    # Evidence holds what the sites saw: those who judge it, never planners or viewers.
    Action.REVIEW_EVIDENCE: frozenset({Role.REVIEWER, Role.APPROVER, Role.ADMIN}),
    # A dataset leaving the product for retraining is the technical manager's call.
    Action.EXPORT_EVIDENCE: frozenset({Role.APPROVER, Role.ADMIN}),
    Action.MANAGE_EVIDENCE: frozenset({Role.ADMIN}),
    # A clinic keeps images on site unless an admin decides otherwise (the seed's strictest case).
    Action.ENABLE_CLINIC_IMAGES: frozenset({Role.ADMIN}),
}


def role_can(role: str, action: Action) -> bool:
    """True when members with ``role`` may perform ``action``."""
    try:
        allowed = PERMISSIONS[action]
    except KeyError:  # an action nobody listed is an action nobody may perform
        return False
    return role in allowed


def roles_that_can(action: Action) -> list[Role]:
    """The roles allowed ``action``, in the order of ``Role`` (for help texts and docs)."""
    return [role for role in Role if role in PERMISSIONS.get(action, ())]
