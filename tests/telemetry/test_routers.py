"""The telemetry store goes to its own database when one is configured, and only there."""

import pytest

from fleet.models import Device
from opshero.models import Organization
from telemetry.models import EventKey, InferenceEvent, IngestedBatch, LandedBatch
from telemetry.routers import TelemetryRouter, telemetry_db

pytestmark = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")

STORE = [LandedBatch, EventKey, InferenceEvent, IngestedBatch]


def test_without_a_telemetry_database_everything_is_default(settings):
    settings.DATABASES = {"default": settings.DATABASES["default"]}
    router = TelemetryRouter()
    assert telemetry_db() == "default"
    for model in STORE:
        assert router.db_for_write(model) == "default"
        assert (
            router.allow_migrate("default", "telemetry", model_name=model._meta.model_name) is None
        )
    assert router.db_for_read(Device) is None


def test_with_a_telemetry_database_the_store_lives_there_and_nothing_else(settings):
    settings.DATABASES = {**settings.DATABASES, "telemetry": settings.DATABASES["default"]}
    router = TelemetryRouter()
    assert telemetry_db() == "telemetry"
    for model in STORE:
        name = model._meta.model_name
        assert router.db_for_read(model) == router.db_for_write(model) == "telemetry"
        assert router.allow_migrate("telemetry", "telemetry", model_name=name) is True
        assert router.allow_migrate("default", "telemetry", model_name=name) is False
    assert router.db_for_write(Organization) is None
    assert router.allow_migrate("telemetry", "fleet", model_name="device") is False
    assert router.allow_migrate("default", "fleet", model_name="device") is None
    # A relation across the two databases is refused.
    assert router.allow_relation(LandedBatch(), Organization()) is False
