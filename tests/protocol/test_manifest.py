"""The signed model manifest: wire format, DSSE framing and every refusal reason.

Pure functions, no database: each test builds its own key, artifact and manifest.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from protocol.dsse import (
    BUNDLE_MEDIA_TYPE,
    MAX_BUNDLE_BYTES,
    model_signing_key_hint,
    pae,
    sign_bundle,
)
from protocol.manifest import (
    PAYLOAD_TYPE,
    FileEntry,
    InputSpec,
    ModelManifest,
    RefusalCode,
    TargetEvidence,
    TrustedKey,
    VerificationError,
    build_statement,
    format_rfc3339,
    generate_signing_key,
    key_id,
    parse_rfc3339,
    sha256_file,
    sign_manifest,
    verify_artifact,
)

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
REPORT_DIGEST = hashlib.sha256(b"validation report").hexdigest()


@pytest.fixture
def keypair() -> tuple[bytes, bytes]:
    return generate_signing_key()


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "digits.onnx"
    path.write_bytes(os.urandom(20_000) + b"\x08\x07onnx-tail")
    return path


def make_manifest(*, artifact: Path, public_pem: bytes, **overrides: object) -> ModelManifest:
    digest, size = sha256_file(artifact)
    fields: dict[str, object] = {
        "organisation_slug": "acme-logistics",
        "organisation_id": 7,
        "model_name": "digits-mlp",
        "version": "1.2.0",
        "artifact_kind": "onnx",
        "artifact_sha256": digest,
        "artifact_size": size,
        "entrypoint": "digits.onnx",
        "files": (FileEntry(path="digits.onnx", sha256=digest, size=size),),
        "targets": (
            TargetEvidence(
                name="cpu-x86_64", validation_report_sha256=REPORT_DIGEST, documentary=False
            ),
            TargetEvidence(
                name="nnapi-android14", validation_report_sha256=REPORT_DIGEST, documentary=True
            ),
        ),
        "input_schema": (InputSpec(name="input", dtype="float32", shape=("batch", 64)),),
        "four_eyes": "enforced",
        "created_at": NOW,
        "expires_at": NOW + timedelta(days=90),
        "release_counter": 3,
        "signing_key_id": key_id(public_pem),
    }
    fields.update(overrides)
    return ModelManifest(**fields)  # type: ignore[arg-type]


def trust(public_pem: bytes, *, status: str = "active", retired_at: datetime | None = None):
    return {key_id(public_pem): TrustedKey(public_pem, status, retired_at)}


def signed(artifact: Path, keypair: tuple[bytes, bytes], **overrides: object) -> bytes:
    private_pem, public_pem = keypair
    manifest = make_manifest(artifact=artifact, public_pem=public_pem, **overrides)
    return sign_manifest(
        manifest=manifest, private_key_pem=private_pem, artifact_name="digits.onnx"
    )


def refusal(**kwargs: object) -> VerificationError:
    with pytest.raises(VerificationError) as caught:
        verify_artifact(**kwargs)  # type: ignore[arg-type]
    return caught.value


def bundle_of(envelope: bytes) -> dict:
    return json.loads(envelope)


def payload_of(envelope: bytes) -> dict:
    return json.loads(base64.b64decode(bundle_of(envelope)["dsseEnvelope"]["payload"]))


def resign_bundle(*, payload: bytes, payload_type: str, private_pem: bytes) -> bytes:
    return sign_bundle(payload=payload, payload_type=payload_type, private_key_pem=private_pem)


def canonical(document: dict) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


# --- round trip and layout ---------------------------------------------------------------


def test_round_trip_returns_the_signed_manifest(artifact: Path, keypair) -> None:
    private_pem, public_pem = keypair
    manifest = make_manifest(artifact=artifact, public_pem=public_pem)
    envelope = sign_manifest(
        manifest=manifest, private_key_pem=private_pem, artifact_name="digits.onnx"
    )

    verified = verify_artifact(
        artifact_path=artifact, envelope_bytes=envelope, trusted_keys=trust(public_pem), now=NOW
    )

    assert verified.manifest == manifest
    assert verified.manifest.input_schema[0].shape == ("batch", 64)
    assert verified.key_id == key_id(public_pem)
    assert verified.artifact_name == "digits.onnx"


def test_round_trip_with_artifact_bytes_and_a_plain_tuple_trust_entry(
    artifact: Path, keypair
) -> None:
    _, public_pem = keypair
    envelope = signed(artifact, keypair)

    verified = verify_artifact(
        artifact_bytes=artifact.read_bytes(),
        envelope_bytes=envelope,
        trusted_keys={key_id(public_pem): (public_pem, "active", None)},
        now=NOW,
    )

    assert verified.manifest.release_counter == 3


def test_statement_is_in_toto_v1_in_model_signing_layout(artifact: Path, keypair) -> None:
    _, public_pem = keypair
    digest, size = sha256_file(artifact)
    envelope = signed(artifact, keypair)
    bundle = bundle_of(envelope)

    assert (
        bundle["mediaType"] == BUNDLE_MEDIA_TYPE == "application/vnd.dev.sigstore.bundle.v0.3+json"
    )
    assert bundle["verificationMaterial"] == {
        "publicKey": {"hint": hashlib.sha256(public_pem).hexdigest()},
        "tlogEntries": [],
    }
    assert bundle["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"
    assert bundle["dsseEnvelope"]["signatures"][0]["keyid"] == key_id(public_pem)
    assert payload_of(envelope) == {
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
            "opshero_manifest": {
                "manifest_version": 2,
                "organisation_slug": "acme-logistics",
                "organisation_id": 7,
                "model_name": "digits-mlp",
                "version": "1.2.0",
                "artifact_kind": "onnx",
                "artifact_sha256": digest,
                "artifact_size": size,
                "entrypoint": "digits.onnx",
                "files": [{"path": "digits.onnx", "sha256": digest, "size": size}],
                "targets": [
                    {
                        "name": "cpu-x86_64",
                        "validation_report_sha256": REPORT_DIGEST,
                        "documentary": False,
                    },
                    {
                        "name": "nnapi-android14",
                        "validation_report_sha256": REPORT_DIGEST,
                        "documentary": True,
                    },
                ],
                "input_schema": [{"name": "input", "dtype": "float32", "shape": ["batch", 64]}],
                "io_contract": None,
                "accuracy_waiver": None,
                "four_eyes": "enforced",
                "variant": None,
                "created_at": "2026-11-27T10:00:00Z",
                "expires_at": "2027-02-25T10:00:00Z",
                "release_counter": 3,
                "signing_key_id": key_id(public_pem),
            },
        },
    }


def test_signature_covers_the_pae_of_the_exact_payload_bytes(artifact: Path, keypair) -> None:
    _, public_pem = keypair
    envelope = bundle_of(signed(artifact, keypair))["dsseEnvelope"]
    payload = base64.b64decode(envelope["payload"])
    hand_made_pae = (
        b"DSSEv1 28 application/vnd.in-toto+json " + str(len(payload)).encode() + b" " + payload
    )
    public_key = serialization.load_pem_public_key(public_pem)

    # Raises InvalidSignature if the signer signed anything but the DSSE PAE.
    public_key.verify(
        base64.b64decode(envelope["signatures"][0]["sig"]),
        hand_made_pae,
        ec.ECDSA(hashes.SHA256()),
    )


def test_pae_matches_the_dsse_specification_bytes() -> None:
    # The example from the DSSE v1 protocol specification.
    assert (
        pae(payload_type="http://example.com/HelloWorld", payload=b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert pae(payload_type=PAYLOAD_TYPE, payload=b'{"a":1}') == (
        b'DSSEv1 28 application/vnd.in-toto+json 7 {"a":1}'
    )
    # Lengths count UTF-8 bytes, not characters, and an empty body is framed, not dropped.
    assert pae(payload_type="t\u00ffpe", payload=b"") == b"DSSEv1 5 t\xc3\xbfpe 0 "


def test_key_id_is_sha256_of_der_subject_public_key_info(keypair) -> None:
    _, public_pem = keypair
    der = serialization.load_pem_public_key(public_pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    crlf_pem = public_pem.replace(b"\n", b"\r\n")

    assert key_id(public_pem) == hashlib.sha256(der).hexdigest()
    assert key_id(crlf_pem) == key_id(public_pem)
    assert model_signing_key_hint(crlf_pem) == hashlib.sha256(public_pem).hexdigest()
    assert key_id(generate_signing_key()[1]) != key_id(public_pem)


def test_generated_keys_are_p256_pkcs8(keypair) -> None:
    private_pem, public_pem = keypair
    private_key = serialization.load_pem_private_key(private_pem, password=None)

    assert private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert isinstance(private_key, ec.EllipticCurvePrivateKey)
    assert private_key.curve.name == "secp256r1"


def test_ed25519_keys_are_refused_for_signing(artifact: Path, keypair) -> None:
    ed_pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    manifest = make_manifest(artifact=artifact, public_pem=keypair[1])

    with pytest.raises(ValueError, match="P-256"):
        sign_manifest(manifest=manifest, private_key_pem=ed_pem, artifact_name="digits.onnx")


def test_signing_refuses_a_manifest_naming_another_key(artifact: Path, keypair) -> None:
    other_private, _ = generate_signing_key()
    manifest = make_manifest(artifact=artifact, public_pem=keypair[1])

    with pytest.raises(ValueError, match="names signing key"):
        sign_manifest(manifest=manifest, private_key_pem=other_private, artifact_name="digits.onnx")


@pytest.mark.parametrize("name", ["", ".", "..", "models/digits.onnx", "a\\b.onnx", "x\n.onnx"])
def test_artifact_name_must_be_a_plain_file_name(artifact: Path, keypair, name: str) -> None:
    manifest = make_manifest(artifact=artifact, public_pem=keypair[1])

    with pytest.raises(ValueError, match="artifact name"):
        build_statement(manifest=manifest, artifact_name=name)


# --- manifest validation and RFC 3339 ------------------------------------------------------


def test_manifest_to_dict_from_dict_round_trip(artifact: Path, keypair) -> None:
    manifest = make_manifest(
        artifact=artifact,
        public_pem=keypair[1],
        created_at=datetime(2026, 11, 27, 11, 30, 0, 250_000, tzinfo=UTC),
    )

    assert ModelManifest.from_dict(manifest.to_dict()) == manifest
    assert manifest.to_dict()["created_at"] == "2026-11-27T11:30:00.250000Z"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"created_at": datetime(2026, 11, 27, 10, 0)}, "timezone-aware"),
        ({"expires_at": NOW}, "later than created_at"),
        ({"artifact_sha256": "AB" * 32}, "artifact_sha256"),
        ({"artifact_size": 0}, "artifact_size"),
        ({"organisation_id": True}, "organisation_id"),
        ({"release_counter": -1}, "release_counter"),
        ({"targets": ()}, "at least one"),
        (
            {
                "targets": (
                    TargetEvidence(
                        name="cpu", validation_report_sha256=REPORT_DIGEST, documentary=False
                    ),
                    TargetEvidence(
                        name="cpu", validation_report_sha256=REPORT_DIGEST, documentary=True
                    ),
                )
            },
            "repeat",
        ),
        ({"targets": ("cpu-x86_64",)}, "TargetEvidence"),
        ({"four_eyes": "optional"}, "four_eyes"),
        ({"artifact_kind": "tflite"}, "artifact_kind"),
        ({"entrypoint": "other.onnx"}, "exactly the entrypoint"),
        ({"artifact_size": 5}, "exactly the entrypoint"),
        ({"model_name": " "}, "model_name"),
    ],
)
def test_manifest_refuses_invalid_fields(
    artifact: Path, keypair, overrides: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make_manifest(artifact=artifact, public_pem=keypair[1], **overrides)


@pytest.mark.parametrize("dim", [-1, "", 2.5, True, None])
def test_input_shape_dimensions_are_non_negative_ints_or_axis_names(dim: object) -> None:
    with pytest.raises(ValueError, match="dimension"):
        InputSpec(name="x", dtype="float32", shape=(1, dim))  # type: ignore[arg-type]


def test_manifest_from_dict_refuses_unknown_and_missing_members(artifact: Path, keypair) -> None:
    data = make_manifest(artifact=artifact, public_pem=keypair[1]).to_dict()

    with pytest.raises(ValueError, match=r"unknown members \['allowed_sites'\]"):
        ModelManifest.from_dict({**data, "allowed_sites": ["dock-1"]})
    without_expiry = {k: v for k, v in data.items() if k != "expires_at"}
    with pytest.raises(ValueError, match=r"missing \['expires_at'\]"):
        ModelManifest.from_dict(without_expiry)
    with pytest.raises(ValueError, match="manifest_version 3"):
        ModelManifest.from_dict({**data, "manifest_version": 3})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27T10:00:00Z", datetime(2026, 11, 27, 10, 0, tzinfo=UTC)),
        ("2026-11-27t10:00:00z", datetime(2026, 11, 27, 10, 0, tzinfo=UTC)),
        ("2026-11-27T12:30:00+02:30", datetime(2026, 11, 27, 10, 0, tzinfo=UTC)),
        ("2026-11-27T05:00:00-05:00", datetime(2026, 11, 27, 10, 0, tzinfo=UTC)),
        ("2026-11-27T10:00:00.1234567Z", datetime(2026, 11, 27, 10, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_parse_rfc3339_accepts_section_5_6_forms(text: str, expected: datetime) -> None:
    parsed = parse_rfc3339(text)

    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-27 10:00:00Z",
        "2026-11-27T10:00:00",
        "2026-11-27T10:00Z",
        "2026-W48-5T10:00:00Z",
        "2026-02-30T10:00:00Z",
        "2026-11-27T10:00:60Z",
        "2026-11-27T10:00:00+24:00",
    ],
)
def test_parse_rfc3339_refuses_other_forms(text: str) -> None:
    with pytest.raises(ValueError, match="2026"):
        parse_rfc3339(text)


def test_format_rfc3339_converts_to_utc() -> None:
    moment = parse_rfc3339("2026-11-27T12:00:00+02:00")

    assert format_rfc3339(moment) == "2026-11-27T10:00:00Z"


def test_sha256_file_streams_the_whole_file(artifact: Path) -> None:
    content = artifact.read_bytes()

    assert sha256_file(artifact) == (hashlib.sha256(content).hexdigest(), len(content))


# --- refusals --------------------------------------------------------------------------------


def test_tampered_artifact_with_one_flipped_byte_is_refused(
    artifact: Path, keypair, tmp_path: Path
) -> None:
    envelope = signed(artifact, keypair)
    tampered = tmp_path / "tampered.onnx"
    content = bytearray(artifact.read_bytes())
    content[12_345] ^= 0x01
    tampered.write_bytes(bytes(content))

    error = refusal(
        artifact_path=tampered, envelope_bytes=envelope, trusted_keys=trust(keypair[1]), now=NOW
    )

    assert error.code is RefusalCode.DIGEST_MISMATCH
    assert hashlib.sha256(bytes(content)).hexdigest() in error.message


def test_tampered_artifact_bytes_are_refused(artifact: Path, keypair) -> None:
    envelope = signed(artifact, keypair)
    content = bytearray(artifact.read_bytes())
    content[-1] ^= 0x80

    error = refusal(
        artifact_bytes=bytes(content),
        envelope_bytes=envelope,
        trusted_keys=trust(keypair[1]),
        now=NOW,
    )

    assert error.code is RefusalCode.DIGEST_MISMATCH


@pytest.mark.parametrize("change", [b"x", -1])
def test_artifact_of_another_size_is_refused(artifact: Path, keypair, change) -> None:
    envelope = signed(artifact, keypair)
    content = artifact.read_bytes()
    signed_size = len(content)
    altered = content + change if isinstance(change, bytes) else content[:change]
    artifact.write_bytes(altered)

    error = refusal(
        artifact_path=artifact, envelope_bytes=envelope, trusted_keys=trust(keypair[1]), now=NOW
    )

    assert error.code is RefusalCode.SIZE_MISMATCH
    assert (
        error.message == f"artifact is {len(altered)} bytes, the signed manifest says {signed_size}"
    )


def test_huge_artifact_is_refused_on_its_size_before_hashing(
    artifact: Path, keypair, tmp_path: Path
) -> None:
    envelope = signed(artifact, keypair)
    huge = tmp_path / "huge.onnx"
    with huge.open("wb") as stream:
        stream.truncate(2 * 1024**3)  # sparse: 2 GiB that take no disk and no time to stat

    error = refusal(
        artifact_path=huge, envelope_bytes=envelope, trusted_keys=trust(keypair[1]), now=NOW
    )

    assert error.code is RefusalCode.SIZE_MISMATCH
    assert "2147483648 bytes" in error.message


def test_envelope_from_an_untrusted_key_is_unknown_key(artifact: Path, keypair) -> None:
    stranger = generate_signing_key()
    envelope = signed(artifact, stranger)

    error = refusal(
        artifact_path=artifact, envelope_bytes=envelope, trusted_keys=trust(keypair[1]), now=NOW
    )

    assert error.code is RefusalCode.UNKNOWN_KEY
    assert key_id(stranger[1]) in error.message


def test_wrong_key_claiming_a_trusted_key_id_is_bad_signature(artifact: Path, keypair) -> None:
    _, trusted_pem = keypair
    stranger = generate_signing_key()
    bundle = bundle_of(signed(artifact, stranger))
    # The attacker relabels the envelope with the trusted key's id and hint.
    bundle["dsseEnvelope"]["signatures"][0]["keyid"] = key_id(trusted_pem)
    bundle["verificationMaterial"]["publicKey"]["hint"] = model_signing_key_hint(trusted_pem)

    error = refusal(
        artifact_path=artifact,
        envelope_bytes=json.dumps(bundle).encode(),
        trusted_keys=trust(trusted_pem),
        now=NOW,
    )

    assert error.code is RefusalCode.BAD_SIGNATURE


def test_edited_payload_is_bad_signature(artifact: Path, keypair) -> None:
    envelope = signed(artifact, keypair, release_counter=3)
    bundle = bundle_of(envelope)
    statement = payload_of(envelope)
    statement["predicate"]["opshero_manifest"]["release_counter"] = 99
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(canonical(statement)).decode()

    error = refusal(
        artifact_path=artifact,
        envelope_bytes=json.dumps(bundle).encode(),
        trusted_keys=trust(keypair[1]),
        now=NOW,
    )

    assert error.code is RefusalCode.BAD_SIGNATURE


def test_relabelled_payload_type_is_bad_signature(artifact: Path, keypair) -> None:
    bundle = bundle_of(signed(artifact, keypair))
    bundle["dsseEnvelope"]["payloadType"] = "application/json"

    error = refusal(
        artifact_path=artifact,
        envelope_bytes=json.dumps(bundle).encode(),
        trusted_keys=trust(keypair[1]),
        now=NOW,
    )

    assert error.code is RefusalCode.BAD_SIGNATURE


def test_signature_over_a_different_payload_type_is_refused(artifact: Path, keypair) -> None:
    private_pem, public_pem = keypair
    genuine = signed(artifact, keypair)
    payload = base64.b64decode(bundle_of(genuine)["dsseEnvelope"]["payload"])
    # A valid signature by a trusted key, but over another payload type (say, a
    # device-request body the same key once signed): DSSE must not reinterpret it.
    other = resign_bundle(payload=payload, payload_type="application/json", private_pem=private_pem)

    error = refusal(
        artifact_path=artifact, envelope_bytes=other, trusted_keys=trust(public_pem), now=NOW
    )

    assert error.code is RefusalCode.PAYLOAD_TYPE_MISMATCH
    assert "'application/json'" in error.message


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("_type", "https://in-toto.io/Statement/v0.1"),
        ("predicateType", "https://slsa.dev/provenance/v1"),
    ],
)
def test_statement_of_another_type_is_refused(
    artifact: Path, keypair, member: str, value: str
) -> None:
    private_pem, public_pem = keypair
    statement = payload_of(signed(artifact, keypair))
    statement[member] = value
    envelope = resign_bundle(
        payload=canonical(statement), payload_type=PAYLOAD_TYPE, private_pem=private_pem
    )

    error = refusal(
        artifact_path=artifact, envelope_bytes=envelope, trusted_keys=trust(public_pem), now=NOW
    )

    assert error.code is RefusalCode.STATEMENT_TYPE_MISMATCH
    assert value in error.message


def _resigned_with(artifact: Path, keypair, edit) -> VerificationError:
    private_pem, public_pem = keypair
    statement = payload_of(signed(artifact, keypair))
    edit(statement)
    envelope = resign_bundle(
        payload=canonical(statement), payload_type=PAYLOAD_TYPE, private_pem=private_pem
    )
    return refusal(
        artifact_path=artifact, envelope_bytes=envelope, trusted_keys=trust(public_pem), now=NOW
    )


def test_signed_statement_whose_digests_disagree_is_malformed_payload(
    artifact: Path, keypair
) -> None:
    def point_resources_elsewhere(statement: dict) -> None:
        statement["predicate"]["resources"][0]["digest"] = "0" * 64

    error = _resigned_with(artifact, keypair, point_resources_elsewhere)

    assert error.code is RefusalCode.MALFORMED_PAYLOAD
    assert "resources" in error.message


def test_signed_statement_with_a_wrong_subject_digest_is_malformed_payload(
    artifact: Path, keypair
) -> None:
    def use_raw_artifact_digest(statement: dict) -> None:
        digest = statement["predicate"]["resources"][0]["digest"]
        statement["subject"][0]["digest"]["sha256"] = digest

    error = _resigned_with(artifact, keypair, use_raw_artifact_digest)

    assert error.code is RefusalCode.MALFORMED_PAYLOAD
    assert "subject digest" in error.message


def test_plain_model_signing_statement_without_manifest_is_malformed_payload(
    artifact: Path, keypair
) -> None:
    def drop_manifest(statement: dict) -> None:
        del statement["predicate"]["opshero_manifest"]

    error = _resigned_with(artifact, keypair, drop_manifest)

    assert error.code is RefusalCode.MALFORMED_PAYLOAD
    assert "no opshero_manifest" in error.message


def test_signed_payload_with_duplicate_keys_is_malformed_payload(artifact: Path, keypair) -> None:
    private_pem, public_pem = keypair
    payload = base64.b64decode(bundle_of(signed(artifact, keypair))["dsseEnvelope"]["payload"])
    duplicated = payload.replace(b'"release_counter":3', b'"release_counter":3,"release_counter":9')
    envelope = resign_bundle(payload=duplicated, payload_type=PAYLOAD_TYPE, private_pem=private_pem)

    error = refusal(
        artifact_path=artifact, envelope_bytes=envelope, trusted_keys=trust(public_pem), now=NOW
    )

    assert duplicated != payload
    assert error.code is RefusalCode.MALFORMED_PAYLOAD
    assert "duplicate key 'release_counter'" in error.message


def test_manifest_naming_another_signing_key_is_malformed_payload(artifact: Path, keypair) -> None:
    def rename_key(statement: dict) -> None:
        statement["predicate"]["opshero_manifest"]["signing_key_id"] = "f" * 64

    error = _resigned_with(artifact, keypair, rename_key)

    assert error.code is RefusalCode.MALFORMED_PAYLOAD
    assert "f" * 64 in error.message


def test_expired_manifest_is_refused_from_the_expiry_instant(artifact: Path, keypair) -> None:
    envelope = signed(artifact, keypair, expires_at=NOW + timedelta(days=30))
    keys = trust(keypair[1])
    expiry = NOW + timedelta(days=30)

    just_before = verify_artifact(
        artifact_path=artifact,
        envelope_bytes=envelope,
        trusted_keys=keys,
        now=expiry - timedelta(seconds=1),
    )
    error = refusal(artifact_path=artifact, envelope_bytes=envelope, trusted_keys=keys, now=expiry)

    assert just_before.manifest.expires_at == expiry
    assert error.code is RefusalCode.EXPIRED
    assert error.message == ("manifest expired at 2026-12-27T10:00:00Z (now 2026-12-27T10:00:00Z)")


def test_retired_key_is_refused_even_for_a_manifest_created_before_retirement(
    artifact: Path, keypair
) -> None:
    envelope = signed(artifact, keypair, created_at=NOW)
    retired_at = NOW + timedelta(days=1)

    error = refusal(
        artifact_path=artifact,
        envelope_bytes=envelope,
        trusted_keys=trust(keypair[1], status="retired", retired_at=retired_at),
        now=NOW + timedelta(days=2),
    )

    assert error.code is RefusalCode.RETIRED_KEY
    assert "retired at 2026-11-28T10:00:00Z" in error.message


def test_lower_release_counter_is_refused_and_equal_is_accepted(artifact: Path, keypair) -> None:
    envelope = signed(artifact, keypair, release_counter=3)
    keys = trust(keypair[1])

    same = verify_artifact(
        artifact_path=artifact,
        envelope_bytes=envelope,
        trusted_keys=keys,
        now=NOW,
        min_release_counter=3,
    )
    error = refusal(
        artifact_path=artifact,
        envelope_bytes=envelope,
        trusted_keys=keys,
        now=NOW,
        min_release_counter=4,
    )

    assert same.manifest.release_counter == 3
    assert error.code is RefusalCode.ROLLBACK
    assert "release counter 3 is lower than the installed 4" in error.message


def test_envelope_for_another_model_is_refused(artifact: Path, keypair) -> None:
    envelope = signed(artifact, keypair, model_name="pallet-detector")

    error = refusal(
        artifact_path=artifact,
        envelope_bytes=envelope,
        trusted_keys=trust(keypair[1]),
        now=NOW,
        expected_model="digits-mlp",
    )

    assert error.code is RefusalCode.WRONG_MODEL
    assert error.message == "envelope is for model 'pallet-detector', expected 'digits-mlp'"


@pytest.mark.parametrize(
    ("envelope", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "envelope must be a JSON object"),
        (b'{"mediaType": "x", "mediaType": "y"}', "duplicate key 'mediaType'"),
        (b"{" + b" " * MAX_BUNDLE_BYTES + b"}", "more than the 1048576 allowed"),
    ],
)
def test_malformed_json_is_malformed_envelope(
    artifact: Path, keypair, envelope: bytes, message: str
) -> None:
    error = refusal(
        artifact_path=artifact, envelope_bytes=envelope, trusted_keys=trust(keypair[1]), now=NOW
    )

    assert error.code is RefusalCode.MALFORMED_ENVELOPE
    assert message in error.message


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda b: b.update(mediaType="application/vnd.dev.sigstore.bundle+json;version=0.1"),
            "mediaType",
        ),
        (lambda b: b.update(extra=1), "unexpected bundle members"),
        (lambda b: b.pop("dsseEnvelope"), "dsseEnvelope must be a JSON object"),
        (lambda b: b["dsseEnvelope"].update(payload="not base64!"), "payload must be a base64"),
        (lambda b: b["dsseEnvelope"]["signatures"].append({"sig": "AA=="}), "exactly one"),
        (lambda b: b["dsseEnvelope"].update(signatures=[]), "exactly one"),
        (lambda b: b["dsseEnvelope"]["signatures"][0].update(sig=""), "sig is empty"),
    ],
)
def test_structurally_broken_bundle_is_malformed_envelope(
    artifact: Path, keypair, edit, message: str
) -> None:
    bundle = bundle_of(signed(artifact, keypair))
    edit(bundle)

    error = refusal(
        artifact_path=artifact,
        envelope_bytes=json.dumps(bundle).encode(),
        trusted_keys=trust(keypair[1]),
        now=NOW,
    )

    assert error.code is RefusalCode.MALFORMED_ENVELOPE
    assert message in error.message


def test_key_hints_naming_different_keys_is_malformed_envelope(artifact: Path, keypair) -> None:
    bundle = bundle_of(signed(artifact, keypair))
    other_pem = generate_signing_key()[1]
    bundle["verificationMaterial"]["publicKey"]["hint"] = model_signing_key_hint(other_pem)

    error = refusal(
        artifact_path=artifact,
        envelope_bytes=json.dumps(bundle).encode(),
        trusted_keys=trust(keypair[1]),
        now=NOW,
    )

    assert error.code is RefusalCode.MALFORMED_ENVELOPE
    assert "different keys" in error.message


def test_key_is_found_by_model_signing_hint_when_keyid_is_absent(artifact: Path, keypair) -> None:
    bundle = bundle_of(signed(artifact, keypair))
    del bundle["dsseEnvelope"]["signatures"][0]["keyid"]
    other_keys = trust(generate_signing_key()[1])

    verified = verify_artifact(
        artifact_path=artifact,
        envelope_bytes=json.dumps(bundle).encode(),
        trusted_keys={**other_keys, **trust(keypair[1])},
        now=NOW,
    )

    assert verified.key_id == key_id(keypair[1])


def test_url_safe_unpadded_base64_is_accepted_as_dsse_allows(artifact: Path, keypair) -> None:
    bundle = bundle_of(signed(artifact, keypair))
    envelope = bundle["dsseEnvelope"]
    for holder, member in ((envelope, "payload"), (envelope["signatures"][0], "sig")):
        raw = base64.b64decode(holder[member])
        holder[member] = base64.urlsafe_b64encode(raw).decode().rstrip("=")

    verified = verify_artifact(
        artifact_path=artifact,
        envelope_bytes=json.dumps(bundle).encode(),
        trusted_keys=trust(keypair[1]),
        now=NOW,
    )

    assert verified.manifest.model_name == "digits-mlp"


def test_trust_store_entry_under_the_wrong_id_is_a_caller_error(artifact: Path, keypair) -> None:
    envelope = signed(artifact, keypair)
    misfiled = {key_id(keypair[1]): TrustedKey(generate_signing_key()[1], "active", None)}

    with pytest.raises(ValueError, match="different"):
        verify_artifact(
            artifact_path=artifact, envelope_bytes=envelope, trusted_keys=misfiled, now=NOW
        )


def test_naive_now_and_ambiguous_artifact_are_caller_errors(artifact: Path, keypair) -> None:
    envelope = signed(artifact, keypair)
    keys = trust(keypair[1])

    with pytest.raises(ValueError, match="timezone-aware"):
        verify_artifact(
            artifact_path=artifact,
            envelope_bytes=envelope,
            trusted_keys=keys,
            now=datetime(2026, 1, 1),
        )
    with pytest.raises(ValueError, match="exactly one"):
        verify_artifact(
            artifact_path=artifact,
            artifact_bytes=b"x",
            envelope_bytes=envelope,
            trusted_keys=keys,
            now=NOW,
        )


def test_manifest_replace_revalidates(artifact: Path, keypair) -> None:
    manifest = make_manifest(artifact=artifact, public_pem=keypair[1])

    with pytest.raises(ValueError, match="release_counter"):
        replace(manifest, release_counter=-5)


def test_unknown_key_message_does_not_echo_arbitrary_key_ids(artifact: Path, keypair) -> None:
    bundle = bundle_of(signed(artifact, keypair))
    bundle["dsseEnvelope"]["signatures"][0]["keyid"] = "x\nFAKE LOG LINE: verified OK"

    error = refusal(
        artifact_path=artifact,
        envelope_bytes=json.dumps(bundle).encode(),
        trusted_keys=trust(keypair[1]),
        now=NOW,
    )

    assert error.code is RefusalCode.UNKNOWN_KEY
    assert (
        error.message == "signed by key (a malformed key id), which is not among the trusted keys"
    )


# --- interoperability with OpenSSF model_signing -----------------------------------------------


def _model_signing_or_skip():
    # Skip only when the package is absent. If it is installed but cannot import (it needs
    # pyOpenSSL without declaring it), fail loudly: that is a broken dev environment.
    if importlib.util.find_spec("model_signing") is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("model_signing (a dev dependency) must be installed in CI")
        pytest.skip("model_signing is not installed (dev extra)")
    import model_signing

    return model_signing


def test_model_signing_key_verifier_accepts_opshero_envelopes(
    artifact: Path, keypair, tmp_path: Path
) -> None:
    model_signing = _model_signing_or_skip()
    public_key = tmp_path / "signing.pub.pem"
    public_key.write_bytes(keypair[1])
    signature = tmp_path / "digits.onnx.sig"
    signature.write_bytes(signed(artifact, keypair))
    tampered = tmp_path / "tampered" / "digits.onnx"
    tampered.parent.mkdir()
    content = bytearray(artifact.read_bytes())
    content[100] ^= 0x01
    tampered.write_bytes(bytes(content))
    config = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public_key)

    config.verify(artifact, signature)  # raises ValueError on any mismatch
    with pytest.raises(ValueError, match=r"Signature mismatch: .*Hash mismatch for"):
        config.verify(tampered, signature)

    cli = [sys.executable, "-m", "model_signing", "verify", "key"]
    accepted = subprocess.run(
        [*cli, "--public_key", str(public_key), "--signature", str(signature), str(artifact)],
        capture_output=True,
        text=True,
        check=False,
    )
    refused = subprocess.run(
        [*cli, "--public_key", str(public_key), "--signature", str(signature), str(tampered)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (accepted.returncode, accepted.stdout.strip()) == (0, "Verification succeeded")
    assert "WARNING" not in accepted.stdout + accepted.stderr
    assert refused.returncode == 1
    assert "Hash mismatch" in refused.stdout + refused.stderr


def test_model_signing_signatures_are_read_but_lack_the_manifest(
    artifact: Path, keypair, tmp_path: Path
) -> None:
    model_signing = _model_signing_or_skip()
    private_key = tmp_path / "signing.pem"
    private_key.write_bytes(keypair[0])
    signature = tmp_path / "model_signing.sig"
    model_signing.signing.Config().use_elliptic_key_signer(private_key=private_key).sign(
        artifact, signature
    )

    error = refusal(
        artifact_path=artifact,
        envelope_bytes=signature.read_bytes(),
        trusted_keys=trust(keypair[1]),
        now=NOW,
    )

    # Parsed, key found by its hint, signature verified: only the OpsHero manifest is missing.
    assert error.code is RefusalCode.MALFORMED_PAYLOAD
    assert "no opshero_manifest" in error.message
