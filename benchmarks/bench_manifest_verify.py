"""Sign and verify cost of a signed model manifest for a 100 MiB artifact.

Run from the repository root::

    .venv/bin/python benchmarks/bench_manifest_verify.py [--size-mib 100] [--repeat 5]

Prints, for one artifact of random bytes:

- bare ``hashlib.file_digest`` SHA-256 of the file (the floor any verifier pays);
- ``sha256_file``: the streamed digest the server computes once per upload;
- ``sign_manifest``: signing needs no hashing (digest and size come from the manifest);
- ``verify_artifact``: ECDSA check plus the streamed SHA-256, what a gateway pays before
  loading a model, and its peak Python memory (streaming keeps it near the 1 MiB buffer);
- a refusal on size, which must cost nothing like a full hash.

The file is read from the page cache right after being written, so the figures are the
CPU cost of hashing, not disk speed; on a gateway with a slow SD card the disk dominates.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import ssl
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

# The repository root goes on sys.path first so the script runs from a plain checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocol.manifest import (
    InputSpec,
    ModelManifest,
    TrustedKey,
    VerificationError,
    generate_signing_key,
    key_id,
    sha256_file,
    sign_manifest,
    verify_artifact,
)

MIB = 1024 * 1024


def timed(function: Callable[[], object], *, repeat: int) -> list[float]:
    """Wall-clock seconds of ``repeat`` calls."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return samples


def report(label: str, samples: list[float], *, size_bytes: int | None = None) -> None:
    median = statistics.median(samples)
    line = f"{label:<44} median {median * 1000:9.2f} ms   best {min(samples) * 1000:9.2f} ms"
    if size_bytes is not None:
        line += f"   {size_bytes / MIB / median:8.1f} MiB/s"
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    size = args.size_mib * MIB

    print(f"python {platform.python_version()}, {ssl.OPENSSL_VERSION}")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"artifact: {size} bytes ({args.size_mib} MiB) of random data, page cache warm\n")

    with tempfile.TemporaryDirectory() as directory:
        artifact = Path(directory) / "model.onnx"
        with artifact.open("wb") as stream:
            for _ in range(args.size_mib):
                stream.write(os.urandom(MIB))
        wrong_size = Path(directory) / "short.onnx"
        with artifact.open("rb") as source, wrong_size.open("wb") as target:
            target.write(source.read(size - 1))

        private_pem, public_pem = generate_signing_key()
        digest, measured = sha256_file(artifact)
        now = datetime.now(UTC)
        manifest = ModelManifest(
            organisation_slug="bench",
            organisation_id=1,
            model_name="bench-model",
            version="1.0.0",
            artifact_sha256=digest,
            artifact_size=measured,
            targets=("cpu-x86_64",),
            input_schema=(InputSpec(name="input", dtype="float32", shape=("batch", 3, 224, 224)),),
            validation_report_sha256=hashlib.sha256(b"report").hexdigest(),
            created_at=now,
            expires_at=now + timedelta(days=90),
            release_counter=1,
            signing_key_id=key_id(public_pem),
        )
        trusted = {key_id(public_pem): TrustedKey(public_pem, "active", None)}

        def bare_sha256() -> None:
            with artifact.open("rb") as stream:
                hashlib.file_digest(stream, "sha256")

        def sign() -> bytes:
            return sign_manifest(
                manifest=manifest, private_key_pem=private_pem, artifact_name="model.onnx"
            )

        envelope = sign()

        def verify(path: Path = artifact) -> None:
            verify_artifact(
                artifact_path=path, envelope_bytes=envelope, trusted_keys=trusted, now=now
            )

        def refuse_on_size() -> None:
            try:
                verify(wrong_size)
            except VerificationError as exc:
                assert exc.code == "size_mismatch"
            else:
                raise AssertionError("a short artifact verified")

        bare_sha256()  # warm the page cache and the hash code paths
        report(
            "hashlib.file_digest (bare SHA-256)",
            timed(bare_sha256, repeat=args.repeat),
            size_bytes=size,
        )
        report(
            "sha256_file (server, at upload)",
            timed(lambda: sha256_file(artifact), repeat=args.repeat),
            size_bytes=size,
        )
        report("sign_manifest (no hashing)", timed(sign, repeat=200))
        report(
            "verify_artifact (ECDSA + streamed SHA-256)",
            timed(verify, repeat=args.repeat),
            size_bytes=size,
        )
        report("verify_artifact refused on size", timed(refuse_on_size, repeat=200))

        tracemalloc.start()
        verify()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"\nverify_artifact peak Python allocations: {peak / MIB:.2f} MiB"
            f" for a {args.size_mib} MiB artifact"
        )
        print(f"envelope size: {len(envelope)} bytes")


if __name__ == "__main__":
    main()
