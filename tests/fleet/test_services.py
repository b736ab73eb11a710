"""Fleet services: validation with field names, audit events, groups, targets."""

import pytest

from fleet import selectors, services
from fleet.models import Device, HardwareTarget, Site
from opshero.actors import Actor
from opshero.errors import Conflict, InvalidInput
from opshero.models import AuditEvent
from opshero.roles import Role
from tests.factories import make_device, make_site, make_target

pytestmark = pytest.mark.django_db


@pytest.fixture
def actor(world):
    return Actor.for_user(world.a.user(Role.ADMIN), ip="10.1.2.3")


def test_create_site_validates_every_field(world, actor):
    org = world.a.org
    cases = [
        ({"name": ""}, "name"),
        ({"name": "X", "time_zone": "Mars/Olympus"}, "time_zone"),
        ({"name": "X", "expected_connectivity": 1.5}, "expected_connectivity"),
        ({"name": "X", "kind": "spaceport"}, "kind"),
        (
            {"name": "X", "maintenance_windows": [{"day": 7, "start": "01:00", "end": "02:00"}]},
            "maintenance_windows",
        ),
        (
            {"name": "X", "maintenance_windows": [{"day": 1, "start": "05:00", "end": "02:00"}]},
            "maintenance_windows",
        ),
        ({"name": "X", "tags": ["ok", "no spaces allowed"]}, "tags"),
    ]
    for values, field in cases:
        with pytest.raises(InvalidInput) as err:
            services.create_site(organization=org, actor=actor, **values)
        assert field in err.value.fields, (values, err.value.fields)
    assert not Site.objects.exists()
    assert not AuditEvent.objects.exists()


def test_site_names_are_unique_per_organisation_only(world, actor):
    services.create_site(organization=world.a.org, actor=actor, name="Dock 1")
    with pytest.raises(Conflict):
        services.create_site(organization=world.a.org, actor=actor, name="dock 1")
    services.create_site(
        organization=world.b.org, actor=Actor.for_user(world.b.user("admin")), name="Dock 1"
    )
    assert Site.objects.filter(name__iexact="dock 1").count() == 2


def test_update_site_audits_only_what_changed(world, actor):
    site = services.create_site(
        organization=world.a.org,
        actor=actor,
        name="Dock 1",
        maintenance_windows=[{"day": 6, "start": "02:00", "end": "05:00"}],
    )
    services.update_site(site=site, actor=actor, name="Dock 1", region="NL")
    event = AuditEvent.objects.get(verb="site.updated")
    assert event.data == {"region": ["", "NL"]}
    assert event.ip == "10.1.2.3"
    services.update_site(site=site, actor=actor, region="NL")
    assert AuditEvent.objects.filter(verb="site.updated").count() == 1


def test_a_site_with_devices_cannot_be_deleted(world, actor):
    site = make_site(world.a.org)
    make_device(world.a.org, site)
    with pytest.raises(Conflict) as err:
        services.delete_site(site=site, actor=actor)
    assert err.value.code == "site_has_devices"
    assert Site.objects.filter(pk=site.pk).exists()


def test_duplicate_serials_are_refused_with_the_owner_named(world, actor):
    site = make_site(world.a.org)
    make_device(world.a.org, site, serial="SN-1", name="first")
    with pytest.raises(Conflict) as err:
        services.register_device(
            organization=world.a.org, actor=actor, name="second", serial="SN-1", site=site
        )
    assert err.value.fields == {"serial": ["Already registered to first."]}


def test_devices_cannot_point_at_another_organisations_site_or_target(world, actor):
    foreign_site = make_site(world.b.org)
    with pytest.raises(InvalidInput) as err:
        services.register_device(
            organization=world.a.org, actor=actor, name="d", serial="S", site=foreign_site
        )
    assert "site" in err.value.fields
    with pytest.raises(InvalidInput) as err:
        services.register_device(
            organization=world.a.org,
            actor=actor,
            name="d",
            serial="S",
            site=make_site(world.a.org),
            hardware_target=make_target(world.b.org),
        )
    assert "hardware_target" in err.value.fields
    assert not Device.objects.exists()


def test_connectivity_follows_last_contact(world, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.DEVICE_OFFLINE_AFTER_SECONDS = 600
    now = timezone.now()
    site = make_site(world.a.org)
    make_device(world.a.org, site, name="fresh", status="active", last_seen_at=now)
    make_device(
        world.a.org,
        site,
        name="silent",
        status="active",
        last_seen_at=now - timedelta(seconds=601),
    )
    make_device(world.a.org, site, name="never", status="active", last_seen_at=None)
    make_device(world.a.org, site, name="new", status="provisioning")
    make_device(world.a.org, site, name="old", status="retired", last_seen_at=now)
    status = {d.name: d.connectivity for d in selectors.devices_for_org(org=world.a.org)}
    assert status == {
        "fresh": "online",
        "silent": "offline",
        "never": "offline",
        "new": "provisioning",
        "old": "retired",
    }
    assert selectors.connectivity_counts(org=world.a.org) == {
        "provisioning": 1,
        "online": 1,
        "offline": 2,
        "revoked": 0,
        "retired": 1,
    }


def test_dynamic_group_membership(world, actor):
    org = world.a.org
    dock = make_site(org, "Dock", kind="dock")
    clinic = make_site(org, "Clinic", kind="clinic")
    cpu = HardwareTarget.objects.get(builtin_key="cpu")
    make_device(
        org, dock, name="gw-dock", placement="near_edge", hardware_target=cpu, tags=["pilot"]
    )
    hh_dock = make_device(org, dock, name="hh-dock", placement="on_device", tags=["pilot"])
    gw_clinic = make_device(
        org, clinic, name="gw-clinic", placement="near_edge", hardware_target=cpu
    )
    make_device(org, dock, name="retired-gw", placement="near_edge", status="retired")
    pinned = make_device(org, clinic, name="pinned", placement="on_device")

    def names(group):
        return sorted(d.name for d in selectors.members_of(group))

    docks_gw = services.create_group(
        organization=org,
        actor=actor,
        name="dock gateways",
        rules={"site_kinds": ["dock"], "placements": ["near_edge"]},
    )
    assert names(docks_gw) == ["gw-dock"]  # AND across rule kinds; retired never included
    gateways = services.create_group(
        organization=org,
        actor=actor,
        name="cpu or pilot",
        rules={"target_ids": [cpu.pk]},
    )
    assert names(gateways) == ["gw-clinic", "gw-dock"]
    tagged = services.create_group(
        organization=org,
        actor=actor,
        name="pilots",
        rules={"tags": ["pilot"]},
        static_members=[pinned.pk],
    )
    assert names(tagged) == ["gw-dock", "hh-dock", "pinned"]
    # Membership follows the devices: a device moved to a dock joins the dock group.
    services.update_device(device=gw_clinic, actor=actor, site=dock)
    assert names(docks_gw) == ["gw-clinic", "gw-dock"]
    assert hh_dock.pk not in {d.pk for d in selectors.members_of(docks_gw)}


def test_group_rules_are_validated(world, actor):
    org = world.a.org
    foreign = make_site(world.b.org)
    bad_rules = [
        ({"unknown": [1]}, "Unknown rule"),
        ({"site_ids": [foreign.pk]}, "Unknown site"),
        ({"site_kinds": ["moon"]}, "unknown"),
        ({"placements": "near_edge"}, "a list"),
        ({"target_ids": [999999]}, "Unknown hardware target"),
    ]
    for rules, reason in bad_rules:
        with pytest.raises(InvalidInput) as err:
            services.create_group(organization=org, actor=actor, name="g", rules=rules)
        assert reason in " ".join(err.value.fields["rules"]), rules


def test_built_in_targets_come_from_onnxruntime_and_are_read_only(world, actor):
    targets = {t.builtin_key: t for t in HardwareTarget.objects.filter(organization=None)}
    assert {"cpu", "nnapi", "coreml-mlprogram", "coreml-neuralnetwork"} <= set(targets)
    nnapi = targets["nnapi"]
    assert "nnapi_supported_ops.md" in nnapi.source and nnapi.static_shapes_only
    ops = {(o["domain"], o["op_type"]) for o in nnapi.operators}
    assert ("", "Conv") in ops and ("ai.onnx.ml", "ArrayFeatureExtractor") not in ops
    assert len(targets["cpu"].operators) > 100
    with pytest.raises(Conflict):
        services.update_target(target=nnapi, actor=actor, notes="mine now")
    clone = services.clone_target(organization=world.a.org, source=nnapi, actor=actor)
    assert clone.name == f"{nnapi.name} (copy)" and clone.cloned_from == nnapi
    assert clone.operators == nnapi.operators
    services.update_target(target=clone, actor=actor, quantized_only=True)
    clone.refresh_from_db()
    assert clone.quantized_only and not nnapi.quantized_only
    # Each organisation sees the built-ins and only its own clones.
    assert clone in selectors.targets_for_org(org=world.a.org)
    assert clone not in selectors.targets_for_org(org=world.b.org)
    assert nnapi in selectors.targets_for_org(org=world.b.org)
