"""Safe unpacking of a model bundle: one ``.onnx`` file with its external data, in an archive.

No Django here: the server unpacks an uploaded bundle to validate and hash it, a gateway
unpacks a downloaded one before loading, with the same rules.

What is accepted
================

A ZIP or a tar archive (plain, or gzip/bzip2/xz compressed), recognised by its content, not
its name. It must hold regular files and folders only, at most ``max_files`` files, and
exactly one ``.onnx`` file anywhere in it: the entrypoint. Everything else is refused with
`BundleRejected`, whose ``code`` is stable and whose ``message`` names archive members only,
never anything about the machine's file system:

==========================  ==============================================================
``bundle_not_archive``      neither a ZIP nor a tar archive
``bundle_corrupt``          a ZIP or tar that cannot be read to the end (bad CRC, truncated,
                            encrypted, unknown compression)
``bundle_traversal``        an absolute path, ``..``, a backslash or a drive letter
``bundle_bad_path``         a path too long, too deep, with control characters, or under a
                            name model_signing never verifies (``.git``, ``.gitignore``...)
``bundle_link``             a symbolic or hard link
``bundle_special_file``     a device, FIFO or sparse member
``bundle_duplicate``        the same path twice (also differing in letter case only), or one
                            path used both as a file and as a folder
``bundle_too_many_files``   more than ``max_files`` files (or far more entries than that)
``bundle_too_large``        a file over ``max_file_bytes``, or all over ``max_total_bytes``
``bundle_ratio``            unpacked bytes more than ``max_ratio`` times the archive's size
``bundle_no_model``         no ``.onnx`` file
``bundle_many_models``      more than one ``.onnx`` file
==========================  ==============================================================

How it is safe
==============

Sizes are enforced by counting the bytes the decompressor actually produces, while they are
written; sizes in archive headers are never trusted (a header may lie either way). Files are
created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` and mode 0600 under ``dest_dir``, which must
be empty, from member names that were validated first; nothing is ever written through a
name the archive controls without that check. On any refusal every file and folder written
is removed again (and ``dest_dir`` too if this call created it).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from protocol.manifest import MODEL_SIGNING_IGNORED_NAMES, FileEntry, model_signing_order

__all__ = [
    "BUNDLE_SUFFIXES",
    "Bundle",
    "BundleLimits",
    "BundleRejected",
    "is_bundle_name",
    "pack_bundle",
    "unpack_bundle",
]

BUNDLE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
_CHUNK = 1 << 20
# Below this many unpacked bytes the ratio is not judged: tiny archives of small, highly
# regular files (label lists, configs) compress far beyond any bomb threshold harmlessly.
RATIO_FLOOR_BYTES = 1 << 20
# Folders and files together: a ZIP's central directory is read whole when it is opened, so
# refuse one that lists far more entries than any acceptable bundle could.
_ENTRIES_PER_FILE = 4


class BundleRejected(Exception):
    """A bundle archive was refused: ``code`` for machines, ``message`` for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"BundleRejected({self.code!r}, {self.message!r})"


@dataclass(frozen=True, kw_only=True)
class BundleLimits:
    """What one bundle may hold; the defaults fit edge models with external weights."""

    max_files: int = 64
    max_total_bytes: int = 4 * 1024**3
    max_file_bytes: int = 4 * 1024**3
    max_ratio: int = 200
    max_path_length: int = 255
    max_depth: int = 8


@dataclass(frozen=True, kw_only=True)
class Bundle:
    """An unpacked bundle: its root folder, the ``.onnx`` entrypoint and every file written.

    ``files`` carry the SHA-256 and size computed while writing, in model_signing order, so
    they can go into a manifest as they are.
    """

    root: Path
    entrypoint: str
    files: tuple[FileEntry, ...]


def is_bundle_name(name: str) -> bool:
    """True for a file name that says it is a bundle archive (content decides in the end)."""
    return isinstance(name, str) and name.lower().endswith(BUNDLE_SUFFIXES)


def unpack_bundle(
    archive_path: str | os.PathLike[str],
    dest_dir: str | os.PathLike[str],
    *,
    limits: BundleLimits = BundleLimits(),  # frozen, so sharing the default is safe
) -> Bundle:
    """Unpack a bundle archive into ``dest_dir`` (created if missing, else must be empty).

    Raises `BundleRejected` for every refusal, after removing whatever it wrote. ValueError
    means the caller is wrong (``dest_dir`` not empty); OSError is the machine's problem
    (disk full), not a verdict on the archive, and is raised after the same clean-up.
    """
    dest = Path(dest_dir)
    created_dest = not dest.exists()
    if created_dest:
        dest.mkdir(mode=0o700, parents=True)
    elif not dest.is_dir() or any(dest.iterdir()):
        raise ValueError("dest_dir must be an empty folder")
    writer = _Writer(root=dest, limits=limits, archive_size=os.path.getsize(archive_path))
    try:
        with open(archive_path, "rb") as stream:
            kind = _archive_kind(stream)
            if kind == "zip":
                _unpack_zip(stream, writer)
            else:
                _unpack_tar(stream, writer)
        entrypoint = writer.entrypoint()
    except BaseException:
        writer.remove_all()
        if created_dest:
            dest.rmdir()
        raise
    files = tuple(sorted(writer.files, key=lambda entry: model_signing_order(entry.path)))
    return Bundle(root=dest, entrypoint=entrypoint, files=files)


def pack_bundle(
    files: Mapping[str, str | os.PathLike[str]], archive_path: str | os.PathLike[str]
) -> Path:
    """Write ``{member name: source file}`` as a ZIP or tar chosen by ``archive_path``'s name.

    For tests and tools: names are written as given (no validation, so tests can build
    hostile archives with the standard library instead), with a fixed timestamp so the same
    input gives the same archive bytes.
    """
    target = Path(archive_path)
    name = target.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for member, source in files.items():
                info = zipfile.ZipInfo(member, date_time=(2026, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                with open(source, "rb") as reader, archive.open(info, "w") as writer:
                    _copy(reader, writer)
        return target
    compression = {".tar": "", ".tar.gz": "gz", ".tgz": "gz", ".tar.bz2": "bz2", ".tar.xz": "xz"}
    suffix = next((s for s in compression if name.endswith(s)), None)
    if suffix is None:
        raise ValueError(f"archive name must end with one of {list(BUNDLE_SUFFIXES)}")
    with ExitStack() as stack:
        if compression[suffix] == "gz":
            # gzip records a file name and a time in its header; fix both.
            raw = stack.enter_context(open(target, "wb"))
            sink = stack.enter_context(gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0))
            archive = stack.enter_context(
                tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT)
            )
        else:
            mode = f"w:{compression[suffix]}" if compression[suffix] else "w"
            archive = stack.enter_context(tarfile.open(target, mode, format=tarfile.PAX_FORMAT))
        for member, source in files.items():
            info = tarfile.TarInfo(member)
            info.size = os.path.getsize(source)
            info.mode = 0o644
            info.mtime = 1_767_225_600
            with open(source, "rb") as reader:
                archive.addfile(info, reader)
    return target


# --- archive readers ---------------------------------------------------------------------------


def _archive_kind(stream: BinaryIO) -> str:
    head = stream.read(8)
    stream.seek(0)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")) and zipfile.is_zipfile(stream):
        stream.seek(0)
        return "zip"
    stream.seek(0)
    try:
        with tarfile.open(fileobj=stream, mode="r:*") as archive:
            archive.next()
    except (tarfile.TarError, EOFError, OSError, zlib.error, ValueError):
        raise BundleRejected(
            "bundle_not_archive", "the upload is not a ZIP or tar archive"
        ) from None
    finally:
        stream.seek(0)
    return "tar"


def _unpack_zip(stream: BinaryIO, writer: _Writer) -> None:
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise BundleRejected("bundle_corrupt", f"the ZIP archive cannot be read: {exc}") from None
    with archive:
        entries = archive.infolist()
        writer.count_entries(len(entries))
        # Names first: every name is checked before any byte is written.
        plan = []
        for info in entries:
            mode = info.external_attr >> 16
            name = info.filename
            if stat.S_ISLNK(mode):
                raise BundleRejected("bundle_link", f"{_shown(name)} is a symbolic link")
            if info.is_dir():
                writer.add_folder(name)
                continue
            if stat.S_IFMT(mode) not in {0, stat.S_IFREG}:
                raise BundleRejected("bundle_special_file", f"{_shown(name)} is not a regular file")
            if info.flag_bits & 0x1:
                raise BundleRejected("bundle_corrupt", f"{_shown(name)} is encrypted")
            plan.append((writer.add_file_name(name), info))
        writer.check_models()
        for path, info in plan:
            with _reading(path), archive.open(info) as member:
                writer.write(path, member)


def _unpack_tar(stream: BinaryIO, writer: _Writer) -> None:
    try:
        # Opened outside `with` so that only opening errors become this refusal.
        archive = tarfile.open(fileobj=stream, mode="r:*")  # noqa: SIM115
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise BundleRejected("bundle_corrupt", f"the tar archive cannot be read: {exc}") from None
    with archive, _reading(None):
        entries = 0
        while True:
            member = archive.next()
            if member is None:
                break
            entries += 1
            writer.count_entries(entries)
            name = member.name
            if member.issym() or member.islnk():
                kind = "symbolic" if member.issym() else "hard"
                raise BundleRejected("bundle_link", f"{_shown(name)} is a {kind} link")
            if member.isdir():
                writer.add_folder(name)
                continue
            if not member.isreg() or member.issparse():
                raise BundleRejected("bundle_special_file", f"{_shown(name)} is not a regular file")
            path = writer.add_file_name(name)
            source = archive.extractfile(member)
            assert source is not None
            with _reading(path), source:
                writer.write(path, source)
            # Bound the tarfile's own bookkeeping too (it keeps every member it has read).
            archive.members.clear()
        writer.check_models()


@contextmanager
def _reading(path: str | None) -> Iterator[None]:
    """Turn the decompressors' many exception types into one refusal naming the member."""
    try:
        yield
    except BundleRejected:
        raise
    except (
        zipfile.BadZipFile,
        tarfile.TarError,
        EOFError,
        zlib.error,
        NotImplementedError,
        RuntimeError,
        io.UnsupportedOperation,
        ValueError,
    ) as exc:
        where = f"{_shown(path)} " if path else ""
        raise BundleRejected(
            "bundle_corrupt", f"the archive member {where}cannot be read: {type(exc).__name__}"
        ) from None
    except OSError as exc:
        # lzma and bz2 report corrupt input as OSError without a file name; a real I/O
        # error on our side carries one (errno set) and is not a verdict on the archive.
        if exc.errno is not None:
            raise
        raise BundleRejected("bundle_corrupt", "the archive cannot be read to the end") from None


# --- the writer: names, limits, files ------------------------------------------------------------


class _Writer:
    """Validates member names, writes files under ``root`` and counts every byte."""

    def __init__(self, *, root: Path, limits: BundleLimits, archive_size: int) -> None:
        self.root = root
        self.limits = limits
        self.archive_size = archive_size
        self.files: list[FileEntry] = []
        self.total_bytes = 0
        self._names: dict[str, str] = {}  # case-folded path -> path, files and folders
        self._folders: set[str] = set()
        self._file_paths: list[str] = []
        self._created: list[Path] = []

    def count_entries(self, count: int) -> None:
        if count > self.limits.max_files * _ENTRIES_PER_FILE:
            raise BundleRejected(
                "bundle_too_many_files",
                f"the archive has more than {self.limits.max_files * _ENTRIES_PER_FILE} entries",
            )

    def add_folder(self, raw: str) -> None:
        path = self._validated(raw)
        if path:
            self._claim(path, folder=True)

    def add_file_name(self, raw: str) -> str:
        path = self._validated(raw)
        if not path:
            raise BundleRejected("bundle_bad_path", f"{_shown(raw)} names no file")
        self._claim(path, folder=False)
        self._file_paths.append(path)
        if len(self._file_paths) > self.limits.max_files:
            raise BundleRejected(
                "bundle_too_many_files",
                f"the archive holds more than {self.limits.max_files} files",
            )
        return path

    def check_models(self) -> None:
        models = [path for path in self._file_paths if path.casefold().endswith(".onnx")]
        if not models:
            raise BundleRejected(
                "bundle_no_model", "the archive holds no .onnx file: a bundle needs exactly one"
            )
        if len(models) > 1:
            listed = ", ".join(_shown(path) for path in models[:5])
            raise BundleRejected(
                "bundle_many_models",
                f"the archive holds {len(models)} .onnx files ({listed}): a bundle holds exactly"
                " one model, put other models in their own bundles",
            )

    def entrypoint(self) -> str:
        self.check_models()
        return next(path for path in self._file_paths if path.casefold().endswith(".onnx"))

    def _validated(self, raw: str) -> str:
        shown = _shown(raw)
        if not isinstance(raw, str) or "\x00" in raw:
            raise BundleRejected("bundle_bad_path", f"{shown} has a NUL character")
        if raw.startswith("/") or "\\" in raw or (len(raw) > 1 and raw[1] == ":"):
            raise BundleRejected(
                "bundle_traversal",
                f"{shown} is an absolute path, uses backslashes or names a drive",
            )
        parts = [part for part in raw.split("/") if part not in {"", "."}]
        if ".." in parts:
            raise BundleRejected("bundle_traversal", f"{shown} climbs out of the bundle ('..')")
        path = "/".join(parts)
        if not all(part.isprintable() for part in parts):
            raise BundleRejected("bundle_bad_path", f"{shown} has a control character")
        if len(path) > self.limits.max_path_length:
            raise BundleRejected(
                "bundle_bad_path",
                f"{shown} is longer than {self.limits.max_path_length} characters",
            )
        if len(parts) > self.limits.max_depth:
            raise BundleRejected(
                "bundle_bad_path", f"{shown} is more than {self.limits.max_depth} folders deep"
            )
        if parts and parts[0] in MODEL_SIGNING_IGNORED_NAMES:
            raise BundleRejected(
                "bundle_bad_path",
                f"{shown} is under {parts[0]!r}, which model_signing never verifies",
            )
        return path

    def _claim(self, path: str, *, folder: bool) -> None:
        key = unicodedata.normalize("NFC", path).casefold()
        parts = key.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent in self._names and parent not in self._folders:
                raise BundleRejected(
                    "bundle_duplicate",
                    f"{_shown(self._names[parent])} is both a file and a folder",
                )
            self._names.setdefault(parent, "/".join(path.split("/")[:depth]))
            self._folders.add(parent)
        if key in self._names:
            if folder and key in self._folders:
                return  # a folder listed twice, or after its files: harmless
            if folder or key in self._folders:
                raise BundleRejected(
                    "bundle_duplicate", f"{_shown(path)} is both a file and a folder"
                )
            raise BundleRejected(
                "bundle_duplicate",
                f"{_shown(path)} appears more than once (names are compared ignoring case)",
            )
        self._names[key] = path
        if folder:
            self._folders.add(key)

    def write(self, path: str, source: BinaryIO) -> None:
        target = self._make_parents(path)
        fd = os.open(
            target,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
            0o600,
        )
        self._created.append(target)
        digest = hashlib.sha256()
        written = 0
        with os.fdopen(fd, "wb") as sink:
            while True:
                chunk = source.read(_CHUNK)
                if not chunk:
                    break
                written += len(chunk)
                self.total_bytes += len(chunk)
                self._check_sizes(path, written)
                digest.update(chunk)
                sink.write(chunk)
        self.files.append(FileEntry(path=path, sha256=digest.hexdigest(), size=written))

    def _check_sizes(self, path: str, written: int) -> None:
        limits = self.limits
        if written > limits.max_file_bytes:
            raise BundleRejected(
                "bundle_too_large",
                f"{_shown(path)} unpacks to more than {limits.max_file_bytes} bytes",
            )
        if self.total_bytes > limits.max_total_bytes:
            raise BundleRejected(
                "bundle_too_large",
                f"the archive unpacks to more than {limits.max_total_bytes} bytes",
            )
        if self.total_bytes > RATIO_FLOOR_BYTES and self.total_bytes > limits.max_ratio * max(
            self.archive_size, 1
        ):
            raise BundleRejected(
                "bundle_ratio",
                f"the archive unpacks to more than {limits.max_ratio} times its own size"
                f" (at {_shown(path)}): refusing a compression bomb",
            )

    def _make_parents(self, path: str) -> Path:
        folder = self.root
        for part in path.split("/")[:-1]:
            folder = folder / part
            try:
                folder.mkdir(mode=0o700)
                self._created.append(folder)
            except FileExistsError:
                # Only a folder this writer made can be here: the root started empty and
                # every name was claimed once. Refuse anything else rather than follow it.
                if folder.is_symlink() or not folder.is_dir():
                    raise BundleRejected(
                        "bundle_duplicate", f"{_shown(path)} collides with another member"
                    ) from None
        return folder / path.split("/")[-1]

    def remove_all(self) -> None:
        for created in reversed(self._created):
            try:
                if created.is_dir() and not created.is_symlink():
                    created.rmdir()
                else:
                    created.unlink()
            except FileNotFoundError:
                pass


def _shown(name: str | None) -> str:
    """A member name as messages show it: quoted, control characters escaped, shortened."""
    text = repr(name if isinstance(name, str) else str(name))
    return text if len(text) <= 120 else text[:117] + "..."


def _copy(reader: BinaryIO, writer: BinaryIO) -> None:
    while chunk := reader.read(_CHUNK):
        writer.write(chunk)
