from django.apps import AppConfig


class RoiConfig(AppConfig):
    name = "roi"
    verbose_name = "Planning: placement, scorecard, ROI/TCO, 90-day plan"

    def ready(self) -> None:
        # Measurement sources register themselves on import; load them once at start-up so
        # every entry point (pages, API, tasks) sees the same sources.
        from . import measurements

        measurements.load_sources()
