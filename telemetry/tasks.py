"""Telemetry Celery tasks (queue ``ingest``): thin wrappers around the services."""

from celery import shared_task

from . import retention, services


@shared_task(
    name="telemetry.ingest_landed_batch",
    autoretry_for=(Exception,),
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=4,
)
def ingest_landed_batch_task(batch_id: str) -> int:
    """Expand one landed batch (queued by the web process after its commit)."""
    outcome = services.ingest_landed_batch(batch_id=batch_id)
    return 0 if outcome is None else outcome.result.stored


@shared_task(name="telemetry.sweep_landed_batches")
def sweep_landed_batches_task() -> int:
    """Take landed batches whose task was lost (beat, every TELEMETRY_SWEEP_SECONDS)."""
    return services.sweep_landed_batches()


@shared_task(name="telemetry.maintain_storage")
def maintain_storage_task() -> dict:
    """Partitions ahead, retention behind (beat, hourly)."""
    return retention.maintain_storage()
