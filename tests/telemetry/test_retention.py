"""Partitions ahead, whole partitions dropped past the longest retention, batched deletes."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from opshero.models import Organization
from telemetry import retention
from telemetry.models import EventKey, HealthEvent, InferenceEvent, IngestedBatch
from telemetry.partitions import (
    ensure_partitions,
    existing_partitions,
    forget_known_partitions,
    partitioned_tables,
)
from telemetry.storage import INFERENCE_COLUMNS, Owner, store_events

from .builders import health, inference

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="partitions are PostgreSQL's"
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def store(org, device_id, days_ago, *, seq):
    at = NOW - timedelta(days=days_ago)
    events = [inference(seq, at=at), health(seq + 1, at=at)]
    forget_known_partitions()
    ensure_partitions(days={at.date()}, using="default")
    owner = Owner(organization_id=org.pk, device_id=device_id, epoch_id=1)
    store_events(owner=owner, events=events, using="default")


@postgres_only
def test_the_table_has_exactly_the_models_columns():
    with connection.cursor() as cursor:
        described = connection.introspection.get_table_description(
            cursor, InferenceEvent._meta.db_table
        )
    columns = {c.name for c in described}
    assert columns == {f.column for f in InferenceEvent._meta.local_fields}
    assert set(INFERENCE_COLUMNS) | {"id"} == columns


@postgres_only
def test_partitions_are_created_ahead():
    forget_known_partitions()
    wanted = {(NOW + timedelta(days=offset)).date() for offset in range(-1, 8)}
    # Tests that commit (the end-to-end ones, in whatever order a worker runs them) may have
    # made some of these days' partitions already: only the missing ones are created.
    before = existing_partitions(using="default")
    missing = sum(len(wanted - set(before.get(table, ()))) for table in partitioned_tables())
    report = retention.maintain_storage(now=NOW)
    days = existing_partitions(using="default")["telemetry_inferenceevent"]
    assert wanted <= set(days)
    assert len(report["created"]) == missing
    assert retention.maintain_storage(now=NOW)["created"] == []


@postgres_only
def test_partitions_past_the_longest_retention_are_dropped_whole(world):
    Organization.objects.update(telemetry_retention_days=10)
    org = world.a.org
    store(org, 1, 12, seq=1)
    store(org, 1, 3, seq=10)
    report = retention.maintain_storage(now=NOW)
    old_day = (NOW - timedelta(days=12)).date()
    assert f"telemetry_inferenceevent_p{old_day:%Y%m%d}" in report["dropped"]
    assert old_day not in existing_partitions(using="default")["telemetry_inferenceevent"]
    assert sorted(InferenceEvent.objects.values_list("sequence", flat=True)) == [10]
    assert sorted(EventKey.objects.values_list("sequence", flat=True)) == [10, 11]


def test_a_shorter_retention_deletes_that_organisations_rows_only(world):
    Organization.objects.filter(pk=world.a.org.pk).update(telemetry_retention_days=5)
    Organization.objects.filter(pk=world.b.org.pk).update(telemetry_retention_days=30)
    store(world.a.org, 1, 7, seq=1)
    store(world.a.org, 1, 2, seq=10)
    store(world.b.org, 2, 7, seq=1)
    retention.maintain_storage(now=NOW)
    a = world.a.org.pk
    assert list(
        InferenceEvent.objects.filter(organization_id=a).values_list("sequence", flat=True)
    ) == [10]
    assert list(
        HealthEvent.objects.filter(organization_id=a).values_list("sequence", flat=True)
    ) == [11]
    assert InferenceEvent.objects.filter(organization_id=world.b.org.pk).count() == 1
    assert EventKey.objects.filter(organization_id=a).count() == 2
    assert EventKey.objects.filter(organization_id=world.b.org.pk).count() == 2


def test_the_ingest_log_is_kept_for_its_days(world, settings):
    import uuid

    settings.TELEMETRY_INGEST_LOG_DAYS = 7
    for days_ago in (1, 9):
        at = NOW - timedelta(days=days_ago)
        IngestedBatch.objects.create(
            batch_id=uuid.uuid4(),
            organization_id=world.a.org.pk,
            device_id=1,
            epoch_id=1,
            received_at=at,
            ingested_at=at,
            events=1,
            stored=1,
            duplicates=0,
            conflicts=0,
        )
    retention.maintain_storage(now=NOW)
    assert IngestedBatch.objects.count() == 1
