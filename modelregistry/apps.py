from django.apps import AppConfig


class ModelRegistryConfig(AppConfig):
    name = "modelregistry"
    verbose_name = "Model registry"

    def ready(self) -> None:
        from fleet import device_payload
        from opshero import overview

        from .overview import registry_kpis

        overview.register(registry_kpis)
        device_payload.register(_signing_keys_payload)


def _signing_keys_payload(device) -> dict:
    """A device's enrollment and ``me`` responses carry the signing keys it must trust."""
    from .signing_selectors import public_keys_for_device

    return {"signing_keys": public_keys_for_device(device=device)}
