"""Organisation signing keys encrypted at rest (server side only, no Django).

The server keeps each organisation's manifest-signing private key in the database, so a
database dump alone must not yield a key that can sign models for a fleet. Each key is
sealed with AES-256-GCM under a key derived from a master secret that lives only in the
environment. Gateways never import this module: they hold public keys only.

Blob format, version 1 (bytes, stored as they are)::

    b"OHSK" | 0x01 | salt (16 bytes) | nonce (12 bytes) | ciphertext | GCM tag (16 bytes)

- The AES key is ``HKDF-SHA256(master_key, salt, info=b"opshero signing-key v1")``. A fresh
  random salt per blob gives every blob its own AES key, so the 96-bit random nonce is never
  at risk of repeating under one key however many keys are sealed or re-sealed.
- The associated data is the key id (`protocol.dsse.key_id`, ASCII hex). A blob copied
  into another key's database row does not decrypt, so a row cannot be made to sign with a
  key other than the one its id (and its published public key) names.
- The magic and version byte let a later format (another KDF, a KMS-wrapped data key) be
  read side by side with this one; the header is authenticated implicitly, because changing
  the salt or nonce changes the key or the GCM input and the tag no longer verifies.
- The master secret must be at least 32 bytes of key material (for example 32 random
  bytes, base64 in the environment). HKDF is not a password hash: a short passphrase here
  would be brute-forceable from a database dump.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from protocol import dsse

__all__ = [
    "BLOB_MAGIC",
    "BLOB_VERSION",
    "MIN_MASTER_KEY_BYTES",
    "KeystoreError",
    "decrypt_private_key",
    "encrypt_private_key",
]

BLOB_MAGIC = b"OHSK"
BLOB_VERSION = 1
MIN_MASTER_KEY_BYTES = 32

_SALT_BYTES = 16
_NONCE_BYTES = 12
_TAG_BYTES = 16
_HEADER = BLOB_MAGIC + bytes([BLOB_VERSION])
_HKDF_INFO = b"opshero signing-key v1"


class KeystoreError(Exception):
    """A sealed signing key could not be opened; the message says which check failed."""


def encrypt_private_key(private_pem: bytes, *, master_key: bytes) -> bytes:
    """Seal a P-256 private key PEM; the blob is bound to the key's own key id.

    The key id is computed from the key rather than passed in, so a caller cannot seal a
    key under the wrong id by mistake.
    """
    _require_master_key(master_key)
    bound_id = dsse.key_id(dsse.public_key_pem(private_pem))
    salt = os.urandom(_SALT_BYTES)
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(_derive_key(master_key=master_key, salt=salt)).encrypt(
        nonce, private_pem, bound_id.encode("ascii")
    )
    return _HEADER + salt + nonce + sealed


def decrypt_private_key(blob: bytes, *, master_key: bytes, key_id: str) -> bytes:
    """Open a sealed key stored under ``key_id``; return the private key PEM.

    Raises `KeystoreError` when the blob is not a version-1 blob, when the master key is
    wrong, when the blob belongs to another key id, or when any byte of it was changed
    (GCM cannot tell these last three apart, and neither should an attacker).
    """
    _require_master_key(master_key)
    if not blob.startswith(BLOB_MAGIC):
        raise KeystoreError("not a sealed OpsHero signing key (bad magic)")
    if len(blob) <= len(BLOB_MAGIC) or blob[len(BLOB_MAGIC)] != BLOB_VERSION:
        version = blob[len(BLOB_MAGIC)] if len(blob) > len(BLOB_MAGIC) else None
        raise KeystoreError(f"unsupported sealed-key format version {version!r}")
    body = blob[len(_HEADER) :]
    if len(body) < _SALT_BYTES + _NONCE_BYTES + _TAG_BYTES:
        raise KeystoreError("sealed signing key is truncated")
    salt = body[:_SALT_BYTES]
    nonce = body[_SALT_BYTES : _SALT_BYTES + _NONCE_BYTES]
    sealed = body[_SALT_BYTES + _NONCE_BYTES :]
    try:
        private_pem = AESGCM(_derive_key(master_key=master_key, salt=salt)).decrypt(
            nonce, sealed, key_id.encode("ascii")
        )
    except (InvalidTag, UnicodeEncodeError) as exc:
        raise KeystoreError(
            f"cannot open the sealed signing key {key_id}: wrong master key, a blob stored"
            " under another key id, or altered bytes"
        ) from exc
    # Only reachable if someone sealed a key with a hand-made associated data; checked so
    # that a decrypted key is always the key its id promises.
    try:
        opened_id = dsse.key_id(dsse.public_key_pem(private_pem))
    except ValueError as exc:
        raise KeystoreError(f"the sealed content is not a P-256 private key: {exc}") from exc
    if opened_id != key_id:
        raise KeystoreError(f"the sealed key is {opened_id}, not key {key_id}")
    return private_pem


def _derive_key(*, master_key: bytes, salt: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_HKDF_INFO).derive(master_key)


def _require_master_key(master_key: bytes) -> None:
    if not isinstance(master_key, bytes) or len(master_key) < MIN_MASTER_KEY_BYTES:
        raise ValueError(f"the master key must be at least {MIN_MASTER_KEY_BYTES} bytes")
