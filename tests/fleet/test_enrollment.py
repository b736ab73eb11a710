"""Enrollment under races and takeover attempts (issue 11): concurrent enrollments resolve to one
201 and one 409 on real PostgreSQL, a key signs for one device only, a token claims only serials
at its own site, and device-supplied text has fixed limits."""

from __future__ import annotations

import threading

import pytest
from django.db import connections
from django.test import Client

from fleet import services
from fleet.models import Device, DeviceCredential
from opshero.actors import Actor
from opshero.errors import InvalidInput
from protocol import device_auth
from tests.factories import enroll_device, make_device, make_site

ENROLL = "/api/v1/device/enroll"


def new_token(org, site=None, **kwargs):
    _, token = services.create_enrollment_token(
        organization=org, site=site or make_site(org), actor=Actor.system("tests"), **kwargs
    )
    return token


def body(token, key, serial):
    return {"token": token, "public_key": device_auth.public_key_text(key), "serial": serial}


def _hold_both_at(monkeypatch, manager, barrier):
    """Make both enrollments pass every check before either inserts: ``manager.create`` waits
    until the other thread has reached it too, so the database has to settle the race."""
    original = manager.create

    def create(**values):
        barrier.wait(timeout=20)
        return original(**values)

    monkeypatch.setattr(manager, "create", create)


def _post_in_threads(bodies):
    results: list = [None] * len(bodies)

    def run(index, payload):
        try:
            response = Client().post(ENROLL, payload, content_type="application/json")
            results[index] = (response.status_code, response.json())
        finally:
            connections.close_all()  # this thread's own connection

    threads = [threading.Thread(target=run, args=(i, b)) for i, b in enumerate(bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.postgres
def test_two_concurrent_enrollments_of_one_new_serial_give_201_and_409(
    transactional_db, world, monkeypatch
):
    site = make_site(world.a.org)
    tokens = [new_token(world.a.org, site), new_token(world.a.org, site)]
    _hold_both_at(monkeypatch, Device.objects, threading.Barrier(2))
    keys = [device_auth.generate_device_key() for _ in tokens]
    results = _post_in_threads([body(t, k, "GW-RACE-1") for t, k in zip(tokens, keys, strict=True)])
    assert sorted(status for status, _ in results) == [201, 409], results
    (conflict,) = [payload for status, payload in results if status == 409]
    assert conflict["error"]["code"] == "already_enrolled"
    assert Device.objects.filter(serial="GW-RACE-1").count() == 1
    assert DeviceCredential.objects.count() == 1


@pytest.mark.postgres
def test_one_key_enrolling_concurrently_in_two_organisations_gives_201_and_409(
    transactional_db, world, monkeypatch
):
    tokens = [new_token(world.a.org), new_token(world.b.org)]
    _hold_both_at(monkeypatch, DeviceCredential.objects, threading.Barrier(2))
    key = device_auth.generate_device_key()
    results = _post_in_threads([body(tokens[0], key, "GW-A"), body(tokens[1], key, "GW-B")])
    assert sorted(status for status, _ in results) == [201, 409], results
    (conflict,) = [payload for status, payload in results if status == 409]
    assert conflict["error"]["code"] == "key_in_use"
    fingerprint = device_auth.key_fingerprint(key.public_key())
    assert DeviceCredential.objects.filter(fingerprint=fingerprint).count() == 1
    assert Device.objects.count() == 1  # the losing enrollment left no device behind


def test_the_database_refuses_a_second_credential_with_the_same_fingerprint(db, world):
    from django.db import IntegrityError, transaction

    device, _ = enroll_device(world.a.org)
    credential = DeviceCredential.objects.get(device=device)
    other = make_device(world.b.org)
    with pytest.raises(IntegrityError), transaction.atomic():
        DeviceCredential.objects.create(
            device=other, public_key=credential.public_key, fingerprint=credential.fingerprint
        )


def test_a_token_cannot_claim_a_serial_pre_registered_at_another_site(db, world, client):
    home, elsewhere = make_site(world.a.org, "Home"), make_site(world.a.org, "Elsewhere")
    pre = make_device(world.a.org, elsewhere, serial="GW-PRE-9")
    token = new_token(world.a.org, home)
    response = client.post(
        ENROLL,
        body(token, device_auth.generate_device_key(), "GW-PRE-9"),
        content_type="application/json",
    )
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "serial_at_other_site"
    assert "serial" in error["fields"]
    pre.refresh_from_db()
    assert (pre.site, pre.status) == (elsewhere, Device.Status.PROVISIONING)
    assert not pre.credentials.exists()


def test_a_token_claims_a_serial_pre_registered_at_its_own_site(db, world, client):
    site = make_site(world.a.org)
    pre = make_device(world.a.org, site, serial="GW-PRE-10")
    response = client.post(
        ENROLL,
        body(new_token(world.a.org, site), device_auth.generate_device_key(), "GW-PRE-10"),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["device_id"] == str(pre.uid)


def test_re_enrolling_an_active_device_that_has_a_live_key_is_409(db, world, client):
    device, _ = enroll_device(world.a.org)
    token = new_token(world.a.org, device.site, device=device)
    response = client.post(
        ENROLL,
        body(token, device_auth.generate_device_key(), device.serial),
        content_type="application/json",
    )
    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "already_enrolled"
    assert DeviceCredential.objects.filter(device=device, revoked_at__isnull=True).count() == 1


def test_a_re_enrollment_token_names_its_device_even_at_another_site(db, world):
    device, _ = enroll_device(world.a.org)
    services.revoke_device(device=device, actor=Actor.system("tests"))
    other_site = make_site(world.a.org)
    token = new_token(world.a.org, other_site, device=device)
    again = services.enroll_device(
        token=token,
        public_key=device_auth.public_key_text(device_auth.generate_device_key()),
        facts=services.EnrollmentFacts(serial=device.serial),
    )
    assert again.pk == device.pk and again.status == Device.Status.ACTIVE
    assert again.site == device.site  # re-enrollment never moves the device


@pytest.mark.parametrize(
    ("facts", "field"),
    [
        ({"serial": "S" * 121}, "serial"),
        ({"serial": "GW-1", "name": "n" * 121}, "name"),
        ({"serial": "GW-1", "agent_version": "1" * 41}, "agent_version"),
        ({"serial": "GW-1", "runtime_version": "r" * 41}, "runtime_version"),
        ({"serial": "GW-1", "hardware": {"blob": "x" * 5000}}, "hardware"),
        ({"serial": "GW-1", "hardware": {f"k{i}": i for i in range(65)}}, "hardware"),
    ],
)
def test_over_long_enrollment_facts_are_refused_naming_the_field(db, world, facts, field):
    token = new_token(world.a.org)
    with pytest.raises(InvalidInput) as err:
        services.enroll_device(
            token=token,
            public_key=device_auth.public_key_text(device_auth.generate_device_key()),
            facts=services.EnrollmentFacts(**facts),
        )
    assert field in err.value.fields
    assert not Device.objects.exists()


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"agent_version": "1" * 41}, "agent_version"),
        ({"runtime_version": "r" * 41}, "runtime_version"),
        ({"model_version": "m" * 121}, "model_version"),
        ({"hardware": {"blob": "x" * 5000}}, "hardware"),
    ],
)
def test_over_long_status_reports_are_refused_and_change_nothing(db, world, values, field):
    device, _ = enroll_device(world.a.org)
    before = (device.agent_version, device.runtime_version, device.hardware_facts)
    with pytest.raises(InvalidInput) as err:
        services.report_device_status(device=device, **values)
    assert field in err.value.fields
    device.refresh_from_db()
    assert (device.agent_version, device.runtime_version, device.hardware_facts) == before


def test_register_and_update_refuse_over_long_device_text(db, world):
    site = make_site(world.a.org)
    actor = Actor.system("tests")
    with pytest.raises(InvalidInput) as err:
        services.register_device(
            organization=world.a.org, actor=actor, name="gw", serial="S" * 121, site=site
        )
    assert "serial" in err.value.fields
    device = services.register_device(
        organization=world.a.org, actor=actor, name="gw", serial="S-1", site=site
    )
    with pytest.raises(InvalidInput) as err:
        services.update_device(device=device, actor=actor, agent_version="1" * 41)
    assert "agent_version" in err.value.fields


@pytest.mark.postgres
def test_the_fingerprint_migrations_keep_the_oldest_credential_and_revoke_duplicates(
    transactional_db, world
):
    """A database that already holds a duplicated key (what the race produced before the
    constraint) migrates: the first holder keeps it, the later device is revoked."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    first, _ = enroll_device(world.a.org)
    shared = DeviceCredential.objects.get(device=first)
    second, _ = enroll_device(world.b.org)
    DeviceCredential.objects.filter(device=second).delete()

    executor = MigrationExecutor(connection)
    # Every app's latest: going back takes the migrations that depend on fleet's with it.
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate([("fleet", "0005_target_documentary")])
    try:
        DeviceCredential.objects.create(
            device=second, public_key=shared.public_key, fingerprint=shared.fingerprint
        )
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(latest)
    assert DeviceCredential.objects.filter(fingerprint=shared.fingerprint).count() == 1
    assert DeviceCredential.objects.get(fingerprint=shared.fingerprint).device == first
    second.refresh_from_db()
    assert second.status == Device.Status.REVOKED
    assert not second.credentials.exists()
    first.refresh_from_db()
    assert first.status == Device.Status.ACTIVE
