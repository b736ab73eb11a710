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

    # The week is rolled up and judged: the stories show as alerts, the quiet devices do not.
    from fleet.models import Device
    from telemetry.models import Alert, InferenceRollup, Level, Resolution, RollupMark

    assert not RollupMark.objects.exists()
    org_hours = InferenceRollup.objects.filter(level=Level.ORGANIZATION, resolution=Resolution.HOUR)
    assert sum(org_hours.values_list("count", flat=True)) == InferenceEvent.objects.count()
    # The dock's drift (class mix and confidence) is open on the device and its site; the
    # throttling afternoon opened and cleared; no quiet device raised anything.
    story = sorted(
        (a.kind, a.level, a.device.serial if a.device else a.site.name, a.status)
        for a in Alert.objects.select_related("device", "site")
    )
    first, throttled = Device.objects.filter(status="active").order_by("serial")[:2]
    assert story == sorted(
        [
            ("class_drift", Level.DEVICE, first.serial, "open"),
            ("class_drift", Level.SITE, first.site.name, "open"),
            ("confidence_drift", Level.DEVICE, first.serial, "open"),
            ("confidence_drift", Level.SITE, first.site.name, "open"),
            ("throttling", Level.DEVICE, throttled.serial, "resolved"),
        ]
    )

    call_command("seed_demo", verbosity=0)
    assert InferenceEvent.objects.count() + HealthEvent.objects.count() == stored
