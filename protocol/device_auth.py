"""Signed device requests: every call a gateway makes after enrollment carries an Ed25519
signature over the request, so a credential copied from a config file cannot be replayed and a
body cannot be altered in flight.

The scheme (documented for third-party gateways in docs/device-api.md):

    canonical = "\\n".join([
        "OPSHERO-DEVICE-V1",
        METHOD,                 # upper case, e.g. "POST"
        PATH,                   # the request-target path exactly as sent, still
                                #   percent-encoded, e.g. "/api/v1/device/status"
        QUERY,                  # the raw query string without "?", or "" when there is none
        DEVICE_ID,              # the X-OpsHero-Device header, exactly as sent
        TIMESTAMP,              # the X-OpsHero-Timestamp header: Unix seconds as a canonical
                                #   decimal (no sign, no leading zero, no spaces, no fraction)
        NONCE,                  # 16-64 characters of [A-Za-z0-9_-], new for every request
        BODY_SHA256,            # lower-case hex SHA-256 of the exact body bytes ("" body too)
    ])
    signature = Ed25519.sign(private_key, canonical.encode("utf-8"))

and the request carries the headers in ``HEADER_*`` below, the signature base64-encoded.

Every header is used exactly as sent: a header whose text is not already the canonical form
(``+12``, ``012``, a space, an upper-case digest) is refused rather than normalised, so the
server and the device can never disagree about what was signed. The path is the raw request
target (`signed_path`), because a percent-decoded path is not what the device sent.

The server checks, in order: all headers present and well-formed, the timestamp within
``MAX_SKEW_SECONDS`` of its clock, the body digest, the signature against the device's active
public key, then that the nonce was never seen (its replay cache keeps nonces for longer than
the skew window, so a captured request cannot be replayed at any time). Nothing about the
device (unknown, revoked, retired) is told before a signature verifies.

No Django here: the server and the reference gateway agent import this same module.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

try:  # libsodium verifies Ed25519 about 1.6x faster than OpenSSL on the reference machine
    from nacl.bindings import crypto_sign_open as _sodium_open
    from nacl.exceptions import BadSignatureError as _SodiumBadSignature
except ImportError:  # a gateway without PyNaCl still verifies, through cryptography
    _sodium_open = None

SCHEME = "OPSHERO-DEVICE-V1"
MAX_SKEW_SECONDS = 300
# Nonces are remembered for twice the skew window: any request old enough to have been
# forgotten is already refused by the timestamp check.
NONCE_TTL_SECONDS = 2 * MAX_SKEW_SECONDS

HEADER_DEVICE = "X-OpsHero-Device"
HEADER_TIMESTAMP = "X-OpsHero-Timestamp"
HEADER_NONCE = "X-OpsHero-Nonce"
HEADER_CONTENT_SHA256 = "X-OpsHero-Content-SHA256"
HEADER_SIGNATURE = "X-OpsHero-Signature"
SIGNED_HEADERS = (
    HEADER_DEVICE,
    HEADER_TIMESTAMP,
    HEADER_NONCE,
    HEADER_CONTENT_SHA256,
    HEADER_SIGNATURE,
)

_NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
# Unix seconds as str(int) writes them: at most 12 digits (year 33658), no sign or zero padding.
_TIMESTAMP_RE = re.compile(r"^(0|[1-9][0-9]{0,11})$")
# What Django's escape_uri_path leaves unescaped (RFC 3986 path characters).
_PATH_SAFE = "/:@&+$,-_.!~*'()"
_DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")


class DeviceAuthError(Exception):
    """A refused device request. ``code`` is stable for machines, ``message`` for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SignedRequest:
    """The parts of a request that a signature covers, as parsed from its headers."""

    device_id: str
    timestamp: int
    nonce: str
    body_sha256: str
    signature: bytes


# --- keys -----------------------------------------------------------------------------------------


def generate_device_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_key_text(private_key: Ed25519PrivateKey) -> str:
    """The public key as sent at enrollment: base64 of the 32 raw bytes."""
    raw = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return base64.b64encode(raw).decode("ascii")


def load_public_key(text: str) -> Ed25519PublicKey:
    """Parse a public key given as base64 of 32 raw bytes or as a PEM block.

    Raises DeviceAuthError("invalid_public_key") with the reason for anything else.
    """
    text = (text or "").strip()
    if not text:
        raise DeviceAuthError("invalid_public_key", "The public key is empty.")
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode("ascii"))
        except (ValueError, UnicodeEncodeError) as exc:
            raise DeviceAuthError(
                "invalid_public_key", f"The PEM block is not a key: {exc}"
            ) from exc
        if not isinstance(key, Ed25519PublicKey):
            raise DeviceAuthError(
                "invalid_public_key",
                f"The key is {type(key).__name__.replace('_', '')}; devices use Ed25519 keys.",
            )
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DeviceAuthError("invalid_public_key", "The public key is not valid base64.") from exc
    if len(raw) != 32:
        raise DeviceAuthError(
            "invalid_public_key",
            f"An Ed25519 public key is 32 bytes; this one is {len(raw)} bytes.",
        )
    return Ed25519PublicKey.from_public_bytes(raw)


def key_fingerprint(public_key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw public key, hex: shown on the device page and in audit events."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def canonical_public_key(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


# --- signing (gateway side) -----------------------------------------------------------------------


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def canonical_request(
    *,
    method: str,
    path: str,
    query: str,
    device_id: str,
    timestamp: int,
    nonce: str,
    body_sha256: str,
) -> bytes:
    return "\n".join(
        [SCHEME, method.upper(), path, query, device_id, str(timestamp), nonce, body_sha256]
    ).encode("utf-8")


def sign_request(
    *,
    private_key: Ed25519PrivateKey,
    device_id: str,
    method: str,
    path: str,
    query: str = "",
    body: bytes = b"",
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Headers that authenticate one request; send them with exactly this body."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    nonce = nonce or secrets.token_urlsafe(18)
    digest = body_digest(body)
    message = canonical_request(
        method=method,
        path=path,
        query=query,
        device_id=device_id,
        timestamp=timestamp,
        nonce=nonce,
        body_sha256=digest,
    )
    return {
        HEADER_DEVICE: device_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_NONCE: nonce,
        HEADER_CONTENT_SHA256: digest,
        HEADER_SIGNATURE: base64.b64encode(private_key.sign(message)).decode("ascii"),
    }


# --- verification (server side) -------------------------------------------------------------------


def parse_signed_headers(headers: dict[str, str]) -> SignedRequest:
    """Read and check the form of the signature headers (not yet the signature itself)."""
    missing = [name for name in SIGNED_HEADERS if not headers.get(name)]
    if missing:
        raise DeviceAuthError(
            "missing_signature", f"Signed device requests need the headers: {', '.join(missing)}."
        )
    # fullmatch, not match: "$" would also accept a trailing newline.
    device_id = headers[HEADER_DEVICE]
    if not _DEVICE_ID_RE.fullmatch(device_id):
        raise DeviceAuthError("malformed_signature", f"{HEADER_DEVICE} is not a device id.")
    if not _TIMESTAMP_RE.fullmatch(headers[HEADER_TIMESTAMP]):
        raise DeviceAuthError(
            "malformed_signature",
            f"{HEADER_TIMESTAMP} must be Unix seconds as a plain decimal "
            "(digits only, no sign, no leading zero, no spaces).",
        )
    timestamp = int(headers[HEADER_TIMESTAMP])
    nonce = headers[HEADER_NONCE]
    if not _NONCE_RE.fullmatch(nonce):
        raise DeviceAuthError(
            "malformed_signature", f"{HEADER_NONCE} must be 16-64 characters of [A-Za-z0-9_-]."
        )
    digest = headers[HEADER_CONTENT_SHA256]
    if not _HEX64_RE.fullmatch(digest):
        raise DeviceAuthError(
            "malformed_signature",
            f"{HEADER_CONTENT_SHA256} must be 64 lower-case hex characters.",
        )
    try:
        signature = base64.b64decode(headers[HEADER_SIGNATURE], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DeviceAuthError("malformed_signature", f"{HEADER_SIGNATURE} is not base64.") from exc
    if len(signature) != 64:
        raise DeviceAuthError(
            "malformed_signature", f"{HEADER_SIGNATURE} must hold a 64-byte Ed25519 signature."
        )
    return SignedRequest(device_id, timestamp, nonce, digest, signature)


def signed_path(*, environ: Mapping[str, str], decoded_path: str) -> str:
    """The path a device signed: the request target as it arrived, still percent-encoded.

    WSGI gives only the percent-decoded path (``PATH_INFO``), in which ``/a%2Fb`` and ``/a/b``
    are the same, so the server takes the raw request target its WSGI server passes along:
    ``RAW_URI`` (gunicorn) or ``REQUEST_URI`` (uWSGI, nginx unit, Apache), without the query
    and, for an absolute-form target, without scheme and host. Only when neither is present
    (e.g. the development server) does it re-encode ``decoded_path`` the way Django's
    ``escape_uri_path`` does, which gives back what a device sent whenever it percent-encoded
    only the characters that need it.
    """
    for name in ("RAW_URI", "REQUEST_URI"):
        target = environ.get(name) or ""
        if target.startswith("/"):
            return target.split("?", 1)[0]
        if "://" in target:
            return urllib.parse.urlsplit(target).path or "/"
    return urllib.parse.quote(decoded_path, safe=_PATH_SAFE)


def check_freshness(signed: SignedRequest, *, now: float, max_skew: int = MAX_SKEW_SECONDS) -> None:
    skew = signed.timestamp - now
    if abs(skew) > max_skew:
        direction = "ahead of" if skew > 0 else "behind"
        raise DeviceAuthError(
            "clock_skew",
            f"The request timestamp is {abs(int(skew))} s {direction} the server clock "
            f"(at most {max_skew} s allowed); fix the device clock (NTP).",
        )


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def ed25519_verify(public_key: Ed25519PublicKey | bytes, signature: bytes, message: bytes) -> bool:
    """True when ``signature`` is a valid Ed25519 signature of ``message`` by ``public_key``."""
    raw = public_key if isinstance(public_key, bytes) else raw_public_key(public_key)
    if _sodium_open is not None:
        try:
            _sodium_open(signature + message, raw)
        except _SodiumBadSignature:
            return False
        return True
    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(signature, message)
    except InvalidSignature:
        return False
    return True


def verify_signature(
    signed: SignedRequest,
    *,
    public_key: Ed25519PublicKey | bytes,
    method: str,
    path: str,
    query: str,
    body: bytes,
) -> None:
    """Check the body digest and the signature; raises DeviceAuthError on any mismatch.

    ``public_key`` may be the key object or its 32 raw bytes (what the server caches).
    """
    if body_digest(body) != signed.body_sha256:
        raise DeviceAuthError(
            "body_digest_mismatch", "The body does not match its signed SHA-256 digest."
        )
    message = canonical_request(
        method=method,
        path=path,
        query=query,
        device_id=signed.device_id,
        timestamp=signed.timestamp,
        nonce=signed.nonce,
        body_sha256=signed.body_sha256,
    )
    if not ed25519_verify(public_key, signed.signature, message):
        raise DeviceAuthError(
            "bad_signature", "The signature does not match this device's key and request."
        )


# --- key rotation ---------------------------------------------------------------------------------

ROTATION_SCHEME = "OPSHERO-ROTATE-V1"


def rotation_proof_message(*, device_id: str, new_public_key: str) -> bytes:
    return "\n".join([ROTATION_SCHEME, device_id, new_public_key]).encode("utf-8")


def sign_rotation_proof(
    *, new_private_key: Ed25519PrivateKey, device_id: str, new_public_key: str
) -> str:
    """Proof that the device holds the new private key (sent inside the old-key-signed request)."""
    message = rotation_proof_message(device_id=device_id, new_public_key=new_public_key)
    return base64.b64encode(new_private_key.sign(message)).decode("ascii")


def verify_rotation_proof(
    *, new_public_key: Ed25519PublicKey, device_id: str, new_public_key_text: str, proof: str
) -> None:
    try:
        signature = base64.b64decode(proof, validate=True)
        new_public_key.verify(
            signature,
            rotation_proof_message(device_id=device_id, new_public_key=new_public_key_text),
        )
    except (binascii.Error, ValueError, InvalidSignature) as exc:
        raise DeviceAuthError(
            "bad_rotation_proof", "The proof is not a signature by the new key."
        ) from exc
