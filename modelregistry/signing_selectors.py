"""Which model-signing public keys a device (or a user) must trust."""

from __future__ import annotations

from opshero.models import Organization

from .models import SigningKey


def _described(keys) -> list[dict]:
    return [
        {
            "key_id": key.key_id,
            "algorithm": "ecdsa-p256-sha256",
            "public_key_pem": key.public_pem,
            "status": key.status,
            "created_at": key.created_at.isoformat(),
            "retired_at": key.retired_at.isoformat() if key.retired_at else None,
        }
        for key in keys
    ]


def public_keys(*, organization: Organization) -> list[dict]:
    """Every key of the organisation, active and retired, for users and offline checks
    (``python -m protocol.verify`` names a retired key as such)."""
    return _described(
        SigningKey.objects.filter(organization=organization).order_by("created_at", "pk")
    )


def public_keys_for_device(*, device) -> list[dict]:
    """The keys a device must trust: those that verify a live signature.

    In OpsHero a retired key verifies nothing (``protocol.manifest``: a leaked key could
    backdate what it signs), rotation re-signs every live signature with the new key before
    the old one is retired, and retiring is also what an admin does with a compromised key.
    So the keys covering a live signature are exactly the active ones; a retired key is
    never sent, and the list stays one key per organisation however often keys rotate. A
    device replaces its trust store with this list and drops any key that is no longer in it
    (docs/device-api.md).
    """
    return _described(
        SigningKey.objects.filter(
            organization_id=device.organization_id, status=SigningKey.Status.ACTIVE
        ).order_by("created_at", "pk")
    )
