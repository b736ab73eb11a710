"""The evidence object store: one encrypted file a sample under ``EVIDENCE_ROOT``.

Only ciphertext is written here (``review.crypto``); a name is ``<organisation>/<sample id>.bin``
or ``exports/<organisation>/<export id>.zip``. Writes go to a temporary file that is fsynced and
renamed, so a crash never leaves half an object under a real name.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from django.conf import settings


def _root() -> Path:
    return Path(settings.EVIDENCE_ROOT)


def _path(name: str) -> Path:
    root = _root().resolve()
    path = (root / name).resolve()
    if root not in path.parents:  # names are built here, never from input; belt and braces
        raise ValueError(f"object name {name!r} leaves the evidence store")
    return path


def sample_object_name(*, organization_id: int, sample_id: str) -> str:
    return f"{organization_id}/{sample_id}.bin"


def export_object_name(*, organization_id: int, export_id: str) -> str:
    return f"exports/{organization_id}/{export_id}.zip"


def write_object(name: str, data: bytes) -> None:
    path = _path(name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def open_path(name: str) -> Path:
    """The file of an object (for streaming a large export)."""
    return _path(name)


def read_object(name: str) -> bytes:
    return _path(name).read_bytes()


def object_exists(name: str) -> bool:
    return _path(name).exists()


def delete_object(name: str) -> bool:
    """Remove an object; True when it was there."""
    try:
        _path(name).unlink()
    except FileNotFoundError:
        return False
    return True
