"""Envelope encryption of evidence samples: one data key per sample, wrapped by a key-encryption
key derived from the evidence master secret.

No Django here. Each sample is encrypted with its own random 256-bit data key (AES-256-GCM); the
data key is encrypted ("wrapped") with the organisation's key-encryption key, derived with
HKDF-SHA256 from ``EVIDENCE_MASTER_KEY`` (distinct from the signing master key) and the
organisation's id, so one tenant's key never opens another's objects. Both encryptions bind the
sample's id and organisation as associated data: an object or a wrapped key moved onto another
sample fails to open. Deleting a sample deletes its object *and* its wrapped key, so a backup of
the object store alone cannot be read later (crypto-shredding).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["KEY_VERSION", "EvidenceTampered", "Sealed", "key_encryption_key", "open_sample", "seal"]

KEY_VERSION = 1
_NONCE = 12
_INFO = b"opshero evidence key-encryption key v1"


class EvidenceTampered(Exception):
    """The object or its wrapped key does not open: altered, swapped, or the wrong key."""


@dataclass(frozen=True)
class Sealed:
    """``ciphertext`` is nonce || AES-GCM(sample); ``wrapped_key`` is nonce || AES-GCM(data key)."""

    ciphertext: bytes
    wrapped_key: bytes
    key_version: int = KEY_VERSION


def key_encryption_key(master: bytes, organization_id: int) -> bytes:
    """The organisation's key-encryption key (never stored)."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=_INFO + b"|org:" + str(organization_id).encode(),
    ).derive(master)


def _aad(organization_id: int, sample_id: str, part: bytes) -> bytes:
    return b"opshero-evidence|" + part + b"|" + f"{organization_id}|{sample_id}".encode()


def seal(plaintext: bytes, *, master: bytes, organization_id: int, sample_id: str) -> Sealed:
    """Encrypt one sample under a fresh data key and wrap the key."""
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(_NONCE)
    ciphertext = nonce + AESGCM(data_key).encrypt(
        nonce, plaintext, _aad(organization_id, sample_id, b"object")
    )
    wrap_nonce = os.urandom(_NONCE)
    kek = key_encryption_key(master, organization_id)
    wrapped = wrap_nonce + AESGCM(kek).encrypt(
        wrap_nonce, data_key, _aad(organization_id, sample_id, b"key")
    )
    return Sealed(ciphertext=ciphertext, wrapped_key=wrapped)


def open_sample(
    ciphertext: bytes,
    wrapped_key: bytes,
    *,
    master: bytes,
    organization_id: int,
    sample_id: str,
    key_version: int = KEY_VERSION,
) -> bytes:
    """The sample's bytes, or ``EvidenceTampered`` when either part was altered or swapped."""
    if key_version != KEY_VERSION:
        raise EvidenceTampered(f"unknown key version {key_version}")
    if len(ciphertext) <= _NONCE or len(wrapped_key) <= _NONCE:
        raise EvidenceTampered("truncated")
    kek = key_encryption_key(master, organization_id)
    try:
        data_key = AESGCM(kek).decrypt(
            wrapped_key[:_NONCE], wrapped_key[_NONCE:], _aad(organization_id, sample_id, b"key")
        )
        return AESGCM(data_key).decrypt(
            ciphertext[:_NONCE], ciphertext[_NONCE:], _aad(organization_id, sample_id, b"object")
        )
    except InvalidTag as exc:
        raise EvidenceTampered("the evidence does not authenticate") from exc
