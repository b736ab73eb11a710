"""The model-signing keys a device is given (``signing_keys`` in enrollment and ``me``, and
``GET /api/v1/signing-keys/`` signed by the device): only keys that verify something."""

import pytest

from modelregistry import signing_services
from modelregistry.models import SigningKey
from opshero.actors import Actor
from opshero.roles import Role
from protocol import device_auth
from tests.factories import enroll_device

pytestmark = pytest.mark.django_db

FIELDS = {"key_id", "algorithm", "public_key_pem", "status", "created_at", "retired_at"}


def _get(client, path, key, device):
    headers = device_auth.sign_request(
        private_key=key, device_id=str(device.uid), method="GET", path=path
    )
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    response = client.get(path, **extra)
    assert response.status_code == 200, response.content
    return response.json()


def test_after_many_rotations_a_device_gets_the_active_key_only(client, world):
    admin = Actor.for_user(world.a.user(Role.ADMIN))
    signing_services.create_signing_key(organization=world.a.org, actor=admin)
    for _ in range(5):
        active = signing_services.rotate_signing_key(organization=world.a.org, actor=admin)
    assert SigningKey.objects.filter(organization=world.a.org).count() == 6
    device, key = enroll_device(world.a.org)
    for keys in (
        _get(client, "/api/v1/device/me", key, device)["signing_keys"],
        _get(client, "/api/v1/signing-keys/", key, device),
    ):
        assert [(k["key_id"], k["status"]) for k in keys] == [(active.key_id, "active")]
        assert set(keys[0]) == FIELDS
        assert keys[0]["public_key_pem"] == active.public_pem
        assert keys[0]["retired_at"] is None


def test_a_retired_key_is_never_given_to_a_device(client, world):
    """Retiring is also what an admin does with a leaked key: a retired key verifies nothing."""
    admin = Actor.for_user(world.a.user(Role.ADMIN))
    key_record = signing_services.create_signing_key(organization=world.a.org, actor=admin)
    device, key = enroll_device(world.a.org)
    me = _get(client, "/api/v1/device/me", key, device)
    assert [k["key_id"] for k in me["signing_keys"]] == [key_record.key_id]
    signing_services.retire_signing_key(key=key_record, actor=admin)
    assert _get(client, "/api/v1/device/me", key, device)["signing_keys"] == []
    assert _get(client, "/api/v1/signing-keys/", key, device) == []


def test_users_still_see_every_key_with_its_status(api_as, world):
    admin = Actor.for_user(world.a.user(Role.ADMIN))
    signing_services.create_signing_key(organization=world.a.org, actor=admin)
    signing_services.rotate_signing_key(organization=world.a.org, actor=admin)
    api = api_as(world.a.user(Role.ADMIN))
    listed = api.get("/api/v1/signing-keys/?org=acme").json()
    assert sorted(k["status"] for k in listed) == ["active", "retired"]
