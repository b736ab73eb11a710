"""The signed model manifest: what the server signs and what a gateway checks before loading.

No Django here: the server (``fleet`` signing service), the gateway agent and the offline
``python -m protocol.verify`` command all call this module, so there is one definition of
what a valid signed model is.

Wire format
===========

A Sigstore bundle (``application/vnd.dev.sigstore.bundle.v0.3+json``) holding one DSSE
envelope (`protocol.dsse`), payload type ``application/vnd.in-toto+json``, whose payload is
an in-toto Statement v1::

    {
      "_type": "https://in-toto.io/Statement/v1",
      "subject": [{"name": "<artifact file name>",
                   "digest": {"sha256": "<SHA-256 of the artifact's raw SHA-256 digest>"}}],
      "predicateType": "https://model_signing/signature/v1.0",
      "predicate": {
        "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": false},
        "resources": [{"name": ".", "algorithm": "sha256", "digest": "<artifact SHA-256>"}],
        "opshero_manifest": {<ModelManifest.to_dict()>}
      }
    }

The payload is compact JSON with sorted keys; verifiers check the signature over the exact
payload bytes and never re-serialise, so the choice only makes output reproducible.

Compatibility with OpenSSF model_signing (``model_signing verify key``)
=======================================================================

The layout above is the one model_signing 1.1.1 writes for a single-file model signed
with an elliptic-curve key, plus one extra predicate member. Its verifier therefore
accepts an OpsHero envelope as it is, given the artifact file and the PEM public key
(``model_signing verify key --public_key K.pem --signature M.sig model.onnx``); flipping
a byte of the artifact makes it fail. The points that make this work, all taken from the
model_signing 1.1.1 source:

- predicate type ``https://model_signing/signature/v1.0``; its predicate documentation says
  v1.0 verifiers ignore predicate members other than ``serialization`` and ``resources``,
  which is where ``opshero_manifest`` lives;
- ``resources`` lists one file named ``"."``: model_signing names a single-file model's
  only resource by its path relative to itself. Verify the *file*, not its directory;
- the in-toto subject digest is model_signing's model digest: SHA-256 over the
  concatenated raw per-resource digests. For one file that is
  ``sha256(bytes.fromhex(artifact_sha256))``, **not** the artifact's own SHA-256. This is
  the one price of compatibility: generic in-toto tooling that matches a subject digest
  against the file bytes will not match. The artifact's own SHA-256 is signed twice
  instead (``resources[0].digest`` and ``opshero_manifest.artifact_sha256``) and
  `verify_artifact` requires all three values to agree;
- ECDSA P-256 / SHA-256, DER signature, and the bundle's ``publicKey.hint`` set to the
  SHA-256 of the PEM public key, which model_signing compares against the key it is given.

Refusals
========

`verify_artifact` raises `VerificationError` with one `RefusalCode` per reason. Checks
run in the DSSE order (signature before anything in the payload is trusted), cheap checks
before the artifact is hashed.

Retired keys: a key whose status is ``retired`` verifies nothing, whatever the manifest's
``created_at`` says. "Signed before retirement" cannot be established from a timestamp the
same key signed: whoever holds a retired (possibly leaked) key can backdate it, and these
envelopes carry no independent timestamp. Routine rotation is therefore: create the new key,
re-sign the live manifests with it (cheap, the artifact digests are already known), let
gateways pick up the new envelopes, then retire the old key.

Anti-rollback: ``release_counter`` grows per model with every signature. A gateway passes
the counter of what it has installed as ``min_release_counter``; a lower counter is refused,
an equal one is accepted so the installed model still verifies when the gateway restarts.

Expiry is judged against the caller's ``now`` (the gateway's clock); ``created_at`` in the
future is not refused, because a gateway with a slow clock must still install a fresh
manifest, and ``created_at`` proves nothing the signer could not choose anyway.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any, BinaryIO, NamedTuple

from protocol.dsse import (
    Envelope,
    EnvelopeFormatError,
    generate_signing_key,
    key_id,
    model_signing_key_hint,
    parse_bundle,
    public_key_pem,
    sign_bundle,
    signature_is_valid,
    strict_json_loads,
)

__all__ = [
    "MANIFEST_MEMBER",
    "MANIFEST_VERSION",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "InputSpec",
    "KeyStatus",
    "ModelManifest",
    "RefusalCode",
    "TrustedKey",
    "VerificationError",
    "VerifiedManifest",
    "build_statement",
    "format_rfc3339",
    "generate_signing_key",
    "key_id",
    "parse_rfc3339",
    "sha256_file",
    "sign_manifest",
    "verify_artifact",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
MANIFEST_MEMBER = "opshero_manifest"
MANIFEST_VERSION = 1

# model_signing's "files" serialization for one file hashed with SHA-256, without symlinks.
_SERIALIZATION = {"method": "files", "hash_type": "sha256", "allow_symlinks": False}
_SINGLE_FILE_RESOURCE_NAME = "."

# 1 MiB reads: large enough that per-call overhead vanishes next to SHA-256 itself, small
# enough that verifying a 2 GB artifact costs a megabyte of memory.
HASH_CHUNK_BYTES = 1 << 20

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)


class RefusalCode(StrEnum):
    """Why a signed model was refused; stable strings for logs, APIs and the CLI."""

    MALFORMED_ENVELOPE = "malformed_envelope"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    RETIRED_KEY = "retired_key"
    PAYLOAD_TYPE_MISMATCH = "payload_type_mismatch"
    STATEMENT_TYPE_MISMATCH = "statement_type_mismatch"
    MALFORMED_PAYLOAD = "malformed_payload"
    WRONG_MODEL = "wrong_model"
    ROLLBACK = "rollback"
    EXPIRED = "expired"
    SIZE_MISMATCH = "size_mismatch"
    DIGEST_MISMATCH = "digest_mismatch"


class VerificationError(Exception):
    """A signed model was refused: ``code`` for machines, ``message`` for people."""

    def __init__(self, code: RefusalCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"VerificationError({self.code.value!r}, {self.message!r})"


class KeyStatus(StrEnum):
    """Lifecycle of an organisation signing key as the verifier sees it."""

    ACTIVE = "active"
    RETIRED = "retired"


class TrustedKey(NamedTuple):
    """A public key a verifier trusts, with its lifecycle status (plain 3-tuples work too)."""

    public_pem: bytes
    status: str
    retired_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class InputSpec:
    """One model input: name, element type and shape; dynamic axes are named by strings."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]

    def __post_init__(self) -> None:
        _require_text(self.name, "input name")
        _require_text(self.dtype, f"dtype of input {self.name!r}")
        shape = tuple(self.shape) if isinstance(self.shape, list | tuple) else None
        if shape is None:
            raise ValueError(f"shape of input {self.name!r} must be a list")
        for dim in shape:
            is_static = isinstance(dim, int) and not isinstance(dim, bool) and dim >= 0
            is_dynamic = isinstance(dim, str) and dim != ""
            if not (is_static or is_dynamic):
                raise ValueError(
                    f"shape of input {self.name!r} has {dim!r}: a dimension is an integer"
                    " >= 0 or a non-empty axis name"
                )
        object.__setattr__(self, "shape", shape)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form: ``{"name", "dtype", "shape"}``."""
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, data: Any) -> InputSpec:
        """Build from the JSON form, refusing missing or unknown members (ValueError)."""
        if not isinstance(data, dict):
            raise ValueError("each input_schema entry must be an object")
        _require_members(data, {"name", "dtype", "shape"}, "input_schema entry")
        return cls(name=data["name"], dtype=data["dtype"], shape=data["shape"])


@dataclass(frozen=True, kw_only=True)
class ModelManifest:
    """What a signature vouches for: one validated model version of one organisation.

    Immutable and validated on construction, so a manifest that exists is one that could
    be signed; times are normalised to UTC so equality and serialisation agree.
    """

    organisation_slug: str
    organisation_id: int
    model_name: str
    version: str
    artifact_sha256: str
    artifact_size: int
    targets: tuple[str, ...]
    input_schema: tuple[InputSpec, ...]
    validation_report_sha256: str
    created_at: datetime
    expires_at: datetime
    release_counter: int
    signing_key_id: str
    manifest_version: int = field(default=MANIFEST_VERSION)

    def __post_init__(self) -> None:
        if self.manifest_version != MANIFEST_VERSION:
            raise ValueError(
                f"manifest_version {self.manifest_version!r} is not supported"
                f" (this code reads version {MANIFEST_VERSION})"
            )
        _require_text(self.organisation_slug, "organisation_slug")
        _require_int(self.organisation_id, "organisation_id", minimum=1)
        _require_text(self.model_name, "model_name")
        _require_text(self.version, "version")
        _require_sha256(self.artifact_sha256, "artifact_sha256")
        _require_int(self.artifact_size, "artifact_size", minimum=1)
        _require_sha256(self.validation_report_sha256, "validation_report_sha256")
        _require_sha256(self.signing_key_id, "signing_key_id")
        _require_int(self.release_counter, "release_counter", minimum=0)

        if not isinstance(self.targets, list | tuple) or not self.targets:
            raise ValueError("targets must list at least one hardware target")
        targets = tuple(self.targets)
        for target in targets:
            _require_text(target, "target name")
        if len(set(targets)) != len(targets):
            raise ValueError("targets must not repeat a target")
        object.__setattr__(self, "targets", targets)

        if not isinstance(self.input_schema, list | tuple):
            raise ValueError("input_schema must be a list")
        inputs = tuple(self.input_schema)
        if not all(isinstance(spec, InputSpec) for spec in inputs):
            raise ValueError("input_schema entries must be InputSpec")
        if len({spec.name for spec in inputs}) != len(inputs):
            raise ValueError("input_schema must not repeat an input name")
        object.__setattr__(self, "input_schema", inputs)

        created_at = _require_aware(self.created_at, "created_at")
        expires_at = _require_aware(self.expires_at, "expires_at")
        if expires_at <= created_at:
            raise ValueError("expires_at must be later than created_at")
        object.__setattr__(self, "created_at", created_at)
        object.__setattr__(self, "expires_at", expires_at)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form carried as ``predicate.opshero_manifest``."""
        return {
            "manifest_version": self.manifest_version,
            "organisation_slug": self.organisation_slug,
            "organisation_id": self.organisation_id,
            "model_name": self.model_name,
            "version": self.version,
            "artifact_sha256": self.artifact_sha256,
            "artifact_size": self.artifact_size,
            "targets": list(self.targets),
            "input_schema": [spec.to_dict() for spec in self.input_schema],
            "validation_report_sha256": self.validation_report_sha256,
            "created_at": format_rfc3339(self.created_at),
            "expires_at": format_rfc3339(self.expires_at),
            "release_counter": self.release_counter,
            "signing_key_id": self.signing_key_id,
        }

    @classmethod
    def from_dict(cls, data: Any) -> ModelManifest:
        """Build from the JSON form (ValueError on any missing, unknown or invalid member).

        Unknown members are refused rather than ignored: a later manifest version might add
        a restriction (say, allowed device groups) that an old gateway must not silently drop.
        """
        if not isinstance(data, dict):
            raise ValueError(f"{MANIFEST_MEMBER} must be an object")
        if data.get("manifest_version") != MANIFEST_VERSION:
            raise ValueError(
                f"manifest_version {data.get('manifest_version')!r} is not supported"
                f" (this code reads version {MANIFEST_VERSION})"
            )
        _require_members(data, set(_MANIFEST_MEMBERS), MANIFEST_MEMBER)
        for name in ("targets", "input_schema"):
            if not isinstance(data[name], list):
                raise ValueError(f"{name} must be a list")
        for name in ("created_at", "expires_at"):
            if not isinstance(data[name], str):
                raise ValueError(f"{name} must be an RFC 3339 string")
        return cls(
            organisation_slug=data["organisation_slug"],
            organisation_id=data["organisation_id"],
            model_name=data["model_name"],
            version=data["version"],
            artifact_sha256=data["artifact_sha256"],
            artifact_size=data["artifact_size"],
            targets=tuple(data["targets"]),
            input_schema=tuple(InputSpec.from_dict(entry) for entry in data["input_schema"]),
            validation_report_sha256=data["validation_report_sha256"],
            created_at=parse_rfc3339(data["created_at"]),
            expires_at=parse_rfc3339(data["expires_at"]),
            release_counter=data["release_counter"],
            signing_key_id=data["signing_key_id"],
        )


_MANIFEST_MEMBERS = (
    "manifest_version",
    "organisation_slug",
    "organisation_id",
    "model_name",
    "version",
    "artifact_sha256",
    "artifact_size",
    "targets",
    "input_schema",
    "validation_report_sha256",
    "created_at",
    "expires_at",
    "release_counter",
    "signing_key_id",
)


@dataclass(frozen=True, kw_only=True)
class VerifiedManifest:
    """The outcome of a successful verification: the manifest is now safe to act on."""

    manifest: ModelManifest
    key_id: str
    artifact_name: str


def format_rfc3339(moment: datetime) -> str:
    """Format an aware datetime as RFC 3339 in UTC with a ``Z`` (microseconds if non-zero)."""
    utc = _require_aware(moment, "datetime")
    if utc.microsecond:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 date-time (section 5.6) into an aware UTC datetime (ValueError).

    Stricter than ``datetime.fromisoformat``, which also takes a space separator, no
    offset, or a week date: a signed timestamp must mean the same thing to every reader.
    Fractions beyond microseconds are truncated; a leap second (``:60``) is refused
    because Python cannot represent it.
    """
    match = _RFC3339.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not an RFC 3339 date-time")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction, zulu, sign, offset_hours, offset_minutes = match.group(7, 8, 9, 10, 11)
    microsecond = int((fraction or "0")[:6].ljust(6, "0"))
    if zulu:
        tz = UTC
    else:
        offset = timedelta(hours=int(offset_hours), minutes=int(offset_minutes))
        if int(offset_hours) > 23 or int(offset_minutes) > 59:
            raise ValueError(f"{text!r} has an impossible UTC offset")
        tz = timezone(-offset if sign == "-" else offset)
    try:
        moment = datetime(year, month, day, hour, minute, second, microsecond, tzinfo=tz)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid date-time: {exc}") from exc
    return moment.astimezone(UTC)


def sha256_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """Stream a file through SHA-256 in 1 MiB reads; return (hex digest, size in bytes)."""
    with open(path, "rb") as stream:
        return _hash_stream(stream, limit=None)


def build_statement(*, manifest: ModelManifest, artifact_name: str) -> dict[str, Any]:
    """Return the in-toto Statement v1 (as a dict) that `sign_manifest` signs."""
    _require_artifact_name(artifact_name)
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {
                "name": artifact_name,
                "digest": {"sha256": _model_signing_root_digest(manifest.artifact_sha256)},
            }
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": dict(_SERIALIZATION),
            "resources": [
                {
                    "name": _SINGLE_FILE_RESOURCE_NAME,
                    "algorithm": "sha256",
                    "digest": manifest.artifact_sha256,
                }
            ],
            MANIFEST_MEMBER: manifest.to_dict(),
        },
    }


def sign_manifest(*, manifest: ModelManifest, private_key_pem: bytes, artifact_name: str) -> bytes:
    """Sign a manifest for the artifact file ``artifact_name``; return the bundle JSON bytes.

    The manifest must name the signing key (``signing_key_id``), so a key mix-up on the
    server is caught here rather than by every gateway later (ValueError). The artifact is
    not read: its digest and size come from the manifest, computed once at upload.
    """
    signer_id = key_id(public_key_pem(private_key_pem))
    if manifest.signing_key_id != signer_id:
        raise ValueError(
            f"manifest names signing key {manifest.signing_key_id} but the private key"
            f" given is {signer_id}"
        )
    statement = build_statement(manifest=manifest, artifact_name=artifact_name)
    payload = _encode_json(statement)
    return sign_bundle(payload=payload, payload_type=PAYLOAD_TYPE, private_key_pem=private_key_pem)


def verify_artifact(
    *,
    envelope_bytes: bytes,
    trusted_keys: Mapping[str, TrustedKey | tuple[bytes, str, datetime | None]],
    now: datetime,
    artifact_path: str | os.PathLike[str] | None = None,
    artifact_bytes: bytes | None = None,
    min_release_counter: int | None = None,
    expected_model: str | None = None,
) -> VerifiedManifest:
    """Verify a signed envelope and the artifact it covers; return the verified manifest.

    Give the artifact as ``artifact_path`` (streamed, never read whole) or
    ``artifact_bytes``. ``trusted_keys`` maps key id to (public PEM, status, retired_at),
    normally the organisation's keys from enrollment. ``expected_model`` is the model name
    the caller means to install; the organisation is pinned by whose keys are trusted.

    Raises `VerificationError` for every refusal. ValueError means the *caller* is wrong
    (both or neither artifact argument, naive ``now``, a trust-store entry whose key does
    not match its id); OSError means the artifact could not be read, which is not a
    verdict on the envelope.
    """
    if (artifact_path is None) == (artifact_bytes is None):
        raise ValueError("give exactly one of artifact_path and artifact_bytes")
    now = _require_aware(now, "now")

    try:
        envelope = parse_bundle(envelope_bytes)
    except EnvelopeFormatError as exc:
        raise VerificationError(RefusalCode.MALFORMED_ENVELOPE, str(exc)) from exc

    signer_id, trusted = _select_key(envelope=envelope, trusted_keys=trusted_keys)
    if not signature_is_valid(envelope=envelope, public_pem=trusted.public_pem):
        raise VerificationError(
            RefusalCode.BAD_SIGNATURE,
            f"the signature does not verify with key {signer_id}: the envelope was altered"
            " or signed by a different key",
        )
    if KeyStatus(trusted.status) is KeyStatus.RETIRED:
        when = f" at {format_rfc3339(trusted.retired_at)}" if trusted.retired_at else ""
        raise VerificationError(
            RefusalCode.RETIRED_KEY,
            f"signed by key {signer_id}, which was retired{when}; a retired key verifies"
            " nothing, ask the server for an envelope signed by a current key",
        )
    if envelope.payload_type != PAYLOAD_TYPE:
        raise VerificationError(
            RefusalCode.PAYLOAD_TYPE_MISMATCH,
            f"payload type is {envelope.payload_type[:100]!r}, expected {PAYLOAD_TYPE!r}",
        )

    artifact_name, manifest = _read_statement(envelope.payload)
    if manifest.signing_key_id != signer_id:
        raise VerificationError(
            RefusalCode.MALFORMED_PAYLOAD,
            f"manifest names signing key {manifest.signing_key_id} but was signed by {signer_id}",
        )
    if expected_model is not None and manifest.model_name != expected_model:
        raise VerificationError(
            RefusalCode.WRONG_MODEL,
            f"envelope is for model {manifest.model_name!r}, expected {expected_model!r}",
        )
    if min_release_counter is not None and manifest.release_counter < min_release_counter:
        raise VerificationError(
            RefusalCode.ROLLBACK,
            f"release counter {manifest.release_counter} is lower than the installed"
            f" {min_release_counter}: refusing to roll back {manifest.model_name!r}"
            f" to version {manifest.version!r}",
        )
    if now >= manifest.expires_at:
        raise VerificationError(
            RefusalCode.EXPIRED,
            f"manifest expired at {format_rfc3339(manifest.expires_at)}"
            f" (now {format_rfc3339(now)})",
        )

    _check_artifact(manifest=manifest, artifact_path=artifact_path, artifact_bytes=artifact_bytes)
    return VerifiedManifest(manifest=manifest, key_id=signer_id, artifact_name=artifact_name)


def _select_key(
    *,
    envelope: Envelope,
    trusted_keys: Mapping[str, TrustedKey | tuple[bytes, str, datetime | None]],
) -> tuple[str, TrustedKey]:
    """Pick the trusted key the envelope names: OpsHero keyid first, model_signing hint second.

    Both are unauthenticated hints; naming a key only decides which signature check runs.
    """
    chosen: str | None = None
    if envelope.keyid:
        if envelope.keyid not in trusted_keys:
            raise VerificationError(
                RefusalCode.UNKNOWN_KEY,
                f"signed by key {_shown_id(envelope.keyid)}, which is not among the trusted keys",
            )
        chosen = envelope.keyid
    elif envelope.key_hint:
        for candidate, entry in trusted_keys.items():
            if model_signing_key_hint(TrustedKey(*entry).public_pem) == envelope.key_hint:
                chosen = candidate
                break
        if chosen is None:
            raise VerificationError(
                RefusalCode.UNKNOWN_KEY,
                f"signed by the key with hint {_shown_id(envelope.key_hint)}, which is not"
                " among the trusted keys",
            )
    else:
        raise VerificationError(RefusalCode.UNKNOWN_KEY, "the envelope names no signing key")

    trusted = TrustedKey(*trusted_keys[chosen])
    if key_id(trusted.public_pem) != chosen:
        raise ValueError(f"trusted_keys[{chosen!r}] holds a key whose id is different")
    if envelope.key_hint and envelope.key_hint != model_signing_key_hint(trusted.public_pem):
        raise VerificationError(
            RefusalCode.MALFORMED_ENVELOPE,
            "the bundle's publicKey.hint and the DSSE keyid name different keys",
        )
    return chosen, trusted


def _shown_id(value: str) -> str:
    """Echo a key id from the envelope only if it looks like one: it is attacker-chosen text."""
    return value if _SHA256_HEX.fullmatch(value) else "(a malformed key id)"


def _read_statement(payload: bytes) -> tuple[str, ModelManifest]:
    """Parse the signed in-toto Statement; return (subject name, manifest).

    Runs only after the signature verified, yet stays strict: a trusted signer with a bug
    must not produce an envelope whose parts disagree about which bytes it covers.
    """
    try:
        statement = strict_json_loads(payload)
    except ValueError as exc:
        raise VerificationError(
            RefusalCode.MALFORMED_PAYLOAD, f"payload is not valid JSON: {exc}"
        ) from exc
    if not isinstance(statement, dict):
        raise VerificationError(RefusalCode.MALFORMED_PAYLOAD, "payload is not a JSON object")
    if statement.get("_type") != STATEMENT_TYPE:
        raise VerificationError(
            RefusalCode.STATEMENT_TYPE_MISMATCH,
            f"statement _type is {statement.get('_type')!r}, expected {STATEMENT_TYPE!r}",
        )
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise VerificationError(
            RefusalCode.STATEMENT_TYPE_MISMATCH,
            f"predicateType is {statement.get('predicateType')!r}, expected {PREDICATE_TYPE!r}",
        )
    try:
        return _statement_parts(statement)
    except ValueError as exc:
        raise VerificationError(RefusalCode.MALFORMED_PAYLOAD, str(exc)) from exc


def _statement_parts(statement: dict[str, Any]) -> tuple[str, ModelManifest]:
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise ValueError("statement must have exactly one subject")
    subject = subjects[0]
    artifact_name = subject.get("name")
    _require_artifact_name(artifact_name)
    subject_digest = subject.get("digest")
    if not isinstance(subject_digest, dict):
        raise ValueError("subject digest must be an object")

    predicate = statement.get("predicate")
    if not isinstance(predicate, dict):
        raise ValueError("predicate must be an object")
    if MANIFEST_MEMBER not in predicate:
        raise ValueError(
            f"predicate has no {MANIFEST_MEMBER}: a plain model_signing signature, not an"
            " OpsHero release"
        )
    manifest = ModelManifest.from_dict(predicate[MANIFEST_MEMBER])

    serialization = predicate.get("serialization")
    if not isinstance(serialization, dict) or any(
        serialization.get(name) != value for name, value in _SERIALIZATION.items()
    ):
        raise ValueError(f"predicate serialization must be {_SERIALIZATION}")
    expected_resources = [
        {
            "name": _SINGLE_FILE_RESOURCE_NAME,
            "algorithm": "sha256",
            "digest": manifest.artifact_sha256,
        }
    ]
    if predicate.get("resources") != expected_resources:
        raise ValueError(
            "predicate resources must list exactly the one artifact with the manifest's SHA-256"
        )
    if subject_digest.get("sha256") != _model_signing_root_digest(manifest.artifact_sha256):
        raise ValueError("subject digest does not match the manifest's artifact SHA-256")
    return artifact_name, manifest


def _check_artifact(
    *,
    manifest: ModelManifest,
    artifact_path: str | os.PathLike[str] | None,
    artifact_bytes: bytes | None,
) -> None:
    """Compare size, then SHA-256, reading at most one byte more than the signed size."""
    expected_size = manifest.artifact_size
    if artifact_bytes is not None:
        digest, size = hashlib.sha256(artifact_bytes).hexdigest(), len(artifact_bytes)
        _require_size(size=size, expected=expected_size)
    else:
        assert artifact_path is not None
        with open(artifact_path, "rb") as stream:
            # Refuse on the size from the file system before hashing anything: a wrong
            # 2 GB download should not cost a minute of SHA-256 to be refused.
            _require_size(size=os.fstat(stream.fileno()).st_size, expected=expected_size)
            digest, size = _hash_stream(stream, limit=expected_size + 1)
        # The file may have changed between fstat and the last read.
        _require_size(size=size, expected=expected_size)
    if digest != manifest.artifact_sha256:
        raise VerificationError(
            RefusalCode.DIGEST_MISMATCH,
            f"artifact SHA-256 is {digest}, the signed manifest says"
            f" {manifest.artifact_sha256}: the file was altered or is a different file",
        )


def _require_size(*, size: int, expected: int) -> None:
    if size != expected:
        raise VerificationError(
            RefusalCode.SIZE_MISMATCH,
            f"artifact is {size} bytes, the signed manifest says {expected}",
        )


def _hash_stream(stream: BinaryIO, *, limit: int | None) -> tuple[str, int]:
    digest = hashlib.sha256()
    buffer = bytearray(HASH_CHUNK_BYTES)
    view = memoryview(buffer)
    total = 0
    while True:
        wanted = len(buffer) if limit is None else min(len(buffer), limit - total)
        if wanted <= 0:
            break
        count = stream.readinto(view[:wanted])
        if not count:
            break
        digest.update(view[:count])
        total += count
    return digest.hexdigest(), total


def _model_signing_root_digest(artifact_sha256: str) -> str:
    """model_signing's subject digest: SHA-256 over the raw resource digests, in order."""
    return hashlib.sha256(bytes.fromhex(artifact_sha256)).hexdigest()


def _encode_json(document: Any) -> bytes:
    text = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def _require_artifact_name(name: Any) -> None:
    """An artifact name is a bare file name: it is informative, never a path to open."""
    _require_text(name, "artifact name")
    if name in {".", ".."} or any(char in name for char in "/\\") or not name.isprintable():
        raise ValueError(f"artifact name {name!r} must be a plain file name")


def _require_members(data: dict[str, Any], expected: set[str], where: str) -> None:
    missing = expected - set(data)
    unknown = set(data) - expected
    if missing:
        raise ValueError(f"{where} is missing {sorted(missing)}")
    if unknown:
        raise ValueError(f"{where} has unknown members {sorted(unknown)}")


def _require_text(value: Any, what: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string")


def _require_int(value: Any, what: str, *, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}, got {value!r}")


def _require_sha256(value: Any, what: str) -> None:
    if not isinstance(value, str) or not _SHA256_HEX.fullmatch(value):
        raise ValueError(f"{what} must be 64 lowercase hex characters")


def _require_aware(value: Any, what: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime")
    return value.astimezone(UTC)
