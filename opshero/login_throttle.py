"""Count failed logins per (username, client) and per client; refuse while over the limit.

Counters live in the shared cache (Redis in production) so every web process sees them.
A client that guesses across many usernames is stopped by the per-client counter, which
allows ten times the per-username limit.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache


def _key(*parts: str) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
    return f"login-fail:{digest}"


def _keys(username: str, ip: str | None) -> tuple[str, str]:
    client = ip or "unknown"
    return _key("user", username.strip().lower(), client), _key("client", client)


def is_locked(username: str, ip: str | None) -> bool:
    user_key, client_key = _keys(username, ip)
    limit = settings.LOGIN_MAX_FAILURES
    counts = cache.get_many([user_key, client_key])
    return counts.get(user_key, 0) >= limit or counts.get(client_key, 0) >= limit * 10


def register_failure(username: str, ip: str | None) -> None:
    for key in _keys(username, ip):
        # add() starts the window; incr() keeps its expiry, so the lockout ends on time.
        if not cache.add(key, 1, timeout=settings.LOGIN_LOCKOUT_SECONDS):
            try:
                cache.incr(key)
            except ValueError:  # expired between add() and incr()
                cache.add(key, 1, timeout=settings.LOGIN_LOCKOUT_SECONDS)


def reset(username: str, ip: str | None) -> None:
    cache.delete(_keys(username, ip)[0])
