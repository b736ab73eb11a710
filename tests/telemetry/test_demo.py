"""The demo week: backfilled through the real ingest path, believable, seeded once."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db.models import Max, Min

from telemetry.models import DeviceEpoch, HealthEvent, InferenceEvent, IngestedBatch

pytestmark = pytest.mark.django_db


def test_seed_demo_backfills_a_week_through_the_ingest_path(settings):
    settings.DEMO_TELEMETRY_DAYS = 7
    call_command("seed_demo", verbosity=0)
    span = InferenceEvent.objects.aggregate(first=Min("timestamp"), last=Max("timestamp"))
    assert span["last"] - span["first"] > timedelta(days=6, hours=20)
    devices = set(InferenceEvent.objects.values_list("device_id", flat=True))
    assert len(devices) >= 8
    # Every stored event went through the ledger and the ingest log, as a gateway's would.
    stored = InferenceEvent.objects.count() + HealthEvent.objects.count()
    assert sum(IngestedBatch.objects.values_list("stored", flat=True)) == stored
    assert HealthEvent.objects.filter(throttled=True).exists()
    assert HealthEvent.objects.filter(online=False).exists()
    # The reinstalled agent is a second epoch of its device, not a replay.
    epochs = DeviceEpoch.objects.values_list("device_id", flat=True)
    assert len(epochs) == len(set(epochs)) + 1
    # The events name a model of the registry, with its classes.
    from modelregistry.models import ModelVersion

    sha256 = InferenceEvent.objects.values_list("model_sha256", flat=True).first()
    version = ModelVersion.objects.get(sha256=sha256)
    labels = set(version.io_contract["labels"])
    assert set(InferenceEvent.objects.values_list("predicted_class", flat=True)) <= labels

    call_command("seed_demo", verbosity=0)
    assert InferenceEvent.objects.count() + HealthEvent.objects.count() == stored
