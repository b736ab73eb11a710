"""fleet.credential_cache against the real cache (Redis) and database: fill, tombstone, race,
outage. The HTTP behaviour built on it is in tests/fleet/api/test_device_auth_cache.py."""

import copy
import logging
import socket
import uuid

import pytest
from django.core.cache import cache, caches

from fleet import credential_cache, services
from opshero.actors import Actor
from tests.factories import enroll_device

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


@pytest.fixture
def device(world):
    return enroll_device(world.a.org)[0]


def expected(device):
    credential = device.credentials.get(revoked_at__isnull=True)
    return credential_cache.ActiveCredential(
        public_key=credential.public_key, device_pk=device.pk, credential_pk=credential.pk
    )


def test_a_database_read_fills_the_cache_and_later_reads_hit_it(device):
    assert credential_cache.cached_credential(device.uid) is None
    assert credential_cache.active_credential(device.uid) == expected(device)
    assert credential_cache.cached_credential(device.uid) == expected(device)
    assert 240 < _seconds_to_live(credential_cache._key(device.uid)) <= 300
    # Every spelling of the id is one entry.
    spelled = uuid.UUID(str(device.uid).upper())
    assert credential_cache.cached_credential(spelled) == expected(device)


def test_an_unknown_id_is_not_cached(device):
    uid = uuid.uuid4()
    assert credential_cache.active_credential(uid) is None
    assert cache.get(credential_cache._key(uid)) is None


def test_invalidation_waits_for_the_commit_and_leaves_a_tombstone_read_as_a_miss(
    device, django_capture_on_commit_callbacks
):
    credential_cache.active_credential(device.uid)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        credential_cache.invalidate_on_commit(device.uid)
    assert credential_cache.cached_credential(device.uid) == expected(device)  # not yet
    for callback in callbacks:
        callback()
    assert cache.get(credential_cache._key(device.uid)) == credential_cache._TOMBSTONE
    assert credential_cache.cached_credential(device.uid) is None
    # While the tombstone lives, the database answers and nothing fills.
    assert credential_cache.active_credential(device.uid) == expected(device)
    assert cache.get(credential_cache._key(device.uid)) == credential_cache._TOMBSTONE
    assert 0 < _seconds_to_live(credential_cache._key(device.uid)) <= 60


def _seconds_to_live(key: str) -> int:
    raw_key = cache.make_and_validate_key(key)
    return cache._cache.get_client(raw_key).ttl(raw_key)


def _read_then_revoke_before_the_fill(device, monkeypatch, django_capture_on_commit_callbacks):
    """A reader queries the database, then the revocation commits and invalidates, then the
    reader fills: the interleaving the tombstone is there for."""
    backend = caches["default"]
    real_add = backend.add
    revoked = []

    def revoke_then_add(*args, **kwargs):
        if not revoked:
            with django_capture_on_commit_callbacks(execute=True):
                services.revoke_device(device=device, actor=Actor.system("tests"))
            revoked.append(True)
        return real_add(*args, **kwargs)

    monkeypatch.setattr(backend, "add", revoke_then_add)
    stale = credential_cache.active_credential(device.uid)
    assert revoked
    return stale


def test_a_reader_that_fills_after_the_invalidation_does_not_cache_the_revoked_key(
    device, monkeypatch, django_capture_on_commit_callbacks
):
    before = expected(device)
    stale = _read_then_revoke_before_the_fill(
        device, monkeypatch, django_capture_on_commit_callbacks
    )
    assert stale == before  # the reader did read the key before the revocation
    assert not device.credentials.filter(revoked_at__isnull=True).exists()
    assert credential_cache.cached_credential(device.uid) is None


def test_the_same_race_with_a_deleting_invalidation_caches_the_revoked_key(
    device, monkeypatch, django_capture_on_commit_callbacks
):
    """The control: what the tombstone prevents really happens without it."""
    monkeypatch.setattr(
        credential_cache, "invalidate", lambda uid: cache.delete(credential_cache._key(uid))
    )
    before = expected(device)
    _read_then_revoke_before_the_fill(device, monkeypatch, django_capture_on_commit_callbacks)
    assert credential_cache.cached_credential(device.uid) == before


def _closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def test_an_unreachable_cache_is_a_miss_logged_once_a_minute(device, settings, monkeypatch, caplog):
    credential_cache.active_credential(device.uid)  # cached before the outage
    down = copy.deepcopy(settings.CACHES)
    down["default"]["LOCATION"] = _closed_port_url()
    down["default"]["OPTIONS"] = {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}
    settings.CACHES = down
    monkeypatch.setattr(credential_cache, "_last_warning", float("-inf"))
    caplog.set_level(logging.WARNING, logger="fleet.credential_cache")

    def unreachable():
        return [r for r in caplog.records if "unreachable" in r.getMessage()]

    assert credential_cache.cached_credential(device.uid) is None  # never the stale entry
    assert len(unreachable()) == 1
    assert credential_cache.active_credential(device.uid) == expected(device)  # add fails
    assert credential_cache.cached_credential(device.uid) is None
    assert len(unreachable()) == 1  # not again within the minute
    monkeypatch.setattr(credential_cache, "_last_warning", credential_cache._last_warning - 61)
    assert credential_cache.cached_credential(device.uid) is None
    assert len(unreachable()) == 2  # a minute later
    assert all(r.levelno == logging.WARNING for r in unreachable())

    credential_cache.invalidate(device.uid)  # does not raise: the loss is logged
    assert any("lost" in r.getMessage() for r in caplog.records)
