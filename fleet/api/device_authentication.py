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

from .. import credential_cache
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


def _device_uid(device_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(device_id)
    except ValueError:
        return None


def _verification_failure(
    signed: device_auth.SignedRequest, raw, public_key: str | None
) -> device_auth.DeviceAuthError | None:
    """None when the request verifies against ``public_key`` (the decoy key when None)."""
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
        return exc
    return None


def _devices():
    return Device.objects.select_related("organization", "site", "hardware_target").defer(
        "hardware_target__operators", "hardware_target__source"
    )


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
    """Ed25519 signature of the device's active key over the request, each nonce once.

    The credential lookup is cached (``fleet.credential_cache``, whose docstring explains
    why a revoked key is still refused at once); the answers are those of the database.
    """

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
        uid = _device_uid(signed.device_id)
        cached = credential_cache.cached_credential(uid) if uid is not None else None
        if cached is None:
            return self._from_database(signed, raw, uid)
        failure = _verification_failure(signed, raw, cached.public_key)
        if failure is not None:
            # Settled by the database: the cached key may have been rotated out.
            return self._from_database(signed, raw, uid, cached=cached, cached_failure=failure)
        _check_nonce(cached.device_pk, signed)
        # One query, as the uncached path's device query: a stale entry cannot authenticate.
        try:
            device = _devices().get(
                pk=cached.device_pk,
                status=Device.Status.ACTIVE,
                credentials__pk=cached.credential_pk,
                credentials__revoked_at__isnull=True,
            )
        except Device.DoesNotExist:  # revoked, rotated or retired; its invalidation was lost
            credential_cache.invalidate(uid)
            return self._from_database(signed, raw, uid, nonce_recorded=True)
        return _authenticated(device)

    def _from_database(
        self,
        signed: device_auth.SignedRequest,
        raw,
        uid: uuid.UUID | None,
        *,
        cached: credential_cache.ActiveCredential | None = None,
        cached_failure: device_auth.DeviceAuthError | None = None,
        nonce_recorded: bool = False,
    ):
        credential = credential_cache.active_credential(uid) if uid is not None else None
        if cached is not None and credential == cached:
            # The cache was right: the same key already failed (and an attacker with the
            # wrong key costs no more than for an uncached id).
            failure = cached_failure
        else:
            if cached is not None:
                credential_cache.invalidate(uid)
            failure = _verification_failure(
                signed, raw, credential.public_key if credential else None
            )
        if failure is not None:
            # For every id alike, so timing tells nothing either.
            if failure.code == "bad_signature":
                _refuse_a_proven_former_device(signed, raw)
            raise _refuse(failure.code, failure.message) from failure
        if credential is None:  # it verified against the decoy key, whose seed is no secret
            raise _refuse("bad_signature", BAD_SIGNATURE_MESSAGE)
        if not nonce_recorded:
            _check_nonce(credential.device_pk, signed)
        # Loaded only once the request is proven authentic.
        return _authenticated(_devices().get(pk=credential.device_pk))

    def authenticate_header(self, request) -> str:
        return 'OpsHero-Device-Signature realm="device-api"'


def _check_nonce(device_pk: int, signed: device_auth.SignedRequest) -> None:
    if not remember_nonce(device_id=device_pk, nonce=signed.nonce):
        raise _refuse("replayed_nonce", "This nonce was already used: the request is a replay.")


def _authenticated(device: Device) -> tuple[DevicePrincipal, Device]:
    now = timezone.now()
    if (
        device.last_seen_at is None
        or (now - device.last_seen_at).total_seconds() > LAST_SEEN_RESOLUTION_SECONDS
    ):
        Device.objects.filter(pk=device.pk).update(last_seen_at=now)
        device.last_seen_at = now
    return DevicePrincipal(device), device


class IsDevice(permissions.BasePermission):
    """Only signed device requests; user sessions and user tokens are refused."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, Device)
