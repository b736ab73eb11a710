from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_builtin_targets(sender, using="default", **kwargs) -> None:
    """Reference data, like Django's own content types: refreshed after every migrate."""
    from django.db import router

    from .models import HardwareTarget
    from .services import sync_builtin_targets

    if not router.allow_migrate_model(using, HardwareTarget):
        return  # e.g. the telemetry database, which holds no fleet tables

    sync_builtin_targets(using=using)


class FleetConfig(AppConfig):
    name = "fleet"
    verbose_name = "Fleet"

    def ready(self) -> None:
        from .api import schema  # noqa: F401 - registers the device-signature OpenAPI scheme

        post_migrate.connect(_sync_builtin_targets, sender=self)

        from opshero import overview

        from .overview import fleet_kpis

        overview.register(fleet_kpis)
