"""Manifest version 2: bundles, I/O contract, waivers, variants, and reading version 1.

The single-file wire format and every envelope refusal are in test_manifest.py; this file
covers what version 2 added, including OpenSSF model_signing verifying a bundle directory.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from protocol.bundles import Bundle, pack_bundle, unpack_bundle
from protocol.contract import IoContract, Preprocessing
from protocol.dsse import sign_bundle
from protocol.manifest import (
    PAYLOAD_TYPE,
    FileEntry,
    InputSpec,
    ModelManifest,
    RefusalCode,
    TargetEvidence,
    TrustedKey,
    VariantOrigin,
    VerificationError,
    Waiver,
    build_statement,
    generate_signing_key,
    key_id,
    sha256_file,
    sign_manifest,
    upgrade_v1,
    verify_artifact,
)
from tests.protocol.test_manifest import _model_signing_or_skip

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
REPORT = hashlib.sha256(b"cpu report").hexdigest()
NNAPI_REPORT = hashlib.sha256(b"nnapi report").hexdigest()
MODEL = b"\x08\x07onnx-graph" + os.urandom(5_000)
WEIGHTS = os.urandom(200_000)
LABELS = b"0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n"


@pytest.fixture
def keypair() -> tuple[bytes, bytes]:
    return generate_signing_key()


class Release:
    """A bundle as the server has it: archive, unpacked folder, manifest, envelope."""

    def __init__(self, tmp_path: Path, keypair: tuple[bytes, bytes], **overrides: object) -> None:
        sources = tmp_path / "sources"
        sources.mkdir()
        members = {"digits.onnx": MODEL, "digits.onnx.data": WEIGHTS, "meta/labels.txt": LABELS}
        paths = {}
        for index, (name, content) in enumerate(members.items()):
            paths[name] = sources / f"s{index}"
            paths[name].write_bytes(content)
        self.archive = pack_bundle(paths, tmp_path / "digits-bundle.zip")
        self.bundle: Bundle = unpack_bundle(self.archive, tmp_path / "unpacked")
        self.folder = self.bundle.root
        self.manifest = bundle_manifest(
            bundle=self.bundle, archive=self.archive, public_pem=keypair[1], **overrides
        )
        self.public_pem = keypair[1]
        self.envelope = sign_manifest(
            manifest=self.manifest, private_key_pem=keypair[0], artifact_name="digits-bundle"
        )

    def verify(self, **kwargs: object):
        return verify_artifact(
            envelope_bytes=self.envelope, trusted_keys=trust(self.public_pem), now=NOW, **kwargs
        )  # type: ignore[arg-type]

    def refusal(self, **kwargs: object) -> VerificationError:
        with pytest.raises(VerificationError) as caught:
            self.verify(**kwargs)
        return caught.value


def bundle_manifest(
    *, bundle: Bundle, archive: Path, public_pem: bytes, **overrides: object
) -> ModelManifest:
    digest, size = sha256_file(archive)
    fields: dict[str, object] = {
        "organisation_slug": "acme-logistics",
        "organisation_id": 7,
        "model_name": "digits-mlp",
        "version": "2.0.0",
        "artifact_kind": "bundle",
        "artifact_sha256": digest,
        "artifact_size": size,
        "entrypoint": bundle.entrypoint,
        "files": bundle.files,
        "targets": (
            TargetEvidence(name="cpu-x86_64", validation_report_sha256=REPORT, documentary=False),
            TargetEvidence(
                name="nnapi-android14", validation_report_sha256=NNAPI_REPORT, documentary=True
            ),
        ),
        "input_schema": (InputSpec(name="input", dtype="float32", shape=("batch", 64)),),
        "io_contract": IoContract(
            labels=tuple(str(i) for i in range(10)),
            score_output="probabilities",
            scores="probabilities",
            preprocessing=Preprocessing(
                layout="NC", scale=1 / 16, mean=(), std=(), color_order="none"
            ),
            intended_use="Digits on parcel labels.",
        ),
        "accuracy_waiver": None,
        "four_eyes": "enforced",
        "variant": None,
        "created_at": NOW,
        "expires_at": NOW + timedelta(days=90),
        "release_counter": 4,
        "signing_key_id": key_id(public_pem),
    }
    fields.update(overrides)
    return ModelManifest(**fields)  # type: ignore[arg-type]


def trust(public_pem: bytes) -> dict[str, TrustedKey]:
    return {key_id(public_pem): TrustedKey(public_pem, "active", None)}


def payload_of(envelope: bytes) -> dict:
    return json.loads(base64.b64decode(json.loads(envelope)["dsseEnvelope"]["payload"]))


def canonical(document: dict) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def file_entry(path: str, content: bytes) -> FileEntry:
    return FileEntry(path=path, sha256=hashlib.sha256(content).hexdigest(), size=len(content))


@pytest.fixture
def release(tmp_path: Path, keypair) -> Release:
    return Release(tmp_path, keypair)


# --- the manifest ---------------------------------------------------------------------------------


def test_bundle_manifest_round_trips_with_every_new_member(release: Release) -> None:
    manifest = replace(
        release.manifest,
        accuracy_waiver=Waiver(reason="No labelled data for this site yet.", approved_by="ana"),
        variant=VariantOrigin(kind="int8", parent_version="1.9.0", parent_sha256="a" * 64),
        four_eyes="relaxed",
    )
    data = manifest.to_dict()

    assert ModelManifest.from_dict(json.loads(json.dumps(data))) == manifest
    assert data["files"] == [
        {"path": "digits.onnx", "sha256": hashlib.sha256(MODEL).hexdigest(), "size": len(MODEL)},
        {
            "path": "digits.onnx.data",
            "sha256": hashlib.sha256(WEIGHTS).hexdigest(),
            "size": len(WEIGHTS),
        },
        {"path": "meta/labels.txt", "sha256": hashlib.sha256(LABELS).hexdigest(), "size": 20},
    ]
    assert data["targets"][1] == {
        "name": "nnapi-android14",
        "validation_report_sha256": NNAPI_REPORT,
        "documentary": True,
    }
    assert data["accuracy_waiver"] == {
        "reason": "No labelled data for this site yet.",
        "approved_by": "ana",
    }
    assert data["variant"] == {"kind": "int8", "parent_version": "1.9.0", "parent_sha256": "a" * 64}
    assert data["io_contract"]["labels"][9] == "9"
    assert list(data) == [
        "manifest_version",
        "organisation_slug",
        "organisation_id",
        "model_name",
        "version",
        "artifact_kind",
        "artifact_sha256",
        "artifact_size",
        "entrypoint",
        "files",
        "targets",
        "input_schema",
        "io_contract",
        "accuracy_waiver",
        "four_eyes",
        "variant",
        "created_at",
        "expires_at",
        "release_counter",
        "signing_key_id",
    ]
    assert manifest.target_names == ("cpu-x86_64", "nnapi-android14")


def test_files_are_kept_in_model_signing_order(release: Release) -> None:
    shuffled = replace(release.manifest, files=tuple(reversed(release.manifest.files)))

    assert shuffled == release.manifest
    assert [entry.path for entry in shuffled.files] == [
        "digits.onnx",
        "digits.onnx.data",
        "meta/labels.txt",
    ]


def _bundle_files(*paths: str) -> tuple[FileEntry, ...]:
    return tuple(file_entry(path, path.encode()) for path in paths)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"entrypoint": "other.onnx"}, "exactly one .onnx file, its entrypoint 'other.onnx'"),
        ({"files": _bundle_files("a.onnx", "b.onnx")}, "exactly one .onnx file"),
        ({"files": _bundle_files("digits.onnx", "W.bin", "w.bin")}, "repeat the path"),
        ({"files": _bundle_files("digits.onnx", "w", "w/x")}, "both as a file and as a folder"),
        ({"files": _bundle_files("digits.onnx", ".gitignore")}, "model_signing never verifies"),
        ({"files": ()}, "at least one file"),
        ({"files": ("digits.onnx",)}, "FileEntry"),
        ({"targets": ()}, "at least one hardware target"),
        ({"four_eyes": "none"}, "four_eyes must be one of"),
        ({"io_contract": {"labels": ["a"]}}, "io_contract must be an IoContract"),
        ({"accuracy_waiver": "trust me"}, "accuracy_waiver must be a Waiver"),
        ({"variant": "int8"}, "variant must be a VariantOrigin"),
    ],
)
def test_bundle_manifest_refusals(release: Release, overrides: dict, message: str) -> None:
    fields = {"entrypoint": "digits.onnx", **overrides}

    with pytest.raises(ValueError, match=message):
        replace(release.manifest, **fields)


def test_variant_of_itself_is_refused(release: Release) -> None:
    own = release.manifest.artifact_sha256

    with pytest.raises(ValueError, match="this artifact's own SHA-256"):
        replace(
            release.manifest,
            variant=VariantOrigin(kind="fp16", parent_version="1", parent_sha256=own),
        )


@pytest.mark.parametrize(
    "path", ["/abs.bin", "../up.bin", "a/../b", "a//b", "./a", "a\\b", "C:/x", "tab\there", ""]
)
def test_file_entry_paths_are_plain_relative_paths(path: str) -> None:
    with pytest.raises(ValueError, match="file path"):
        FileEntry(path=path, sha256="0" * 64, size=1)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Waiver(reason=" ", approved_by="ana"), "reason"),
        (lambda: Waiver(reason="x" * 2001, approved_by="ana"), "at most 2000"),
        (lambda: Waiver(reason="ok", approved_by=""), "approved_by"),
        (lambda: VariantOrigin(kind="int4", parent_version="1", parent_sha256="0" * 64), "kind"),
        (lambda: VariantOrigin(kind="int8", parent_version="1", parent_sha256="x"), "parent"),
        (
            lambda: TargetEvidence(name="cpu", validation_report_sha256="0" * 64, documentary=1),
            "documentary",
        ),
        (
            lambda: TargetEvidence(name="cpu", validation_report_sha256="nope", documentary=False),
            "validation report",
        ),
        (lambda: FileEntry(path="a", sha256="0" * 64, size=-1), "size"),
    ],
)
def test_member_objects_validate_themselves(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_from_dict_refuses_unknown_and_missing_nested_members(release: Release) -> None:
    data = release.manifest.to_dict()
    bad_target = {**data["targets"][0], "passed": True}
    bad_file = {k: v for k, v in data["files"][0].items() if k != "size"}

    with pytest.raises(ValueError, match=r"targets entry has unknown members \['passed'\]"):
        ModelManifest.from_dict({**data, "targets": [bad_target]})
    with pytest.raises(ValueError, match=r"files entry is missing \['size'\]"):
        ModelManifest.from_dict({**data, "files": [bad_file, *data["files"][1:]]})
    with pytest.raises(ValueError, match=r"accuracy_waiver has unknown members \['ticket'\]"):
        ModelManifest.from_dict(
            {**data, "accuracy_waiver": {"reason": "r", "approved_by": "a", "ticket": 1}}
        )
    with pytest.raises(ValueError, match=r"opshero_manifest is missing \['four_eyes'\]"):
        ModelManifest.from_dict({k: v for k, v in data.items() if k != "four_eyes"})
    with pytest.raises(ValueError, match=r"io_contract has unknown members"):
        ModelManifest.from_dict({**data, "io_contract": {**data["io_contract"], "extra": 1}})


# --- version 1 ---------------------------------------------------------------------------------


def v1_dict(*, digest: str, size: int, signing_key_id: str) -> dict:
    return {
        "manifest_version": 1,
        "organisation_slug": "acme-logistics",
        "organisation_id": 7,
        "model_name": "digits-mlp",
        "version": "1.2.0",
        "artifact_sha256": digest,
        "artifact_size": size,
        "targets": ["cpu-x86_64", "nnapi-android14"],
        "input_schema": [{"name": "input", "dtype": "float32", "shape": ["batch", 64]}],
        "validation_report_sha256": REPORT,
        "created_at": "2026-11-27T10:00:00Z",
        "expires_at": "2027-02-25T10:00:00Z",
        "release_counter": 3,
        "signing_key_id": signing_key_id,
    }


def test_upgrade_v1_gives_every_target_the_old_report() -> None:
    digest = hashlib.sha256(MODEL).hexdigest()
    old = v1_dict(digest=digest, size=len(MODEL), signing_key_id="b" * 64)

    upgraded = ModelManifest.from_dict(old, v1_artifact_name="digits.onnx")

    assert upgraded.manifest_version == 2
    assert upgraded.artifact_kind == "onnx"
    assert upgraded.entrypoint == "digits.onnx"
    assert upgraded.files == (FileEntry(path="digits.onnx", sha256=digest, size=len(MODEL)),)
    assert upgraded.targets == (
        TargetEvidence(name="cpu-x86_64", validation_report_sha256=REPORT, documentary=False),
        TargetEvidence(name="nnapi-android14", validation_report_sha256=REPORT, documentary=False),
    )
    assert (upgraded.io_contract, upgraded.accuracy_waiver, upgraded.variant) == (None,) * 3
    assert upgraded.four_eyes == "relaxed"
    assert upgrade_v1(old, artifact_name="digits.onnx") == upgraded.to_dict()


def test_version_1_needs_an_artifact_name_and_stays_strict() -> None:
    old = v1_dict(digest="c" * 64, size=10, signing_key_id="b" * 64)

    with pytest.raises(ValueError, match="give v1_artifact_name"):
        ModelManifest.from_dict(old)
    with pytest.raises(ValueError, match=r"unknown members \['files'\]"):
        ModelManifest.from_dict({**old, "files": []}, v1_artifact_name="d.onnx")
    with pytest.raises(ValueError, match="artifact name"):
        ModelManifest.from_dict(old, v1_artifact_name="../d.onnx")
    with pytest.raises(ValueError, match="upgrade_v1 reads version 1"):
        upgrade_v1({**old, "manifest_version": 2}, artifact_name="d.onnx")


def test_a_version_1_envelope_still_verifies_and_is_upgraded(tmp_path: Path, keypair) -> None:
    private_pem, public_pem = keypair
    artifact = tmp_path / "digits.onnx"
    artifact.write_bytes(MODEL)
    digest, size = sha256_file(artifact)
    # Exactly what the version 1 signer wrote.
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {
                "name": "digits.onnx",
                "digest": {"sha256": hashlib.sha256(bytes.fromhex(digest)).hexdigest()},
            }
        ],
        "predicateType": "https://model_signing/signature/v1.0",
        "predicate": {
            "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": False},
            "resources": [{"name": ".", "algorithm": "sha256", "digest": digest}],
            "opshero_manifest": v1_dict(
                digest=digest, size=size, signing_key_id=key_id(public_pem)
            ),
        },
    }
    envelope = sign_bundle(
        payload=canonical(statement), payload_type=PAYLOAD_TYPE, private_key_pem=private_pem
    )

    verified = verify_artifact(
        artifact_path=artifact, envelope_bytes=envelope, trusted_keys=trust(public_pem), now=NOW
    )

    assert verified.signed_manifest_version == 1
    assert verified.manifest.manifest_version == 2
    assert verified.manifest.entrypoint == "digits.onnx"
    assert verified.manifest.targets[1].validation_report_sha256 == REPORT
    assert verified.checked == "file"


# --- the multi-file statement --------------------------------------------------------------------


def test_bundle_statement_uses_model_signing_directory_layout(release: Release) -> None:
    statement = payload_of(release.envelope)
    entries = release.manifest.files
    root = hashlib.sha256(b"".join(bytes.fromhex(entry.sha256) for entry in entries)).hexdigest()

    assert statement["subject"] == [{"name": "digits-bundle", "digest": {"sha256": root}}]
    assert statement["predicate"]["serialization"] == {
        "method": "files",
        "hash_type": "sha256",
        "allow_symlinks": False,
    }
    assert statement["predicate"]["resources"] == [
        {"name": "digits.onnx", "algorithm": "sha256", "digest": hashlib.sha256(MODEL).hexdigest()},
        {
            "name": "digits.onnx.data",
            "algorithm": "sha256",
            "digest": hashlib.sha256(WEIGHTS).hexdigest(),
        },
        {
            "name": "meta/labels.txt",
            "algorithm": "sha256",
            "digest": hashlib.sha256(LABELS).hexdigest(),
        },
    ]
    assert statement["predicate"]["opshero_manifest"] == release.manifest.to_dict()
    assert statement["predicate"]["opshero_manifest"]["artifact_sha256"] == (
        hashlib.sha256(release.archive.read_bytes()).hexdigest()
    )


def test_resource_order_is_by_path_components_as_model_signing_sorts(
    tmp_path: Path, keypair
) -> None:
    files = (
        file_entry("a.x", b"1"),
        file_entry("a/b", b"2"),
        file_entry("B", b"3"),
        file_entry("m.onnx", MODEL),
    )
    manifest = bundle_manifest(
        bundle=Bundle(root=tmp_path, entrypoint="m.onnx", files=files),
        archive=Path(__file__),
        public_pem=keypair[1],
    )

    names = [r["name"] for r in build_statement(manifest=manifest)["predicate"]["resources"]]

    assert names == ["B", "a/b", "a.x", "m.onnx"]  # a string sort would put "a.x" first
    assert build_statement(manifest=manifest)["subject"][0]["name"] == "digits-mlp"


def test_single_file_subject_must_be_the_entrypoint(tmp_path: Path, keypair) -> None:
    artifact = tmp_path / "digits.onnx"
    artifact.write_bytes(MODEL)
    digest, size = sha256_file(artifact)
    manifest = bundle_manifest(
        bundle=Bundle(root=tmp_path, entrypoint="digits.onnx", files=()),
        archive=artifact,
        public_pem=keypair[1],
        artifact_kind="onnx",
        files=(FileEntry(path="digits.onnx", sha256=digest, size=size),),
    )

    assert build_statement(manifest=manifest)["subject"][0]["name"] == "digits.onnx"
    with pytest.raises(ValueError, match="not the manifest's entrypoint"):
        build_statement(manifest=manifest, artifact_name="renamed.onnx")


def test_resources_in_string_order_are_refused(release: Release, keypair) -> None:
    statement = payload_of(release.envelope)
    statement["predicate"]["resources"].reverse()
    envelope = sign_bundle(
        payload=canonical(statement), payload_type=PAYLOAD_TYPE, private_key_pem=keypair[0]
    )

    with pytest.raises(VerificationError) as caught:
        verify_artifact(
            artifact_path=release.folder,
            envelope_bytes=envelope,
            trusted_keys=trust(keypair[1]),
            now=NOW,
        )

    assert caught.value.code is RefusalCode.MALFORMED_PAYLOAD
    assert "model_signing order" in caught.value.message


# --- verifying a bundle ------------------------------------------------------------------------


def test_the_unpacked_folder_verifies_file_by_file(release: Release) -> None:
    verified = release.verify(artifact_path=release.folder)

    assert verified.manifest == release.manifest
    assert verified.checked == "directory"
    assert verified.signed_manifest_version == 2
    assert verified.artifact_name == "digits-bundle"


def test_the_archive_verifies_on_its_transport_digest(release: Release) -> None:
    by_path = release.verify(artifact_path=release.archive)
    by_bytes = release.verify(artifact_bytes=release.archive.read_bytes())

    assert (by_path.checked, by_bytes.checked) == ("archive", "archive")


def test_an_altered_archive_is_refused(release: Release) -> None:
    content = bytearray(release.archive.read_bytes())
    content[40] ^= 0x01

    error = release.refusal(artifact_bytes=bytes(content))

    assert error.code is RefusalCode.DIGEST_MISMATCH
    assert error.message.startswith("bundle archive SHA-256 is ")


def test_one_changed_byte_in_one_file_is_refused(release: Release) -> None:
    weights = release.folder / "digits.onnx.data"
    content = bytearray(weights.read_bytes())
    content[123_456] ^= 0x01
    weights.write_bytes(bytes(content))

    error = release.refusal(artifact_path=release.folder)

    assert error.code is RefusalCode.DIGEST_MISMATCH
    assert error.message.startswith("file 'digits.onnx.data' SHA-256 is ")
    assert str(release.folder) not in error.message


def test_a_missing_file_is_refused(release: Release) -> None:
    (release.folder / "meta" / "labels.txt").unlink()

    error = release.refusal(artifact_path=release.folder)

    assert error.code is RefusalCode.MISSING_FILE
    assert error.message == "the bundle lacks 1 signed file(s): 'meta/labels.txt'"


def test_an_extra_file_is_refused(release: Release) -> None:
    (release.folder / "meta" / "extra.py").write_bytes(b"print('hi')")

    error = release.refusal(artifact_path=release.folder)

    assert error.code is RefusalCode.UNEXPECTED_FILE
    assert error.message == (
        "the bundle holds 1 file(s) the signature does not list: 'meta/extra.py'"
    )


def test_a_symlink_in_the_folder_is_refused(release: Release, tmp_path: Path) -> None:
    labels = release.folder / "meta" / "labels.txt"
    outside = tmp_path / "outside.txt"
    outside.write_bytes(labels.read_bytes())
    labels.unlink()
    labels.symlink_to(outside)

    error = release.refusal(artifact_path=release.folder)

    assert error.code is RefusalCode.UNEXPECTED_FILE
    assert "'meta/labels.txt' in the bundle is a symbolic link" in error.message


def test_a_file_of_another_size_is_refused_before_hashing(release: Release) -> None:
    with (release.folder / "digits.onnx").open("ab") as stream:
        stream.write(b"!")

    error = release.refusal(artifact_path=release.folder)

    assert error.code is RefusalCode.SIZE_MISMATCH
    assert error.message == (
        f"file 'digits.onnx' is {len(MODEL) + 1} bytes, the signed manifest says {len(MODEL)}"
    )


def test_a_folder_for_a_single_file_envelope_is_refused(tmp_path: Path, keypair) -> None:
    artifact = tmp_path / "digits.onnx"
    artifact.write_bytes(MODEL)
    digest, size = sha256_file(artifact)
    manifest = bundle_manifest(
        bundle=Bundle(root=tmp_path, entrypoint="digits.onnx", files=()),
        archive=artifact,
        public_pem=keypair[1],
        artifact_kind="onnx",
        files=(FileEntry(path="digits.onnx", sha256=digest, size=size),),
    )
    envelope = sign_manifest(manifest=manifest, private_key_pem=keypair[0])

    with pytest.raises(VerificationError) as caught:
        verify_artifact(
            artifact_path=tmp_path, envelope_bytes=envelope, trusted_keys=trust(keypair[1]), now=NOW
        )

    assert caught.value.code is RefusalCode.ARTIFACT_KIND_MISMATCH


# --- interoperability with OpenSSF model_signing -----------------------------------------------


def test_model_signing_verifies_a_bundle_folder_and_refuses_one_changed_byte(
    release: Release, tmp_path: Path
) -> None:
    model_signing = _model_signing_or_skip()
    public_key = tmp_path / "signing.pub.pem"
    public_key.write_bytes(release.public_pem)
    signature = tmp_path / "digits-bundle.sig"
    signature.write_bytes(release.envelope)
    config = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public_key)
    cli = [sys.executable, "-m", "model_signing", "verify", "key"]
    cli += ["--public_key", str(public_key), "--signature", str(signature)]

    config.verify(release.folder, signature)  # raises ValueError on any mismatch
    accepted = subprocess.run(
        [*cli, str(release.folder)], capture_output=True, text=True, check=False
    )

    labels = release.folder / "meta" / "labels.txt"
    content = bytearray(labels.read_bytes())
    content[0] ^= 0x01
    labels.write_bytes(bytes(content))
    with pytest.raises(ValueError, match=r"Signature mismatch: .*Hash mismatch for"):
        config.verify(release.folder, signature)
    refused = subprocess.run(
        [*cli, str(release.folder)], capture_output=True, text=True, check=False
    )

    assert (accepted.returncode, accepted.stdout.strip()) == (0, "Verification succeeded")
    assert "WARNING" not in accepted.stdout + accepted.stderr
    assert refused.returncode == 1
    assert "Hash mismatch" in refused.stdout + refused.stderr


def test_model_signing_refuses_a_bundle_folder_with_an_extra_file(
    release: Release, tmp_path
) -> None:
    model_signing = _model_signing_or_skip()
    public_key = tmp_path / "signing.pub.pem"
    public_key.write_bytes(release.public_pem)
    signature = tmp_path / "digits-bundle.sig"
    signature.write_bytes(release.envelope)
    (release.folder / "extra.bin").write_bytes(b"x")
    config = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public_key)

    with pytest.raises(ValueError, match="Signature mismatch"):
        config.verify(release.folder, signature)


def test_a_model_signing_directory_signature_has_our_resource_layout(
    release: Release, tmp_path: Path, keypair
) -> None:
    # model_signing's own signer, over the same folder: the same resources, in the same
    # order, and the same subject digest as OpsHero signs.
    model_signing = _model_signing_or_skip()
    private_key = tmp_path / "signing.pem"
    private_key.write_bytes(keypair[0])
    signature = tmp_path / "ms.sig"
    model_signing.signing.Config().use_elliptic_key_signer(private_key=private_key).sign(
        release.folder, signature
    )
    theirs = payload_of(signature.read_bytes())
    ours = payload_of(release.envelope)

    assert theirs["predicate"]["resources"] == ours["predicate"]["resources"]
    assert theirs["subject"][0]["digest"] == ours["subject"][0]["digest"]
