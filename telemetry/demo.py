"""Demo telemetry: a believable week of history for the demo fleet, through the real ingest.

Each enrolled demo device gets a week of inference and health events from the gateway's own
simulator (``gateway.simulation``), encoded as the gateway would post them and passed through
``land_batch`` and ``ingest_landed_batch``: the same decoding, judging, ledger and storage as
a real gateway's batches. Seeding runs before the web server starts; it is skipped when the
organisation already has telemetry. A few devices have a story: a drift at a dock in the last
two days, a throttling afternoon, a field tablet offline for a day, an agent reinstall.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from fleet.models import Device
from gateway import simulation
from modelregistry.models import ModelVersion
from protocol import telemetry as wire

from . import services
from .models import InferenceEvent
from .routers import telemetry_db


def _models(org) -> tuple[simulation.SimModel, ...]:
    """The demo registry's models with known classes, so the events name real artifacts."""
    found = []
    for version in ModelVersion.objects.filter(
        model__organization=org, io_contract__isnull=False
    ).select_related("model"):
        labels = (version.io_contract or {}).get("labels") or []
        if labels:
            found.append(
                simulation.SimModel(
                    name=version.model.name,
                    version=version.version,
                    sha256=version.sha256,
                    classes=tuple(str(label) for label in labels),
                    base_latency_ms=9.0,
                    shape_bucket="1x64",
                )
            )
    return tuple(found[:1]) or (simulation.default_model(),)


def _scenario(index: int, start, end) -> simulation.Scenario:
    if index == 0:  # drift at the first dock over the last two days
        return simulation.Scenario(
            drifts=[
                simulation.Drift(at=end - timedelta(days=2), confidence_drop=0.12, class_weights={})
            ]
        )
    if index == 1:
        afternoon = (end - timedelta(days=3)).replace(hour=13, minute=0, second=0)
        return simulation.Scenario(
            throttling=[simulation.Throttling(start=afternoon, duration=timedelta(hours=3))]
        )
    if index == 2:
        return simulation.Scenario(
            latency_shifts=[simulation.LatencyShift(at=end - timedelta(days=1), factor=1.4)]
        )
    if index == 3:
        return simulation.Scenario(reinstalls=[simulation.Reinstall(at=start + timedelta(days=4))])
    if index == 4:
        return simulation.Scenario(
            outages=[simulation.Outage(start=end - timedelta(days=2), duration=timedelta(days=1))]
        )
    return simulation.Scenario()


def seed(context: dict, stdout=None) -> None:
    org = context["org"]
    if InferenceEvent.objects.using(telemetry_db()).filter(organization_id=org.pk).exists():
        return
    days = settings.DEMO_TELEMETRY_DAYS
    if days <= 0:
        return
    end = timezone.now() - timedelta(minutes=2)
    start = end - timedelta(days=days)
    models = _models(org)
    devices = Device.objects.filter(organization=org, status=Device.Status.ACTIVE).select_related(
        "organization"
    )
    stored = 0
    for index, device in enumerate(devices.order_by("serial")):
        sim = simulation.SimDevice(
            device_id=str(device.uid),
            seed=index + 1,
            models=models,
            site=simulation.SiteProfile(inferences_per_minute=1.0),
            health_interval_s=600.0,
        )
        for device_epoch, events in simulation.generate_history(
            sim, start, end, _scenario(index, start, end), batch_size=2000
        ):
            body = wire.encode_batch(device_epoch=device_epoch, events=events)
            receipt = services.land_batch(
                device=device, body=body, content_type="application/json", enqueue=False
            )
            if receipt.batch_id:
                outcome = services.ingest_landed_batch(batch_id=receipt.batch_id)
                stored += outcome.result.stored if outcome else 0
    if stdout is not None:
        stdout.write(f"Demo telemetry: {stored} events over {days} days, through the ingest path")
