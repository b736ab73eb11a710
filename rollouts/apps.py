from django.apps import AppConfig


class RolloutsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "rollouts"
    verbose_name = "Rollouts"

    def ready(self) -> None:
        # fleet sits below rollouts, so the device page learns of this panel here.
        from fleet import device_panels

        from .device_panel import rollout_panel

        device_panels.register(rollout_panel)
