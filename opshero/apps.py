from django.apps import AppConfig


class OpsheroConfig(AppConfig):
    name = "opshero"
    verbose_name = "OpsHero platform"

    def ready(self) -> None:
        from .api import schema  # noqa: F401 - registers the OpenAPI auth extension
