"""python -m gateway: the agent's command line against the real server.

Each command's output and exit code, and the errors an operator meets at a gateway: a refused
token (exit 1, the server's reason), a server it cannot reach (exit 2), never a traceback.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fleet.models import Device
from gateway.__main__ import main
from gateway.client import KEY_FILE, STATE_FILE
from tests.gateway.conftest import SITE_NAME

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def enroll_args(server: str, token: str, state_dir: Path, serial: str = "GW-CLI-01") -> list[str]:
    return [
        "enroll",
        "--server",
        server,
        "--token",
        token,
        "--serial",
        serial,
        "--name",
        "cli-gateway",
        "--state-dir",
        str(state_dir),
    ]


def test_enroll_whoami_status_and_rotate_key(live_server, new_token, tmp_path, capsys):
    state_dir = tmp_path / "state"
    code, out, err = run(capsys, *enroll_args(live_server.url, new_token(), state_dir))
    device = Device.objects.get(serial="GW-CLI-01")
    assert (code, err) == (0, "")
    assert out == f"Enrolled as device {device.uid}; state in {state_dir}\n"
    assert device.name == "cli-gateway"
    assert (state_dir / KEY_FILE).exists() and (state_dir / STATE_FILE).exists()

    code, out, err = run(capsys, "whoami", "--state-dir", str(state_dir))
    assert (code, err) == (0, "")
    me = json.loads(out)
    assert (me["device_id"], me["serial"], me["site"]) == (str(device.uid), "GW-CLI-01", SITE_NAME)

    code, out, err = run(
        capsys, "status", "--state-dir", str(state_dir), "--model-version", "damage-detector 3.1"
    )
    assert (code, err) == (0, "")
    assert json.loads(out)["reported_model_version"] == "damage-detector 3.1"
    device.refresh_from_db()
    assert device.reported_model_version == "damage-detector 3.1"

    old_key = (state_dir / KEY_FILE).read_bytes()
    code, out, err = run(capsys, "rotate-key", "--state-dir", str(state_dir))
    assert (code, err) == (0, "")
    active = device.credentials.get(revoked_at__isnull=True)
    assert json.loads(out) == {"key_fingerprint": active.fingerprint}
    assert (state_dir / KEY_FILE).read_bytes() != old_key
    code, out, _ = run(capsys, "whoami", "--state-dir", str(state_dir))  # the new key signs
    assert (code, json.loads(out)["device_id"]) == (0, str(device.uid))


def test_a_refused_token_exits_1_with_the_servers_reason(live_server, site, tmp_path, capsys):
    code, out, err = run(capsys, *enroll_args(live_server.url, "ohe_" + "B" * 43, tmp_path / "s"))
    assert (code, out) == (1, "")
    assert err == "Refused (401 invalid_token): Unknown enrollment token.\n"
    assert not Device.objects.exists()


def test_field_errors_are_listed_under_the_refusal(live_server, new_token, tmp_path, capsys):
    argv = enroll_args(live_server.url, new_token(), tmp_path / "s", serial="S" * 121)
    code, out, err = run(capsys, *argv)
    assert (code, out) == (1, "")
    first, *fields = err.splitlines()
    assert first.startswith("Refused (400 ")
    assert fields == ["  serial: Ensure this field has no more than 120 characters."]


def test_an_unreachable_server_exits_2_with_a_plain_message(unreachable_url, tmp_path, capsys):
    code, out, err = run(capsys, *enroll_args(unreachable_url, "ohe_x", tmp_path / "s"))
    assert (code, out) == (2, "")
    assert err.startswith("Cannot reach the server: ")
    assert "Connection refused" in err
    assert list((tmp_path / "s").iterdir()) == []


def test_a_revoked_device_is_refused_on_whoami(live_server, new_token, tmp_path, capsys):
    from fleet import services
    from opshero.actors import Actor

    state_dir = tmp_path / "state"
    assert run(capsys, *enroll_args(live_server.url, new_token(), state_dir))[0] == 0
    services.revoke_device(device=Device.objects.get(), actor=Actor.system("tests"))
    code, out, err = run(capsys, "whoami", "--state-dir", str(state_dir))
    assert (code, out) == (1, "")
    assert err.startswith("Refused (401 device_revoked): ")


def test_a_missing_option_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["enroll", "--server", "http://localhost", "--serial", "GW-1", "--state-dir", "s"])
    assert exited.value.code == 2
    assert "the following arguments are required: --token" in capsys.readouterr().err


def test_the_module_runs_as_a_command(live_server, new_token, unreachable_url, tmp_path):
    """``python -m gateway`` in its own process, as an operator runs it on a gateway."""
    state_dir = tmp_path / "state"

    def gateway(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "gateway", *argv],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    enrolled = gateway(*enroll_args(live_server.url, new_token(), state_dir))
    device = Device.objects.get(serial="GW-CLI-01")
    assert (enrolled.returncode, enrolled.stderr) == (0, ""), enrolled.stderr
    assert enrolled.stdout == f"Enrolled as device {device.uid}; state in {state_dir}\n"
    whoami = gateway("whoami", "--state-dir", str(state_dir))
    assert whoami.returncode == 0, whoami.stderr
    assert json.loads(whoami.stdout)["device_id"] == str(device.uid)

    unreachable = gateway(*enroll_args(unreachable_url, "ohe_x", tmp_path / "other"))
    assert unreachable.returncode == 2
    assert unreachable.stderr.startswith("Cannot reach the server: ")
    assert "Traceback" not in unreachable.stderr


# --- the agent's own state and configuration: clear errors, never a traceback -------------------


def test_whoami_without_enrollment_says_the_gateway_is_not_enrolled(tmp_path, capsys):
    code, out, err = run(capsys, "whoami", "--state-dir", str(tmp_path / "nowhere"))
    assert code == 3 and out == ""
    assert "Cannot reach the server" not in err
    assert err.startswith("This gateway is not enrolled: no state in ")
    assert "python -m gateway enroll" in err


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("corrupt-state", "is unreadable"),
        ("corrupt-key", "The device key"),
        ("server-without-scheme", "The server must be an http:// or https:// URL"),
        ("plain-http-server", "The server must be an https:// URL"),
    ],
)
def test_a_bad_state_file_or_server_url_is_a_clear_error(problem, message, tmp_path, capsys):
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    if problem == "corrupt-state":
        (state_dir / STATE_FILE).write_text("{not json")
        (state_dir / KEY_FILE).write_text("not a key")
        argv = ["whoami", "--state-dir", str(state_dir)]
    elif problem == "corrupt-key":
        (state_dir / STATE_FILE).write_text('{"server": "http://127.0.0.1:9", "device_id": "d"}')
        (state_dir / KEY_FILE).write_text("not a key")
        argv = ["status", "--state-dir", str(state_dir)]
    elif problem == "plain-http-server":  # the token would cross the network in clear text
        argv = enroll_args("http://ops.example.com", "ohe_x", state_dir)
    else:
        argv = enroll_args("ops.example.com", "ohe_x", state_dir)
    code, out, err = run(capsys, *argv)  # a traceback here fails the test with ValueError
    assert code == 3 and out == ""
    assert message in err
    assert "Traceback" not in err
    if problem in ("server-without-scheme", "plain-http-server"):
        assert list(state_dir.iterdir()) == []  # refused before a key was made or sent
