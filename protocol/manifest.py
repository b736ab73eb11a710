"""The signed model manifest: what the server signs and what a gateway checks before loading.

No Django here: the server (``fleet`` signing service), the gateway agent and the offline
``python -m protocol.verify`` command all call this module, so there is one definition of
what a valid signed model is.

Artifacts
=========

Manifest version 2 signs one of two kinds of artifact (``artifact_kind``):

``"onnx"``
    a single ``.onnx`` file. ``entrypoint`` is its file name, ``files`` has exactly that
    one entry, and ``artifact_sha256``/``artifact_size`` are the file's own.
``"bundle"``
    a ``.zip`` or ``.tar`` archive (see `protocol.bundles`) holding exactly one ``.onnx``
    file, the ``entrypoint`` (a path inside the archive), plus its external data and any
    side files. ``files`` lists every regular file of the unpacked archive with its SHA-256
    and size; ``artifact_sha256``/``artifact_size`` are those of the *archive as stored and
    downloaded* (the transport digest).

Wire format
===========

A Sigstore bundle (``application/vnd.dev.sigstore.bundle.v0.3+json``) holding one DSSE
envelope (`protocol.dsse`), payload type ``application/vnd.in-toto+json``, whose payload is
an in-toto Statement v1. For a single ``.onnx`` file::

    {
      "_type": "https://in-toto.io/Statement/v1",
      "subject": [{"name": "<entrypoint file name>",
                   "digest": {"sha256": "<SHA-256 of the file's raw SHA-256 digest>"}}],
      "predicateType": "https://model_signing/signature/v1.0",
      "predicate": {
        "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": false},
        "resources": [{"name": ".", "algorithm": "sha256", "digest": "<file SHA-256>"}],
        "opshero_manifest": {<ModelManifest.to_dict()>}
      }
    }

For a bundle, model_signing's directory layout: one resource per file of the unpacked
archive, named by its POSIX path relative to the bundle root::

    "subject": [{"name": "<bundle name>",
                 "digest": {"sha256": "<SHA-256 over the raw file digests, in resource order>"}}],
    "predicate": {
      "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": false},
      "resources": [{"name": "model.onnx", "algorithm": "sha256", "digest": "<SHA-256>"},
                    {"name": "weights/model.onnx.data", "algorithm": "sha256", ...}],
      "opshero_manifest": {<ModelManifest.to_dict()>}
    }

Resource order is model_signing's: sorted by ``pathlib.PurePosixPath``, that is by the tuple
of path components, each compared by code point (so ``"B"`` < ``"a/b"`` < ``"a.x"``, which a
plain string sort would get wrong). The subject name of a bundle is informative only (for
model_signing it is the directory's name); the archive's transport digest is signed only in
``opshero_manifest.artifact_sha256``, because model_signing has no place for it.

The payload is compact JSON with sorted keys; verifiers check the signature over the exact
payload bytes and never re-serialise, so the choice only makes output reproducible.

Compatibility with OpenSSF model_signing (``model_signing verify key``)
=======================================================================

The layouts above are the ones model_signing 1.1.1 writes for a single-file model and for a
model directory signed with an elliptic-curve key, plus one extra predicate member. Its
verifier therefore accepts an OpsHero envelope as it is, given the ``.onnx`` file (or the
*unpacked bundle directory*) and the PEM public key
(``model_signing verify key --public_key K.pem --signature M.sig model.onnx``); changing a
byte of any file, adding a file or removing one makes it fail. The points that make this
work, all taken from the model_signing 1.1.1 source:

- predicate type ``https://model_signing/signature/v1.0``; its predicate documentation says
  v1.0 verifiers ignore predicate members other than ``serialization`` and ``resources``,
  which is where ``opshero_manifest`` lives;
- a single-file model's only resource is named ``"."`` (its path relative to itself): verify
  the *file*, not its directory. A directory's resources are the relative paths of all its
  regular files; model_signing's verifier always skips ``.git``, ``.github``,
  ``.gitattributes`` and ``.gitignore`` at the top, so a bundle may not contain those names;
- the in-toto subject digest is model_signing's model digest: SHA-256 over the
  concatenated raw per-resource digests, in resource order. For one file that is
  ``sha256(bytes.fromhex(artifact_sha256))``, **not** the artifact's own SHA-256: generic
  in-toto tooling that matches a subject digest against the file bytes will not match. Each
  file's own SHA-256 is signed in ``resources`` and again in ``opshero_manifest.files``, and
  `verify_artifact` requires all of them to agree;
- ECDSA P-256 / SHA-256, DER signature, and the bundle's ``publicKey.hint`` set to the
  SHA-256 of the PEM public key, which model_signing compares against the key it is given.

Verifying an artifact
=====================

`verify_artifact` takes the artifact as ``artifact_path`` or ``artifact_bytes``; what is
checked depends on the signed ``artifact_kind`` and on what the path is
(`VerifiedManifest.checked` says which check ran):

- ``"onnx"``: a file (or bytes): its size and SHA-256 against ``artifact_sha256``;
- ``"bundle"`` given a *file* (or bytes): the archive as downloaded, its size and SHA-256
  against ``artifact_sha256`` (``checked == "archive"``). This is the transport check a
  gateway runs before unpacking; it says nothing about what unpacking will produce;
- ``"bundle"`` given a *directory*: the unpacked bundle, every file listed in ``files``
  checked for size then SHA-256 (``checked == "directory"``). A listed file that is absent
  is ``missing_file``; any other regular file, symbolic link or special file in the tree is
  ``unexpected_file``; empty directories are ignored, as model_signing ignores them.
- a directory for an ``"onnx"`` envelope is ``artifact_kind_mismatch``.

Version 1 manifests
===================

Version 1 (one artifact, ``targets`` as a list of names, one ``validation_report_sha256``)
is still read: `upgrade_v1` turns its dict into a version 2 dict, and
``ModelManifest.from_dict(data, v1_artifact_name=...)`` calls it when ``data`` is version 1.
Version 1 did not sign the artifact's file name, so the caller supplies it (the verifier
uses the statement's subject name, which version 1 envelopes always carried). The upgrade
gives every old target the old report digest (``documentary`` false), no I/O contract, no
waiver, no variant, and ``four_eyes = "relaxed"``: version 1 did not record whether a second
person approved, and an upgrade must not claim more than was signed.
`VerifiedManifest.signed_manifest_version` says which version the signature covered.

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
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Literal, NamedTuple, get_args

from protocol.contract import IoContract
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
    "ArtifactKind",
    "FileEntry",
    "FourEyes",
    "InputSpec",
    "KeyStatus",
    "ModelManifest",
    "RefusalCode",
    "TargetEvidence",
    "TrustedKey",
    "VariantKind",
    "VariantOrigin",
    "VerificationError",
    "VerifiedManifest",
    "Waiver",
    "build_statement",
    "format_rfc3339",
    "generate_signing_key",
    "key_id",
    "model_signing_order",
    "parse_rfc3339",
    "sha256_file",
    "sign_manifest",
    "upgrade_v1",
    "verify_artifact",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
MANIFEST_MEMBER = "opshero_manifest"
MANIFEST_VERSION = 2
_READABLE_VERSIONS = (1, 2)

ArtifactKind = Literal["onnx", "bundle"]
FourEyes = Literal["enforced", "relaxed"]
VariantKind = Literal["int8", "fp16"]
_ARTIFACT_KINDS: tuple[str, ...] = get_args(ArtifactKind)
_FOUR_EYES: tuple[str, ...] = get_args(FourEyes)
_VARIANT_KINDS: tuple[str, ...] = get_args(VariantKind)

# model_signing's "files" serialization hashed with SHA-256, without symlinks; the same for
# one file and for a directory.
_SERIALIZATION = {"method": "files", "hash_type": "sha256", "allow_symlinks": False}
_SINGLE_FILE_RESOURCE_NAME = "."
# Top-level names model_signing's verifier always leaves out of a directory's manifest: a
# bundle holding one of them could never verify there.
MODEL_SIGNING_IGNORED_NAMES = frozenset({".git", ".github", ".gitattributes", ".gitignore"})
MAX_FILE_PATH_CHARS = 255
MAX_WAIVER_REASON_CHARS = 2000

# 1 MiB reads: large enough that per-call overhead vanishes next to SHA-256 itself, small
# enough that verifying a 2 GB artifact costs a megabyte of memory.
HASH_CHUNK_BYTES = 1 << 20

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)
_DRIVE = re.compile(r"^[A-Za-z]:")


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
    ARTIFACT_KIND_MISMATCH = "artifact_kind_mismatch"
    MISSING_FILE = "missing_file"
    UNEXPECTED_FILE = "unexpected_file"


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
class FileEntry:
    """One file of a signed artifact: POSIX path relative to the artifact root, digest, size.

    The path is validated as a member name, never as a place on disk: no absolute path, no
    ``..``, ``.`` or empty component, no backslash, drive letter or control character.
    """

    path: str
    sha256: str
    size: int

    def __post_init__(self) -> None:
        require_relative_path(self.path, "file path")
        _require_sha256(self.sha256, f"sha256 of {self.path!r}")
        _require_int(self.size, f"size of {self.path!r}", minimum=0)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form: ``{"path", "sha256", "size"}``."""
        return {"path": self.path, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_dict(cls, data: Any) -> FileEntry:
        """Build from the JSON form, refusing missing or unknown members (ValueError)."""
        _require_object(data, "files entry")
        _require_members(data, {"path", "sha256", "size"}, "files entry")
        return cls(path=data["path"], sha256=data["sha256"], size=data["size"])


@dataclass(frozen=True, kw_only=True)
class TargetEvidence:
    """A hardware target the release is signed for, and the validation report behind it.

    ``documentary`` marks a target whose report was reviewed but not produced by running the
    model on that target (say, an operator-coverage check only): gateways and people can
    tell a measured target from a paper one.
    """

    name: str
    validation_report_sha256: str
    documentary: bool

    def __post_init__(self) -> None:
        _require_text(self.name, "target name")
        _require_sha256(self.validation_report_sha256, f"validation report of {self.name!r}")
        if not isinstance(self.documentary, bool):
            raise ValueError(f"documentary of target {self.name!r} must be true or false")

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form: ``{"name", "validation_report_sha256", "documentary"}``."""
        return {
            "name": self.name,
            "validation_report_sha256": self.validation_report_sha256,
            "documentary": self.documentary,
        }

    @classmethod
    def from_dict(cls, data: Any) -> TargetEvidence:
        """Build from the JSON form, refusing missing or unknown members (ValueError)."""
        _require_object(data, "targets entry")
        _require_members(data, {"name", "validation_report_sha256", "documentary"}, "targets entry")
        return cls(
            name=data["name"],
            validation_report_sha256=data["validation_report_sha256"],
            documentary=data["documentary"],
        )


@dataclass(frozen=True, kw_only=True)
class Waiver:
    """Why a release was signed without a measured accuracy, and who approved that."""

    reason: str
    approved_by: str

    def __post_init__(self) -> None:
        _require_text(self.reason, "accuracy_waiver.reason")
        if len(self.reason) > MAX_WAIVER_REASON_CHARS:
            raise ValueError(
                f"accuracy_waiver.reason is {len(self.reason)} characters, at most"
                f" {MAX_WAIVER_REASON_CHARS}"
            )
        _require_text(self.approved_by, "accuracy_waiver.approved_by")

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form: ``{"reason", "approved_by"}``."""
        return {"reason": self.reason, "approved_by": self.approved_by}

    @classmethod
    def from_dict(cls, data: Any) -> Waiver:
        """Build from the JSON form, refusing missing or unknown members (ValueError)."""
        _require_object(data, "accuracy_waiver")
        _require_members(data, {"reason", "approved_by"}, "accuracy_waiver")
        return cls(reason=data["reason"], approved_by=data["approved_by"])


@dataclass(frozen=True, kw_only=True)
class VariantOrigin:
    """The release a quantised variant was derived from (its version and artifact SHA-256)."""

    kind: VariantKind
    parent_version: str
    parent_sha256: str

    def __post_init__(self) -> None:
        if self.kind not in _VARIANT_KINDS or not isinstance(self.kind, str):
            raise ValueError(
                f"variant.kind must be one of {list(_VARIANT_KINDS)}, got {self.kind!r}"
            )
        _require_text(self.parent_version, "variant.parent_version")
        _require_sha256(self.parent_sha256, "variant.parent_sha256")

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form: ``{"kind", "parent_version", "parent_sha256"}``."""
        return {
            "kind": self.kind,
            "parent_version": self.parent_version,
            "parent_sha256": self.parent_sha256,
        }

    @classmethod
    def from_dict(cls, data: Any) -> VariantOrigin:
        """Build from the JSON form, refusing missing or unknown members (ValueError)."""
        _require_object(data, "variant")
        _require_members(data, {"kind", "parent_version", "parent_sha256"}, "variant")
        return cls(
            kind=data["kind"],
            parent_version=data["parent_version"],
            parent_sha256=data["parent_sha256"],
        )


@dataclass(frozen=True, kw_only=True)
class ModelManifest:
    """What a signature vouches for: one validated model version of one organisation.

    Immutable and validated on construction, so a manifest that exists is one that could
    be signed; times are normalised to UTC and ``files`` to model_signing's resource order,
    so equality and serialisation agree.
    """

    organisation_slug: str
    organisation_id: int
    model_name: str
    version: str
    artifact_kind: ArtifactKind
    artifact_sha256: str
    artifact_size: int
    entrypoint: str
    files: tuple[FileEntry, ...]
    targets: tuple[TargetEvidence, ...]
    input_schema: tuple[InputSpec, ...]
    four_eyes: FourEyes
    created_at: datetime
    expires_at: datetime
    release_counter: int
    signing_key_id: str
    io_contract: IoContract | None = None
    accuracy_waiver: Waiver | None = None
    variant: VariantOrigin | None = None
    manifest_version: int = field(default=MANIFEST_VERSION)

    def __post_init__(self) -> None:
        if self.manifest_version != MANIFEST_VERSION:
            raise ValueError(
                f"manifest_version {self.manifest_version!r} is not supported"
                f" (this code writes version {MANIFEST_VERSION})"
            )
        _require_text(self.organisation_slug, "organisation_slug")
        _require_int(self.organisation_id, "organisation_id", minimum=1)
        _require_text(self.model_name, "model_name")
        _require_text(self.version, "version")
        _require_sha256(self.artifact_sha256, "artifact_sha256")
        _require_int(self.artifact_size, "artifact_size", minimum=1)
        _require_sha256(self.signing_key_id, "signing_key_id")
        _require_int(self.release_counter, "release_counter", minimum=0)
        if self.four_eyes not in _FOUR_EYES or not isinstance(self.four_eyes, str):
            raise ValueError(f"four_eyes must be one of {list(_FOUR_EYES)}, got {self.four_eyes!r}")

        object.__setattr__(self, "files", self._checked_files())
        object.__setattr__(self, "targets", self._checked_targets())

        if not isinstance(self.input_schema, list | tuple):
            raise ValueError("input_schema must be a list")
        inputs = tuple(self.input_schema)
        if not all(isinstance(spec, InputSpec) for spec in inputs):
            raise ValueError("input_schema entries must be InputSpec")
        if len({spec.name for spec in inputs}) != len(inputs):
            raise ValueError("input_schema must not repeat an input name")
        object.__setattr__(self, "input_schema", inputs)

        if self.io_contract is not None and not isinstance(self.io_contract, IoContract):
            raise ValueError("io_contract must be an IoContract or None")
        if self.accuracy_waiver is not None and not isinstance(self.accuracy_waiver, Waiver):
            raise ValueError("accuracy_waiver must be a Waiver or None")
        if self.variant is not None:
            if not isinstance(self.variant, VariantOrigin):
                raise ValueError("variant must be a VariantOrigin or None")
            if self.variant.parent_sha256 == self.artifact_sha256:
                raise ValueError("variant.parent_sha256 is this artifact's own SHA-256")

        created_at = _require_aware(self.created_at, "created_at")
        expires_at = _require_aware(self.expires_at, "expires_at")
        if expires_at <= created_at:
            raise ValueError("expires_at must be later than created_at")
        object.__setattr__(self, "created_at", created_at)
        object.__setattr__(self, "expires_at", expires_at)

    def _checked_files(self) -> tuple[FileEntry, ...]:
        if self.artifact_kind not in _ARTIFACT_KINDS or not isinstance(self.artifact_kind, str):
            raise ValueError(
                f"artifact_kind must be one of {list(_ARTIFACT_KINDS)}, got {self.artifact_kind!r}"
            )
        require_relative_path(self.entrypoint, "entrypoint")
        if not isinstance(self.files, list | tuple) or not self.files:
            raise ValueError("files must list at least one file")
        if not all(isinstance(entry, FileEntry) for entry in self.files):
            raise ValueError("files entries must be FileEntry")
        files = tuple(sorted(self.files, key=lambda entry: model_signing_order(entry.path)))

        if self.artifact_kind == "onnx":
            if "/" in self.entrypoint:
                raise ValueError("the entrypoint of a single-file artifact is a plain file name")
            only = FileEntry(
                path=self.entrypoint, sha256=self.artifact_sha256, size=self.artifact_size
            )
            if files != (only,):
                raise ValueError(
                    "files of a single-file artifact must be exactly the entrypoint with the"
                    " artifact's SHA-256 and size"
                )
            return files

        folded: dict[str, str] = {}
        folders: set[str] = set()
        for entry in files:
            key = entry.path.casefold()
            if key in folded:
                raise ValueError(
                    f"files repeat the path {entry.path!r} (also as {folded[key]!r};"
                    " paths must differ in more than letter case)"
                )
            folded[key] = entry.path
            parts = key.split("/")
            if parts[0] in MODEL_SIGNING_IGNORED_NAMES:
                raise ValueError(
                    f"file {entry.path!r} is under a name model_signing never verifies"
                    f" ({sorted(MODEL_SIGNING_IGNORED_NAMES)})"
                )
            folders.update("/".join(parts[:depth]) for depth in range(1, len(parts)))
        clashes = sorted(set(folded) & folders)
        if clashes:
            raise ValueError(f"files use {folded[clashes[0]]!r} both as a file and as a folder")
        models = [entry.path for entry in files if entry.path.casefold().endswith(".onnx")]
        if models != [self.entrypoint]:
            raise ValueError(
                f"a bundle must hold exactly one .onnx file, its entrypoint {self.entrypoint!r};"
                f" files list {models!r}"
            )
        return files

    def _checked_targets(self) -> tuple[TargetEvidence, ...]:
        if not isinstance(self.targets, list | tuple) or not self.targets:
            raise ValueError("targets must list at least one hardware target")
        targets = tuple(self.targets)
        if not all(isinstance(target, TargetEvidence) for target in targets):
            raise ValueError("targets entries must be TargetEvidence")
        if len({target.name for target in targets}) != len(targets):
            raise ValueError("targets must not repeat a target")
        return targets

    @property
    def target_names(self) -> tuple[str, ...]:
        """The names of the signed targets, in signed order."""
        return tuple(target.name for target in self.targets)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form carried as ``predicate.opshero_manifest`` (all members)."""
        return {
            "manifest_version": self.manifest_version,
            "organisation_slug": self.organisation_slug,
            "organisation_id": self.organisation_id,
            "model_name": self.model_name,
            "version": self.version,
            "artifact_kind": self.artifact_kind,
            "artifact_sha256": self.artifact_sha256,
            "artifact_size": self.artifact_size,
            "entrypoint": self.entrypoint,
            "files": [entry.to_dict() for entry in self.files],
            "targets": [target.to_dict() for target in self.targets],
            "input_schema": [spec.to_dict() for spec in self.input_schema],
            "io_contract": None if self.io_contract is None else self.io_contract.to_dict(),
            "accuracy_waiver": (
                None if self.accuracy_waiver is None else self.accuracy_waiver.to_dict()
            ),
            "four_eyes": self.four_eyes,
            "variant": None if self.variant is None else self.variant.to_dict(),
            "created_at": format_rfc3339(self.created_at),
            "expires_at": format_rfc3339(self.expires_at),
            "release_counter": self.release_counter,
            "signing_key_id": self.signing_key_id,
        }

    @classmethod
    def from_dict(cls, data: Any, *, v1_artifact_name: str | None = None) -> ModelManifest:
        """Build from the JSON form (ValueError on any missing, unknown or invalid member).

        Unknown members are refused rather than ignored: a later manifest version might add
        a restriction (say, allowed device groups) that an old gateway must not silently drop.
        A version 1 dict is upgraded with `upgrade_v1`, which needs the artifact's file name
        (``v1_artifact_name``); without it a version 1 dict is refused.
        """
        _require_object(data, MANIFEST_MEMBER)
        version = data.get("manifest_version")
        if version not in _READABLE_VERSIONS or isinstance(version, bool):
            raise ValueError(
                f"manifest_version {version!r} is not supported"
                f" (this code reads versions {', '.join(map(str, _READABLE_VERSIONS))})"
            )
        if version == 1:
            if v1_artifact_name is None:
                raise ValueError(
                    "a version 1 manifest names no artifact file: give v1_artifact_name to"
                    " upgrade it"
                )
            data = upgrade_v1(data, artifact_name=v1_artifact_name)
        _require_members(data, set(_MANIFEST_MEMBERS), MANIFEST_MEMBER)
        for name in ("files", "targets", "input_schema"):
            if not isinstance(data[name], list):
                raise ValueError(f"{name} must be a list")
        for name in ("created_at", "expires_at"):
            if not isinstance(data[name], str):
                raise ValueError(f"{name} must be an RFC 3339 string")
        contract, waiver, variant = data["io_contract"], data["accuracy_waiver"], data["variant"]
        return cls(
            organisation_slug=data["organisation_slug"],
            organisation_id=data["organisation_id"],
            model_name=data["model_name"],
            version=data["version"],
            artifact_kind=data["artifact_kind"],
            artifact_sha256=data["artifact_sha256"],
            artifact_size=data["artifact_size"],
            entrypoint=data["entrypoint"],
            files=tuple(FileEntry.from_dict(entry) for entry in data["files"]),
            targets=tuple(TargetEvidence.from_dict(entry) for entry in data["targets"]),
            input_schema=tuple(InputSpec.from_dict(entry) for entry in data["input_schema"]),
            io_contract=None if contract is None else IoContract.from_dict(contract),
            accuracy_waiver=None if waiver is None else Waiver.from_dict(waiver),
            four_eyes=data["four_eyes"],
            variant=None if variant is None else VariantOrigin.from_dict(variant),
            created_at=parse_rfc3339(data["created_at"]),
            expires_at=parse_rfc3339(data["expires_at"]),
            release_counter=data["release_counter"],
            signing_key_id=data["signing_key_id"],
            manifest_version=data["manifest_version"],
        )


_MANIFEST_MEMBERS = (
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
)

_V1_MEMBERS = (
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


def upgrade_v1(data: Any, *, artifact_name: str) -> dict[str, Any]:
    """Turn a version 1 manifest dict into the version 2 dict it stands for (ValueError).

    Version 1 signed a single ``.onnx`` file whose name it did not record:
    ``artifact_name`` becomes ``entrypoint`` and the one ``files`` entry. Each old target
    gets the single old ``validation_report_sha256`` (``documentary`` false); the members
    version 1 had no notion of become "nothing recorded": no I/O contract, no waiver, no
    variant, and ``four_eyes = "relaxed"``.
    """
    _require_object(data, MANIFEST_MEMBER)
    if data.get("manifest_version") != 1 or isinstance(data.get("manifest_version"), bool):
        raise ValueError(f"upgrade_v1 reads version 1, got {data.get('manifest_version')!r}")
    _require_members(data, set(_V1_MEMBERS), f"{MANIFEST_MEMBER} (version 1)")
    _require_artifact_name(artifact_name)
    if not isinstance(data["targets"], list):
        raise ValueError("targets must be a list")
    report = data["validation_report_sha256"]
    return {
        "manifest_version": MANIFEST_VERSION,
        "organisation_slug": data["organisation_slug"],
        "organisation_id": data["organisation_id"],
        "model_name": data["model_name"],
        "version": data["version"],
        "artifact_kind": "onnx",
        "artifact_sha256": data["artifact_sha256"],
        "artifact_size": data["artifact_size"],
        "entrypoint": artifact_name,
        "files": [
            {
                "path": artifact_name,
                "sha256": data["artifact_sha256"],
                "size": data["artifact_size"],
            }
        ],
        "targets": [
            {"name": name, "validation_report_sha256": report, "documentary": False}
            for name in data["targets"]
        ],
        "input_schema": data["input_schema"],
        "io_contract": None,
        "accuracy_waiver": None,
        "four_eyes": "relaxed",
        "variant": None,
        "created_at": data["created_at"],
        "expires_at": data["expires_at"],
        "release_counter": data["release_counter"],
        "signing_key_id": data["signing_key_id"],
    }


CheckedAs = Literal["file", "archive", "directory"]


@dataclass(frozen=True, kw_only=True)
class VerifiedManifest:
    """The outcome of a successful verification: the manifest is now safe to act on.

    ``checked`` says what was compared: the single ``"file"``, a bundle's ``"archive"``
    (transport digest only) or a bundle's unpacked ``"directory"`` (every file).
    ``signed_manifest_version`` is 1 when ``manifest`` was upgraded from a version 1
    signature.
    """

    manifest: ModelManifest
    key_id: str
    artifact_name: str
    checked: CheckedAs
    signed_manifest_version: int


def model_signing_order(path: str) -> tuple[str, ...]:
    """Sort key of a resource name in model_signing: its ``PurePosixPath`` components."""
    return PurePosixPath(path).parts


def require_relative_path(value: Any, what: str) -> None:
    """Refuse anything but a plain relative POSIX path inside an artifact (ValueError)."""
    _require_text(value, what)
    if len(value) > MAX_FILE_PATH_CHARS:
        raise ValueError(f"{what} is longer than {MAX_FILE_PATH_CHARS} characters")
    if not value.isprintable():
        raise ValueError(f"{what} {value!r} has a control character")
    if "\\" in value or _DRIVE.match(value):
        raise ValueError(f"{what} {value!r} must use '/' and no drive letter")
    if value.startswith("/"):
        raise ValueError(f"{what} {value!r} must be relative")
    if any(part in {"", ".", ".."} for part in value.split("/")):
        raise ValueError(f"{what} {value!r} has an empty, '.' or '..' component")


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


def build_statement(*, manifest: ModelManifest, artifact_name: str | None = None) -> dict[str, Any]:
    """Return the in-toto Statement v1 (as a dict) that `sign_manifest` signs.

    ``artifact_name`` is the subject name. For a single file it is the entrypoint (the
    default; another name is a ValueError). For a bundle it is informative, like a model
    directory's name in model_signing; the default is the model name.
    """
    if artifact_name is None:
        artifact_name = manifest.entrypoint if manifest.artifact_kind == "onnx" else None
        artifact_name = artifact_name or manifest.model_name
    _require_artifact_name(artifact_name)
    if manifest.artifact_kind == "onnx" and artifact_name != manifest.entrypoint:
        raise ValueError(
            f"artifact name {artifact_name!r} is not the manifest's entrypoint"
            f" {manifest.entrypoint!r}"
        )
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": artifact_name, "digest": {"sha256": _model_signing_root_digest(manifest)}}
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": dict(_SERIALIZATION),
            "resources": _resources(manifest),
            MANIFEST_MEMBER: manifest.to_dict(),
        },
    }


def sign_manifest(
    *, manifest: ModelManifest, private_key_pem: bytes, artifact_name: str | None = None
) -> bytes:
    """Sign a manifest; return the Sigstore bundle JSON bytes (see `build_statement`).

    The manifest must name the signing key (``signing_key_id``), so a key mix-up on the
    server is caught here rather than by every gateway later (ValueError). The artifact is
    not read: its digests and sizes come from the manifest, computed once at upload.
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
    ``artifact_bytes``. For a bundle envelope ``artifact_path`` may be the archive (its
    transport digest is checked) or the unpacked directory (every file is checked); see the
    module docstring. ``trusted_keys`` maps key id to (public PEM, status, retired_at),
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

    artifact_name, manifest, signed_version = _read_statement(envelope.payload)
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

    if artifact_path is not None and Path(artifact_path).is_dir():
        if manifest.artifact_kind != "bundle":
            raise VerificationError(
                RefusalCode.ARTIFACT_KIND_MISMATCH,
                "the envelope signs a single .onnx file, but a directory was given:"
                " verify the file itself",
            )
        _check_directory(manifest=manifest, root=Path(artifact_path))
        checked: CheckedAs = "directory"
    else:
        _check_artifact(
            manifest=manifest, artifact_path=artifact_path, artifact_bytes=artifact_bytes
        )
        checked = "file" if manifest.artifact_kind == "onnx" else "archive"
    return VerifiedManifest(
        manifest=manifest,
        key_id=signer_id,
        artifact_name=artifact_name,
        checked=checked,
        signed_manifest_version=signed_version,
    )


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


def _read_statement(payload: bytes) -> tuple[str, ModelManifest, int]:
    """Parse the signed in-toto Statement; return (subject name, manifest, signed version).

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


def _statement_parts(statement: dict[str, Any]) -> tuple[str, ModelManifest, int]:
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
    signed = predicate[MANIFEST_MEMBER]
    signed_version = signed.get("manifest_version") if isinstance(signed, dict) else None
    manifest = ModelManifest.from_dict(signed, v1_artifact_name=artifact_name)
    if manifest.artifact_kind == "onnx" and artifact_name != manifest.entrypoint:
        raise ValueError(
            f"subject {artifact_name!r} is not the manifest's entrypoint {manifest.entrypoint!r}"
        )

    serialization = predicate.get("serialization")
    if not isinstance(serialization, dict) or any(
        serialization.get(name) != value for name, value in _SERIALIZATION.items()
    ):
        raise ValueError(f"predicate serialization must be {_SERIALIZATION}")
    if predicate.get("resources") != _resources(manifest):
        raise ValueError(
            "predicate resources must list exactly the manifest's files with their SHA-256,"
            " in model_signing order"
        )
    if subject_digest.get("sha256") != _model_signing_root_digest(manifest):
        raise ValueError("subject digest does not match the manifest's file digests")
    assert isinstance(signed_version, int)
    return artifact_name, manifest, signed_version


def _resources(manifest: ModelManifest) -> list[dict[str, str]]:
    """model_signing's resource descriptors for the manifest's files, in its order."""
    if manifest.artifact_kind == "onnx":
        return [
            {
                "name": _SINGLE_FILE_RESOURCE_NAME,
                "algorithm": "sha256",
                "digest": manifest.artifact_sha256,
            }
        ]
    return [
        {"name": entry.path, "algorithm": "sha256", "digest": entry.sha256}
        for entry in manifest.files  # already in model_signing order
    ]


def _model_signing_root_digest(manifest: ModelManifest) -> str:
    """model_signing's subject digest: SHA-256 over the raw resource digests, in order."""
    digest = hashlib.sha256()
    for resource in _resources(manifest):
        digest.update(bytes.fromhex(resource["digest"]))
    return digest.hexdigest()


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
        what = "artifact" if manifest.artifact_kind == "onnx" else "bundle archive"
        raise VerificationError(
            RefusalCode.DIGEST_MISMATCH,
            f"{what} SHA-256 is {digest}, the signed manifest says"
            f" {manifest.artifact_sha256}: the file was altered or is a different file",
        )


def _check_directory(*, manifest: ModelManifest, root: Path) -> None:
    """Compare an unpacked bundle with the signed file list: names, then sizes, then digests.

    Messages name paths relative to the bundle root only, never where the root is.
    """
    found = _regular_files(root)
    expected = {entry.path: entry for entry in manifest.files}
    missing = sorted(set(expected) - set(found), key=model_signing_order)
    if missing:
        raise VerificationError(
            RefusalCode.MISSING_FILE,
            f"the bundle lacks {len(missing)} signed file(s): {_listed(missing)}",
        )
    extra = sorted(set(found) - set(expected), key=model_signing_order)
    if extra:
        raise VerificationError(
            RefusalCode.UNEXPECTED_FILE,
            f"the bundle holds {len(extra)} file(s) the signature does not list: {_listed(extra)}",
        )
    for entry in manifest.files:
        size = found[entry.path].st_size
        if size != entry.size:
            raise VerificationError(
                RefusalCode.SIZE_MISMATCH,
                f"file {entry.path!r} is {size} bytes, the signed manifest says {entry.size}",
            )
    for entry in manifest.files:
        with open(root / entry.path, "rb") as stream:
            digest, size = _hash_stream(stream, limit=entry.size + 1)
        if size != entry.size:
            raise VerificationError(
                RefusalCode.SIZE_MISMATCH,
                f"file {entry.path!r} is {size} bytes, the signed manifest says {entry.size}",
            )
        if digest != entry.sha256:
            raise VerificationError(
                RefusalCode.DIGEST_MISMATCH,
                f"file {entry.path!r} SHA-256 is {digest}, the signed manifest says"
                f" {entry.sha256}: the file was altered or is a different file",
            )


def _regular_files(root: Path) -> dict[str, os.stat_result]:
    """Every regular file under ``root`` by relative POSIX path; refuse links and specials."""
    found: dict[str, os.stat_result] = {}
    pending = [(root, "")]
    while pending:
        folder, prefix = pending.pop()
        with os.scandir(folder) as entries:
            for item in entries:
                relative = f"{prefix}{item.name}"
                info = item.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    pending.append((Path(item.path), f"{relative}/"))
                elif stat.S_ISREG(info.st_mode):
                    found[relative] = info
                else:
                    kind = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "a special file"
                    raise VerificationError(
                        RefusalCode.UNEXPECTED_FILE,
                        f"{relative!r} in the bundle is {kind}; a bundle holds regular files only",
                    )
    return found


def _listed(paths: list[str], *, limit: int = 5) -> str:
    shown = ", ".join(repr(path) for path in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


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


def _require_object(data: Any, where: str) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be an object")
