"""Offline check of a model artifact against its signed envelope (no Django, no network).

    python -m protocol.verify ARTIFACT ENVELOPE --public-key KEY.pem
        [--public-key OTHER.pem] [--min-release-counter N] [--now RFC3339]
        [--expected-model NAME]

ARTIFACT is the ``.onnx`` file of a single-file release. For a bundle release it is either
the unpacked bundle folder (every signed file is checked, nothing else may be there) or the
archive as downloaded (only its transport digest is checked, which the output says).

Prints ``OK: <model> <version> (release N, key <id>, expires <time>)`` and exits 0, or
``REFUSED (<code>): <message>`` and exits 1. Exit status 2 means the command itself could
not run (bad arguments, unreadable file, a key file that is not a P-256 public key): that is
not a verdict on the artifact, and scripts must not read it as one.

Every public key given is trusted as an active key: someone verifying by hand holds the
keys they chose to trust. Retired-key refusals need the server's key list and happen in
the gateway and the server, which call `protocol.manifest.verify_artifact` directly. The
``--now`` option exists to re-check an old release as of a past date, and for tests.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from protocol.manifest import (
    KeyStatus,
    TrustedKey,
    VerificationError,
    format_rfc3339,
    key_id,
    parse_rfc3339,
    verify_artifact,
)

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage and 0 after --help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE

    try:
        now = parse_rfc3339(args.now) if args.now is not None else datetime.now(UTC)
        trusted_keys = _load_keys(args.public_key)
        envelope_bytes = Path(args.envelope).read_bytes()
        if not (Path(args.artifact).is_file() or Path(args.artifact).is_dir()):
            raise ValueError(f"artifact {args.artifact} is not a readable file or folder")
        verified = verify_artifact(
            artifact_path=args.artifact,
            envelope_bytes=envelope_bytes,
            trusted_keys=trusted_keys,
            now=now,
            min_release_counter=args.min_release_counter,
            expected_model=args.expected_model,
        )
    except VerificationError as exc:
        print(f"REFUSED ({exc.code}): {exc.message}")
        return EXIT_REFUSED
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    manifest = verified.manifest
    print(
        f"OK: {manifest.model_name} {manifest.version} (release {manifest.release_counter},"
        f" key {verified.key_id}, expires {format_rfc3339(manifest.expires_at)})"
    )
    if verified.checked == "directory":
        print(f"checked: all {len(manifest.files)} files of the bundle folder")
    elif verified.checked == "archive":
        print(
            "checked: the bundle archive's digest only; unpack it and verify the folder to"
            " check every file"
        )
    return EXIT_OK


def _load_keys(paths: Sequence[str]) -> dict[str, TrustedKey]:
    keys: dict[str, TrustedKey] = {}
    for path in paths:
        public_pem = Path(path).read_bytes()
        try:
            keys[key_id(public_pem)] = TrustedKey(public_pem, KeyStatus.ACTIVE, None)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc
    return keys


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m protocol.verify",
        description="Verify a model artifact against its signed OpsHero envelope, offline.",
    )
    parser.add_argument(
        "artifact",
        metavar="ARTIFACT",
        help="the model file, or a bundle's archive or unpacked folder",
    )
    parser.add_argument("envelope", metavar="ENVELOPE", help="its signed envelope (.sig)")
    parser.add_argument(
        "--public-key",
        action="append",
        required=True,
        metavar="KEY.pem",
        help="a trusted signing public key (PEM); repeat to trust several",
    )
    parser.add_argument(
        "--min-release-counter",
        type=_non_negative_int,
        metavar="N",
        help="refuse a release counter lower than N (the installed release)",
    )
    parser.add_argument(
        "--now",
        metavar="RFC3339",
        help="judge expiry at this time instead of the clock (e.g. 2026-11-27T10:00:00Z)",
    )
    parser.add_argument(
        "--expected-model", metavar="NAME", help="refuse an envelope for another model"
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
