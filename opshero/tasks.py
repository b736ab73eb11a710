"""Platform Celery tasks."""

from __future__ import annotations

import os
import socket

from celery import shared_task
from django.contrib.sessions.models import Session
from django.utils import timezone


@shared_task(name="opshero.ping", ignore_result=False, acks_late=False)
def ping() -> dict[str, object]:
    """Answer the readiness check: proves a worker consumes the default queue."""
    return {"pong": True, "host": socket.gethostname(), "pid": os.getpid()}


@shared_task(name="opshero.clear_expired_sessions")
def clear_expired_sessions() -> int:
    """Delete expired login sessions (beat, every six hours)."""
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted
