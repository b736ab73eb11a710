"""The ONNX checks must stay importable without Django (Celery worker child processes, scripts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_onnxcheck_and_every_submodule_import_without_django():
    probe = (
        "import importlib, json, pkgutil, sys\n"
        "import onnxcheck\n"
        "names = sorted(m.name for m in pkgutil.iter_modules(onnxcheck.__path__))\n"
        "for name in names:\n"
        "    importlib.import_module('onnxcheck.' + name)\n"
        "forbidden = ('django', 'rest_framework', 'celery', 'drf_spectacular')\n"
        "loaded = sorted(\n"
        "    m for m in sys.modules if m.split('.')[0] in forbidden\n"
        ")\n"
        "print(json.dumps({'imported': names, 'forbidden_loaded': loaded}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "", "PYTHONPATH": str(REPO)},
    )
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    on_disk = sorted(p.stem for p in (REPO / "onnxcheck").glob("*.py") if p.stem != "__init__")
    assert outcome["imported"] == on_disk
    assert {"pipeline", "results", "runner", "worker"} <= set(outcome["imported"])
    assert outcome["forbidden_loaded"] == []
