"""Liveness and readiness checks, each timed.

Readiness means the web process can do useful work: the database answers, the broker
accepts a connection, and a worker consumes a ``ping`` task from the default queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection

from .celery import app as celery_app


def _timed(check: Callable[[], dict[str, Any] | None]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = check() or {}
        result: dict[str, Any] = {"status": "ok", **detail}
    except Exception as exc:  # noqa: BLE001 - every failure is reported, none is raised
        result = {"status": "fail", "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def check_database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def check_broker() -> dict[str, Any]:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return {"transport": str(conn.transport_cls)}


def check_worker() -> dict[str, Any]:
    from .tasks import ping

    timeout = settings.READINESS_WORKER_TIMEOUT
    # Expiry makes an unanswered ping vanish instead of piling up while no worker runs.
    result = ping.apply_async(queue="default", expires=timeout + 2)
    answer = result.get(timeout=timeout, propagate=True, disable_sync_subtasks=False)
    result.forget()  # late answers to timed-out pings expire with result_expires
    return {"worker": f"{answer['host']}:{answer['pid']}"}


def readiness() -> tuple[bool, dict[str, Any]]:
    checks = {
        "database": _timed(check_database),
        "broker": _timed(check_broker),
    }
    if checks["broker"]["status"] == "ok":
        checks["worker"] = _timed(check_worker)
    else:
        checks["worker"] = {"status": "fail", "error": "broker unreachable", "ms": 0.0}
    ready = all(c["status"] == "ok" for c in checks.values())
    return ready, checks
