"""DRF authentication for the device API: every request signed with the device's own key."""

from __future__ import annotations

import hashlib
import time
import uuid
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from protocol import device_auth

from ..models import Device, DeviceCredential
from ..replay import remember_nonce

# Writing last_seen_at on every request would turn each read into a write; a minute is plenty
# against a 10-minute offline threshold.
LAST_SEEN_RESOLUTION_SECONDS = 60


class DevicePrincipal:
    """Stands in for ``request.user`` on device requests; it is never a user."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    pk = None

    def __init__(self, device: Device) -> None:
        self.device = device

    def get_username(self) -> str:
        return f"device:{self.device.name}"

    def __str__(self) -> str:
        return self.get_username()


@lru_cache(maxsize=4096)
def _public_key(text: str) -> bytes:
    return device_auth.raw_public_key(device_auth.load_public_key(text))


def _refuse(code: str, message: str):
    return exceptions.AuthenticationFailed(detail=message, code=code)


BAD_SIGNATURE_MESSAGE = "The signature does not match this device's key and request."
# Verified against when the id names no device with an active key, so that an unknown id, a
# revoked or retired device and a wrong key cost the same work and get the same answer.
# Its private half is public (derived from a fixed seed), hence the refusal even when it verifies.
_DECOY_KEY = device_auth.raw_public_key(
    Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(b"opshero device decoy key").digest()
    ).public_key()
)


def _active_credential(device_id: str) -> tuple[str | None, int | None]:
    """(public key text, device pk) of the id's active credential, or (None, None)."""
    try:
        uid = uuid.UUID(device_id)
    except ValueError:
        return None, None
    row = (
        DeviceCredential.objects.filter(device__uid=uid, revoked_at__isnull=True)
        .values_list("public_key", "device_id")
        .first()
    )
    return row if row is not None else (None, None)


def _refuse_a_proven_former_device(signed: device_auth.SignedRequest, raw) -> None:
    """A revoked or retired device that proves it holds its last key learns why it is refused
    (so it can ask to be enrolled again); anybody else has already been told bad_signature."""
    try:
        uid = uuid.UUID(signed.device_id)
    except ValueError:
        return
    last = (
        DeviceCredential.objects.filter(device__uid=uid, revoked_at__isnull=False)
        .exclude(revoked_reason="rotated")
        .order_by("-revoked_at")
        .values_list("public_key", "device__status")
        .first()
    )
    if last is None or last[1] not in (Device.Status.REVOKED, Device.Status.RETIRED):
        return
    try:
        device_auth.verify_signature(
            signed,
            public_key=_public_key(last[0]),
            method=raw.method,
            path=device_auth.signed_path(environ=raw.META, decoded_path=raw.path),
            query=raw.META.get("QUERY_STRING", ""),
            body=raw.body,
        )
    except device_auth.DeviceAuthError:
        return
    if last[1] == Device.Status.RETIRED:
        raise _refuse("device_retired", "This device is retired.")
    raise _refuse(
        "device_revoked", "This device's key was revoked; enroll it again with a new token."
    )


class DeviceSignatureAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        raw = request._request
        headers = {name: raw.headers.get(name, "") for name in device_auth.SIGNED_HEADERS}
        if not any(headers.values()):
            return None
        try:
            signed = device_auth.parse_signed_headers(headers)
            device_auth.check_freshness(signed, now=time.time())
        except device_auth.DeviceAuthError as exc:
            raise _refuse(exc.code, exc.message) from exc
        public_key, device_id = _active_credential(signed.device_id)
        try:
            device_auth.verify_signature(
                signed,
                public_key=_public_key(public_key) if public_key else _DECOY_KEY,
                method=raw.method,
                path=device_auth.signed_path(environ=raw.META, decoded_path=raw.path),
                query=raw.META.get("QUERY_STRING", ""),
                body=raw.body,
            )
        except device_auth.DeviceAuthError as exc:
            if exc.code == "bad_signature":  # for every id alike, so timing tells nothing either
                _refuse_a_proven_former_device(signed, raw)
            raise _refuse(exc.code, exc.message) from exc
        if device_id is None:  # it verified against the decoy key, whose seed is no secret
            raise _refuse("bad_signature", BAD_SIGNATURE_MESSAGE)
        if not remember_nonce(device_id=device_id, nonce=signed.nonce):
            raise _refuse("replayed_nonce", "This nonce was already used: the request is a replay.")
        # Loaded only once the request is proven authentic.
        device = (
            Device.objects.select_related("organization", "site", "hardware_target")
            .defer("hardware_target__operators", "hardware_target__source")
            .get(pk=device_id)
        )

        now = timezone.now()
        if (
            device.last_seen_at is None
            or (now - device.last_seen_at).total_seconds() > LAST_SEEN_RESOLUTION_SECONDS
        ):
            Device.objects.filter(pk=device.pk).update(last_seen_at=now)
            device.last_seen_at = now
        return DevicePrincipal(device), device

    def authenticate_header(self, request) -> str:
        return 'OpsHero-Device-Signature realm="device-api"'


class IsDevice(permissions.BasePermission):
    """Only signed device requests; user sessions and user tokens are refused."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, Device)
