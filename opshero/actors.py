"""Who performs a change: a user, a device or the system, with the client address.

Services take an ``Actor`` so that the audit event they write names the right party,
whether the call came from a browser, the API, a device or a Celery task.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser
    from django.http import HttpRequest


@dataclass(frozen=True)
class Actor:
    kind: str  # "user", "device" or "system" (AuditEvent.ActorKind)
    label: str
    user: AbstractBaseUser | None = None
    device_id: str = ""
    ip: str | None = None

    @classmethod
    def for_user(cls, user: Any, ip: str | None = None) -> Actor:
        return cls(kind="user", label=user.get_username(), user=user, ip=ip)

    @classmethod
    def for_device(cls, device_id: str, label: str, ip: str | None = None) -> Actor:
        return cls(kind="device", label=label, device_id=str(device_id), ip=ip)

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(kind="system", label=label)

    @classmethod
    def from_request(cls, request: HttpRequest) -> Actor:
        return cls.for_user(request.user, ip=client_ip(request))


def client_ip(request: HttpRequest) -> str | None:
    """The client address, honouring X-Forwarded-For only from the configured proxies."""
    candidate = request.META.get("REMOTE_ADDR")
    hops = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if hops and forwarded:
        chain = [part.strip() for part in forwarded.split(",") if part.strip()]
        if len(chain) >= hops:
            candidate = chain[-hops]
    try:
        return str(ip_address(candidate)) if candidate else None
    except ValueError:
        return None
