"""Replay protection across a Redis outage and its recovery (real Redis, real PostgreSQL).

The outage is a Redis address on which nothing listens, set where the app reads it
(``CACHES["default"]``), so the test does not depend on how the replay store is built.
"""

import copy
import socket
import time

import pytest

from fleet.models import DeviceNonce
from protocol import device_auth
from tests.factories import enroll_device

pytestmark = [pytest.mark.django_db, pytest.mark.redis]

ME = "/api/v1/device/me"


def _closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture
def redis_outage(settings):
    """redis_outage(True) takes Redis away, redis_outage(False) brings it back."""
    up = copy.deepcopy(settings.CACHES)
    down = copy.deepcopy(up)
    down["default"]["LOCATION"] = _closed_port_url()

    def _set(outage: bool) -> None:
        settings.CACHES = down if outage else up

    return _set


def _me(client, key, device, nonce, timestamp):
    headers = device_auth.sign_request(
        private_key=key,
        device_id=str(device.uid),
        method="GET",
        path=ME,
        timestamp=timestamp,
        nonce=nonce,
    )
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    return client.get(ME, **extra)


@pytest.fixture
def gateway(world):
    return enroll_device(world.a.org)


def test_a_nonce_used_before_an_outage_is_refused_during_it(client, gateway, redis_outage):
    device, key = gateway
    ts = int(time.time())
    assert _me(client, key, device, "before-outage-0001", ts).status_code == 200
    redis_outage(True)
    replay = _me(client, key, device, "before-outage-0001", ts)
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "replayed_nonce"
    assert _me(client, key, device, "during-outage-0001", ts).status_code == 200


def test_a_nonce_used_during_an_outage_is_refused_after_recovery(client, gateway, redis_outage):
    device, key = gateway
    ts = int(time.time())
    redis_outage(True)
    assert _me(client, key, device, "during-outage-0002", ts).status_code == 200
    redis_outage(False)
    replay = _me(client, key, device, "during-outage-0002", ts)
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "replayed_nonce"
    assert _me(client, key, device, "after-outage-00002", ts).status_code == 200


def test_a_nonce_known_only_to_the_database_is_refused_while_redis_is_up(client, gateway):
    """As after a Redis restart or failover that lost its keys."""
    device, key = gateway
    DeviceNonce.objects.create(device=device, nonce="seen-by-the-db-only")
    replay = _me(client, key, device, "seen-by-the-db-only", int(time.time()))
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "replayed_nonce"


def test_every_accepted_nonce_is_recorded_in_the_database(client, gateway):
    device, key = gateway
    assert _me(client, key, device, "recorded-nonce-0001", int(time.time())).status_code == 200
    assert list(DeviceNonce.objects.filter(device=device).values_list("nonce", flat=True)) == [
        "recorded-nonce-0001"
    ]
