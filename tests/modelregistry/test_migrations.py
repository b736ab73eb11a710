"""The registry's move out of fleet/ upgrades a real database in place.

A PostgreSQL database is migrated and filled by ``seed_demo`` with the code of the last commit
before the move (taken from git, run in its own directory), then migrated forward with today's
code. Every row of every table must still be there (the moved tables under their new names),
and every audit event must keep its id, verb, actor and data, its target type rewritten to the
registry's. Running ``migrate`` again must change nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

REPO = Path(__file__).resolve().parents[2]
# The last commit of main before the registry left fleet/ (issue 8).
BEFORE_SPLIT = "96c50b2a9fae0206cf6768afb65954203eeb3ea4"

MOVED_TABLES = {
    "fleet_model": "modelregistry_mlmodel",
    "fleet_modelversion": "modelregistry_modelversion",
    "fleet_validationrun": "modelregistry_validationrun",
    "fleet_signingkey": "modelregistry_signingkey",
    "fleet_modelsignature": "modelregistry_modelsignature",
}
MOVED_TYPES = {
    "fleet.model": "modelregistry.mlmodel",
    "fleet.modelversion": "modelregistry.modelversion",
    "fleet.validationrun": "modelregistry.validationrun",
    "fleet.signingkey": "modelregistry.signingkey",
    "fleet.modelsignature": "modelregistry.modelsignature",
}

pytestmark = pytest.mark.postgres


def _server_params() -> dict:
    db = settings.DATABASES["default"]
    return {
        "host": db["HOST"] or "127.0.0.1",
        "port": int(db["PORT"] or 5432),
        "user": db["USER"] or "postgres",
        "password": db["PASSWORD"] or "",
    }


def _url(params: dict, name: str) -> str:
    auth = params["user"] + (f":{params['password']}" if params["password"] else "")
    return f"postgres://{auth}@{params['host']}:{params['port']}/{name}"


def _manage(cwd: Path, database_url: str, var_dir: Path, *args: str) -> str:
    """``manage.py`` of the checkout in ``cwd``, with only what it needs in its environment
    (no REDIS_URL: the filesystem broker under ``var_dir``, so nothing reaches the test broker)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(var_dir),
        "PYTHONPATH": str(cwd),
        "DATABASE_URL": database_url,
        "OPSHERO_VAR_DIR": str(var_dir),
        "DJANGO_SETTINGS_MODULE": "opshero.settings",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"manage.py {' '.join(args)} in {cwd} failed:\n{done.stderr}"
    return done.stdout


def _checkout(commit: str, into: Path) -> Path:
    """The tree of ``commit`` in ``into`` (git archive: the repository itself is not touched)."""
    archive = into / "tree.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "archive", commit], cwd=REPO, stdout=out, check=True, timeout=120)
    tree = into / "tree"
    tree.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def _tables(conn) -> dict[str, list[tuple]]:
    """Every row of every public table, as sorted tuples of text (comparable across renames)."""
    names = [
        row[0]
        for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
    ]
    tables = {}
    for name in names:
        rows = conn.execute(f'SELECT * FROM "{name}"').fetchall()  # noqa: S608 - catalog names
        tables[name] = sorted(tuple("" if v is None else str(v) for v in row) for row in rows)
    return tables


def _projected(conn, table: str, columns: list[str], pks: list) -> list[tuple]:
    """The rows ``pks`` of ``table``, only ``columns``, as :func:`_tables` renders them."""
    names = ", ".join(f'"{c}"' for c in columns)
    rows = conn.execute(
        f'SELECT {names} FROM "{table}" WHERE id = ANY(%s)',  # noqa: S608 - catalog names
        [pks],
    ).fetchall()
    return sorted(tuple("" if v is None else str(v) for v in row) for row in rows)


def _columns(conn, table: str) -> list[str]:
    return [
        row[0]
        for row in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
            "ORDER BY ordinal_position",
            [table],
        )
    ]


@pytest.fixture
def scratch_database():
    """A database of its own on the test server, dropped afterwards."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.fail("The upgrade test needs git and the repository's history (a clone of main).")
    params = _server_params()
    name = f"opshero_upgrade_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield params, name
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_seeded_database_from_before_the_split_upgrades_in_place(scratch_database, tmp_path):
    params, name = scratch_database
    url = _url(params, name)
    old_tree = _checkout(BEFORE_SPLIT, tmp_path)
    old_var, new_var = tmp_path / "old-var", tmp_path / "new-var"
    _manage(old_tree, url, old_var, "migrate", "--noinput", "-v", "0")
    _manage(old_tree, url, old_var, "seed_demo")

    with psycopg.connect(dbname=name, **params) as conn:
        before = _tables(conn)
        audit_columns = _columns(conn, "opshero_auditevent")
        old_columns = {table: _columns(conn, table) for table in before}
        old_pks = {
            table: [row[0] for row in conn.execute(f'SELECT id FROM "{table}"').fetchall()]  # noqa: S608
            for table in before
            if "id" in old_columns[table]
        }
        content_types = dict(
            conn.execute(
                "SELECT app_label || '.' || model, id FROM django_content_type "
                "WHERE app_label = 'fleet'"
            ).fetchall()
        )
    # The old database really holds registry rows and their history, or this proves nothing.
    for table in MOVED_TABLES:
        if table != "fleet_validationrun" and table != "fleet_modelsignature":
            assert before[table], f"seed_demo left {table} empty"
    type_column = audit_columns.index("target_type")
    moved_events = [row for row in before["opshero_auditevent"] if row[type_column] in MOVED_TYPES]
    assert moved_events, "seed_demo wrote no audit event about a registry object"

    # An upgrade in place keeps its signing master key (today's seed signs with the key the
    # old seed created).
    new_var.mkdir(parents=True, exist_ok=True)
    shutil.copy(old_var / "signing_master_key", new_var / "signing_master_key")
    out = _manage(REPO, url, new_var, "migrate", "--noinput")
    assert "modelregistry.0002_registry_tables_and_history... OK" in out

    with psycopg.connect(dbname=name, **params) as conn:
        after = _tables(conn)
        new_audit_columns = _columns(conn, "opshero_auditevent")
        # Later migrations add columns (and built-in targets): compare what existed before,
        # the columns and rows the old code wrote, as the new schema holds them.
        kept = {
            table: _projected(conn, MOVED_TABLES.get(table, table), old_columns[table], pks)
            for table, pks in old_pks.items()
        }
        renamed_types = dict(
            conn.execute(
                "SELECT app_label || '.' || model, id FROM django_content_type "
                "WHERE app_label = 'modelregistry'"
            ).fetchall()
        )

    # Every table of before is still there with the same rows; the moved ones under new names.
    for table, rows in before.items():
        if table in ("django_migrations", "opshero_auditevent", "django_content_type"):
            continue
        if table == "auth_permission":
            continue  # codenames of the renamed model are rewritten, compared below
        new_table = MOVED_TABLES.get(table, table)
        assert new_table in after, f"{table} is gone"
        got = kept[table] if table in kept else after[new_table]
        assert got == rows, f"rows of {table} changed in {new_table}"
    for table in MOVED_TABLES:
        assert table not in after

    # Every audit event is kept, same id and contents, its target type following the move.
    def rewritten(row: tuple) -> tuple:
        values = dict(zip(audit_columns, row, strict=True))
        values["target_type"] = MOVED_TYPES.get(values["target_type"], values["target_type"])
        return tuple(values[c] for c in new_audit_columns if c in values)

    expected_events = sorted(rewritten(row) for row in before["opshero_auditevent"])
    kept_columns = [c for c in new_audit_columns if c in audit_columns]
    positions = [new_audit_columns.index(c) for c in kept_columns]
    actual_events = sorted(tuple(row[i] for i in positions) for row in after["opshero_auditevent"])
    assert actual_events == expected_events
    assert len(after["opshero_auditevent"]) == len(before["opshero_auditevent"])
    assert not any(
        row[new_audit_columns.index("target_type")] in MOVED_TYPES
        for row in after["opshero_auditevent"]
    )

    # Content types keep their ids (permissions and generic relations stay attached).
    assert renamed_types["modelregistry.mlmodel"] == content_types["fleet.model"]
    assert renamed_types["modelregistry.modelversion"] == content_types["fleet.modelversion"]
    # Every permission is kept; apps added since (telemetry) bring their own on top.
    old_types = {row[2] for row in before["auth_permission"]}
    kept_permissions = [row for row in after["auth_permission"] if row[2] in old_types]
    assert len(kept_permissions) == len(before["auth_permission"])

    # Migrating again is a no-op; today's seed_demo finds its data and adds no second model.
    assert "No migrations to apply." in _manage(REPO, url, new_var, "migrate", "--noinput")
    _manage(REPO, url, new_var, "seed_demo")
    with psycopg.connect(dbname=name, **params) as conn:
        models_after_seed = conn.execute("SELECT count(*) FROM modelregistry_mlmodel").fetchone()
        names = {row[0] for row in conn.execute("SELECT name FROM modelregistry_mlmodel")}
    # The old seed's SqueezeNet is renamed in place to its truthful name; the digits demo is
    # the one model it adds.
    assert models_after_seed[0] == len(before["fleet_model"]) + 1
    assert names == {"handwritten-digits", "squeezenet-test-network"}
