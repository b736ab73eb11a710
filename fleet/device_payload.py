"""What apps above fleet add to a device's own record (enrollment and ``me`` responses).

Fleet cannot import the registry that sits above it, so an app registers a contributor in its
``AppConfig.ready``: the registry adds the signing keys a device must trust. Each contributor
returns a mapping merged into the response body.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .models import Device

DevicePayloadContributor = Callable[[Device], Mapping[str, Any]]
_CONTRIBUTORS: list[DevicePayloadContributor] = []


def register(contributor: DevicePayloadContributor) -> DevicePayloadContributor:
    """Add a contributor once (``ready()`` may run more than once in tests)."""
    if contributor not in _CONTRIBUTORS:
        _CONTRIBUTORS.append(contributor)
    return contributor


def extra_payload(device: Device) -> dict[str, Any]:
    """The merged contributions for ``device``, in registration order."""
    payload: dict[str, Any] = {}
    for contributor in _CONTRIBUTORS:
        payload.update(contributor(device))
    return payload
