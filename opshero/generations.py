"""Organisation generations: a counter per organisation, moved on by every audited change made
by a person or the system, that lets a device poll answer "nothing changed" without reading
the database.

Every change to what a device should run (an assignment, a signature or key, the operating
policy, a device's site or groups, a model's name) writes an audit event, so
``opshero.services.record_audit_event`` moves the generation, and moves it again after the
transaction commits: moved only before the commit, a concurrent poll could read the new
generation with the old rows and keep them. A cached answer is stored with the generation
read *before* its rows were read, so at worst it is recomputed once too often, never kept too
long. Changes no event announces (a
signature expiring) are bounded by the cache entry's lifetime.

The cache may be down: ``current`` then says None and callers read the database as always.
"""

from __future__ import annotations

import logging
import time

from django.core.cache import cache
from django.db import transaction

log = logging.getLogger(__name__)


def _key(organization_id: int) -> str:
    return f"org-generation:{organization_id}"


def current(organization_id: int) -> int | None:
    """The organisation's generation, or None when the cache cannot say."""
    try:
        value = cache.get(_key(organization_id))
        if value is None:
            value = time.time_ns()
            if not cache.add(_key(organization_id), value, timeout=None):
                value = cache.get(_key(organization_id))
        return value
    except Exception:
        log.warning("organisation generation unavailable", exc_info=True)
        return None


def _bump(organization_id: int) -> None:
    try:
        cache.incr(_key(organization_id))
    except ValueError:  # never read yet: nothing was cached under an older generation
        pass
    except Exception:
        # The cache is down: entries cached under the old generation may outlive the change
        # by their lifetime; drop them if the cache comes back with the key still set.
        log.warning("organisation generation not moved", exc_info=True)


def bump_on_commit(organization_id: int) -> None:
    """Move the organisation's generation now and again once the current transaction commits.

    The second move is the one that matters (see the module docstring); the first makes the
    change visible at once to readers inside the same transaction (and to tests, whose
    transactions never commit)."""
    _bump(organization_id)
    transaction.on_commit(lambda: _bump(organization_id))
