"""What an admin is told to run on a gateway after creating an enrollment token."""

from __future__ import annotations

import shlex


def gateway_command(*, server: str, token: str, serial: str | None = None) -> str:
    """The reference agent's enroll command, ready to paste on the gateway."""
    parts = [
        "python",
        "-m",
        "gateway",
        "enroll",
        "--server",
        server,
        "--token",
        token,
        "--serial",
        serial or "<device serial>",
        "--state-dir",
        "/var/lib/opshero-gateway",
    ]
    return " ".join(shlex.quote(p) if not p.startswith("<") else p for p in parts)
