"""TELEMETRY_DATABASE_URL for real: two PostgreSQL databases, migrated, a batch landed and ingested.

Runs in a subprocess with production settings (the test process has one database configured),
on two throwaway databases of the same server.
"""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.db import connection

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="a second PostgreSQL database is the point"
)

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import django, os
os.environ["DJANGO_SETTINGS_MODULE"] = "opshero.settings"
django.setup()
from django.core.management import call_command
from django.db import connections
call_command("migrate", verbosity=0)
call_command("migrate", database="telemetry", verbosity=0)
from tests.factories import make_org, enroll_device
from telemetry import services
from tests.telemetry.builders import batch_body, inference, health
org = make_org("Split", "split")
device, key = enroll_device(org)
receipt = services.land_batch(device=device, body=batch_body([inference(1), health(2)]),
                              content_type="application/json", enqueue=False)
outcome = services.ingest_landed_batch(batch_id=receipt.batch_id)
assert outcome.result.stored == 2, outcome
def count(alias, table):
    with connections[alias].cursor() as c:
        c.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        if not c.fetchone()[0]:
            return None
        c.execute(f"SELECT count(*) FROM {table}")
        return c.fetchone()[0]
print("telemetry", count("telemetry", "telemetry_inferenceevent"),
      count("telemetry", "telemetry_eventkey"), count("telemetry", "telemetry_ingestedbatch"),
      count("telemetry", "fleet_device"))
print("default", count("default", "telemetry_inferenceevent"), count("default", "fleet_device"))
"""


def test_the_telemetry_store_lives_in_its_own_database(tmp_path):
    base = f"opshero_split_{uuid.uuid4().hex[:8]}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    names = [f"{base}_main", f"{base}_tele"]
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{names[0]}",
            "TELEMETRY_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{names[1]}",
            "OPSHERO_VAR_DIR": str(tmp_path),
            "REDIS_URL": "",
            "PYTHONPATH": str(ROOT),
        }
        result = subprocess.run(
            [sys.executable, "-c", SCRIPT],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        lines = dict(line.split(" ", 1) for line in result.stdout.strip().splitlines())
        # Events, ledger and log in the telemetry database; no fleet tables there; no event
        # tables in the main one.
        assert lines["telemetry"] == "1 2 1 None"
        assert lines["default"] == "None 1"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
