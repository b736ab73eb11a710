"""Demo fleet: 3 logistics docks, 2 clinics and a field team, with gateways and handhelds on
different hardware targets. Enrolled devices go through the real enrollment service with
their own generated keys. Idempotent: an existing demo site is left as it is."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from protocol import device_auth

from . import services
from .models import Device, HardwareTarget, Placement, Site

SITES = [
    # name, kind, region, time zone, expected uplink share, maintenance windows, tags
    (
        "Rotterdam Dock 7",
        "dock",
        "NL",
        "Europe/Amsterdam",
        0.97,
        [{"day": 6, "start": "02:00", "end": "05:00"}],
        ["cold-chain", "pilot"],
    ),
    (
        "Hamburg Dock 3",
        "dock",
        "DE",
        "Europe/Berlin",
        0.95,
        [{"day": 6, "start": "01:00", "end": "04:00"}],
        ["pilot"],
    ),
    (
        "Antwerp Dock 12",
        "dock",
        "BE",
        "Europe/Brussels",
        0.9,
        [{"day": 5, "start": "23:00", "end": "24:00"}],
        [],
    ),
    (
        "Northside Clinic",
        "clinic",
        "UK",
        "Europe/London",
        0.99,
        [{"day": 0, "start": "03:00", "end": "05:00"}],
        ["phi"],
    ),
    ("Harbour Street Clinic", "clinic", "UK", "Europe/London", 0.98, [], ["phi"]),
    ("North Sea Field Team", "field", "NO", "Europe/Oslo", 0.6, [], ["offline-first"]),
]

# site, name, serial, placement, target key, enrolled?, minutes since last contact
DEVICES = [
    ("Rotterdam Dock 7", "rdm7-gateway", "GW-RDM7-01", Placement.NEAR_EDGE, "cpu", True, 1),
    ("Rotterdam Dock 7", "rdm7-scanner-a", "HH-RDM7-11", Placement.ON_DEVICE, "nnapi", True, 3),
    ("Rotterdam Dock 7", "rdm7-scanner-b", "HH-RDM7-12", Placement.ON_DEVICE, "nnapi", True, 45),
    ("Hamburg Dock 3", "ham3-gateway", "GW-HAM3-01", Placement.NEAR_EDGE, "cpu", True, 2),
    ("Hamburg Dock 3", "ham3-scanner-a", "HH-HAM3-11", Placement.ON_DEVICE, "nnapi", True, 4),
    ("Antwerp Dock 12", "ant12-gateway", "GW-ANT12-01", Placement.NEAR_EDGE, "cpu", False, None),
    ("Northside Clinic", "northside-triage-box", "GW-NS-01", Placement.NEAR_EDGE, "cpu", True, 1),
    (
        "Northside Clinic",
        "northside-ipad-1",
        "IP-NS-21",
        Placement.ON_DEVICE,
        "coreml-mlprogram",
        True,
        6,
    ),
    (
        "Harbour Street Clinic",
        "harbour-ipad-1",
        "IP-HS-21",
        Placement.ON_DEVICE,
        "coreml-mlprogram",
        True,
        2,
    ),
    (
        "North Sea Field Team",
        "field-tablet-1",
        "TB-NSF-31",
        Placement.ON_DEVICE,
        "nnapi",
        True,
        180,
    ),
    (
        "North Sea Field Team",
        "field-tablet-2",
        "TB-NSF-32",
        Placement.ON_DEVICE,
        "nnapi",
        False,
        None,
    ),
]


def seed(context: dict, stdout=None) -> None:
    services.sync_builtin_targets()
    _seed_fleet(context, stdout)
    _refresh_checkins(context["org"])


def _refresh_checkins(org) -> None:
    """Demo devices have no real gateway behind them: each seed_demo run (every `make run`)
    replays their last check-in relative to now, so the demo fleet is not all offline. They
    go offline again after the silence threshold unless a gateway checks in for real."""
    now = timezone.now()
    for _, _, serial, _, _, enrolled, minutes in DEVICES:
        if enrolled:
            Device.objects.filter(
                organization=org, serial=serial, status=Device.Status.ACTIVE
            ).update(last_seen_at=now - timedelta(minutes=minutes))


@transaction.atomic
def _seed_fleet(context: dict, stdout=None) -> None:
    org, actor = context["org"], context["actor"]
    if Site.objects.filter(organization=org, name=SITES[0][0]).exists():
        return
    sites = {}
    for name, kind, region, tz, uplink, windows, tags in SITES:
        sites[name] = services.create_site(
            organization=org,
            actor=actor,
            name=name,
            kind=kind,
            region=region,
            time_zone=tz,
            expected_connectivity=uplink,
            maintenance_windows=windows,
            tags=tags,
        )
    targets = {t.builtin_key: t for t in HardwareTarget.objects.filter(organization=None)}
    now = timezone.now()
    for site_name, name, serial, placement, target_key, enrolled, minutes in DEVICES:
        site, target = sites[site_name], targets.get(target_key)
        if not enrolled:
            services.register_device(
                organization=org,
                actor=actor,
                name=name,
                serial=serial,
                site=site,
                placement=placement,
                hardware_target=target,
                tags=site.tags,
            )
            continue
        _, token = services.create_enrollment_token(
            organization=org,
            site=site,
            actor=actor,
            placement=placement,
            hardware_target=target,
        )
        key = device_auth.generate_device_key()
        device = services.enroll_device(
            token=token,
            public_key=device_auth.public_key_text(key),
            facts=services.EnrollmentFacts(
                serial=serial,
                name=name,
                agent_version="0.1.0",
                runtime_version="onnxruntime 1.32.0",
                hardware={"demo": True},
            ),
        )
        Device.objects.filter(pk=device.pk).update(
            last_seen_at=now - timedelta(minutes=minutes), tags=site.tags
        )
    if stdout is not None:
        stdout.write(f"Demo fleet: {len(SITES)} sites, {len(DEVICES)} devices")
