"""Which model-signing public keys a device (or a user) must trust."""

from __future__ import annotations

from opshero.models import Organization

from .models import SigningKey


def public_keys(*, organization: Organization) -> list[dict]:
    """Every key of the organisation, active and retired: a gateway must know a key was
    retired to refuse what it signed."""
    return [
        {
            "key_id": key.key_id,
            "algorithm": "ecdsa-p256-sha256",
            "public_key_pem": key.public_pem,
            "status": key.status,
            "created_at": key.created_at.isoformat(),
            "retired_at": key.retired_at.isoformat() if key.retired_at else None,
        }
        for key in SigningKey.objects.filter(organization=organization).order_by("created_at")
    ]


def public_keys_for_device(*, device) -> list[dict]:
    return public_keys(organization=device.organization)
