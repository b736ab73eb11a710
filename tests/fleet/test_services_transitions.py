"""The device lifecycle: ``fleet.services.DEVICE_TRANSITIONS`` and ``transition_device``."""

from __future__ import annotations

import itertools

import pytest
from django.utils import timezone

from fleet import services
from fleet.models import Device, DeviceCredential
from opshero.actors import Actor
from opshero.errors import Conflict
from protocol import device_auth
from tests.factories import enroll_device, make_device, make_site

pytestmark = pytest.mark.django_db

S = Device.Status
ALLOWED = {
    (S.PROVISIONING, S.ACTIVE),
    (S.PROVISIONING, S.RETIRED),
    (S.ACTIVE, S.ACTIVE),
    (S.ACTIVE, S.REVOKED),
    (S.ACTIVE, S.RETIRED),
    (S.REVOKED, S.ACTIVE),
    (S.REVOKED, S.RETIRED),
}
PAIRS = list(itertools.product(S.values, S.values))


def test_the_table_covers_every_status_and_is_the_lifecycle():
    assert set(services.DEVICE_TRANSITIONS) == set(S.values)
    table = {(a, b) for a, targets in services.DEVICE_TRANSITIONS.items() for b in targets}
    assert table == ALLOWED
    assert services.DEVICE_TRANSITIONS[S.RETIRED] == set()  # retired is for good


@pytest.mark.parametrize(("start", "to"), [p for p in PAIRS if p in ALLOWED])
def test_allowed_transitions_are_saved(world, start, to):
    device = make_device(world.a.org, status=start)
    returned = services.transition_device(device=device, to=to)
    assert returned is device and device.status == to
    device.refresh_from_db()
    assert device.status == to


@pytest.mark.parametrize(("start", "to"), [p for p in PAIRS if p not in ALLOWED])
def test_other_transitions_are_refused_with_both_states_named(world, start, to):
    device = make_device(world.a.org, name="dock-cam", status=start)
    with pytest.raises(Conflict) as err:
        services.transition_device(device=device, to=to, notes="never saved")
    assert err.value.code == "invalid_transition"
    assert err.value.status == 409
    assert err.value.message == (
        f"Device dock-cam is {S(start).label.lower()}; it cannot become {S(to).label.lower()}."
    )
    device.refresh_from_db()
    assert device.status == start and device.notes == ""


def test_fields_given_with_the_transition_are_saved_with_it_and_nothing_else(world):
    device = make_device(world.a.org, status=S.ACTIVE, notes="before")
    Device.objects.filter(pk=device.pk).update(notes="changed elsewhere meanwhile")
    at = timezone.now()
    services.transition_device(device=device, to=S.RETIRED, retired_at=at)
    device.refresh_from_db()
    assert (device.status, device.retired_at) == (S.RETIRED, at)
    assert device.notes == "changed elsewhere meanwhile"  # only status and retired_at written


def test_status_is_passed_as_to_not_as_a_change(world):
    device = make_device(world.a.org, status=S.ACTIVE)
    with pytest.raises(TypeError):
        services.transition_device(device=device, to=S.REVOKED, status=S.RETIRED)
    device.refresh_from_db()
    assert device.status == S.ACTIVE


def test_the_services_walk_the_lifecycle(world):
    admin = Actor.system("tests")
    site = make_site(world.a.org)
    registered = services.register_device(
        organization=world.a.org, actor=admin, name="gw", serial="GW-LC-1", site=site
    )
    assert registered.status == S.PROVISIONING
    device, _ = enroll_device(world.a.org, site=site, serial="GW-LC-1")
    assert device.pk == registered.pk and device.status == S.ACTIVE
    assert services.revoke_device(device=device, actor=admin).status == S.REVOKED
    reenrolled, _ = enroll_device(world.a.org, site=site, serial="GW-LC-1", device=device)
    assert reenrolled.pk == device.pk and reenrolled.status == S.ACTIVE
    assert services.retire_device(device=device, actor=admin).status == S.RETIRED


def test_a_re_enrollment_token_cannot_revive_a_device_retired_after_it_was_made(world):
    # retire_device deletes the device's unused tokens; if one survives a race, the lifecycle
    # still refuses retired -> active and no key is bound.
    device, _ = enroll_device(world.a.org)
    services.revoke_device(device=device, actor=Actor.system("tests"))
    _, token = services.create_enrollment_token(
        organization=world.a.org, site=device.site, actor=Actor.system("tests"), device=device
    )
    Device.objects.filter(pk=device.pk).update(status=S.RETIRED)
    key = device_auth.generate_device_key()
    with pytest.raises(Conflict) as err:
        services.enroll_device(
            token=token,
            public_key=device_auth.public_key_text(key),
            facts=services.EnrollmentFacts(serial=device.serial),
        )
    assert err.value.code == "invalid_transition"
    assert "is retired; it cannot become active" in err.value.message
    device.refresh_from_db()
    assert device.status == S.RETIRED
    assert not DeviceCredential.objects.filter(device=device, revoked_at__isnull=True).exists()
