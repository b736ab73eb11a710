"""The planning maths must stay importable without Django (gateway, Celery, scripts)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_roi_modules_import_without_django():
    probe = (
        "import sys\n"
        "import roi, roi.vocabulary, roi.rules, roi.scorecard, roi.engine, roi.plan\n"
        "import roi.reports, roi.presets, roi.charts\n"
        "loaded = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        "print(loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "", "PYTHONPATH": str(REPO)},
    )
    assert done.stdout.strip() == "[]"
