"""Signed model updates on the gateway: trust store, download, verify, install, switch.

Layout under the state directory::

    trusted_keys.json                 the signing keys this gateway trusts (and those revoked)
    installed.json                    per model: what runs, its release counter, its fallback
    downloads/<sha256>.part           a download in progress (resumed with a Range request)
    models/<model_id>/<version_id>-<sha12>/   one verified version: its file(s) + envelope.json
    models/<model_id>/current         symlink to the version that serves (switched atomically)

Nothing is loaded before it is verified: the DSSE envelope against the trusted keys, the
artifact's SHA-256 (every file of a bundle), the expiry and the release counter, which is
never below the counter of what runs (a rollback arrives re-issued with a higher counter).
A verified version is loaded in a runner and must answer a reference input before the
``current`` pointer moves; until then, and after any refusal, the running model keeps
serving. At start-up each installed version is verified again (signature and files; expiry
as of when it was installed) before it loads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from protocol import manifest as signed
from protocol.bundles import BundleRejected, unpack_bundle

from .runner import ModelRunner
from .transport import NETWORK_ERRORS, SignedTransport

__all__ = [
    "InstallRefused",
    "Installed",
    "ModelStore",
    "TransientError",
    "TrustStore",
]

log = logging.getLogger("opshero.gateway.installer")
TRUST_FILE = "trusted_keys.json"
INSTALLED_FILE = "installed.json"
FLOORS_FILE = "release_counters.json"
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Refusals that say the local bytes are wrong, not the envelope.
_BYTES_WRONG = frozenset({"digest_mismatch", "size_mismatch", "missing_file", "unexpected_file"})


def write_json(path: Path, data: Any) -> None:
    """Replace ``path`` atomically (a crash leaves the old file or the new, never half)."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


class InstallRefused(Exception):
    """This version will not run here; ``code`` is what the deployment report carries."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class TransientError(Exception):
    """Try again later (server unreachable, download interrupted); nothing to report."""


class TrustStore:
    """The model-signing public keys this gateway trusts.

    Learned from the server only (the enrollment answer, then every desired state), each over
    a request this device signed. The list replaces what was trusted (a key no longer listed
    verifies nothing), and a key the server ever named as revoked is never trusted again,
    whatever a later answer says.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / TRUST_FILE
        data = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.keys: dict[str, str] = dict(data.get("keys") or {})
        self.revoked: set[str] = set(data.get("revoked") or ())

    def update(
        self, keys: Mapping[str, str], revoked: set[str] | frozenset[str] = frozenset()
    ) -> bool:
        revoked = self.revoked | set(revoked)
        new = {key_id: pem for key_id, pem in keys.items() if key_id not in revoked}
        if new == self.keys and revoked == self.revoked:
            return False
        added = sorted(set(new) - set(self.keys))
        dropped = sorted(set(self.keys) - set(new))
        self.keys, self.revoked = new, revoked
        write_json(self.path, {"keys": self.keys, "revoked": sorted(self.revoked)})
        log.info("trust store updated", extra={"fields": {"added": added, "dropped": dropped}})
        return True

    def mapping(self) -> dict[str, signed.TrustedKey]:
        return {
            key_id: signed.TrustedKey(pem.encode(), "active") for key_id, pem in self.keys.items()
        }


@dataclass(frozen=True)
class Installed:
    """One installed, verified version of a model."""

    model_id: int
    model: str
    version: str
    version_id: int
    sha256: str
    release_counter: int
    artifact_kind: str
    entrypoint: str
    directory: str  # relative to models/<model_id>/
    installed_at: str
    action_id: int | None = None
    purpose: str = "install"
    envelope_sha256: str = ""  # of the envelope on disk: a re-signed one is a change

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"


@dataclass
class _ModelRecord:
    current: Installed
    previous: Installed | None = None


class ModelStore:
    """The installed models of one gateway and the operations that change them."""

    def __init__(
        self,
        state_dir: Path,
        *,
        load_runner: Callable[[Path, signed.ModelManifest], ModelRunner],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.state_dir = state_dir
        self.models_dir = state_dir / "models"
        self.downloads = state_dir / "downloads"
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self.downloads.mkdir(parents=True, exist_ok=True)
        self.trust = TrustStore(state_dir)
        self.load_runner = load_runner
        self.clock = clock
        self.records: dict[int, _ModelRecord] = {}
        floors = state_dir / FLOORS_FILE
        # The highest release counter ever installed per model name: never cleared.
        self.floors: dict[str, int] = json.loads(floors.read_text()) if floors.exists() else {}
        path = state_dir / INSTALLED_FILE
        if path.exists():
            for key, item in json.loads(path.read_text()).items():
                previous = item.get("previous")
                self.records[int(key)] = _ModelRecord(
                    Installed(**item["current"]), Installed(**previous) if previous else None
                )

    # --- bookkeeping

    def _save(self) -> None:
        write_json(
            self.state_dir / INSTALLED_FILE,
            {
                str(model_id): {
                    "current": asdict(record.current),
                    "previous": asdict(record.previous) if record.previous else None,
                }
                for model_id, record in sorted(self.records.items())
            },
        )

    def version_dir(self, item: Installed) -> Path:
        return self.models_dir / str(item.model_id) / item.directory

    def current(self, model_id: int) -> Installed | None:
        record = self.records.get(model_id)
        return record.current if record else None

    # --- loading what is installed (start-up)

    def load_installed(self) -> dict[int, tuple[Installed, ModelRunner]]:
        """Verify and load every installed model; a model that no longer verifies is not
        loaded (logged), so a tampered file on disk never serves."""
        loaded = {}
        for model_id, record in sorted(self.records.items()):
            item = record.current
            try:
                runner, _ = self._verify_and_load(
                    item, self.version_dir(item), as_of=item.installed_at
                )
            except Exception as exc:  # noqa: BLE001 - whatever it is, this model does not serve
                log.error(
                    "installed model refused at start-up",
                    extra={"fields": {"model": item.ref, "why": str(exc)}},
                )
                continue
            loaded[model_id] = (item, runner)
        return loaded

    def _verify_and_load(
        self,
        item: Installed,
        directory: Path,
        *,
        as_of: str | None = None,
        min_counter: int | None = None,
    ) -> tuple[ModelRunner, signed.VerifiedManifest]:
        envelope = (directory / "envelope.json").read_bytes()
        now = datetime.fromisoformat(as_of) if as_of else self.clock()
        target = (
            directory / "files" if item.artifact_kind == "bundle" else directory / item.entrypoint
        )
        verified = self._verify(
            envelope, target, now=now, min_counter=min_counter, model=item.model
        )
        entry = directory / "files" / item.entrypoint if item.artifact_kind == "bundle" else target
        runner = self.load_runner(entry, verified.manifest)
        runner.health_check()
        return runner, verified

    def _verify(
        self,
        envelope: bytes,
        path: Path,
        *,
        now: datetime,
        min_counter: int | None,
        model: str | None,
    ) -> signed.VerifiedManifest:
        try:
            return signed.verify_artifact(
                envelope_bytes=envelope,
                trusted_keys=self.trust.mapping(),
                now=now,
                artifact_path=path,
                min_release_counter=min_counter,
                expected_model=model,
            )
        except signed.VerificationError as exc:
            raise InstallRefused(
                exc.code.value, exc.message if hasattr(exc, "message") else str(exc)
            ) from exc

    # --- installing

    def prepare(
        self,
        entry: Mapping[str, Any],
        transport: SignedTransport,
        *,
        report: Callable[[str], None] = lambda status: None,
    ) -> tuple[Installed, ModelRunner]:
        """Fetch (or reuse), verify, unpack and load the version ``entry`` names, and run
        its health check. Nothing serving changes: `activate` switches to it.

        Raises InstallRefused (report it), TransientError (retry later), HealthCheckFailed."""
        try:
            model_id, version_id = int(entry["model_id"]), int(entry["version_id"])
            sha = str(entry["sha256"])
            entrypoint = str(entry.get("entrypoint") or "model.onnx")
            artifact_kind = str(entry.get("artifact_kind") or "onnx")
            if not _SHA256.fullmatch(sha):
                raise ValueError(f"sha256 {sha[:80]!r} is not 64 lower-case hex digits")
            signed.require_relative_path(entrypoint, "entrypoint")
            if artifact_kind == "onnx" and "/" in entrypoint:
                raise ValueError(f"entrypoint {entrypoint!r} of a single file has a folder")
        except (KeyError, TypeError, ValueError) as exc:
            raise InstallRefused(
                "malformed_entry", f"the desired entry is malformed: {exc}"
            ) from exc
        envelope = str(entry.get("envelope") or "").encode()
        if not envelope:
            raise InstallRefused("no_signature", str(entry.get("refused") or "no envelope"))
        record = self.records.get(model_id)
        running = record.current if record else None
        min_counter = running.release_counter if running else None
        item = Installed(
            model_id=model_id,
            model=str(entry["model"]),
            version=str(entry["version"]),
            version_id=version_id,
            sha256=sha,
            release_counter=int(entry.get("release_counter") or 0),
            artifact_kind=artifact_kind,
            entrypoint=entrypoint,
            directory=f"{version_id}-{sha[:12]}",
            installed_at=self.clock().isoformat(),
            action_id=entry.get("action_id"),
            purpose=str(entry.get("purpose") or "install"),
            envelope_sha256=hashlib.sha256(envelope).hexdigest(),
        )
        expected = None
        final = self.version_dir(item)
        verified = None
        if final.exists() and (final / "envelope.json").exists():
            # The same bytes are here already (a fallback kept, or a re-issue): verify the new
            # envelope against them, no download. Bytes on disk that no longer match (a bad
            # disk) are thrown away and fetched again.
            report("verifying")
            try:
                verified = self._verify(
                    envelope,
                    final / "files" if item.artifact_kind == "bundle" else final / item.entrypoint,
                    now=self.clock(),
                    min_counter=min_counter,
                    model=expected,
                )
            except InstallRefused as exc:
                if exc.code not in _BYTES_WRONG:
                    raise
                log.warning(
                    "installed copy no longer matches; fetching it again",
                    extra={"fields": {"model": item.ref, "why": exc.reason}},
                )
                shutil.rmtree(final, ignore_errors=True)
            else:
                self._check_signed_entry(item, verified, model_id)
                write_json_bytes(final / "envelope.json", envelope)
        if verified is None:
            report("downloading")
            archive = self._download(entry, transport, item)
            report("verifying")
            try:
                verified = self._verify(
                    envelope, archive, now=self.clock(), min_counter=min_counter, model=expected
                )
                self._check_signed_entry(item, verified, model_id)
            except InstallRefused:
                # Never keep refused bytes: a corrected artifact must be fetched afresh, not
                # "resumed" from a complete but wrong copy.
                archive.unlink(missing_ok=True)
                raise
            final.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=final.parent))
            try:
                if item.artifact_kind == "bundle":
                    try:
                        unpack_bundle(archive, staging / "files")
                    except BundleRejected as exc:
                        raise InstallRefused("bundle_rejected", str(exc)) from exc
                    # Every unpacked file against the signed list, not only the archive.
                    self._verify(
                        envelope,
                        staging / "files",
                        now=self.clock(),
                        min_counter=min_counter,
                        model=expected,
                    )
                    archive.unlink()
                else:
                    os.replace(archive, staging / item.entrypoint)
                (staging / "envelope.json").write_bytes(envelope)
                if final.exists():
                    shutil.rmtree(final)
                os.replace(staging, final)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        item = replace(
            item,
            model=verified.manifest.model_name,
            version=verified.manifest.version,
            release_counter=verified.manifest.release_counter,
        )
        entry_file = (
            final / "files" / item.entrypoint
            if item.artifact_kind == "bundle"
            else final / item.entrypoint
        )
        runner = self.load_runner(entry_file, verified.manifest)
        try:
            runner.health_check()
        except BaseException:
            runner.close()
            raise
        return item, runner

    def _check_signed_entry(
        self, item: Installed, verified: signed.VerifiedManifest, model_id: int
    ) -> None:
        """What the unsigned desired entry said must be what was signed; the release counter
        never goes below the highest ever installed for that model name (kept across an
        unassignment), and one model name runs in one slot only."""
        m = verified.manifest
        if (m.artifact_sha256, m.artifact_kind, m.entrypoint) != (
            item.sha256,
            item.artifact_kind,
            item.entrypoint,
        ):
            raise InstallRefused(
                "digest_mismatch",
                "the desired entry's sha256, kind or entrypoint differs from the signed manifest",
            )
        floor = self.floors.get(m.model_name)
        if floor is not None and m.release_counter < floor:
            raise InstallRefused(
                "rollback",
                f"release counter {m.release_counter} is lower than {floor}, the highest"
                f" installed for {m.model_name!r}",
            )
        for other_id, record in self.records.items():
            if other_id != model_id and record.current.model == m.model_name:
                raise InstallRefused(
                    "wrong_model", f"{m.model_name!r} already runs here in another model slot"
                )

    def activate(self, item: Installed) -> Installed | None:
        """Make ``item`` the version that serves: switch the pointer, record the previous."""
        record = self.records.get(item.model_id)
        previous = record.current if record else None
        if previous is not None and previous.directory == item.directory:
            previous = record.previous  # a re-issue of what runs: keep the older fallback
        link = self.models_dir / str(item.model_id) / "current"
        temporary = link.with_name(".current.new")
        temporary.unlink(missing_ok=True)
        os.symlink(item.directory, temporary)
        os.replace(temporary, link)
        self.records[item.model_id] = _ModelRecord(item, previous)
        self._save()
        if item.release_counter > self.floors.get(item.model, -1):
            self.floors[item.model] = item.release_counter
            write_json(self.state_dir / FLOORS_FILE, self.floors)
        self._prune(item.model_id)
        return previous

    def forget(self, model_id: int) -> None:
        if self.records.pop(model_id, None) is not None:
            self._save()

    def _prune(self, model_id: int) -> None:
        """Keep the current and the previous version of a model, delete older ones."""
        record = self.records[model_id]
        keep = {record.current.directory} | (
            {record.previous.directory} if record.previous else set()
        )
        folder = self.models_dir / str(model_id)
        for child in folder.iterdir():
            if child.name in keep or child.name == "current" or child.is_symlink():
                continue
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)

    def _download(
        self, entry: Mapping[str, Any], transport: SignedTransport, item: Installed
    ) -> Path:
        part = self.downloads / f"{item.sha256}.part"
        expected = int(entry.get("size") or 0)
        offset = part.stat().st_size if part.exists() else 0
        if expected and offset > expected:
            part.unlink()
            offset = 0
        if expected and offset == expected:
            return part
        with open(part, "ab" if offset else "wb") as handle:
            handle.seek(offset)
            try:
                answer = transport.download(
                    str(entry["artifact_url"]), handle, offset=offset, if_range=f'"{item.sha256}"'
                )
            except NETWORK_ERRORS as exc:
                raise TransientError(
                    f"download interrupted at {handle.tell()} bytes: {exc}"
                ) from exc
        if answer.status == 416:
            part.unlink(missing_ok=True)
            raise TransientError("the partial download does not fit the artifact; starting over")
        if answer.status == 404:
            raise TransientError("the server does not offer this artifact to this device (404)")
        if answer.status not in (200, 206):
            raise TransientError(f"download answered {answer.status} {answer.error_code()}")
        size = part.stat().st_size
        if expected and size < expected:
            raise TransientError(f"download stopped at {size} of {expected} bytes")
        return part


def write_json_bytes(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
