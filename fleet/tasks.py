"""Fleet Celery tasks: thin wrappers around services."""

from celery import shared_task
from django.conf import settings

from .model_services import execute_validation_run, fail_stale_runs
from .replay import purge_old_nonces


@shared_task(name="fleet.purge_device_nonces")
def purge_device_nonces() -> int:
    """Drop database replay-cache entries older than the replay window (beat, hourly)."""
    return purge_old_nonces()


@shared_task(
    name="fleet.validate_model_version",
    soft_time_limit=settings.VALIDATION_TASK_TIME_LIMIT,
    time_limit=settings.VALIDATION_TASK_TIME_LIMIT + 120,
)
def validate_model_version(run_id: int) -> str:
    """Run one validation (queue: validation). Late acknowledgement means a worker that dies
    mid-run leaves the message to be redelivered; the service counts the attempts."""
    return execute_validation_run(run_id=run_id).status


@shared_task(name="fleet.fail_stale_validation_runs")
def fail_stale_validation_runs() -> int:
    """Beat, every 10 minutes: runs whose worker went silent are failed with the reason."""
    return fail_stale_runs(older_than_seconds=settings.VALIDATION_STALE_SECONDS)
