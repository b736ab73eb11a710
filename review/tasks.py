"""Celery tasks of review: thin wrappers around the services, scheduled by beat."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="review.link_pending_evidence")
def link_pending_evidence_task() -> dict[str, int]:
    return services.link_pending_evidence()


@shared_task(name="review.apply_evidence_retention")
def apply_evidence_retention_task() -> int:
    return services.apply_evidence_retention()
