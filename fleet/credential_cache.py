"""The device-credential lookup of signed device requests, cached in Django's cache (Redis).

Every signed device request needs (public key, device pk, credential pk) for the id it names.
Read from PostgreSQL that is one query per request; cached, it is one Redis GET for
``TTL_SECONDS``. A revoked, rotated or retired key must still be refused on its very next
request, on every web process, so the cache is never trusted on its own:

1. Invalidation. The services that set ``revoked_at`` or take a device out of ``active``
   call ``invalidate_on_commit``: once the transaction commits, the entry is overwritten.

2. The race that invalidation alone loses. A reader that read the old credential from the
   database just before the revocation committed may write its (now stale) entry *after* the
   invalidation ran, and that entry would live for the full TTL. So an invalidation does not
   delete: it writes a tombstone that lives ``TOMBSTONE_SECONDS``, and readers fill only with
   ``cache.add``, which does nothing while any value, tombstone included, is there. A reader
   treats a tombstone as a miss (it asks the database and cannot fill). A reader's write
   either lands before the tombstone (and is overwritten by it) or after it (and is refused);
   only a reader stalled between its query and its fill for longer than the tombstone lives
   could still write a stale entry, which point 3 makes harmless.

3. Defence in depth, for every invalidation that is lost (Redis down or restarted during the
   revocation, the stalled reader above, a key revoked by a data migration): a cached entry
   only ever saves the credential query. The query that loads the device after the
   signature verifies also requires that the cached credential is still unrevoked and the
   device active (``fleet.api.device_authentication``), so a stale entry cannot authenticate
   anything; when that check fails, or a cached key does not verify while the database holds
   another one (a rotation whose invalidation was lost), the entry is tombstoned and the
   request redone against the database once.

4. With the cache unreachable every read is a miss and every fill is skipped: the request is
   answered from the database, never from whatever the cache held before, with a warning
   logged at most once a minute per process. A lost invalidation is logged every time.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from django.core.cache import cache
from django.db import transaction

from .models import DeviceCredential

logger = logging.getLogger(__name__)

TTL_SECONDS = 300
# Longer than any reader takes between its database query and its fill; shorter than the TTL
# so that a rotated device is served from the cache again soon.
TOMBSTONE_SECONDS = 60
WARNING_INTERVAL_SECONDS = 60.0

_KEY_PREFIX = "fleet:device-credential:v1:"
_TOMBSTONE = "invalidated"

_last_warning = float("-inf")


@dataclass(frozen=True)
class ActiveCredential:
    """What authenticating a device needs of its active key."""

    public_key: str
    device_pk: int
    credential_pk: int


def _key(uid: uuid.UUID) -> str:
    # The canonical form of the UUID, so that every spelling of one id shares one entry.
    return f"{_KEY_PREFIX}{uid}"


def _warn_unreachable(action: str, exc: Exception) -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning < WARNING_INTERVAL_SECONDS:
        return
    _last_warning = now
    logger.warning(
        "Device credential cache unreachable (%s: %s: %s); answering device requests from "
        "the database. Further failures are not logged for %d s.",
        action,
        type(exc).__name__,
        exc,
        WARNING_INTERVAL_SECONDS,
    )


def cached_credential(uid: uuid.UUID) -> ActiveCredential | None:
    """The cached credential of ``uid``; None on a miss, a tombstone or an unreachable cache."""
    try:
        value = cache.get(_key(uid))
    except Exception as exc:  # noqa: BLE001 - any cache failure is a miss, never a stale hit
        _warn_unreachable("get", exc)
        return None
    if not isinstance(value, tuple) or len(value) != 3:
        return None
    public_key, device_pk, credential_pk = value
    return ActiveCredential(public_key=public_key, device_pk=device_pk, credential_pk=credential_pk)


def active_credential(uid: uuid.UUID) -> ActiveCredential | None:
    """The active credential of ``uid`` read from the database, filling the cache with it
    unless an entry or a tombstone is already there."""
    row = (
        DeviceCredential.objects.filter(device__uid=uid, revoked_at__isnull=True)
        .values_list("public_key", "device_id", "pk")
        .first()
    )
    if row is None:
        return None
    try:
        cache.add(_key(uid), row, TTL_SECONDS)
    except Exception as exc:  # noqa: BLE001 - not filling is always safe
        _warn_unreachable("add", exc)
    public_key, device_pk, credential_pk = row
    return ActiveCredential(public_key=public_key, device_pk=device_pk, credential_pk=credential_pk)


def invalidate(uid: uuid.UUID) -> None:
    """Tombstone ``uid``'s entry: readers miss, and cannot fill, for ``TOMBSTONE_SECONDS``."""
    try:
        cache.set(_key(uid), _TOMBSTONE, TOMBSTONE_SECONDS)
    except Exception as exc:  # noqa: BLE001 - the database check still refuses a stale entry
        logger.warning(
            "Device credential cache invalidation for %s lost (%s: %s); its stale entry, if "
            "any, is refused by the database check until it expires.",
            uid,
            type(exc).__name__,
            exc,
        )


def invalidate_on_commit(uid: uuid.UUID) -> None:
    """Invalidate once the current transaction commits (at once outside a transaction).

    Before the commit the database still holds the old credential, so a reader could cache it
    again right after an earlier invalidation; the tombstone covers the reader that read just
    before the commit."""
    transaction.on_commit(lambda: invalidate(uid))
