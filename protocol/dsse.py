"""DSSE envelopes inside a Sigstore bundle, signed with ECDSA P-256 / SHA-256 (no Django).

This module is the byte-level half of the signed model manifest: keys, the DSSE
pre-authentication encoding, and the JSON wire form. It knows nothing about models;
`protocol.manifest` builds the in-toto Statement that travels as the payload.

Why these choices:

- **DSSE** (https://github.com/secure-systems-lab/dsse, protocol v1.0.0) signs
  ``PAE(payloadType, payload)`` rather than the bare payload, so a signature made for one
  payload type can never be replayed as another, and the verifier never has to
  canonicalise JSON: it verifies the exact bytes that were signed, then parses them.
- **ECDSA P-256 with SHA-256** because the OpenSSF ``model_signing`` key verifier accepts
  only NIST elliptic-curve keys (P-256/384/521), not Ed25519. P-256 is the smallest of those
  and is verified fast enough on gateway CPUs (well under a millisecond).
- **Sigstore bundle v0.3 wrapping** (``mediaType``, ``verificationMaterial.publicKey.hint``,
  ``dsseEnvelope``) because that is the file ``model_signing verify key`` reads. The bundle
  adds nothing to the security argument; it is the container that makes our envelope
  readable by that verifier as well as by ours.

Two key identifiers appear in the bundle, both derived from the same public key and both
*unauthenticated hints* that only select which trusted key to try:

- ``dsseEnvelope.signatures[0].keyid`` is the OpsHero key id: SHA-256 of the DER
  SubjectPublicKeyInfo, hex (`key_id`). DER is the canonical encoding, so the id does not
  depend on PEM line wrapping.
- ``verificationMaterial.publicKey.hint`` is what ``model_signing`` 1.1.1 compares against:
  SHA-256 of the *PEM* SubjectPublicKeyInfo as ``cryptography`` writes it, hex
  (`model_signing_key_hint`). If it were absent, ``model_signing`` would print a warning;
  if it were anything else, it would refuse the bundle.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "MAX_BUNDLE_BYTES",
    "Envelope",
    "EnvelopeFormatError",
    "generate_signing_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "model_signing_key_hint",
    "pae",
    "parse_bundle",
    "public_key_pem",
    "sign_bundle",
    "signature_is_valid",
    "strict_json_loads",
]

# The Sigstore bundle media type that model_signing 1.1.1 writes and insists on when it
# verifies a key-signed bundle (it refuses the older ";version=0.3" spelling).
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"

# A manifest envelope is a few kilobytes. Refusing anything over 1 MiB before parsing keeps
# a hostile or corrupted download from costing the gateway memory and CPU in json.loads.
MAX_BUNDLE_BYTES = 1 << 20

_BASE64_RE = re.compile(r"^[A-Za-z0-9+/\-_]*={0,2}$")


class EnvelopeFormatError(ValueError):
    """The bytes are not a well-formed bundle holding exactly one DSSE signature."""


@dataclass(frozen=True, kw_only=True)
class Envelope:
    """A parsed, *not yet verified* DSSE envelope and the key hints that came with it."""

    payload_type: str
    payload: bytes
    signature: bytes
    keyid: str
    key_hint: str


def pae(*, payload_type: str, payload: bytes) -> bytes:
    """Return the DSSE v1 pre-authentication encoding: the exact bytes that get signed.

    ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`` where LEN is the byte length as
    ASCII decimal without leading zeros and the type is UTF-8. Lengths are of the encoded
    bytes, not of Python characters, so a non-ASCII payload type cannot shift the framing.
    """
    type_bytes = payload_type.encode("utf-8")
    return b"".join(
        [
            b"DSSEv1 ",
            str(len(type_bytes)).encode("ascii"),
            b" ",
            type_bytes,
            b" ",
            str(len(payload)).encode("ascii"),
            b" ",
            payload,
        ]
    )


def generate_signing_key() -> tuple[bytes, bytes]:
    """Create a P-256 signing key; return (PKCS#8 private PEM, SubjectPublicKeyInfo PEM).

    The private PEM is unencrypted: the server stores it only through
    `protocol.keystore.encrypt_private_key`, which is where encryption at rest belongs.
    """
    private_key = ec.generate_private_key(ec.SECP256R1())
    private_pem = private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    return private_pem, _public_pem(private_key.public_key())


def public_key_pem(private_key_pem: bytes) -> bytes:
    """Return the SubjectPublicKeyInfo PEM that belongs to a private key PEM."""
    return _public_pem(load_private_key(private_key_pem).public_key())


def load_public_key(public_pem: bytes) -> ec.EllipticCurvePublicKey:
    """Load a PEM public key, refusing anything but P-256 (ValueError).

    One curve only: accepting "any EC key" would let a trust store quietly hold keys of a
    strength or hash pairing nobody reviewed.
    """
    try:
        key = serialization.load_pem_public_key(public_pem)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a PEM public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("signing keys must be ECDSA P-256 (secp256r1)")
    return key


def load_private_key(private_pem: bytes) -> ec.EllipticCurvePrivateKey:
    """Load an unencrypted PEM private key, refusing anything but P-256 (ValueError)."""
    try:
        key = serialization.load_pem_private_key(private_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("signing keys must be ECDSA P-256 (secp256r1)")
    return key


def key_id(public_pem: bytes) -> str:
    """Return the OpsHero key id: SHA-256 of the DER SubjectPublicKeyInfo, lowercase hex."""
    der = load_public_key(public_pem).public_bytes(
        encoding=serialization.Encoding.DER,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    return hashlib.sha256(der).hexdigest()


def model_signing_key_hint(public_pem: bytes) -> str:
    """Return model_signing's key hint: SHA-256 of the re-encoded PEM SubjectPublicKeyInfo.

    Re-encoding (instead of hashing the caller's bytes) makes the hint independent of how
    the PEM was written (CRLF, trailing blank lines), exactly as model_signing computes it.
    """
    return hashlib.sha256(_public_pem(load_public_key(public_pem))).hexdigest()


def sign_bundle(*, payload: bytes, payload_type: str, private_key_pem: bytes) -> bytes:
    """Sign ``PAE(payload_type, payload)`` and return the Sigstore bundle JSON bytes.

    Base64 is the standard alphabet with padding: DSSE allows either alphabet, but the
    Sigstore bundle reader used by model_signing decodes only the standard one.
    """
    private_key = load_private_key(private_key_pem)
    public_pem = _public_pem(private_key.public_key())
    signature = private_key.sign(
        pae(payload_type=payload_type, payload=payload), ec.ECDSA(hashes.SHA256())
    )
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {
            "publicKey": {"hint": model_signing_key_hint(public_pem)},
            "tlogEntries": [],
        },
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": payload_type,
            "signatures": [
                {
                    "sig": base64.b64encode(signature).decode("ascii"),
                    "keyid": key_id(public_pem),
                }
            ],
        },
    }
    return (json.dumps(bundle, indent=2) + "\n").encode("utf-8")


def parse_bundle(bundle_bytes: bytes) -> Envelope:
    """Parse bundle JSON into an `Envelope`; raise `EnvelopeFormatError` with the reason.

    Parsing is strict (duplicate keys, unknown top-level members, more than one signature
    are all refused) because two parsers that disagree about what a signed file says are
    how signature bypasses happen.
    """
    if len(bundle_bytes) > MAX_BUNDLE_BYTES:
        raise EnvelopeFormatError(
            f"envelope is {len(bundle_bytes)} bytes, more than the {MAX_BUNDLE_BYTES} allowed"
        )
    try:
        document = strict_json_loads(bundle_bytes)
    except ValueError as exc:
        raise EnvelopeFormatError(f"envelope is not valid JSON: {exc}") from exc
    bundle = _object(document, "envelope")
    unknown = set(bundle) - {"mediaType", "verificationMaterial", "dsseEnvelope"}
    if unknown:
        raise EnvelopeFormatError(f"unexpected bundle members: {sorted(unknown)}")
    if bundle.get("mediaType") != BUNDLE_MEDIA_TYPE:
        raise EnvelopeFormatError(
            f"bundle mediaType is {bundle.get('mediaType')!r}, expected {BUNDLE_MEDIA_TYPE!r}"
        )

    material = _object(bundle.get("verificationMaterial"), "verificationMaterial")
    public_key = _object(material.get("publicKey", {}), "verificationMaterial.publicKey")
    hint = public_key.get("hint") or ""
    if not isinstance(hint, str):
        raise EnvelopeFormatError("verificationMaterial.publicKey.hint must be a string")

    envelope = _object(bundle.get("dsseEnvelope"), "dsseEnvelope")
    payload_type = envelope.get("payloadType")
    if not isinstance(payload_type, str) or not payload_type:
        raise EnvelopeFormatError("dsseEnvelope.payloadType must be a non-empty string")
    payload = _base64(envelope.get("payload"), "dsseEnvelope.payload")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or len(signatures) != 1:
        raise EnvelopeFormatError("dsseEnvelope.signatures must hold exactly one signature")
    entry = _object(signatures[0], "dsseEnvelope.signatures[0]")
    keyid = entry.get("keyid") or ""
    if not isinstance(keyid, str):
        raise EnvelopeFormatError("dsseEnvelope.signatures[0].keyid must be a string")
    signature = _base64(entry.get("sig"), "dsseEnvelope.signatures[0].sig")
    if not signature:
        raise EnvelopeFormatError("dsseEnvelope.signatures[0].sig is empty")
    return Envelope(
        payload_type=payload_type,
        payload=payload,
        signature=signature,
        keyid=keyid,
        key_hint=hint,
    )


def signature_is_valid(*, envelope: Envelope, public_pem: bytes) -> bool:
    """Check the envelope's ECDSA signature over PAE(payloadType, payload) with one key."""
    public_key = load_public_key(public_pem)
    try:
        public_key.verify(
            envelope.signature,
            pae(payload_type=envelope.payload_type, payload=envelope.payload),
            ec.ECDSA(hashes.SHA256()),
        )
    except InvalidSignature:
        return False
    return True


def strict_json_loads(data: bytes) -> Any:
    """``json.loads`` that refuses duplicate object keys and NaN/Infinity (ValueError).

    Python keeps the last of two duplicate keys, other parsers keep the first: a signed
    document with duplicates could mean one thing to the server and another to a gateway.
    """

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise ValueError(f"duplicate key {key!r}")
            result[key] = value
        return result

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8: {exc}") from exc
    return json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constants)


def _public_pem(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EnvelopeFormatError(f"{where} must be a JSON object")
    return value


def _base64(value: Any, where: str) -> bytes:
    """Decode standard or URL-safe base64 (DSSE allows both), padding optional, nothing else."""
    if not isinstance(value, str) or not _BASE64_RE.fullmatch(value):
        raise EnvelopeFormatError(f"{where} must be a base64 string")
    standard = value.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except binascii.Error as exc:
        raise EnvelopeFormatError(f"{where} is not valid base64: {exc}") from exc
