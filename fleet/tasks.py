"""Fleet Celery tasks: thin wrappers around services."""

from celery import shared_task

from .replay import purge_old_nonces


@shared_task(name="fleet.purge_device_nonces")
def purge_device_nonces() -> int:
    """Drop database replay-cache entries older than the replay window (beat, hourly)."""
    return purge_old_nonces()
