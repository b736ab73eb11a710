from django.apps import AppConfig


class TelemetryConfig(AppConfig):
    name = "telemetry"
    verbose_name = "Telemetry"

    def ready(self) -> None:
        from opshero import overview

        from .overview import health_kpis

        overview.register(health_kpis)
