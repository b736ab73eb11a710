"""The device signature over HTTP: the path as sent, key rotation with a PEM key as libraries
write it, and no device state revealed before the signature verifies."""

import json
import uuid

import pytest
from cryptography.hazmat.primitives import serialization

from fleet import services
from opshero.actors import Actor
from opshero.roles import Role
from protocol import device_auth
from tests.factories import enroll_device

pytestmark = pytest.mark.django_db

ME = "/api/v1/device/me"


def send(client, method, sent_path, key, device_id, body=b"", *, signed_path=None, environ=None):
    """Sign over ``signed_path`` (default: the path as sent) and send ``sent_path``."""
    headers = device_auth.sign_request(
        private_key=key,
        device_id=str(device_id),
        method=method,
        path=signed_path or sent_path,
        body=body,
    )
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    extra.update(environ or {})
    return client.generic(method, sent_path, body, content_type="application/json", **extra)


@pytest.fixture
def gateway(world):
    return enroll_device(world.a.org)


# --- the path is the raw request target ------------------------------------------------------


@pytest.mark.parametrize("raw_path", ["/api/v1/device%2Fme", "/api/v1/device/%6De"])
def test_the_signature_covers_the_path_as_sent_not_as_decoded(client, gateway, raw_path):
    """gunicorn passes the request target as RAW_URI; Django's path is percent-decoded."""
    device, key = gateway
    as_sent = send(client, "GET", raw_path, key, device.uid, environ={"RAW_URI": raw_path})
    assert as_sent.status_code == 200, as_sent.content
    assert as_sent.json()["device_id"] == str(device.uid)
    decoded = send(
        client, "GET", raw_path, key, device.uid, signed_path=ME, environ={"RAW_URI": raw_path}
    )
    assert decoded.status_code == 401
    assert decoded.json()["error"]["code"] == "bad_signature"


def test_request_uri_is_used_when_the_server_gives_no_raw_uri(client, gateway):
    device, key = gateway
    raw = "/api/v1/device/%6De"
    response = send(client, "GET", raw, key, device.uid, environ={"REQUEST_URI": raw + "?"})
    assert response.status_code == 200, response.content


# --- key rotation over the key text as sent --------------------------------------------------


def test_rotation_to_a_pem_key_with_its_trailing_newline_works(client, gateway):
    device, old_key = gateway
    new_key = device_auth.generate_device_key()
    pem = (
        new_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    proof = device_auth.sign_rotation_proof(
        new_private_key=new_key, device_id=str(device.uid), new_public_key=pem
    )
    body = json.dumps({"new_public_key": pem, "proof": proof}).encode()
    response = send(client, "POST", "/api/v1/device/rotate-key", old_key, device.uid, body)
    assert response.status_code == 200, response.content
    assert response.json()["key_fingerprint"] == device_auth.key_fingerprint(new_key.public_key())
    assert send(client, "GET", ME, new_key, device.uid).status_code == 200


# --- nothing about a device is revealed before its signature verifies ------------------------


def _refusal(response):
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"], response["WWW-Authenticate"]


def test_unknown_revoked_retired_and_bad_signature_answer_the_same(client, world):
    admin = Actor.for_user(world.a.user(Role.ADMIN))
    active, _ = enroll_device(world.a.org)
    revoked, _ = enroll_device(world.a.org)
    services.revoke_device(device=revoked, actor=admin)
    retired, _ = enroll_device(world.a.org)
    services.retire_device(device=retired, actor=admin)
    stranger = device_auth.generate_device_key()  # the caller holds none of their keys
    answers = {
        name: _refusal(send(client, "GET", ME, stranger, device_id))
        for name, device_id in {
            "unknown": uuid.uuid4(),
            "not a uuid": "dev-1",
            "revoked": revoked.uid,
            "retired": retired.uid,
            "active, bad signature": active.uid,
        }.items()
    }
    assert len(set(answers.values())) == 1, answers
    status, code, _message, _ = answers["unknown"]
    assert (status, code) == (401, "bad_signature")


def test_a_revoked_or_retired_device_signing_with_its_own_key_is_told_why(client, world):
    admin = Actor.for_user(world.a.user(Role.ADMIN))
    revoked, revoked_key = enroll_device(world.a.org)
    services.revoke_device(device=revoked, actor=admin)
    retired, retired_key = enroll_device(world.a.org)
    services.retire_device(device=retired, actor=admin)
    response = send(client, "GET", ME, revoked_key, revoked.uid)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "device_revoked")
    response = send(client, "GET", ME, retired_key, retired.uid)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "device_retired")


def test_a_rotated_out_key_is_a_bad_signature_not_a_revocation(client, gateway):
    device, old_key = gateway
    new_key = device_auth.generate_device_key()
    text = device_auth.public_key_text(new_key)
    services.rotate_device_key(
        device=device,
        new_public_key=text,
        proof=device_auth.sign_rotation_proof(
            new_private_key=new_key, device_id=str(device.uid), new_public_key=text
        ),
    )
    response = send(client, "GET", ME, old_key, device.uid)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "bad_signature")
