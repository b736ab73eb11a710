"""HTTP client of the device API: enrollment, and signed requests afterwards.

Standard library only (urllib), so the agent runs on a bare gateway image. The device's
private key is created on the device and never leaves it; the state directory holds it with
permissions 0600.
"""

from __future__ import annotations

import json
import os
import platform
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol import device_auth

AGENT_VERSION = "0.1.0"
KEY_FILE = "device_key.pem"
# The key being rotated to, written before the rotation is sent: if the answer is lost, the
# agent can still learn which of the two keys the server holds (resume_rotation).
PENDING_KEY_FILE = "device_key.next.pem"
STATE_FILE = "device.json"


class DeviceAPIError(Exception):
    """The server refused a request; carries its status and JSON error."""

    def __init__(self, status: int, code: str, message: str, fields: dict | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}


def _send(
    url: str, *, method: str, body: bytes, headers: dict[str, str], timeout: float
) -> dict[str, Any]:
    request = urllib.request.Request(url, data=body or None, method=method)  # noqa: S310
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            raw = response.read()
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            error = json.loads(raw)["error"]
        except (ValueError, KeyError, TypeError):
            raise DeviceAPIError(
                exc.code, "http_error", raw[:200].decode(errors="replace")
            ) from exc
        raise DeviceAPIError(
            exc.code, error["code"], error["message"], error.get("fields")
        ) from exc
    return json.loads(raw) if raw else {}


class GatewayStateError(ValueError):
    """The agent's own state or configuration is unusable (not enrolled, corrupt, bad URL)."""


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret readable by this user only: a fresh 0600 file renamed over the old one,
    so an existing file's looser mode (or a half-written key) never survives."""
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an old .partial left by a crash keeps its mode otherwise
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def _check_server(server: str) -> str:
    parsed = urllib.parse.urlsplit(server)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise GatewayStateError(
            f"The server must be an http:// or https:// URL, e.g. https://ops.example.com "
            f"(got {server!r})."
        )
    if parsed.scheme == "http" and (parsed.hostname or "") not in _LOOPBACK_HOSTS:
        # The enrollment token is a bearer secret: over plain HTTP it would cross the network
        # in clear text before any redirect to HTTPS could help (docs/device-api.md, section 0).
        raise GatewayStateError(
            f"The server must be an https:// URL; http:// is only for a loopback address "
            f"(got {server!r})."
        )
    return server.rstrip("/")


_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass
class DeviceClient:
    server: str
    device_id: str
    private_key: Ed25519PrivateKey
    timeout: float = 10.0

    @classmethod
    def load(cls, state_dir: str | Path) -> DeviceClient:
        state_dir = Path(state_dir)
        state_file, key_file = state_dir / STATE_FILE, state_dir / KEY_FILE
        if not state_file.exists() or not key_file.exists():
            raise GatewayStateError(
                f"This gateway is not enrolled: no state in {state_dir}. "
                "Run `python -m gateway enroll ...` first."
            )
        try:
            state = json.loads(state_file.read_text())
            server, device_id = state["server"], state["device_id"]
        except (ValueError, KeyError, TypeError) as exc:
            raise GatewayStateError(
                f"The state file {state_file} is unreadable ({exc}); enroll again."
            ) from exc
        try:
            key = serialization.load_pem_private_key(key_file.read_bytes(), None)
        except (ValueError, TypeError) as exc:
            raise GatewayStateError(f"The device key {key_file} is unreadable.") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise GatewayStateError("The device key is not an Ed25519 key.")
        return cls(server=_check_server(server), device_id=device_id, private_key=key)

    def request(self, method: str, path: str, payload: Any = None) -> dict[str, Any]:
        """Send one signed request; ``path`` may carry a query string."""
        body = b"" if payload is None else json.dumps(payload).encode()
        parsed = urllib.parse.urlsplit(path)
        # The request target as it leaves the device, the server URL's path prefix included
        # (what gateway.transport signs too).
        prefix = urllib.parse.urlsplit(self.server).path.rstrip("/")
        headers = device_auth.sign_request(
            private_key=self.private_key,
            device_id=self.device_id,
            method=method,
            path=prefix + parsed.path,
            query=parsed.query,
            body=body,
        )
        if body:
            headers["Content-Type"] = "application/json"
        return _send(
            self.server + path, method=method, body=body, headers=headers, timeout=self.timeout
        )

    def me(self) -> dict[str, Any]:
        return self.request("GET", "/api/v1/device/me")

    def report_status(self, **fields: Any) -> dict[str, Any]:
        """Check in; fields left as None are not reported."""
        payload = {name: value for name, value in fields.items() if value is not None}
        return self.request("POST", "/api/v1/device/status", payload)

    def rotate_key(self, state_dir: str | Path) -> str:
        """Create a new key, register it (signed with the old one), then keep only the new.

        The new key is saved as ``PENDING_KEY_FILE`` before the request goes out. A refusal
        removes it (the old key stays the device's key); a lost answer (timeout, dropped
        connection: an ``OSError``) keeps it, and `resume_rotation` settles it later.
        """
        state_dir = Path(state_dir)
        self.resume_rotation(state_dir)
        new_key = device_auth.generate_device_key()
        new_public = device_auth.public_key_text(new_key)
        proof = device_auth.sign_rotation_proof(
            new_private_key=new_key, device_id=self.device_id, new_public_key=new_public
        )
        pending = state_dir / PENDING_KEY_FILE
        _write_private(pending, _pem(new_key))
        try:
            answer = self.request(
                "POST", "/api/v1/device/rotate-key", {"new_public_key": new_public, "proof": proof}
            )
        except DeviceAPIError:
            pending.unlink(missing_ok=True)
            raise
        os.replace(pending, state_dir / KEY_FILE)
        self.private_key = new_key
        return answer["key_fingerprint"]

    def resume_rotation(self, state_dir: str | Path) -> bool:
        """Settle a rotation whose answer never arrived; True when the new key is now in use.

        Asks ``GET /api/v1/device/me`` signed with the pending key: answered, the server holds
        it, so it replaces the old key file; ``bad_signature``, the rotation never happened, so
        the pending key is deleted and the old key stays. Anything else (server unreachable,
        device revoked) leaves both files as they are and raises.
        """
        pending = Path(state_dir) / PENDING_KEY_FILE
        if not pending.exists():
            return False
        try:
            new_key = serialization.load_pem_private_key(pending.read_bytes(), None)
        except (ValueError, TypeError):
            new_key = None
        if not isinstance(new_key, Ed25519PrivateKey):  # half-written before a crash: never sent
            pending.unlink()
            return False
        candidate = DeviceClient(
            server=self.server, device_id=self.device_id, private_key=new_key, timeout=self.timeout
        )
        try:
            candidate.me()
        except DeviceAPIError as exc:
            if exc.code != "bad_signature":
                raise
            pending.unlink()
            return False
        os.replace(pending, Path(state_dir) / KEY_FILE)
        self.private_key = new_key
        return True


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def enroll(
    *,
    server: str,
    token: str,
    serial: str,
    state_dir: str | Path,
    name: str = "",
    runtime_version: str = "",
    timeout: float = 10.0,
) -> DeviceClient:
    """Create the device key, enroll with the one-time token, and save the state."""
    server = _check_server(server)
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = device_auth.generate_device_key()
    payload = {
        "token": token,
        "public_key": device_auth.public_key_text(key),
        "serial": serial,
        "name": name,
        "agent_version": AGENT_VERSION,
        "runtime_version": runtime_version or _runtime_version(),
        "hardware": {
            "machine": platform.machine(),
            "system": platform.system(),
            "cores": os.cpu_count() or 0,
        },
    }
    answer = _send(
        f"{server}/api/v1/device/enroll",
        method="POST",
        body=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        timeout=timeout,
    )
    _write_private(state_dir / KEY_FILE, _pem(key))
    state = {"server": server, "device_id": answer["device_id"], "enrollment": answer}
    (state_dir / STATE_FILE).write_text(json.dumps(state, indent=2))
    return DeviceClient(server=server, device_id=answer["device_id"], private_key=key)


def _runtime_version() -> str:
    try:
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__}"
    except ImportError:
        return ""
