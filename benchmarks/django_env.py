"""Set up Django for a benchmark on its own PostgreSQL database (never the dev or test one).

BENCH_DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/opshero_bench; the database
is created when missing and migrated. REDIS_URL is used when set (as in production).
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/opshero_bench"


def setup(*, database: bool = True) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opshero.settings")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    if database:
        url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
        _create_database(url)
        os.environ["DATABASE_URL"] = url
    import django

    django.setup()
    from django.conf import settings

    settings.ALLOWED_HOSTS = ["*"]
    if database:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def _create_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
