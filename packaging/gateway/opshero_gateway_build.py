"""PEP 517 build backend of the `opshero-gateway` distribution (standard library only).

The agent's packages live at the repository root (`gateway/`, `protocol/`), next to the server
apps, and the server's own pyproject packages all of them. This backend builds a wheel of just
the two agent packages from ``../..``; setuptools and hatchling either refuse source paths
outside the project directory or need to be downloaded into the isolated build environment,
and this needs nothing, so ``pip wheel packaging/gateway`` works on a machine without an index.

It reads the ``[project]`` table of ``pyproject.toml`` (only the keys used there; any other key
is refused so that nothing written there is silently ignored) and writes a deterministic wheel:
sorted entries, a fixed timestamp (``SOURCE_DATE_EPOCH`` if set), RECORD with SHA-256 digests.
An sdist carries the two packages at its own root, so a wheel built from it needs no ``../..``.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import os
import re
import tarfile
import time
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "build_sdist",
    "build_wheel",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "prepare_metadata_for_build_wheel",
]

PROJECT_KEYS = {
    "name",
    "version",
    "dynamic",
    "description",
    "readme",
    "requires-python",
    "license",
    "classifiers",
    "dependencies",
    "scripts",
}
TAG = "py3-none-any"
# ZIP cannot store dates before 1980; this is the usual stand-in for "no meaningful date".
EPOCH_1980 = 315532800


class BuildError(RuntimeError):
    """The project cannot be built as configured (the message says what to change)."""


def _pyproject() -> dict[str, Any]:
    return tomllib.loads(Path("pyproject.toml").read_text(encoding="utf-8"))


def _settings() -> dict[str, Any]:
    return _pyproject().get("tool", {}).get("opshero-gateway-build", {})


def _source_root() -> Path:
    # An unpacked sdist has PKG-INFO and the packages beside pyproject.toml.
    if Path("PKG-INFO").exists():
        return Path(".")
    return Path(_settings().get("source-root", "."))


def _packages() -> list[str]:
    packages = _settings().get("packages")
    if not packages:
        raise BuildError("[tool.opshero-gateway-build] packages must name the packages to ship")
    root = _source_root()
    for package in packages:
        if not (root / package / "__init__.py").is_file():
            raise BuildError(f"package {package!r} not found under {root.resolve()}")
    return list(packages)


def _declared_version(root: Path, package: str) -> str | None:
    """``__version__`` assigned as a literal in ``<package>/__init__.py``, without importing it."""
    tree = ast.parse((root / package / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {t.id for t in targets if isinstance(t, ast.Name)}
            if "__version__" in names and isinstance(node.value, ast.Constant):
                return str(node.value.value)
    return None


def _project() -> dict[str, Any]:
    project = dict(_pyproject()["project"])
    unknown = sorted(set(project) - PROJECT_KEYS)
    if unknown:
        raise BuildError(f"[project] key(s) {', '.join(unknown)} are not supported by this backend")
    root = _source_root()
    package = _packages()[0]
    declared = _declared_version(root, package)
    if "version" in project.get("dynamic", []):
        if declared is None:
            raise BuildError(f"version is dynamic but {package}/__init__.py has no __version__")
        project["version"] = declared
    elif declared is not None and declared != project["version"]:
        raise BuildError(
            f"pyproject.toml says version {project['version']} but {package}/__init__.py "
            f"says {declared}: make them agree (or declare version dynamic)"
        )
    return project


def _dist_name(project: dict[str, Any]) -> str:
    return re.sub(r"[-_.]+", "_", project["name"]).lower()


def _metadata(project: dict[str, Any]) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
    ]
    if "description" in project:
        lines.append(f"Summary: {project['description']}")
    if "license" in project:
        lines.append(f"License: {project['license']}")
    lines += [f"Classifier: {c}" for c in project.get("classifiers", [])]
    if "requires-python" in project:
        lines.append(f"Requires-Python: {project['requires-python']}")
    lines += [f"Requires-Dist: {d}" for d in project.get("dependencies", [])]
    body = ""
    if "readme" in project:
        lines.append("Description-Content-Type: text/markdown")
        body = "\n" + Path(project["readme"]).read_text(encoding="utf-8")
    return "\n".join(lines) + "\n" + body


def _entry_points(project: dict[str, Any]) -> str:
    scripts = project.get("scripts", {})
    if not scripts:
        return ""
    return "[console_scripts]\n" + "".join(f"{k} = {v}\n" for k, v in sorted(scripts.items()))


def _wheel_file() -> str:
    return (
        f"Wheel-Version: 1.0\nGenerator: opshero_gateway_build\nRoot-Is-Purelib: true\nTag: {TAG}\n"
    )


def _dist_info(project: dict[str, Any]) -> dict[str, str]:
    files = {"METADATA": _metadata(project), "WHEEL": _wheel_file()}
    entry_points = _entry_points(project)
    if entry_points:
        files["entry_points.txt"] = entry_points
    return files


def _package_files(root: Path, packages: list[str]) -> Iterator[tuple[str, Path]]:
    """(archive name, path) of every file of the packages, caches and hidden files left out."""
    for package in packages:
        for path in sorted((root / package).rglob("*")):
            relative = path.relative_to(root)
            if not path.is_file() or path.suffix in {".pyc", ".pyo"}:
                continue
            if any(part == "__pycache__" or part.startswith(".") for part in relative.parts):
                continue
            yield relative.as_posix(), path


def _epoch() -> int:
    return max(int(os.environ.get("SOURCE_DATE_EPOCH", EPOCH_1980)), EPOCH_1980)


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    return []


def get_requires_for_build_sdist(config_settings: dict[str, Any] | None = None) -> list[str]:
    return []


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: dict[str, Any] | None = None
) -> str:
    project = _project()
    name = f"{_dist_name(project)}-{project['version']}.dist-info"
    target = Path(metadata_directory) / name
    target.mkdir(parents=True, exist_ok=True)
    for filename, text in _dist_info(project).items():
        (target / filename).write_text(text, encoding="utf-8")
    return name


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    project = _project()
    dist = _dist_name(project)
    dist_info = f"{dist}-{project['version']}.dist-info"
    filename = f"{dist}-{project['version']}-{TAG}.whl"
    entries = [
        (name, path.read_bytes()) for name, path in _package_files(_source_root(), _packages())
    ]
    entries += [
        (f"{dist_info}/{name}", text.encode("utf-8")) for name, text in _dist_info(project).items()
    ]
    record = [_record_line(name, data) for name, data in entries] + [f"{dist_info}/RECORD,,"]
    entries.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode("utf-8")))

    Path(wheel_directory).mkdir(parents=True, exist_ok=True)
    stamp = time.gmtime(_epoch())[:6]
    with zipfile.ZipFile(Path(wheel_directory) / filename, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in entries:  # dist-info last, RECORD last of all, as the spec advises
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(info, data)
    return filename


def build_sdist(sdist_directory: str, config_settings: dict[str, Any] | None = None) -> str:
    project = _project()
    base = f"{_dist_name(project)}-{project['version']}"
    own = ["pyproject.toml", "opshero_gateway_build.py"]
    if "readme" in project:
        own.append(project["readme"])
    members = [(name, Path(name).read_bytes()) for name in own]
    members += [
        (name, path.read_bytes()) for name, path in _package_files(_source_root(), _packages())
    ]
    members.append(("PKG-INFO", _metadata(project).encode("utf-8")))

    Path(sdist_directory).mkdir(parents=True, exist_ok=True)
    filename = f"{base}.tar.gz"
    with tarfile.open(Path(sdist_directory) / filename, "w:gz", format=tarfile.PAX_FORMAT) as sdist:
        for name, data in sorted(members):
            info = tarfile.TarInfo(f"{base}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, _epoch()
            sdist.addfile(info, io.BytesIO(data))
    return filename
