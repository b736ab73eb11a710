"""Telemetry Celery tasks (queue ``ingest``): thin wrappers around the services."""

from celery import shared_task

from . import notifications, retention, services


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


@shared_task(name="telemetry.roll_up")
def roll_up_task() -> int:
    """Rebuild the rollups of marked device-hours (beat, every TELEMETRY_ROLLUP_SECONDS)."""
    from . import rollups

    return rollups.roll_up_marked()


# No Celery retries here: a failed delivery is rescheduled by the service itself
# (next_attempt_at, exponential backoff, ALERT_NOTIFICATION_MAX_ATTEMPTS) and queued again
# with that countdown; the sweep below catches any task that was lost on the way.
@shared_task(name="telemetry.deliver_notification")
def deliver_notification_task(notification_id: int) -> str | None:
    """Try one alert notification (queued after the alert's commit, or by the sweep)."""
    return notifications.deliver_notification(notification_id=notification_id)


@shared_task(name="telemetry.retry_due_notifications")
def retry_due_notifications_task() -> int:
    """Queue again pending notifications whose task was lost (beat, every minute)."""
    return notifications.retry_due_notifications()


@shared_task(name="telemetry.evaluate_signals")
def evaluate_signals_task() -> int:
    """Judge closed windows into signals and alerts (beat, every TELEMETRY_SIGNALS_SECONDS)."""
    from . import rollups, signals

    rollups.roll_up_marked(budget_s=10.0)
    return signals.evaluate_signals()
