"""The device request signature scheme, at the lowest level (no Django, no database)."""

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol import device_auth as da

NOW = 1_800_000_000


def _signed(key, **overrides):
    args = {
        "private_key": key,
        "device_id": "6f0c1f7e-7d7b-4f7c-9a4b-1d2e3f405162",
        "method": "POST",
        "path": "/api/v1/device/status",
        "query": "",
        "body": b'{"model_version":"1.2"}',
        "timestamp": NOW,
        "nonce": "abcdefghijklmnop",
    }
    args.update(overrides)
    return da.sign_request(**args), args


def _verify(key, headers, **request):
    signed = da.parse_signed_headers(headers)
    da.check_freshness(signed, now=request.pop("now", NOW))
    da.verify_signature(
        signed,
        public_key=key.public_key(),
        method=request.get("method", "POST"),
        path=request.get("path", "/api/v1/device/status"),
        query=request.get("query", ""),
        body=request.get("body", b'{"model_version":"1.2"}'),
    )


def test_canonical_request_is_exactly_the_documented_lines():
    body_hash = hashlib.sha256(b"{}").hexdigest()
    message = da.canonical_request(
        method="post",
        path="/api/v1/device/me",
        query="a=1",
        device_id="dev-1",
        timestamp=1700000000,
        nonce="n" * 16,
        body_sha256=body_hash,
    )
    assert message == (
        b"OPSHERO-DEVICE-V1\nPOST\n/api/v1/device/me\na=1\ndev-1\n1700000000\n"
        + b"n" * 16
        + b"\n"
        + body_hash.encode()
    )


def test_a_signed_request_verifies():
    key = da.generate_device_key()
    headers, _ = _signed(key)
    _verify(key, headers)
    assert (
        headers[da.HEADER_CONTENT_SHA256] == hashlib.sha256(b'{"model_version":"1.2"}').hexdigest()
    )


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"body": b'{"model_version":"6.6"}'}, "body_digest_mismatch"),
        ({"path": "/api/v1/device/me"}, "bad_signature"),
        ({"method": "PUT"}, "bad_signature"),
        ({"query": "x=1"}, "bad_signature"),
        ({"now": NOW + 301}, "clock_skew"),
        ({"now": NOW - 301}, "clock_skew"),
    ],
)
def test_any_change_to_the_request_is_refused(change, code):
    key = da.generate_device_key()
    headers, _ = _signed(key)
    with pytest.raises(da.DeviceAuthError) as err:
        _verify(key, headers, **change)
    assert err.value.code == code


def test_skew_of_exactly_the_limit_is_accepted():
    key = da.generate_device_key()
    headers, _ = _signed(key)
    _verify(key, headers, now=NOW + 300)
    _verify(key, headers, now=NOW - 300)


def test_a_signature_from_another_key_is_refused():
    headers, _ = _signed(da.generate_device_key())
    with pytest.raises(da.DeviceAuthError) as err:
        _verify(da.generate_device_key(), headers)
    assert err.value.code == "bad_signature"


@pytest.mark.parametrize(
    ("header", "value", "code"),
    [
        (da.HEADER_SIGNATURE, None, "missing_signature"),
        (da.HEADER_NONCE, "short", "malformed_signature"),
        (da.HEADER_NONCE, "has spaces in it!!", "malformed_signature"),
        (da.HEADER_TIMESTAMP, "yesterday", "malformed_signature"),
        (da.HEADER_CONTENT_SHA256, "abc", "malformed_signature"),
        (da.HEADER_SIGNATURE, "not base64 !!", "malformed_signature"),
        (da.HEADER_SIGNATURE, base64.b64encode(b"x" * 10).decode(), "malformed_signature"),
        (da.HEADER_DEVICE, "../../etc", "malformed_signature"),
    ],
)
def test_malformed_headers_are_named(header, value, code):
    headers, _ = _signed(da.generate_device_key())
    if value is None:
        headers.pop(header)
    else:
        headers[header] = value
    with pytest.raises(da.DeviceAuthError) as err:
        da.parse_signed_headers(headers)
    assert err.value.code == code
    assert header in err.value.message


def test_public_keys_parse_from_base64_and_pem_and_refuse_anything_else():
    key = da.generate_device_key()
    text = da.public_key_text(key)
    pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    assert da.canonical_public_key(da.load_public_key(text)) == text
    assert da.canonical_public_key(da.load_public_key(pem)) == text
    assert len(da.key_fingerprint(da.load_public_key(text))) == 64
    rsa_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    cases = {
        "": "empty",
        "not-base64!!": "not valid base64",
        base64.b64encode(b"x" * 31).decode(): "31 bytes",
        rsa_pem: "Ed25519",
        ec_pem: "Ed25519",
        "-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----": "not a key",
    }
    for text_in, expected in cases.items():
        with pytest.raises(da.DeviceAuthError) as err:
            da.load_public_key(text_in)
        assert err.value.code == "invalid_public_key"
        assert expected in err.value.message


def test_rotation_proof_binds_the_new_key_to_the_device():
    new = da.generate_device_key()
    text = da.public_key_text(new)
    proof = da.sign_rotation_proof(new_private_key=new, device_id="dev-1", new_public_key=text)
    da.verify_rotation_proof(
        new_public_key=new.public_key(), device_id="dev-1", new_public_key_text=text, proof=proof
    )
    with pytest.raises(da.DeviceAuthError) as err:
        da.verify_rotation_proof(
            new_public_key=new.public_key(),
            device_id="dev-2",
            new_public_key_text=text,
            proof=proof,
        )
    assert err.value.code == "bad_rotation_proof"


# --- canonical form: what is signed is exactly what was sent -------------------------------------


@pytest.mark.parametrize(
    "sent", ["+1800000000", "01800000000", "1800000000.0", " 1800000000", "1800000000 ", "1_8e9"]
)
def test_a_timestamp_that_is_not_its_canonical_decimal_is_refused(sent):
    """int() accepts all of these, but the signature covers the canonical decimal only."""
    headers, _ = _signed(da.generate_device_key())
    headers[da.HEADER_TIMESTAMP] = sent
    with pytest.raises(da.DeviceAuthError) as err:
        da.parse_signed_headers(headers)
    assert err.value.code == "malformed_signature"
    assert da.HEADER_TIMESTAMP in err.value.message


def test_an_upper_case_body_digest_is_refused():
    headers, _ = _signed(da.generate_device_key())
    headers[da.HEADER_CONTENT_SHA256] = headers[da.HEADER_CONTENT_SHA256].upper()
    with pytest.raises(da.DeviceAuthError) as err:
        da.parse_signed_headers(headers)
    assert err.value.code == "malformed_signature"
    assert "lower-case" in err.value.message


@pytest.mark.parametrize("header", [da.HEADER_DEVICE, da.HEADER_NONCE])
def test_identifiers_with_surrounding_spaces_are_refused(header):
    headers, _ = _signed(da.generate_device_key())
    headers[header] = f" {headers[header]} "
    with pytest.raises(da.DeviceAuthError) as err:
        da.parse_signed_headers(headers)
    assert err.value.code == "malformed_signature"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"RAW_URI": "/api/v1/device%2Fme?a=1"}, "/api/v1/device%2Fme"),
        ({"REQUEST_URI": "/api/v1/device/%6De"}, "/api/v1/device/%6De"),
        ({"RAW_URI": "http://gw.example/api/v1/device/me?x"}, "/api/v1/device/me"),
        ({"RAW_URI": "/a%2fb", "REQUEST_URI": "/other"}, "/a%2fb"),
        ({}, "/api/v1/device/caf%C3%A9"),
    ],
)
def test_the_signed_path_is_the_raw_request_target(environ, expected):
    assert da.signed_path(environ=environ, decoded_path="/api/v1/device/café") == expected


def test_a_pem_public_key_with_its_trailing_newline_proves_rotation():
    new = da.generate_device_key()
    pem = (
        new.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    assert pem.endswith("-----\n")
    proof = da.sign_rotation_proof(new_private_key=new, device_id="dev-1", new_public_key=pem)
    da.verify_rotation_proof(
        new_public_key=da.load_public_key(pem),
        device_id="dev-1",
        new_public_key_text=pem,
        proof=proof,
    )
    with pytest.raises(da.DeviceAuthError):  # the text as sent, not a tidied copy
        da.verify_rotation_proof(
            new_public_key=da.load_public_key(pem),
            device_id="dev-1",
            new_public_key_text=pem.strip(),
            proof=proof,
        )


# --- the test vectors published in docs/device-api.md --------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "device-api.md"


def _doc_block(marker: str) -> str:
    """The fenced block that follows ``<!-- test-vector: marker -->`` in the device doc."""
    text = DOC.read_text()
    found = re.search(
        rf"<!-- test-vector: {re.escape(marker)} -->\n```[a-z]*\n(.*?)\n```", text, re.S
    )
    assert found, f"no test vector {marker!r} in {DOC}"
    return found.group(1)


def test_the_documented_request_vector_is_what_the_code_signs_and_verifies():
    vector = json.loads(_doc_block("device-request"))
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector["private_key_seed_hex"]))
    assert da.public_key_text(key) == vector["public_key_base64"]
    headers = vector["headers"]
    body = vector["body"].encode()
    signed = da.sign_request(
        private_key=key,
        device_id=headers[da.HEADER_DEVICE],
        method=vector["method"],
        path=vector["path"],
        query=vector["query"],
        body=body,
        timestamp=int(headers[da.HEADER_TIMESTAMP]),
        nonce=headers[da.HEADER_NONCE],
    )
    assert signed == headers
    parsed = da.parse_signed_headers(headers)
    message = da.canonical_request(
        method=vector["method"],
        path=vector["path"],
        query=vector["query"],
        device_id=parsed.device_id,
        timestamp=parsed.timestamp,
        nonce=parsed.nonce,
        body_sha256=parsed.body_sha256,
    )
    assert message.decode() == vector["canonical"] == _doc_block("device-request canonical")
    public = da.load_public_key(vector["public_key_base64"])
    da.verify_signature(
        parsed,
        public_key=public,
        method=vector["method"],
        path=vector["path"],
        query=vector["query"],
        body=body,
    )
    with pytest.raises(da.DeviceAuthError):
        da.verify_signature(
            parsed, public_key=public, method="POST", path=vector["path"], query="", body=body
        )


def test_the_documented_rotation_vector_verifies():
    vector = json.loads(_doc_block("rotation-proof"))
    new = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector["new_private_key_seed_hex"]))
    text = vector["new_public_key"]
    assert text.endswith("-----\n")
    proof = da.sign_rotation_proof(
        new_private_key=new, device_id=vector["device_id"], new_public_key=text
    )
    assert proof == vector["proof"]
    da.verify_rotation_proof(
        new_public_key=da.load_public_key(text),
        device_id=vector["device_id"],
        new_public_key_text=text,
        proof=vector["proof"],
    )
    assert da.key_fingerprint(da.load_public_key(text)) == vector["key_fingerprint"]
