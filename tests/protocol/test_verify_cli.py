"""``python -m protocol.verify``: what an operator sees, and the exit status scripts rely on."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from protocol.bundles import pack_bundle, unpack_bundle
from protocol.manifest import (
    FileEntry,
    InputSpec,
    ModelManifest,
    TargetEvidence,
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
            artifact_kind="onnx",
            artifact_sha256=digest,
            artifact_size=size,
            entrypoint="pallets.onnx",
            files=(FileEntry(path="pallets.onnx", sha256=digest, size=size),),
            targets=(
                TargetEvidence(
                    name="cpu-x86_64", validation_report_sha256="c" * 64, documentary=False
                ),
            ),
            input_schema=(InputSpec(name="images", dtype="float32", shape=("n", 3, 640, 640)),),
            four_eyes="enforced",
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


class BundleRelease(Release):
    """A bundle release: the archive, its unpacked folder and the envelope."""

    def __init__(self, directory: Path) -> None:
        private_pem, public_pem = generate_signing_key()
        self.key_id = key_id(public_pem)
        self.public_key = directory / "acme-signing.pub.pem"
        self.public_key.write_bytes(public_pem)
        model, weights = directory / "model.onnx", directory / "weights.bin"
        model.write_bytes(b"onnx" * 500)
        weights.write_bytes(bytes(range(256)) * 400)
        self.archive = pack_bundle(
            {"pallets.onnx": model, "pallets.onnx.data": weights}, directory / "pallets.zip"
        )
        bundle = unpack_bundle(self.archive, directory / "unpacked")
        self.artifact = bundle.root
        digest, size = sha256_file(self.archive)
        manifest = ModelManifest(
            organisation_slug="acme",
            organisation_id=3,
            model_name="pallet-detector",
            version="3.0.0",
            artifact_kind="bundle",
            artifact_sha256=digest,
            artifact_size=size,
            entrypoint=bundle.entrypoint,
            files=bundle.files,
            targets=(
                TargetEvidence(
                    name="cpu-x86_64", validation_report_sha256="c" * 64, documentary=False
                ),
            ),
            input_schema=(),
            four_eyes="enforced",
            created_at=CREATED,
            expires_at=CREATED + timedelta(days=30),
            release_counter=7,
            signing_key_id=self.key_id,
        )
        self.envelope = directory / "pallets.sig"
        self.envelope.write_bytes(sign_manifest(manifest=manifest, private_key_pem=private_pem))


def test_a_bundle_folder_is_verified_file_by_file(tmp_path: Path) -> None:
    release = BundleRelease(tmp_path)

    result = run_cli(release.args())

    assert result.returncode == 0
    assert result.stdout == (
        f"OK: pallet-detector 3.0.0 (release 7, key {release.key_id},"
        " expires 2026-12-27T10:00:00Z)\n"
        "checked: all 2 files of the bundle folder\n"
    )


def test_a_bundle_archive_is_verified_on_its_digest_and_says_so(tmp_path: Path) -> None:
    release = BundleRelease(tmp_path)

    result = run_cli([str(release.archive), *release.args()[1:]])

    assert result.returncode == 0
    assert result.stdout.splitlines()[1] == (
        "checked: the bundle archive's digest only; unpack it and verify the folder to"
        " check every file"
    )


def test_a_changed_file_in_a_bundle_folder_is_refused(tmp_path: Path) -> None:
    release = BundleRelease(tmp_path)
    weights = release.artifact / "pallets.onnx.data"
    content = bytearray(weights.read_bytes())
    content[7] ^= 0x01
    weights.write_bytes(bytes(content))

    result = run_cli(release.args())

    assert result.returncode == 1
    assert result.stdout.startswith("REFUSED (digest_mismatch): file 'pallets.onnx.data' SHA-256")
