"""Rollout Celery tasks (queue ``rollouts``): thin wrappers around the engine."""

from celery import shared_task

from . import engine


@shared_task(name="rollouts.evaluate_rollouts", expires=60)
def evaluate_rollouts_task() -> dict:
    """Advance, pause, time out and roll back running rollouts (beat, every
    ROLLOUT_EVALUATE_SECONDS). Safe when two run at once: rows are locked with SKIP LOCKED."""
    return engine.evaluate_rollouts()
