"""The live demo fleet of ``make run``: the seeded demo gateways, simulated by the real agent.

``manage.py demo_fleet`` (one more Procfile process) decides here whether to run, gives each
demo gateway a key it holds (``var/demo-fleet/fleet.json``, the load generator's fleet file)
and then runs ``gateway.simulate`` against the local web server. Only the demo organisation's
devices are touched, and never in production.

What a new user sees (the timings follow from ``rollouts.demo.LIVE_SIGNAL_POLICY``): the
gateways online at once, telemetry every few seconds, and from minute ``DRIFT_START_MINUTES``
one gateway's class mix drifting, which two two-minute windows later is a drift alert.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings

from fleet import services as fleet_services
from fleet.models import Device, DeviceCredential
from opshero.actors import Actor
from opshero.demo import DEMO_ORG
from opshero.models import Organization
from protocol import device_auth

from .demo import demo_gateways

FLEET_DIR = Path(settings.VAR_DIR) / "demo-fleet"
INFERENCES_PER_MINUTE = 150
HEALTH_INTERVAL_S = 30
POLL_INTERVAL_S = 10
DRIFT_START_MINUTES = 2
THROTTLE_MINUTES = "4-8"
SUMMARY_EVERY_S = 60
_OFF = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Decision:
    """Whether the demo fleet runs, and if not, why (printed by the command)."""

    run: bool
    reason: str = ""
    organization: Organization | None = None


def decide(*, environ: Mapping[str, str]) -> Decision:
    """Run only when asked (``DEMO_FLEET`` not 0), outside production and with seeded demo
    gateways; anything else is a reason to stay idle."""
    if environ.get("DEMO_FLEET", "1").strip().lower() in _OFF:
        return Decision(False, "DEMO_FLEET=0: the simulated demo fleet is off.")
    if settings.PRODUCTION:
        return Decision(False, "OPSHERO_ENV=production: the demo fleet never runs in production.")
    org = Organization.objects.filter(slug=DEMO_ORG[1]).first()
    if org is None:
        return Decision(False, "No demo organisation (run `make seed`): nothing to simulate.")
    if not demo_gateways(org):
        return Decision(False, f"{org.name} has no active demo gateway: nothing to simulate.")
    return Decision(True, organization=org)


def server_url(environ: Mapping[str, str]) -> str:
    """The local web server. Under honcho ``PORT`` is this process's own (honcho gives each
    process type the base port plus 100 per line), so ``make run`` passes the web's port as
    ``WEB_PORT``; ``PORT`` is the fallback when the command is run by hand."""
    host = environ.get("HOST") or "127.0.0.1"
    if host in ("0.0.0.0", "::", "[::]"):  # noqa: S104 - a bind-all address; connect locally
        host = "127.0.0.1"
    port = environ.get("WEB_PORT") or environ.get("PORT") or "8000"
    return f"http://{host}:{port}"


def _pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _held_keys(path: Path) -> dict[str, Ed25519PrivateKey]:
    """The keys a previous run wrote, by device id (an unreadable file holds none)."""
    try:
        data = json.loads(path.read_text())
        keys = {}
        for item in data["devices"]:
            key = serialization.load_pem_private_key(item["private_key_pem"].encode(), None)
            if isinstance(key, Ed25519PrivateKey):
                keys[str(item["device_id"])] = key
        return keys
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _key_is_active(device: Device, key: Ed25519PrivateKey) -> bool:
    fingerprint = device_auth.key_fingerprint(key.public_key())
    return DeviceCredential.objects.filter(
        device=device, fingerprint=fingerprint, revoked_at__isnull=True
    ).exists()


def write_fleet_file(*, organization: Organization, path: Path, server: str) -> list[Device]:
    """Give every demo gateway a key this file holds, and write the file (0600).

    A key from an earlier run is kept while the server still has it as the device's active
    key; a device without one gets a new key registered (``set_demo_device_key``)."""
    held = _held_keys(path)
    actor = Actor.system("demo fleet")
    devices = demo_gateways(organization)
    entries = []
    for device in devices:
        key = held.get(str(device.uid))
        if key is None or not _key_is_active(device, key):
            key = device_auth.generate_device_key()
            fleet_services.set_demo_device_key(
                device=device, public_key=device_auth.public_key_text(key), actor=actor
            )
        entries.append({"device_id": str(device.uid), "private_key_pem": _pem(key)})
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".tmp")
    scratch.unlink(missing_ok=True)
    descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"server": server, "devices": entries}, handle, indent=2)
    os.replace(scratch, path)
    return devices


def simulator_arguments(*, fleet_path: Path, state_root: Path, gateways: int) -> list[str]:
    """``gateway.simulate`` arguments: one gateway drifts and one throttles (a FRACTION of
    1/N picks one of N), the others stay normal."""
    one = f"{1 / max(1, gateways):.4f}"
    return [
        "--fleet",
        str(fleet_path),
        "--state-root",
        str(state_root),
        "--inferences-per-minute",
        str(INFERENCES_PER_MINUTE),
        "--health-interval",
        str(HEALTH_INTERVAL_S),
        "--poll-interval",
        str(POLL_INTERVAL_S),
        "--scenario",
        f"drift:{DRIFT_START_MINUTES}@{one}",
        "--scenario",
        f"throttle:{THROTTLE_MINUTES}@{one}",
        "--summary-every",
        str(SUMMARY_EVERY_S),
    ]
