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


@shared_task(name="review.build_labelled_export")
def build_labelled_export_task(export_id: str) -> str:
    """Build one labelled export (redelivered after a crash: a built export is left as it is)."""
    from . import exports

    return exports.build_labelled_export(export_id).status


@shared_task(name="review.delete_expired_exports")
def delete_expired_exports_task() -> int:
    from . import exports

    return exports.delete_expired_exports()
