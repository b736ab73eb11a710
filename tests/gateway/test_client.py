"""gateway.client against the real server: enrollment, signed requests, the state directory
and the errors a gateway meets in the field (a bad token, a server it cannot reach)."""

import json
import os
import stat
import urllib.error

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fleet import services
from fleet.models import Device
from gateway.client import (
    AGENT_VERSION,
    KEY_FILE,
    PENDING_KEY_FILE,
    STATE_FILE,
    DeviceAPIError,
    DeviceClient,
    GatewayStateError,
    enroll,
)
from opshero.actors import Actor
from protocol import device_auth
from tests.gateway.conftest import SITE_NAME

pytestmark = pytest.mark.django_db(transaction=True)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def enroll_here(live_server, token, state_dir, serial="GW-RTM-04", **extra) -> DeviceClient:
    return enroll(server=live_server.url, token=token, serial=serial, state_dir=state_dir, **extra)


# --- enrollment ----------------------------------------------------------------------------------


def test_enroll_registers_the_device_key_and_saves_the_state(live_server, new_token, tmp_path):
    state_dir = tmp_path / "agent" / "state"  # does not exist yet, nor does its parent
    client = enroll(
        server=live_server.url + "/",  # a trailing slash is dropped
        token=new_token(),
        serial="GW-RTM-04",
        name="rtm4-gateway",
        runtime_version="onnxruntime 1.32.0",
        state_dir=state_dir,
    )

    device = Device.objects.get(serial="GW-RTM-04")
    assert client.device_id == str(device.uid)
    assert client.server == live_server.url
    assert (device.name, device.status, device.site.name) == ("rtm4-gateway", "active", SITE_NAME)
    assert (device.agent_version, device.runtime_version) == (AGENT_VERSION, "onnxruntime 1.32.0")
    assert device.hardware_facts["cores"] == os.cpu_count()
    # The server holds the public half of the key the agent made and kept.
    credential = device.credentials.get(revoked_at__isnull=True)
    assert credential.public_key == device_auth.public_key_text(client.private_key)

    assert mode(state_dir) == 0o700
    key_file = state_dir / KEY_FILE
    assert mode(key_file) == 0o600
    saved_key = serialization.load_pem_private_key(key_file.read_bytes(), None)
    assert device_auth.public_key_text(saved_key) == credential.public_key
    state = json.loads((state_dir / STATE_FILE).read_text())
    assert state["server"] == live_server.url
    assert state["device_id"] == str(device.uid)
    assert state["enrollment"]["site"] == SITE_NAME
    assert sorted(p.name for p in state_dir.iterdir()) == [STATE_FILE, KEY_FILE]


def test_an_unknown_token_is_refused_with_the_servers_reason_and_saves_nothing(
    live_server, site, tmp_path
):
    state_dir = tmp_path / "state"
    with pytest.raises(DeviceAPIError) as refused:
        enroll_here(live_server, "ohe_" + "A" * 43, state_dir)
    assert (refused.value.status, refused.value.code) == (401, "invalid_token")
    assert refused.value.message == "Unknown enrollment token."
    assert str(refused.value) == "401 invalid_token: Unknown enrollment token."
    assert list(state_dir.iterdir()) == []  # no key is kept for a device that does not exist
    assert not Device.objects.exists()


def test_a_used_token_is_refused_and_the_first_enrollment_keeps_its_state(
    live_server, new_token, tmp_path
):
    token = new_token()
    first = enroll_here(live_server, token, tmp_path / "first")
    with pytest.raises(DeviceAPIError) as refused:
        enroll_here(live_server, token, tmp_path / "second", serial="GW-OTHER")
    assert (refused.value.status, refused.value.code) == (401, "token_used")
    assert "already used" in refused.value.message
    assert list((tmp_path / "second").iterdir()) == []
    assert DeviceClient.load(tmp_path / "first").me()["device_id"] == first.device_id
    assert list(Device.objects.values_list("serial", flat=True)) == ["GW-RTM-04"]


def test_field_errors_from_the_server_are_kept_by_field(live_server, new_token, tmp_path):
    with pytest.raises(DeviceAPIError) as refused:
        enroll_here(live_server, new_token(), tmp_path / "state", serial="S" * 121)
    assert refused.value.status == 400
    assert list(refused.value.fields) == ["serial"]
    assert "120 characters" in refused.value.fields["serial"][0]
    assert not Device.objects.exists()


def test_an_unreachable_server_is_an_oserror_and_saves_nothing(unreachable_url, tmp_path):
    state_dir = tmp_path / "state"
    with pytest.raises(urllib.error.URLError) as failed:
        enroll(server=unreachable_url, token="ohe_x", serial="GW-1", state_dir=state_dir, timeout=5)
    assert isinstance(failed.value, OSError)  # what the CLI reports as "Cannot reach the server"
    assert isinstance(failed.value.reason, ConnectionRefusedError)
    assert list(state_dir.iterdir()) == []


def test_an_error_page_that_is_not_json_is_reported_with_its_status(
    live_server, new_token, tmp_path
):
    with pytest.raises(DeviceAPIError) as refused:
        enroll(
            server=f"{live_server.url}/not-the-api",
            token=new_token(),
            serial="GW-1",
            state_dir=tmp_path / "state",
        )
    assert (refused.value.status, refused.value.code) == (404, "http_error")
    assert refused.value.message  # the start of the page, for a person to read
    assert not Device.objects.exists()


# --- signed requests -----------------------------------------------------------------------------


@pytest.fixture
def enrolled(live_server, new_token, tmp_path):
    """(state directory, client) of a gateway enrolled through the real API."""
    state_dir = tmp_path / "state"
    client = enroll_here(live_server, new_token(), state_dir, runtime_version="onnxruntime 1.32.0")
    return state_dir, client


def test_a_loaded_client_signs_requests_the_server_accepts(enrolled, world):
    state_dir, client = enrolled
    loaded = DeviceClient.load(state_dir)
    assert (loaded.server, loaded.device_id) == (client.server, client.device_id)
    me = loaded.me()
    assert me["device_id"] == client.device_id
    assert (me["organization"], me["site"]) == (world.a.org.slug, SITE_NAME)
    # The query string is part of what is signed: a wrongly signed one would be a 401.
    assert loaded.request("GET", "/api/v1/device/me?detail=1")["device_id"] == client.device_id


def test_a_request_signed_with_another_key_is_refused(enrolled):
    _, client = enrolled
    impostor = DeviceClient(
        server=client.server,
        device_id=client.device_id,
        private_key=device_auth.generate_device_key(),
    )
    with pytest.raises(DeviceAPIError) as refused:
        impostor.me()
    assert (refused.value.status, refused.value.code) == (401, "bad_signature")


def test_report_status_sends_only_the_fields_given(enrolled):
    _, client = enrolled
    answer = client.report_status(model_version="damage-detector 2.0", runtime_version=None)
    assert answer["reported_model_version"] == "damage-detector 2.0"
    device = Device.objects.get(uid=client.device_id)
    assert device.reported_model_version == "damage-detector 2.0"
    assert device.runtime_version == "onnxruntime 1.32.0"  # None was not sent, so not cleared
    assert device.last_seen_at is not None


def test_rotate_key_replaces_the_key_file_and_retires_the_old_key(enrolled):
    state_dir, client = enrolled
    key_file = state_dir / KEY_FILE
    old_pem = key_file.read_bytes()
    old_client = DeviceClient.load(state_dir)

    fingerprint = client.rotate_key(state_dir)

    device = Device.objects.get(uid=client.device_id)
    active = device.credentials.get(revoked_at__isnull=True)
    assert fingerprint == active.fingerprint
    assert fingerprint == device_auth.key_fingerprint(client.private_key.public_key())
    assert key_file.read_bytes() != old_pem
    assert mode(key_file) == 0o600
    assert DeviceClient.load(state_dir).me()["device_id"] == client.device_id
    with pytest.raises(DeviceAPIError) as refused:
        old_client.me()
    assert refused.value.status == 401


def test_a_revoked_device_is_told_to_enroll_again(enrolled):
    _, client = enrolled
    device = Device.objects.get(uid=client.device_id)
    services.revoke_device(device=device, actor=Actor.system("tests"))
    with pytest.raises(DeviceAPIError) as refused:
        client.me()
    assert (refused.value.status, refused.value.code) == (401, "device_revoked")
    assert "enroll it again" in refused.value.message


# --- the state directory -------------------------------------------------------------------------


def test_load_needs_a_state_directory_with_state(tmp_path):
    with pytest.raises(GatewayStateError, match="not enrolled") as missing:
        DeviceClient.load(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(missing.value)


def test_load_refuses_a_key_that_is_not_ed25519(enrolled):
    state_dir, _ = enrolled
    other = ec.generate_private_key(ec.SECP256R1())
    (state_dir / KEY_FILE).write_bytes(
        other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ValueError, match="not an Ed25519 key"):
        DeviceClient.load(state_dir)


def test_re_enrolling_into_a_state_dir_tightens_a_loose_key_file(live_server, new_token, tmp_path):
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / KEY_FILE).write_text("an old key, left readable by others")
    (state_dir / KEY_FILE).chmod(0o644)
    enroll_here(live_server, new_token(), state_dir)
    assert mode(state_dir / KEY_FILE) == 0o600


# --- a rotation whose answer is lost ---------------------------------------------------------


def _lose_the_answer_to_rotate_key(monkeypatch, *, after_sending: bool):
    from gateway import client as client_module

    real_send = client_module._send

    def send(url, **kwargs):
        if url.endswith("/api/v1/device/rotate-key"):
            if after_sending:
                real_send(url, **kwargs)  # the server rotates; the answer never arrives
            raise TimeoutError("timed out")
        return real_send(url, **kwargs)

    monkeypatch.setattr(client_module, "_send", send)


def test_a_rotation_whose_answer_was_lost_is_finished_with_the_new_key(enrolled, monkeypatch):
    state_dir, client = enrolled
    _lose_the_answer_to_rotate_key(monkeypatch, after_sending=True)
    with pytest.raises(OSError):
        client.rotate_key(state_dir)
    monkeypatch.undo()
    assert (state_dir / PENDING_KEY_FILE).exists()
    stale = DeviceClient.load(state_dir)  # still the old key: the server no longer accepts it
    with pytest.raises(DeviceAPIError) as refused:
        stale.me()
    assert refused.value.code == "bad_signature"

    assert stale.resume_rotation(state_dir) is True
    assert not (state_dir / PENDING_KEY_FILE).exists()
    assert mode(state_dir / KEY_FILE) == 0o600
    assert DeviceClient.load(state_dir).me()["device_id"] == client.device_id


def test_a_rotation_that_never_reached_the_server_keeps_the_old_key(enrolled, monkeypatch):
    state_dir, client = enrolled
    old_pem = (state_dir / KEY_FILE).read_bytes()
    _lose_the_answer_to_rotate_key(monkeypatch, after_sending=False)
    with pytest.raises(OSError):
        client.rotate_key(state_dir)
    monkeypatch.undo()
    loaded = DeviceClient.load(state_dir)
    assert loaded.resume_rotation(state_dir) is False
    assert not (state_dir / PENDING_KEY_FILE).exists()
    assert (state_dir / KEY_FILE).read_bytes() == old_pem
    assert loaded.me()["device_id"] == client.device_id
    device = Device.objects.get(uid=client.device_id)
    assert device.credentials.count() == 1
