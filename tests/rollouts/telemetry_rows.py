"""Device x minute rollup rows written straight into the telemetry store, so the canary
analysis has field data to judge without running the ingest pipeline (the end-to-end test
runs the real pipeline)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from telemetry.models import HealthRollup, InferenceRollup, Level, Resolution
from telemetry.routers import telemetry_db
from telemetry.sketch import LatencySketch


def write_minutes(
    *,
    org,
    device,
    version,
    start: datetime,
    minutes: int,
    per_minute: int = 30,
    latency_ms: float = 40.0,
    confidence: float = 0.9,
    classes=("ok", "damaged"),
    throttled: bool = False,
    seed: int = 0,
) -> None:
    rng = np.random.default_rng(seed + device.pk * 7919)
    start = start.replace(second=0, microsecond=0)
    inference, health = [], []
    for minute in range(minutes):
        bucket = start + timedelta(minutes=minute)
        latencies = rng.lognormal(np.log(latency_ms), 0.2, per_minute)
        sketch = LatencySketch()
        sketch.add_many(latencies)
        confidences = np.clip(rng.normal(confidence, 0.04, per_minute), 0, 0.999)
        bins = np.histogram(confidences, bins=20, range=(0, 1))[0]
        picks = rng.choice(len(classes), per_minute, p=[0.8, 0.2][: len(classes)])
        counts = {name: int((picks == i).sum()) for i, name in enumerate(classes)}
        inference.append(
            InferenceRollup(
                level=Level.DEVICE,
                resolution=Resolution.MINUTE,
                bucket_start=bucket,
                organization_id=org.pk,
                site_id=device.site_id,
                device_id=device.pk,
                model_sha256=version.sha256,
                model_name=version.model.name,
                model_version=version.version,
                count=per_minute,
                latency=sketch.to_dict(),
                time_to_action=LatencySketch().to_dict(),
                confidence_bins=[int(b) for b in bins],
                confidence_sum=float(confidences.sum()),
                class_counts={k: v for k, v in counts.items() if v},
                labelled=0,
                correct=0,
                feedback_up=0,
                feedback_down=0,
                offline=0,
            )
        )
        health.append(
            HealthRollup(
                level=Level.DEVICE,
                resolution=Resolution.MINUTE,
                bucket_start=bucket,
                organization_id=org.pk,
                site_id=device.site_id,
                device_id=device.pk,
                samples=1,
                power_count=0,
                power_sum=0.0,
                power_max=None,
                temperature_count=0,
                temperature_sum=0.0,
                temperature_max=None,
                temperature_min=None,
                throttled_samples=1 if throttled else 0,
                online_seconds=60.0,
                offline_seconds=0.0,
                delivered=per_minute,
                duplicates=0,
                conflicts=0,
                evicted_max=0,
                buffered_max=0,
            )
        )
    InferenceRollup.objects.using(telemetry_db()).bulk_create(inference, ignore_conflicts=True)
    HealthRollup.objects.using(telemetry_db()).bulk_create(health, ignore_conflicts=True)
