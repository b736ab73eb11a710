"""``python -m protocol.verify``: what an operator sees, and the exit status scripts rely on."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from protocol.manifest import (
    InputSpec,
    ModelManifest,
    generate_signing_key,
    key_id,
    sha256_file,
    sign_manifest,
)
from protocol.verify import main

REPO_ROOT = Path(__file__).resolve().parents[2]
CREATED = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
NOW = "2026-12-01T00:00:00Z"


class Release:
    """An artifact, its envelope and the public key file, as an operator would have them."""

    def __init__(self, directory: Path, *, release_counter: int = 5) -> None:
        private_pem, public_pem = generate_signing_key()
        self.key_id = key_id(public_pem)
        self.public_key = directory / "acme-signing.pub.pem"
        self.public_key.write_bytes(public_pem)
        self.artifact = directory / "pallets.onnx"
        self.artifact.write_bytes(bytes(range(256)) * 400)
        digest, size = sha256_file(self.artifact)
        manifest = ModelManifest(
            organisation_slug="acme",
            organisation_id=3,
            model_name="pallet-detector",
            version="2.0.1",
            artifact_sha256=digest,
            artifact_size=size,
            targets=("cpu-x86_64",),
            input_schema=(InputSpec(name="images", dtype="float32", shape=("n", 3, 640, 640)),),
            validation_report_sha256="c" * 64,
            created_at=CREATED,
            expires_at=CREATED + timedelta(days=30),
            release_counter=release_counter,
            signing_key_id=self.key_id,
        )
        self.envelope = directory / "pallets.onnx.sig"
        self.envelope.write_bytes(
            sign_manifest(
                manifest=manifest, private_key_pem=private_pem, artifact_name="pallets.onnx"
            )
        )

    def args(self, *extra: str) -> list[str]:
        return [
            str(self.artifact),
            str(self.envelope),
            "--public-key",
            str(self.public_key),
            "--now",
            NOW,
            *extra,
        ]


def run_cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "protocol.verify", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.fixture
def release(tmp_path: Path) -> Release:
    return Release(tmp_path)


def test_valid_release_prints_ok_and_exits_0(release: Release) -> None:
    result = run_cli(
        release.args("--min-release-counter", "5", "--expected-model", "pallet-detector")
    )

    assert result.returncode == 0
    assert result.stdout == (
        f"OK: pallet-detector 2.0.1 (release 5, key {release.key_id},"
        " expires 2026-12-27T10:00:00Z)\n"
    )
    assert result.stderr == ""


def test_tampered_artifact_prints_refused_and_exits_1(release: Release) -> None:
    content = bytearray(release.artifact.read_bytes())
    content[5000] ^= 0x01
    release.artifact.write_bytes(bytes(content))

    result = run_cli(release.args())

    assert result.returncode == 1
    assert result.stdout.startswith("REFUSED (digest_mismatch): artifact SHA-256 is ")
    assert "the file was altered or is a different file" in result.stdout


def test_expired_release_is_refused_at_the_given_time(release: Release) -> None:
    result = run_cli([*release.args()[:-2], "--now", "2027-01-01T00:00:00+01:00"])

    assert result.returncode == 1
    assert result.stdout == (
        "REFUSED (expired): manifest expired at 2026-12-27T10:00:00Z (now 2026-12-31T23:00:00Z)\n"
    )


def test_rollback_is_refused(release: Release) -> None:
    result = run_cli(release.args("--min-release-counter", "6"))

    assert result.returncode == 1
    assert result.stdout.startswith(
        "REFUSED (rollback): release counter 5 is lower than the installed 6"
    )


def test_envelope_signed_by_an_untrusted_key_is_refused(release: Release, tmp_path: Path) -> None:
    other = tmp_path / "other.pub.pem"
    other.write_bytes(generate_signing_key()[1])

    result = run_cli(
        [str(release.artifact), str(release.envelope), "--public-key", str(other), "--now", NOW]
    )

    assert result.returncode == 1
    assert result.stdout == (
        f"REFUSED (unknown_key): signed by key {release.key_id}, which is not among the"
        " trusted keys\n"
    )


def test_several_public_keys_can_be_trusted(release: Release, tmp_path: Path) -> None:
    other = tmp_path / "other.pub.pem"
    other.write_bytes(generate_signing_key()[1])

    result = run_cli(release.args("--public-key", str(other)))

    assert result.returncode == 0
    assert result.stdout.startswith("OK: pallet-detector 2.0.1 (release 5,")


def test_malformed_envelope_is_refused(release: Release) -> None:
    release.envelope.write_text("{ not json")

    result = run_cli(release.args())

    assert result.returncode == 1
    assert result.stdout.startswith("REFUSED (malformed_envelope): envelope is not valid JSON")


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        ([], "the following arguments are required"),
        (["a.onnx", "a.sig"], "--public-key"),
        (["--min-release-counter", "-1"], "-1 is negative"),
        (["--now", "yesterday"], "'yesterday' is not an RFC 3339 date-time"),
    ],
)
def test_usage_errors_exit_2(release: Release, args: list[str], stderr: str) -> None:
    full = args if not args or args[0] == "a.onnx" else [*release.args(), *args]

    result = run_cli(full)

    assert result.returncode == 2
    assert stderr in result.stderr
    assert result.stdout == ""


def test_missing_files_and_bad_keys_exit_2(release: Release, tmp_path: Path) -> None:
    not_a_key = tmp_path / "not-a-key.pem"
    not_a_key.write_text("hello")

    missing_artifact = run_cli([str(tmp_path / "absent.onnx"), *release.args()[1:]])
    missing_envelope = run_cli(
        [str(release.artifact), str(tmp_path / "absent.sig"), *release.args()[2:]]
    )
    bad_key = run_cli(
        [str(release.artifact), str(release.envelope), "--public-key", str(not_a_key)]
    )

    assert (missing_artifact.returncode, missing_envelope.returncode, bad_key.returncode) == (
        2,
        2,
        2,
    )
    assert "absent.onnx is not a readable file" in missing_artifact.stderr
    assert "absent.sig" in missing_envelope.stderr
    assert f"{not_a_key}: not a PEM public key" in bad_key.stderr


def test_main_is_importable_and_returns_the_status(
    release: Release, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(release.args("--expected-model", "pallet-detector")) == 0
    assert capsys.readouterr().out.startswith("OK: pallet-detector 2.0.1")
    assert main(release.args("--expected-model", "digits-mlp")) == 1
    assert capsys.readouterr().out == (
        "REFUSED (wrong_model): envelope is for model 'pallet-detector', expected 'digits-mlp'\n"
    )
    assert main(["--help"]) == 0
