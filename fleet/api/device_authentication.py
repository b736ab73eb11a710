"""DRF authentication for the device API: every request signed with the device's own key."""

from __future__ import annotations

import time
import uuid
from functools import lru_cache

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
        try:
            uid = uuid.UUID(signed.device_id)
        except ValueError as exc:
            raise _refuse("unknown_device", "No device has this id.") from exc

        credential = (
            DeviceCredential.objects.filter(device__uid=uid, revoked_at__isnull=True)
            .values_list("public_key", "device_id")
            .first()
        )
        if credential is None:
            device = Device.objects.filter(uid=uid).only("status").first()
            if device is None:
                raise _refuse("unknown_device", "No device has this id.")
            if device.status == Device.Status.RETIRED:
                raise _refuse("device_retired", "This device is retired.")
            raise _refuse(
                "device_revoked", "This device's key was revoked; enroll it again with a new token."
            )
        public_key, device_id = credential
        try:
            device_auth.verify_signature(
                signed,
                public_key=_public_key(public_key),
                method=raw.method,
                path=raw.path,
                query=raw.META.get("QUERY_STRING", ""),
                body=raw.body,
            )
        except device_auth.DeviceAuthError as exc:
            raise _refuse(exc.code, exc.message) from exc
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
