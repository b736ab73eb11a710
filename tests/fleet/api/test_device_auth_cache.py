"""The cached device-credential lookup over HTTP (real PostgreSQL, real Redis).

Every revocation test warms the cache first and checks that the entry really was there, so
that a refusal cannot come from a cold cache; the lost-invalidation tests also check that the
stale entry is still cached when the request is refused, so the refusal is the database
check's.
"""

import copy
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fleet import credential_cache, services
from opshero.actors import Actor
from opshero.roles import Role
from protocol import device_auth
from tests.factories import enroll_device

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

ME = "/api/v1/device/me"
ROOT = Path(__file__).resolve().parents[3]


def send(client, key, device, method="GET", path=ME, body=b""):
    headers = device_auth.sign_request(
        private_key=key, device_id=str(device.uid), method=method, path=path, body=body
    )
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    return client.generic(method, path, body, content_type="application/json", **extra)


def code_of(response):
    return response.status_code, response.json()["error"]["code"]


def cached_value(device):
    """What the cache holds for the device, read past the module under test."""
    return cache.get(credential_cache._key(device.uid))


def active_entry(device):
    credential = device.credentials.get(revoked_at__isnull=True)
    return (credential.public_key, device.pk, credential.pk)


def warm(client, key, device):
    response = send(client, key, device)
    assert response.status_code == 200, response.content
    assert cached_value(device) == active_entry(device)
    return response


def new_key_for(device):
    key = device_auth.generate_device_key()
    text = device_auth.public_key_text(key)
    proof = device_auth.sign_rotation_proof(
        new_private_key=key, device_id=str(device.uid), new_public_key=text
    )
    return key, text, proof


def revoke(device, admin):
    services.revoke_device(device=device, actor=admin)


def retire(device, admin):
    services.retire_device(device=device, actor=admin)


def rotate(device, admin):
    _, text, proof = new_key_for(device)
    services.rotate_device_key(device=device, new_public_key=text, proof=proof)


# What the old key gets on its next request, as tests/fleet/api/test_device_signing.py expects.
CHANGES = {
    "revoke": (revoke, "device_revoked"),
    "retire": (retire, "device_retired"),
    "rotate": (rotate, "bad_signature"),
}


@pytest.fixture
def gateway(world):
    return enroll_device(world.a.org)


@pytest.fixture
def admin(world):
    return Actor.for_user(world.a.user(Role.ADMIN))


# --- the cached path ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_cached_path_makes_one_query_fewer_and_answers_the_same(
    client, gateway, django_assert_num_queries
):
    device, key = gateway
    assert cached_value(device) is None
    with CaptureQueriesContext(connection) as uncached:
        cold = send(client, key, device)
    assert cold.status_code == 200, cold.content
    assert cached_value(device) == active_entry(device)
    assert any('"fleet_devicecredential"' in q["sql"] for q in uncached.captured_queries)

    with django_assert_num_queries(len(uncached) - 1):
        hot = send(client, key, device)
    assert hot.status_code == 200, hot.content
    assert hot.json() == cold.json()
    assert hot.json()["device_id"] == str(device.uid)


@pytest.mark.django_db
def test_a_wrong_key_on_a_cached_device_is_refused_like_an_unknown_one(client, gateway):
    device, key = gateway
    warm(client, key, device)
    stranger = device_auth.generate_device_key()
    assert code_of(send(client, stranger, device)) == (401, "bad_signature")
    # An attacker's failures do not evict the device's entry.
    assert cached_value(device) == active_entry(device)
    assert send(client, key, device).status_code == 200


# --- revoke, rotate and retire with the cache warm -----------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("change", CHANGES)
def test_the_next_request_with_the_old_key_is_refused(
    client, gateway, admin, change, django_capture_on_commit_callbacks
):
    device, key = gateway
    warm(client, key, device)
    apply, code = CHANGES[change]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        apply(device, admin)
    assert callbacks
    assert cached_value(device) == credential_cache._TOMBSTONE
    assert code_of(send(client, key, device)) == (401, code)


@pytest.mark.django_db
@pytest.mark.parametrize("change", CHANGES)
def test_a_lost_invalidation_still_refuses_the_old_key(
    client, gateway, admin, change, monkeypatch, django_capture_on_commit_callbacks
):
    """Redis down during the change: the invalidation does nothing, the entry stays."""
    device, key = gateway
    warm(client, key, device)
    stale = cached_value(device)
    monkeypatch.setattr(credential_cache, "invalidate", lambda uid: None)
    with django_capture_on_commit_callbacks(execute=True):
        apply, code = CHANGES[change]
        apply(device, admin)
    assert cached_value(device) == stale

    assert code_of(send(client, key, device)) == (401, code)
    monkeypatch.undo()
    assert code_of(send(client, key, device)) == (401, code)
    assert cached_value(device) != stale


@pytest.mark.django_db
def test_a_rotated_key_works_at_once_even_when_the_old_one_is_still_cached(
    client, gateway, monkeypatch, django_capture_on_commit_callbacks
):
    device, old_key = gateway
    warm(client, old_key, device)
    stale = cached_value(device)
    monkeypatch.setattr(credential_cache, "invalidate", lambda uid: None)
    new_key, text, proof = new_key_for(device)
    body = json.dumps({"new_public_key": text, "proof": proof}).encode()
    with django_capture_on_commit_callbacks(execute=True):
        rotated = send(client, old_key, device, "POST", "/api/v1/device/rotate-key", body)
    assert rotated.status_code == 200, rotated.content
    assert cached_value(device) == stale
    monkeypatch.undo()

    response = send(client, new_key, device)
    assert response.status_code == 200, response.content
    assert code_of(send(client, old_key, device)) == (401, "bad_signature")


# --- another process -----------------------------------------------------------------------------


def _other_process(script: str) -> None:
    """Run ``script`` in a separate Python process on the same test database and Redis."""
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
    }
    prologue = "import django; django.setup()\n"
    completed = subprocess.run(
        [sys.executable, "-c", prologue + script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr


REVOKE_THERE = """
from fleet import credential_cache, services
from fleet.models import Device
from opshero.actors import Actor
if {lose}:
    credential_cache.invalidate = lambda uid: None
services.revoke_device(device=Device.objects.get(uid="{uid}"), actor=Actor.system("other"))
"""


@pytest.mark.django_db(transaction=True)
def test_a_key_revoked_by_another_process_is_refused_here_at_once(client, gateway):
    device, key = gateway
    warm(client, key, device)
    _other_process(REVOKE_THERE.format(uid=device.uid, lose=False))
    # The other process's invalidation reached the cache this process reads ...
    assert cached_value(device) == credential_cache._TOMBSTONE
    assert code_of(send(client, key, device)) == (401, "device_revoked")


@pytest.mark.django_db(transaction=True)
def test_a_key_revoked_by_another_process_that_lost_its_invalidation_is_refused_here(
    client, gateway
):
    device, key = gateway
    warm(client, key, device)
    stale = cached_value(device)
    _other_process(REVOKE_THERE.format(uid=device.uid, lose=True))
    assert cached_value(device) == stale  # ... or it did not, and the database check refuses
    assert code_of(send(client, key, device)) == (401, "device_revoked")


# --- Redis down at request time ------------------------------------------------------------------


def _closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture
def redis_outage(settings):
    """redis_outage(True) takes the cache away, redis_outage(False) brings it back."""
    up = copy.deepcopy(settings.CACHES)
    down = copy.deepcopy(up)
    down["default"]["LOCATION"] = _closed_port_url()
    down["default"]["OPTIONS"] = {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}

    def _set(outage: bool) -> None:
        settings.CACHES = down if outage else up

    return _set


@pytest.mark.django_db
def test_with_redis_down_requests_are_answered_from_the_database(
    client, gateway, admin, redis_outage, django_capture_on_commit_callbacks, caplog, monkeypatch
):
    device, key = gateway
    monkeypatch.setattr(credential_cache, "_last_warning", float("-inf"))
    with CaptureQueriesContext(connection) as uncached:
        assert send(client, key, device).status_code == 200
    redis_outage(True)
    with CaptureQueriesContext(connection) as during_outage:
        first = send(client, key, device)
        second = send(client, key, device)
    assert (first.status_code, second.status_code) == (200, 200)
    assert len(during_outage) == 2 * len(uncached)
    unreachable = [r for r in caplog.records if "cache unreachable" in r.getMessage()]
    assert len(unreachable) == 1  # two requests, each a failed get and add: once a minute

    with django_capture_on_commit_callbacks(execute=True):
        services.revoke_device(device=device, actor=admin)
    assert any("invalidation" in r.getMessage() for r in caplog.records)
    assert code_of(send(client, key, device)) == (401, "device_revoked")


@pytest.mark.django_db
def test_a_key_revoked_while_redis_was_down_is_refused_when_it_comes_back(
    client, gateway, admin, redis_outage, django_capture_on_commit_callbacks
):
    """Redis comes back with the entry it held before the outage: the entry is stale."""
    device, key = gateway
    warm(client, key, device)
    stale = cached_value(device)
    redis_outage(True)
    with django_capture_on_commit_callbacks(execute=True):
        services.revoke_device(device=device, actor=admin)
    redis_outage(False)
    assert cached_value(device) == stale
    assert code_of(send(client, key, device)) == (401, "device_revoked")
