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

from . import rollups, services, signals
from .models import InferenceEvent, SignalPolicy
from .routers import telemetry_db

# The demo fleet makes about one inference a minute per device, so its model is judged over
# eight-hour windows of at least 400 events (a per-model policy, in the admin): with the
# defaults (an hour, 500 events) no demo window would be evaluated. Its chi-square threshold is
# p < 0.001: a week is ~20 windows on each of 9 devices, and at p < 0.05 about one seeding in
# three raised a false confidence alert (two chance breaches in a row) on some quiet device.
DEMO_POLICY = {"window_minutes": 480, "min_events": 400, "chi2_p_value": 0.001}


def _models(org) -> tuple[simulation.SimModel, ...]:
    """The demo registry's models with known classes, so the events name real artifacts.

    Where the version's validation run stored a drift baseline, the simulated model draws its
    classes and confidences from it: the fleet behaves as validated until a story says not.
    """
    found = []
    versions = list(
        ModelVersion.objects.filter(model__organization=org, io_contract__isnull=False)
        .select_related("model")
        .order_by("pk")
    )
    profiles = signals.artifact_profiles(
        organization_id=org.pk, shas=[version.sha256 for version in versions]
    )
    for version in versions:
        labels = tuple(str(label) for label in (version.io_contract or {}).get("labels") or [])
        if not labels:
            continue
        profile = profiles.get(version.sha256)
        baseline = profile.baseline if profile else None
        weights = tuple(baseline[0].get(name, 0.0) + 0.5 for name in labels) if baseline else None
        found.append(
            simulation.SimModel(
                name=version.model.name,
                version=version.version,
                sha256=version.sha256,
                classes=labels,
                class_weights=weights,
                confidence_bins=tuple(float(c) for c in baseline[1]) if baseline else None,
                base_latency_ms=9.0,
                shape_bucket="1x64",
            )
        )
    for version in versions[:1]:
        SignalPolicy.objects.update_or_create(model=version.model, defaults=DEMO_POLICY)
    return tuple(found[:1]) or (simulation.default_model(),)


def _scenario(index: int, start, end, model: simulation.SimModel) -> simulation.Scenario:
    if index == 0:  # drift at the first dock over the last two days
        return simulation.Scenario(
            drifts=[
                simulation.Drift(
                    at=end - timedelta(days=2),
                    confidence_drop=0.15,
                    class_weights={model.classes[0]: 5.0 * max(model.weights())},
                )
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
            sim, start, end, _scenario(index, start, end, models[0]), batch_size=2000
        ):
            body = wire.encode_batch(device_epoch=device_epoch, events=events)
            receipt = services.land_batch(
                device=device, body=body, content_type="application/json", enqueue=False
            )
            if receipt.batch_id:
                outcome = services.ingest_landed_batch(batch_id=receipt.batch_id)
                stored += outcome.result.stored if outcome else 0
    # Roll the week up and judge it now, so the pages and alerts are there at first sight (the
    # beat would do the same within a minute or two).
    rolled = rollups.roll_up_marked(budget_s=600.0, limit=500)
    judged = signals.evaluate_signals(budget_s=600.0, max_windows=5000)
    if stdout is not None:
        stdout.write(
            f"Demo telemetry: {stored} events over {days} days, through the ingest path; "
            f"{rolled} device-hours rolled up, {judged} signal windows judged"
        )
