"""Replay protection for signed device requests: each nonce is accepted once per device.

Nonces live in Redis (``SET key 1 NX EX ttl``: one atomic round trip) when the cache is Redis;
otherwise, or while Redis is unreachable, in the ``DeviceNonce`` table whose unique constraint
makes the check atomic too. Entries outlive the clock-skew window, after which the timestamp
check refuses the request anyway.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import lru_cache

import redis
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from protocol.device_auth import NONCE_TTL_SECONDS

from .models import DeviceNonce

logger = logging.getLogger(__name__)
REDIS_CACHE = "django.core.cache.backends.redis.RedisCache"


@lru_cache(maxsize=4)
def _client_for(location: str) -> redis.Redis:
    # One client for the process: building a client per call (as Django's cache does) costs
    # more CPU than the signature check itself.
    return redis.Redis.from_url(location, socket_timeout=0.5, socket_connect_timeout=0.5)


def _redis() -> redis.Redis | None:
    cache = settings.CACHES.get("default", {})
    if cache.get("BACKEND") != REDIS_CACHE:
        return None
    location = cache["LOCATION"]
    return _client_for(location if isinstance(location, str) else location[0])


def _remember_in_database(device_id: int, nonce: str) -> bool:
    try:
        with transaction.atomic():
            DeviceNonce.objects.create(device_id=device_id, nonce=nonce)
    except IntegrityError:
        return False
    return True


def remember_nonce(*, device_id: int, nonce: str) -> bool:
    """True when ``nonce`` is new for the device; False when it was already used (a replay)."""
    client = _redis()
    if client is not None:
        try:
            return bool(
                client.set(
                    f"opshero:device-nonce:{device_id}:{nonce}", 1, nx=True, ex=NONCE_TTL_SECONDS
                )
            )
        except redis.RedisError:
            logger.warning("Replay cache unreachable; using the database", exc_info=True)
    return _remember_in_database(device_id, nonce)


def purge_old_nonces() -> int:
    """Delete database nonces older than the replay window (beat runs this)."""
    cutoff = timezone.now() - timedelta(seconds=NONCE_TTL_SECONDS)
    deleted, _ = DeviceNonce.objects.filter(seen_at__lt=cutoff).delete()
    return deleted
