"""Daily range partitions of the raw event tables on PostgreSQL (native declarative).

Chosen over pg_partman so that a plain PostgreSQL (and the test suite) needs no extension:
beat creates partitions ``TELEMETRY_PARTITIONS_AHEAD_DAYS`` ahead and drops whole ones past
the longest retention any organisation has (``telemetry.retention``); an ingest worker that
meets an event for a day without a partition (a late replay inside retention) creates it
first. On SQLite the tables are plain and every function here is a no-op.

Partition names are ``<table>_pYYYYMMDD``, bounds are UTC midnights.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from django.db import connections, migrations, transaction

# Every caller that may create partitions takes this lock first (transaction-scoped), so two
# workers meeting the same new day do not race on the catalogue.
_PARTITION_LOCK_KEY = 0x7E1E_0001

_NAME = re.compile(r"^(?P<table>.+)_p(?P<day>\d{8})$")


def partitioned_tables() -> list[str]:
    from .models import HealthEvent, InferenceEvent

    return [InferenceEvent._meta.db_table, HealthEvent._meta.db_table]


def is_partitioned(using: str) -> bool:
    return connections[using].vendor == "postgresql"


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def _bound(day: date) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat()


def existing_partitions(*, using: str) -> dict[str, set[date]]:
    """The days that have a partition, per partitioned table."""
    tables = partitioned_tables()
    found: dict[str, set[date]] = {table: set() for table in tables}
    if not is_partitioned(using):
        return found
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT parent.relname, child.relname FROM pg_inherits "
            "JOIN pg_class parent ON parent.oid = pg_inherits.inhparent "
            "JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
            "WHERE parent.relname = ANY(%s)",
            [tables],
        )
        for parent, child in cursor.fetchall():
            match = _NAME.match(child)
            if match and match["table"] == parent:
                found[parent].add(datetime.strptime(match["day"], "%Y%m%d").date())
    return found


_known: dict[str, set[date]] = {}


def ensure_partitions(*, days: Iterable[date], using: str) -> list[str]:
    """Create the missing daily partitions for ``days`` (inside the caller's transaction).

    Returns the partitions created. Cheap when they exist: recent days already seen by this
    process are remembered, so the catalogue is read only when another day appears.
    """
    if not is_partitioned(using):
        return []
    wanted = set(days)
    tables = partitioned_tables()
    known = _known.setdefault(using, set())
    if wanted <= known:
        return []
    connection = connections[using]
    created: list[str] = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PARTITION_LOCK_KEY])
        existing = existing_partitions(using=using)
        for table in tables:
            quoted_table = connection.ops.quote_name(table)
            for day in sorted(wanted - existing[table]):
                name = partition_name(table, day)
                # Identifiers are ours (table name and a date); bounds are literals of a date.
                cursor.execute(
                    f"CREATE TABLE {connection.ops.quote_name(name)} "
                    f"PARTITION OF {quoted_table} FOR VALUES FROM ('{_bound(day)}') "
                    f"TO ('{_bound(day + timedelta(days=1))}')"
                )
                created.append(name)
    # Remembered only once committed (a rolled-back CREATE leaves no partition), and only for
    # recent days: retention drops old partitions from another process, so an old day is
    # always checked against the catalogue.
    recent = {day for day in wanted if day >= datetime.now(UTC).date() - timedelta(days=1)}
    transaction.on_commit(lambda: known.update(recent), using=using)
    return created


def drop_partitions_before(*, day: date, using: str) -> list[str]:
    """Drop every partition whose whole day is before ``day``; returns the dropped names."""
    if not is_partitioned(using):
        return []
    connection = connections[using]
    dropped: list[str] = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PARTITION_LOCK_KEY])
        for table, days in existing_partitions(using=using).items():
            for old in sorted(d for d in days if d < day):
                name = partition_name(table, old)
                cursor.execute(f"DROP TABLE {connection.ops.quote_name(name)}")
                dropped.append(name)
    _known.pop(using, None)
    return dropped


def forget_known_partitions() -> None:
    """Forget what this process has seen (tests drop and recreate tables)."""
    _known.clear()


class CreatePartitionedModel(migrations.CreateModel):
    """``CreateModel`` whose table is partitioned by RANGE (``timestamp``) on PostgreSQL.

    Elsewhere it is a plain ``CreateModel``. The columns come from the model's own fields (so
    table and model cannot disagree); the primary key becomes (timestamp, id), as a
    partitioned table's keys must contain the partition key.
    """

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
            return
        model = to_state.apps.get_model(app_label, self.name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        quote = schema_editor.quote_name
        table = model._meta.db_table
        # PostgreSQL 15 does not apply an identity column's values to rows routed into a
        # partition, so the id comes from a plain sequence default, owned by the table.
        sequence = f"{table}_id_seq"
        columns = []
        for field in model._meta.local_fields:
            if field.primary_key:
                columns.append(
                    f"{quote(field.column)} bigint NOT NULL DEFAULT nextval('{sequence}')"
                )
                continue
            definition, params = schema_editor.column_sql(model, field)
            if params:
                raise ValueError(f"{field.name}: column defaults are not supported here")
            columns.append(f"{quote(field.column)} {definition}")
        columns.append(f"PRIMARY KEY ({quote('timestamp')}, {quote('id')})")
        schema_editor.execute(f"CREATE SEQUENCE {quote(sequence)}")
        schema_editor.execute(
            f"CREATE TABLE {quote(table)} ({', '.join(columns)}) "
            f"PARTITION BY RANGE ({quote('timestamp')})"
        )
        schema_editor.execute(
            f"ALTER SEQUENCE {quote(sequence)} OWNED BY {quote(table)}.{quote('id')}"
        )
        for index in model._meta.indexes:
            schema_editor.add_index(model, index)

    def describe(self):
        return f"Create model {self.name}, partitioned by day on PostgreSQL"
