"""The rollouts panel of the device page (registered with ``fleet.device_panels``): the model
it should run per assignment, its deployment history, and a flag for versions it reports
running that it was never assigned."""

from __future__ import annotations

import re
from datetime import timedelta

from django.utils import timezone

from telemetry.models import InferenceRollup, Level
from telemetry.routers import telemetry_db

from . import selectors

SEEN_DAYS = 30
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _versions_reported(device) -> dict[str, str]:
    """sha256 → "model version" the device reported in its telemetry (last 30 days), plus
    its self-reported model version when that is a digest."""
    since = timezone.now() - timedelta(days=SEEN_DAYS)
    seen = {
        sha: f"{name} {version}"
        for sha, name, version in InferenceRollup.objects.using(telemetry_db())
        .filter(
            organization_id=device.organization_id,
            level=Level.DEVICE,
            device_id=device.pk,
            bucket_start__gte=since,
        )
        .values_list("model_sha256", "model_name", "model_version")
        .distinct()
    }
    reported = (device.reported_model_version or "").strip().lower()
    if _SHA256.match(reported):
        seen.setdefault(reported, "reported by the device")
    return seen


def rollout_panel(request, device) -> tuple[str, dict]:
    seen = _versions_reported(device)
    unassigned = selectors.unassigned_versions(
        org=request.org, reported={device.pk: set(seen)} if seen else {}
    ).get(device.pk, set())
    return (
        "rollouts/partials/device_panel.html",
        {
            "assignments": selectors.assignments_for_device(device=device),
            "deployments": selectors.deployments_for_device(device=device),
            "unassigned": sorted((seen[sha], sha) for sha in unassigned),
            "org": request.org,
        },
    )
