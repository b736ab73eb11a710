"""OpsHero platform: settings, Celery app, organisations, roles, audit log, UI shell."""

from .celery import app as celery_app

__all__ = ("celery_app",)
