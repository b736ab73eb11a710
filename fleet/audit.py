"""Audit verbs of the fleet: sites, hardware targets, devices, enrollment, groups."""

from __future__ import annotations

from opshero.audit import AuditVerb


class FleetVerb(AuditVerb):
    """What ``fleet.services`` and ``fleet.device_csv`` record; values are stored as they are."""

    SITE_CREATED = "site.created"
    SITE_UPDATED = "site.updated"
    SITE_DELETED = "site.deleted"
    TARGET_CREATED = "target.created"
    TARGET_CLONED = "target.cloned"
    TARGET_UPDATED = "target.updated"
    DEVICE_REGISTERED = "device.registered"
    DEVICE_IMPORTED = "device.imported"
    DEVICE_UPDATED = "device.updated"
    DEVICE_REVOKED = "device.revoked"
    DEVICE_RETIRED = "device.retired"
    ENROLLMENT_TOKEN_CREATED = "enrollment_token.created"  # noqa: S105 - a verb, not a secret
    DEVICE_ENROLLED = "device.enrolled"
    DEVICE_KEY_ROTATED = "device.key_rotated"
    DEVICE_DEMO_KEY_SET = "device.demo_key_set"
    DEVICE_VERSIONS_REPORTED = "device.versions_reported"
    GROUP_CREATED = "group.created"
    GROUP_UPDATED = "group.updated"
    GROUP_DELETED = "group.deleted"
    OPERATING_POLICY_CREATED = "operating_policy.created"
    OPERATING_POLICY_UPDATED = "operating_policy.updated"
    OPERATING_POLICY_CLEARED = "operating_policy.cleared"
