"""The `opshero-gateway` wheel (packaging/gateway): only the agent and the wire contract.

The wheel is built the way `make gateway-wheel` builds it, with no package index reachable, then
inspected as an installer would see it, and its modules are imported from the extracted wheel
in a fresh interpreter where Django, DRF, Celery and the server apps cannot be imported.
"""

from __future__ import annotations

import base64
import configparser
import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "packaging" / "gateway"
PACKAGES = {"gateway", "protocol"}
SERVER_ONLY = {"django", "djangorestframework", "celery", "psycopg", "plotly", "pandas"}
# Imports refused in the subprocess: the server's frameworks and the server's own apps.
BLOCKED = [
    "django",
    "rest_framework",
    "drf_spectacular",
    "celery",
    "psycopg",
    "pandas",
    "plotly",
    "opshero",
    "onnxcheck",
    "fleet",
    "modelregistry",
    "telemetry",
    "rollouts",
    "roi",
]

IMPORT_ALL = r"""
import importlib, importlib.abc, json, pkgutil, sys

root, blocked = sys.argv[1], set(json.loads(sys.argv[2]))

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ImportError(f"{name} is not available to the gateway agent")
        return None

sys.meta_path.insert(0, Refuse())
sys.path.insert(0, root)
try:
    import django  # noqa: F401  (installed in this interpreter: the finder must refuse it)
except ImportError:
    pass
else:
    sys.exit("the import blocker did not block django")

def fail(name):
    raise SystemExit(f"cannot walk {name}")

imported = {}
for package in ("gateway", "protocol"):
    module = importlib.import_module(package)
    imported[package] = module.__file__
    for info in pkgutil.walk_packages(module.__path__, prefix=package + ".", onerror=fail):
        imported[info.name] = importlib.import_module(info.name).__file__
print(json.dumps(imported))
"""


def _expected_version() -> str:
    """gateway.__version__, which pyproject.toml declares as the distribution's version."""
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    assert project.get("dynamic") == ["version"] and "version" not in project
    found = re.search(
        r'^__version__ = "([^"]+)"$', (ROOT / "gateway/__init__.py").read_text(), re.M
    )
    assert found, "gateway/__init__.py defines no __version__"
    return found.group(1)


@pytest.fixture(scope="module")
def wheel_path(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "-w", str(out)]
    build = subprocess.run(
        [*command, str(PROJECT.relative_to(ROOT))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert build.returncode == 0, f"pip wheel failed:\n{build.stdout}\n{build.stderr}"
    wheels = sorted(out.glob("*.whl"))
    assert [w.name for w in wheels] == [f"opshero_gateway-{_expected_version()}-py3-none-any.whl"]
    return wheels[0]


@pytest.fixture(scope="module")
def wheel(wheel_path):
    with zipfile.ZipFile(wheel_path) as archive:
        yield archive


def _dist_info(wheel: zipfile.ZipFile) -> str:
    return f"opshero_gateway-{_expected_version()}.dist-info"


def test_wheel_holds_exactly_the_agent_and_the_wire_contract(wheel):
    names = wheel.namelist()
    assert {name.split("/")[0] for name in names} == PACKAGES | {_dist_info(wheel)}
    in_repo = {
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    shipped = {name for name in names if name.split("/")[0] in PACKAGES}
    assert shipped == in_repo
    assert not [name for name in names if name.endswith((".pyc", ".pyo"))]


def test_metadata_depends_only_on_what_the_agent_needs(wheel):
    metadata = Parser().parsestr(wheel.read(f"{_dist_info(wheel)}/METADATA").decode())
    assert metadata["Name"] == "opshero-gateway"
    assert metadata["Version"] == _expected_version()
    assert metadata["Requires-Python"] == ">=3.11"
    requirements = metadata.get_all("Requires-Dist")
    names = {re.match(r"[A-Za-z0-9._-]+", req).group(0).lower() for req in requirements}
    assert not names & SERVER_ONLY
    assert names == {"cryptography", "msgspec", "numpy", "onnxruntime"}
    assert not [req for req in requirements if "==" in req], "lower bounds, not exact pins"


def test_console_script_is_declared(wheel):
    entry_points = configparser.ConfigParser()
    entry_points.read_string(wheel.read(f"{_dist_info(wheel)}/entry_points.txt").decode())
    assert dict(entry_points["console_scripts"]) == {"opshero-gateway": "gateway.cli:main"}
    wheel_file = wheel.read(f"{_dist_info(wheel)}/WHEEL").decode()
    assert "Root-Is-Purelib: true" in wheel_file
    assert "Tag: py3-none-any" in wheel_file


def test_record_lists_every_file_with_its_digest(wheel):
    record = f"{_dist_info(wheel)}/RECORD"
    rows = [line.split(",") for line in wheel.read(record).decode().splitlines()]
    assert {row[0] for row in rows} == set(wheel.namelist())
    for name, digest, size in rows:
        if name == record:
            assert digest == size == ""
            continue
        data = wheel.read(name)
        expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert (digest, int(size)) == (f"sha256={expected}", len(data)), name


def test_every_module_imports_from_the_wheel_without_django(wheel, tmp_path):
    wheel.extractall(tmp_path)
    result = subprocess.run(
        [sys.executable, "-I", "-c", IMPORT_ALL, str(tmp_path), json.dumps(BLOCKED)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    imported = json.loads(result.stdout.strip().splitlines()[-1])
    modules = {
        name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for name in wheel.namelist()
        if name.endswith(".py")
    }
    assert set(imported) == modules
    outside = {name: file for name, file in imported.items() if not file.startswith(str(tmp_path))}
    assert not outside, f"imported from outside the wheel: {outside}"
