"""The reference agent's one-shot commands: enroll, status, whoami, rotate-key (``gateway.cli``
adds run and simulate; ``python -m gateway`` and ``opshero-gateway`` are both that CLI)."""

from __future__ import annotations

import argparse
import json
import sys

from .client import DeviceAPIError, DeviceClient, GatewayStateError, enroll
from .evidence import read_status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("enroll", help="enroll this gateway with a one-time token")
    p.add_argument("--server", required=True, help="e.g. https://ops.example.com")
    p.add_argument("--token", required=True)
    p.add_argument("--serial", required=True)
    p.add_argument("--name", default="")
    p.add_argument("--state-dir", required=True)
    for name, help_text in (
        ("whoami", "show this device as the server knows it"),
        ("status", "report versions and check in"),
        ("rotate-key", "replace the device key"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--state-dir", required=True)
        if name == "status":
            p.add_argument("--model-version", default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == "enroll":
            client = enroll(
                server=args.server,
                token=args.token,
                serial=args.serial,
                name=args.name,
                state_dir=args.state_dir,
            )
            print(f"Enrolled as device {client.device_id}; state in {args.state_dir}")
            return 0
        client = DeviceClient.load(args.state_dir)
        client.resume_rotation(args.state_dir)  # a rotation whose answer was lost, if any
        if args.command == "whoami":
            answer = client.me()
        elif args.command == "status":
            answer = client.report_status(model_version=args.model_version)
            # What this box's evidence queue holds and sent (read from the state directory).
            answer = {**answer, "evidence": read_status(args.state_dir)}
        else:
            answer = {"key_fingerprint": client.rotate_key(args.state_dir)}
        print(json.dumps(answer, indent=2))
        return 0
    except DeviceAPIError as exc:
        print(f"Refused ({exc.status} {exc.code}): {exc.message}", file=sys.stderr)
        for field, reasons in exc.fields.items():
            print(f"  {field}: {'; '.join(reasons)}", file=sys.stderr)
        return 1
    except GatewayStateError as exc:
        print(str(exc), file=sys.stderr)
        return 3
    except OSError as exc:
        print(f"Cannot reach the server: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    # `python -m gateway` is `opshero-gateway`: these commands, plus run and simulate.
    from gateway.cli import main as full

    sys.exit(full())
