"""Audit verbs of the platform, and the base every app's verb enum derives from.

A verb is stored as its string value (``AuditEvent.verb`` is a plain ``CharField`` with no
choices), so stored rows, filters in the audit page and the API keep working when an enum
gains members. Values never change once released: stored audit rows depend on them.
"""

from __future__ import annotations

import enum


class AuditVerb(enum.StrEnum):
    """Base of the per-app verb enums (``<noun>.<past-tense verb>``); a member is a ``str``."""


class PlatformVerb(AuditVerb):
    """What the platform records: organisations and memberships."""

    ORGANIZATION_CREATED = "organization.created"
    # The four-eyes relaxation for organisations with a single approver, switched on or off.
    APPROVAL_POLICY_CHANGED = "organization.approval_policy_changed"
    CURRENCY_CHANGED = "organization.currency_changed"
    MEMBER_ADDED = "member.added"
    MEMBER_ROLE_CHANGED = "member.role_changed"
    MEMBER_REMOVED = "member.removed"
    # A user's own account, outside every organisation (the event has no organisation).
    API_TOKEN_ISSUED = "api_token.issued"  # noqa: S105 - an audit verb, not a secret
    API_TOKEN_REVOKED = "api_token.revoked"  # noqa: S105 - an audit verb, not a secret
