"""Signing keys sealed at rest: only the right master key and key id open them."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from protocol.keystore import (
    BLOB_MAGIC,
    KeystoreError,
    decrypt_private_key,
    encrypt_private_key,
)
from protocol.manifest import generate_signing_key, key_id

MASTER = bytes(range(32))
HEADER_BYTES = len(BLOB_MAGIC) + 1
SALT_END = HEADER_BYTES + 16
NONCE_END = SALT_END + 12


@pytest.fixture
def signing_key() -> tuple[bytes, str]:
    private_pem, public_pem = generate_signing_key()
    return private_pem, key_id(public_pem)


def test_round_trip_returns_the_same_private_key(signing_key) -> None:
    private_pem, kid = signing_key

    blob = encrypt_private_key(private_pem, master_key=MASTER)

    assert decrypt_private_key(blob, master_key=MASTER, key_id=kid) == private_pem
    assert private_pem not in blob
    assert blob[:HEADER_BYTES] == b"OHSK\x01"
    # header + salt + nonce + ciphertext (same length as the PEM) + 16-byte tag
    assert len(blob) == NONCE_END + len(private_pem) + 16


def test_each_seal_uses_fresh_salt_and_nonce(signing_key) -> None:
    private_pem, _ = signing_key

    first = encrypt_private_key(private_pem, master_key=MASTER)
    second = encrypt_private_key(private_pem, master_key=MASTER)

    assert first[HEADER_BYTES:SALT_END] != second[HEADER_BYTES:SALT_END]
    assert first[SALT_END:NONCE_END] != second[SALT_END:NONCE_END]
    assert first[NONCE_END:] != second[NONCE_END:]


def test_wrong_master_key_fails(signing_key) -> None:
    private_pem, kid = signing_key
    blob = encrypt_private_key(private_pem, master_key=MASTER)
    wrong = bytes(reversed(MASTER))

    with pytest.raises(KeystoreError, match=f"cannot open the sealed signing key {kid}"):
        decrypt_private_key(blob, master_key=wrong, key_id=kid)


@pytest.mark.parametrize(
    "position",
    [HEADER_BYTES, SALT_END, NONCE_END, -17, -1],
    ids=["salt", "nonce", "ciphertext", "last-ciphertext-byte", "tag"],
)
def test_tampered_blob_fails(signing_key, position: int) -> None:
    private_pem, kid = signing_key
    blob = bytearray(encrypt_private_key(private_pem, master_key=MASTER))
    blob[position] ^= 0x01

    with pytest.raises(KeystoreError, match="altered bytes"):
        decrypt_private_key(bytes(blob), master_key=MASTER, key_id=kid)


def test_blob_stored_under_another_key_id_fails(signing_key) -> None:
    private_pem, _ = signing_key
    blob = encrypt_private_key(private_pem, master_key=MASTER)
    other_id = key_id(generate_signing_key()[1])

    with pytest.raises(KeystoreError, match="another key id"):
        decrypt_private_key(blob, master_key=MASTER, key_id=other_id)


def test_sealed_content_that_is_not_the_named_key_fails(signing_key) -> None:
    # Hand-made blob: key B's PEM sealed with key A's id as associated data. The public API
    # cannot produce this; the check makes sure a decrypted key is always the one named.
    _, kid_a = signing_key
    other_pem, _ = generate_signing_key()
    salt, nonce = os.urandom(16), os.urandom(12)
    aes_key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=salt, info=b"opshero signing-key v1"
    ).derive(MASTER)
    sealed = AESGCM(aes_key).encrypt(nonce, other_pem, kid_a.encode())
    blob = b"OHSK\x01" + salt + nonce + sealed

    with pytest.raises(KeystoreError, match=f"not key {kid_a}"):
        decrypt_private_key(blob, master_key=MASTER, key_id=kid_a)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "bad magic"),
        (b"PEM-----", "bad magic"),
        (b"OHSK", "version None"),
        (b"OHSK\x02" + b"\x00" * 60, "version 2"),
        (b"OHSK\x01" + b"\x00" * 43, "truncated"),
    ],
)
def test_unreadable_blobs_are_refused_with_the_reason(blob: bytes, message: str) -> None:
    with pytest.raises(KeystoreError, match=message):
        decrypt_private_key(blob, master_key=MASTER, key_id="0" * 64)


def test_short_master_key_is_refused(signing_key) -> None:
    private_pem, kid = signing_key

    with pytest.raises(ValueError, match="at least 32 bytes"):
        encrypt_private_key(private_pem, master_key=b"correct horse battery staple")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        decrypt_private_key(b"OHSK\x01", master_key=MASTER[:31], key_id=kid)


def test_only_p256_private_keys_are_sealed() -> None:
    with pytest.raises(ValueError, match="PEM private key"):
        encrypt_private_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n", master_key=MASTER)
