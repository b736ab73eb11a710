"""DRF throttles keyed on the project's one client address (``opshero.actors.client_ip``).

DRF's own ``get_ident`` takes ``X-Forwarded-For`` verbatim unless ``NUM_PROXIES`` is set, so a
client could pick a new identity per request by sending the header. Every throttle of the
project derives from ``ClientAddressThrottle`` instead, which honours ``TRUSTED_PROXY_COUNT``
exactly as the login lockout and the audit log do (a test checks every view's throttles).
"""

from __future__ import annotations

from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle

from .actors import client_ip


class ClientAddressThrottle(SimpleRateThrottle):
    """Base of every project throttle: the client is ``client_ip(request)``."""

    def get_ident(self, request) -> str:
        return client_ip(request) or "unknown"


class ScopedClientThrottle(ClientAddressThrottle, ScopedRateThrottle):
    """DRF's scoped throttle (``throttle_scope`` on the view, rate in
    ``DEFAULT_THROTTLE_RATES``), counted per real client address."""
