"""Enrollment and signed device requests through the real HTTP stack.

Every attack the fleet issue lists is refused here: token reuse, expiry, guessing, bad
signature, clock skew, replayed nonce, tampered body, revoked and rotated keys, a device
reading another device, user credentials on the device API and device credentials on the
user API.
"""

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from fleet import services
from fleet.models import Device, DeviceCredential, DeviceNonce, EnrollmentToken
from opshero.actors import Actor
from opshero.models import AuditEvent
from opshero.roles import Role
from protocol import device_auth
from tests.factories import enroll_device, make_device, make_site

pytestmark = pytest.mark.django_db

ENROLL = "/api/v1/device/enroll"


def new_token(org, site=None, **kwargs):
    site = site or make_site(org)
    record, token = services.create_enrollment_token(
        organization=org, site=site, actor=Actor.system("tests"), **kwargs
    )
    return record, token


def enroll_body(token, key=None, serial="GW-0001", **extra):
    key = key or device_auth.generate_device_key()
    return {
        "token": token,
        "public_key": device_auth.public_key_text(key),
        "serial": serial,
        "name": "dock-gw",
        "agent_version": "0.1.0",
        "runtime_version": "onnxruntime 1.32.0",
        "hardware": {"cores": 4},
        **extra,
    }


def error_of(response):
    assert response["Content-Type"].startswith("application/json"), response.content
    return response.json()["error"]


def signed(client, method, path, key, device_id, body=b"", *, query="", headers=None, **sign):
    """Send a request signed the documented way (the client adds nothing of its own)."""
    signature = device_auth.sign_request(
        private_key=key,
        device_id=str(device_id),
        method=method,
        path=path,
        query=query,
        body=body,
        **sign,
    )
    signature.update(headers or {})
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in signature.items()}
    url = path + (f"?{query}" if query else "")
    return client.generic(method, url, body, content_type="application/json", **extra)


# --- enrollment ----------------------------------------------------------------------------------


def test_enrollment_creates_an_active_device_with_its_key(client, world):
    record, token = new_token(world.a.org, placement="on_device")
    key = device_auth.generate_device_key()
    response = client.post(ENROLL, enroll_body(token, key), content_type="application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    device = Device.objects.get(uid=body["device_id"])
    assert (device.organization, device.site, device.status) == (world.a.org, record.site, "active")
    assert device.placement == "on_device"
    assert body["organization"] == "acme" and body["signing_keys"] == []
    credential = DeviceCredential.objects.get(device=device)
    assert credential.fingerprint == device_auth.key_fingerprint(key.public_key())
    record.refresh_from_db()
    assert record.used_by == device and record.used_at is not None
    event = AuditEvent.objects.get(verb="device.enrolled")
    assert (event.actor_kind, event.actor_device_id) == ("device", str(device.uid))


def test_a_token_works_once(client, world):
    _, token = new_token(world.a.org)
    assert (
        client.post(ENROLL, enroll_body(token), content_type="application/json").status_code == 201
    )
    again = client.post(
        ENROLL, enroll_body(token, serial="GW-0002"), content_type="application/json"
    )
    assert again.status_code == 401
    assert error_of(again)["code"] == "token_used"
    assert Device.objects.count() == 1


def test_an_expired_token_is_refused_and_writes_nothing(client, world):
    record, token = new_token(world.a.org)
    EnrollmentToken.objects.filter(pk=record.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = client.post(ENROLL, enroll_body(token), content_type="application/json")
    assert response.status_code == 401
    assert error_of(response)["code"] == "token_expired"
    assert not Device.objects.exists()
    assert not AuditEvent.objects.filter(verb="device.enrolled").exists()


def test_unknown_and_malformed_tokens_are_401(client, world):
    for token in ("ohe_" + "A" * 43, "garbage"):
        response = client.post(ENROLL, enroll_body(token), content_type="application/json")
        assert response.status_code == 401
        assert error_of(response)["code"] == "invalid_token"


def test_token_guessing_is_throttled(client, world, settings):
    codes = []
    for i in range(25):
        body = enroll_body(f"ohe_guess{i:040d}")
        codes.append(client.post(ENROLL, body, content_type="application/json").status_code)
    assert codes[:20] == [401] * 20
    assert codes[20:] == [429] * 5


@pytest.mark.parametrize(
    ("public_key", "reason"),
    [
        ("", "This field may not be blank."),
        ("not-base64!!", "not valid base64"),
        ("AAAA", "3 bytes"),
        ("-----BEGIN PUBLIC KEY-----\nMFkwEw\n-----END PUBLIC KEY-----", "not a key"),
    ],
)
def test_malformed_public_keys_name_the_field(client, world, public_key, reason):
    _, token = new_token(world.a.org)
    body = enroll_body(token)
    body["public_key"] = public_key
    response = client.post(ENROLL, body, content_type="application/json")
    assert response.status_code in (400, 422)
    error = error_of(response)
    assert reason in " ".join(error["fields"]["public_key"])
    assert not Device.objects.exists()
    assert EnrollmentToken.objects.get().used_at is None  # the token is still usable


def test_missing_fields_and_bad_json_are_400(client, world):
    response = client.post(ENROLL, {"token": "x"}, content_type="application/json")
    assert response.status_code == 400
    assert set(error_of(response)["fields"]) == {"public_key", "serial"}
    response = client.generic("POST", ENROLL, "{oops", content_type="application/json")
    assert response.status_code == 400 and error_of(response)["code"] == "parse_error"


def test_the_same_key_cannot_enroll_two_devices(client, world):
    key = device_auth.generate_device_key()
    _, token1 = new_token(world.a.org)
    _, token2 = new_token(world.a.org)
    assert (
        client.post(
            ENROLL, enroll_body(token1, key, "A"), content_type="application/json"
        ).status_code
        == 201
    )
    response = client.post(ENROLL, enroll_body(token2, key, "B"), content_type="application/json")
    assert response.status_code == 409 and error_of(response)["code"] == "key_in_use"


def test_a_pre_registered_serial_is_taken_over_and_an_enrolled_one_is_refused(client, world):
    site = make_site(world.a.org)
    pre = make_device(world.a.org, site, serial="GW-PRE-1", name="pre-registered")
    _, token = new_token(world.a.org, site)
    response = client.post(
        ENROLL, enroll_body(token, serial="GW-PRE-1"), content_type="application/json"
    )
    assert response.status_code == 201
    assert response.json()["device_id"] == str(pre.uid)
    assert response.json()["name"] == "pre-registered"
    _, token2 = new_token(world.a.org, site)
    response = client.post(
        ENROLL, enroll_body(token2, serial="GW-PRE-1"), content_type="application/json"
    )
    assert response.status_code == 409 and error_of(response)["code"] == "already_enrolled"
    assert error_of(response)["fields"]["serial"] == ["Already enrolled."]


def test_tokens_enroll_into_their_own_organisation_only(client, world):
    """A serial that exists in another organisation is a different device; keys of one
    organisation never appear in another's fleet."""
    other = make_device(world.b.org, serial="GW-SHARED")
    _, token = new_token(world.a.org)
    response = client.post(
        ENROLL, enroll_body(token, serial="GW-SHARED"), content_type="application/json"
    )
    assert response.status_code == 201
    device = Device.objects.get(uid=response.json()["device_id"])
    assert device.organization == world.a.org and device.pk != other.pk
    other.refresh_from_db()
    assert other.status == "provisioning" and not other.credentials.exists()
    client.force_login(world.b.user(Role.ADMIN))
    listed = client.get("/api/v1/orgs/globex/devices/").json()
    assert [d["serial"] for d in listed["results"]] == ["GW-SHARED"]
    assert listed["results"][0]["status"] == "provisioning"


# --- signed requests ---------------------------------------------------------------------------


@pytest.fixture
def gateway(world):
    device, key = enroll_device(world.a.org)
    return device, key


def test_a_signed_request_reaches_the_device_api(client, gateway):
    device, key = gateway
    response = signed(client, "GET", "/api/v1/device/me", key, device.uid)
    assert response.status_code == 200, response.content
    assert response.json()["device_id"] == str(device.uid)
    body = json.dumps({"model_version": "damage-detector 1.4"}).encode()
    response = signed(client, "POST", "/api/v1/device/status", key, device.uid, body)
    assert response.status_code == 200
    device.refresh_from_db()
    assert device.reported_model_version == "damage-detector 1.4"
    assert AuditEvent.objects.filter(verb="device.versions_reported").count() == 1


def test_unsigned_requests_are_401_with_the_scheme(client, gateway):
    response = client.get("/api/v1/device/me")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("OpsHero-Device-Signature")


def test_a_bad_signature_is_refused(client, gateway):
    device, _ = gateway
    response = signed(
        client, "GET", "/api/v1/device/me", device_auth.generate_device_key(), device.uid
    )
    assert response.status_code == 401 and error_of(response)["code"] == "bad_signature"


def test_clock_skew_over_five_minutes_is_refused(client, gateway):
    device, key = gateway
    response = signed(
        client, "GET", "/api/v1/device/me", key, device.uid, timestamp=int(time.time()) - 400
    )
    assert response.status_code == 401
    error = error_of(response)
    assert error["code"] == "clock_skew" and "behind" in error["message"]


def test_a_replayed_request_is_refused(client, gateway):
    device, key = gateway
    ts = int(time.time())
    first = signed(
        client, "GET", "/api/v1/device/me", key, device.uid, timestamp=ts, nonce="n" * 20
    )
    again = signed(
        client, "GET", "/api/v1/device/me", key, device.uid, timestamp=ts, nonce="n" * 20
    )
    assert first.status_code == 200
    assert again.status_code == 401 and error_of(again)["code"] == "replayed_nonce"


def test_replays_are_refused_by_the_database_when_redis_is_not_there(client, gateway, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    device, key = gateway
    ts = int(time.time())
    first = signed(
        client, "GET", "/api/v1/device/me", key, device.uid, timestamp=ts, nonce="d" * 20
    )
    again = signed(
        client, "GET", "/api/v1/device/me", key, device.uid, timestamp=ts, nonce="d" * 20
    )
    assert first.status_code == 200
    assert again.status_code == 401 and error_of(again)["code"] == "replayed_nonce"
    assert DeviceNonce.objects.filter(device=device, nonce="d" * 20).count() == 1


def test_a_tampered_body_is_refused(client, gateway):
    device, key = gateway
    body = json.dumps({"model_version": "1.0"}).encode()
    headers = device_auth.sign_request(
        private_key=key,
        device_id=str(device.uid),
        method="POST",
        path="/api/v1/device/status",
        body=body,
    )
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    response = client.generic(
        "POST",
        "/api/v1/device/status",
        b'{"model_version": "6.6.6"}',
        content_type="application/json",
        **extra,
    )
    assert response.status_code == 401 and error_of(response)["code"] == "body_digest_mismatch"
    device.refresh_from_db()
    assert device.reported_model_version == ""


def test_a_revoked_device_is_refused_on_its_next_request_and_can_re_enroll(client, world, gateway):
    device, key = gateway
    assert signed(client, "GET", "/api/v1/device/me", key, device.uid).status_code == 200
    services.revoke_device(device=device, actor=Actor.for_user(world.a.user(Role.ADMIN)))
    response = signed(client, "GET", "/api/v1/device/me", key, device.uid)
    assert response.status_code == 401 and error_of(response)["code"] == "device_revoked"
    device.refresh_from_db()
    assert device.status == "revoked"
    # An ordinary site token cannot take the revoked identity over...
    _, site_token = new_token(world.a.org, device.site)
    response = client.post(
        ENROLL, enroll_body(site_token, serial=device.serial), content_type="application/json"
    )
    assert response.status_code == 409 and error_of(response)["code"] == "device_revoked"
    # ...re-enrollment with a token made for this device keeps its id and history.
    _, token = new_token(world.a.org, device.site, device=device)
    new_key = device_auth.generate_device_key()
    response = client.post(
        ENROLL, enroll_body(token, new_key, serial=device.serial), content_type="application/json"
    )
    assert response.status_code == 201 and response.json()["device_id"] == str(device.uid)
    assert signed(client, "GET", "/api/v1/device/me", new_key, device.uid).status_code == 200
    assert signed(client, "GET", "/api/v1/device/me", key, device.uid).status_code == 401


def test_a_retired_device_is_refused(client, world, gateway):
    device, key = gateway
    services.retire_device(device=device, actor=Actor.for_user(world.a.user(Role.ADMIN)))
    response = signed(client, "GET", "/api/v1/device/me", key, device.uid)
    assert response.status_code == 401 and error_of(response)["code"] == "device_retired"


def test_key_rotation_needs_the_old_key_and_proof_of_the_new(client, gateway):
    device, old_key = gateway
    new_key = device_auth.generate_device_key()
    new_text = device_auth.public_key_text(new_key)
    # A proof made with another key is refused and nothing changes.
    bad_proof = device_auth.sign_rotation_proof(
        new_private_key=device_auth.generate_device_key(),
        device_id=str(device.uid),
        new_public_key=new_text,
    )
    body = json.dumps({"new_public_key": new_text, "proof": bad_proof}).encode()
    response = signed(client, "POST", "/api/v1/device/rotate-key", old_key, device.uid, body)
    assert response.status_code == 422 and error_of(response)["code"] == "bad_rotation_proof"
    assert signed(client, "GET", "/api/v1/device/me", old_key, device.uid).status_code == 200

    proof = device_auth.sign_rotation_proof(
        new_private_key=new_key, device_id=str(device.uid), new_public_key=new_text
    )
    body = json.dumps({"new_public_key": new_text, "proof": proof}).encode()
    response = signed(client, "POST", "/api/v1/device/rotate-key", old_key, device.uid, body)
    assert response.status_code == 200
    assert response.json()["key_fingerprint"] == device_auth.key_fingerprint(new_key.public_key())
    old = signed(client, "GET", "/api/v1/device/me", old_key, device.uid)
    assert old.status_code == 401 and error_of(old)["code"] == "bad_signature"
    assert signed(client, "GET", "/api/v1/device/me", new_key, device.uid).status_code == 200
    assert list(device.credentials.values_list("revoked_reason", flat=True)) == ["", "rotated"]


def test_a_device_cannot_act_as_another_device(client, world, gateway):
    _device, key = gateway
    other, _ = enroll_device(world.a.org)
    response = signed(client, "GET", "/api/v1/device/me", key, other.uid)
    assert response.status_code == 401 and error_of(response)["code"] == "bad_signature"
    # An unknown id is not told apart from a wrong key (test_device_signing.py).
    response = signed(
        client, "GET", "/api/v1/device/me", key, "00000000-0000-0000-0000-000000000000"
    )
    assert response.status_code == 401 and error_of(response)["code"] == "bad_signature"


def test_a_device_key_does_not_open_the_user_api(client, gateway):
    device, key = gateway
    for path in (
        "/api/v1/me/",
        "/api/v1/orgs/acme/devices/",
        f"/api/v1/orgs/acme/devices/{device.pk}/",
    ):
        response = signed(client, "GET", path, key, device.uid)
        assert response.status_code == 401, path
        assert error_of(response)["code"] == "not_authenticated"


def test_a_user_session_or_token_does_not_open_the_device_api(client, api_as, world, gateway):
    client.force_login(world.a.user(Role.ADMIN))
    response = client.get("/api/v1/device/me")
    assert response.status_code == 401
    api = api_as(world.a.user(Role.ADMIN))
    assert api.get("/api/v1/device/me").status_code == 401
    assert api.post("/api/v1/device/status", {}, format="json").status_code == 401


def test_last_seen_is_recorded_but_not_written_on_every_request(client, gateway):
    device, key = gateway
    Device.objects.filter(pk=device.pk).update(last_seen_at=timezone.now() - timedelta(hours=1))
    assert signed(client, "GET", "/api/v1/device/me", key, device.uid).status_code == 200
    device.refresh_from_db()
    first = device.last_seen_at
    assert timezone.now() - first < timedelta(seconds=5)
    assert signed(client, "GET", "/api/v1/device/me", key, device.uid).status_code == 200
    device.refresh_from_db()
    assert device.last_seen_at == first
