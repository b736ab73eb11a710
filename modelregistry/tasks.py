"""Model registry Celery tasks: thin wrappers around services.

The task names moved from ``fleet.*`` with the registry; the old names stay registered for
one release so messages queued before an upgrade are still consumed.
"""

from celery import shared_task
from django.conf import settings

from .cleanup import delete_superseded_variant_files as _delete_superseded_variant_files
from .services import execute_validation_run, fail_stale_runs

_VALIDATE_OPTIONS = {
    "soft_time_limit": settings.VALIDATION_TASK_TIME_LIMIT,
    "time_limit": settings.VALIDATION_TASK_TIME_LIMIT + 120,
}


@shared_task(name="modelregistry.validate_model_version", **_VALIDATE_OPTIONS)
def validate_model_version(run_id: int) -> str:
    """Run one validation (queue: validation). Late acknowledgement means a worker that dies
    mid-run leaves the message to be redelivered; the service counts the attempts."""
    return execute_validation_run(run_id=run_id).status


@shared_task(name="modelregistry.fail_stale_validation_runs")
def fail_stale_validation_runs() -> int:
    """Beat, every 10 minutes: runs whose worker went silent are failed with the reason."""
    return fail_stale_runs(older_than_seconds=settings.VALIDATION_STALE_SECONDS)


@shared_task(name="modelregistry.delete_superseded_variant_files")
def delete_superseded_variant_files() -> int:
    """Beat, hourly: variant files of runs superseded by a newer finished run on the same
    target, or of retired versions, are deleted from storage (the report keeps the record)."""
    return _delete_superseded_variant_files()


# Deprecated names (before the registry left fleet/); remove in the release after next.
@shared_task(name="fleet.validate_model_version", **_VALIDATE_OPTIONS)
def legacy_validate_model_version(run_id: int) -> str:
    """Old task name of :func:`validate_model_version`, kept for queued messages."""
    return execute_validation_run(run_id=run_id).status


@shared_task(name="fleet.fail_stale_validation_runs")
def legacy_fail_stale_validation_runs() -> int:
    """Old task name of :func:`fail_stale_validation_runs`, kept for queued messages."""
    return fail_stale_runs(older_than_seconds=settings.VALIDATION_STALE_SECONDS)
