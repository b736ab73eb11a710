"""Retention: objects and keys deleted on schedule, the deletion report, unmatched samples, a
changed schedule, and exports deleted like the evidence."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from opshero.errors import InvalidInput, NotFound
from opshero.models import AuditEvent
from review import exports, ledger, services, storage
from review.models import EvidenceDeletionRun, EvidenceSample, LabelledExport, Review
from tests.factories import enroll_device, make_site

from .builders import json_sample, open_evidence_policy
from .isolation_data import SYSTEM, reviewed_sample, stored_sample

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


def test_retention_deletes_object_and_key_and_a_later_read_is_not_found(
    gateway, version, django_capture_on_commit_callbacks
):
    device, _ = gateway
    sample = reviewed_sample(device, json_sample(), sequence=1)
    path = storage.open_path(sample.object_name)
    assert path.exists() and sample.wrapped_key is not None
    with django_capture_on_commit_callbacks(execute=True):
        deleted = services.apply_evidence_retention(now=sample.delete_after + timedelta(seconds=1))
    assert deleted == 1
    gone = EvidenceSample.objects.get(pk=sample.pk)
    assert gone.status == "deleted" and gone.wrapped_key is None and gone.deleted_at is not None
    assert not path.exists()
    with pytest.raises(NotFound):
        services.read_evidence(sample=gone, actor=SYSTEM)
    # The review outlives the evidence (accuracy over time keeps its cases).
    assert Review.objects.filter(sample=gone).exists()


def test_nothing_is_deleted_before_its_time(gateway, version):
    device, _ = gateway
    sample = stored_sample(device, json_sample(), sequence=1)
    assert services.apply_evidence_retention(now=sample.delete_after - timedelta(seconds=1)) == 0
    assert EvidenceSample.objects.get(pk=sample.pk).wrapped_key is not None


def test_the_deletion_report_counts_what_one_run_deleted(
    gateway, version, django_capture_on_commit_callbacks
):
    device, _ = gateway
    start = timezone.now() - timedelta(days=40)
    bodies = [json_sample(n=i) for i in range(3)]
    samples = [
        stored_sample(device, body, sequence=i + 1, now=start + timedelta(hours=i))
        for i, body in enumerate(bodies)
    ]
    kept = stored_sample(device, json_sample(n=9), sequence=9)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.apply_evidence_retention() == 3
    run = EvidenceDeletionRun.objects.get()
    assert (run.cause, run.samples, run.bytes) == ("retention", 3, sum(map(len, bodies)))
    assert (run.oldest_received_at, run.newest_received_at) == (
        samples[0].received_at,
        samples[2].received_at,
    )
    assert set(EvidenceSample.objects.filter(deletion_run=run).values_list("pk", flat=True)) == {
        s.pk for s in samples
    }
    assert EvidenceSample.objects.get(pk=kept.pk).status == "linked"
    assert AuditEvent.objects.filter(verb="evidence.deleted", target_id=str(run.pk)).count() == 1
    report = list(ledger.deletion_runs_for_org(org=device.organization))
    assert report == [run]


def test_pending_samples_without_their_event_after_a_day_are_deleted_as_unmatched(
    gateway, django_capture_on_commit_callbacks
):
    device, _ = gateway
    late = stored_sample(device, json_sample(), sequence=4, linked=False)
    fresh = stored_sample(
        device, json_sample(n=2), sequence=5, linked=False, now=late.received_at + 2 * DAY
    )
    path = storage.open_path(late.object_name)
    with django_capture_on_commit_callbacks(execute=True):
        result = services.link_pending_evidence(now=late.received_at + DAY + timedelta(minutes=1))
    assert result == {"linked": 0, "unmatched": 1}
    gone = EvidenceSample.objects.get(pk=late.pk)
    assert (gone.status, gone.wrapped_key) == ("unmatched", None)
    assert not path.exists()
    run = EvidenceDeletionRun.objects.get()
    assert (run.cause, run.samples, run.bytes) == ("unmatched", 1, len(json_sample()))
    assert EvidenceSample.objects.get(pk=fresh.pk).status == "pending"


def test_a_changed_schedule_moves_the_deletion_time_of_held_samples(world, gateway, version):
    device, _ = gateway
    clinic = make_site(world.a.org, "Ward 3", kind="clinic")
    open_evidence_policy(clinic, image_evidence=False)
    nurse_station, _ = enroll_device(world.a.org, site=clinic)
    dock_sample = stored_sample(device, json_sample(), sequence=1)
    clinic_sample = stored_sample(nurse_station, json_sample(), sequence=1)
    assert clinic_sample.site_kind == "clinic"
    # The defaults: 30 days, 7 at clinics.
    assert clinic_sample.delete_after - clinic_sample.received_at == timedelta(days=7)
    assert dock_sample.delete_after - dock_sample.received_at == timedelta(days=30)
    services.set_evidence_settings(
        organization=world.a.org, actor=SYSTEM, retention_days=10, clinic_retention_days=3
    )
    dock_sample.refresh_from_db()
    clinic_sample.refresh_from_db()
    assert dock_sample.delete_after - dock_sample.received_at == timedelta(days=10)
    assert clinic_sample.delete_after - clinic_sample.received_at == timedelta(days=3)
    schedule = ledger.deletion_schedule_for_org(
        org=world.a.org, now=clinic_sample.received_at + timedelta(days=2, hours=1)
    )
    assert (schedule.retention_days, schedule.clinic_retention_days) == (10, 3)
    assert (schedule.held, schedule.due_24h, schedule.due_7d) == (2, 1, 1)
    assert not schedule.is_default


def test_a_clinic_may_not_keep_evidence_longer_than_other_sites(world):
    with pytest.raises(InvalidInput) as caught:
        services.set_evidence_settings(
            organization=world.a.org, actor=SYSTEM, retention_days=5, clinic_retention_days=6
        )
    assert "clinic_retention_days" in caught.value.fields


def test_the_schedule_counts_the_next_deletions(world, gateway, version):
    device, _ = gateway
    now = timezone.now()
    # Received 29.5 days ago: due within 24 h; 25 days ago: due within 7 days; today: later.
    stored_sample(device, json_sample(n=1), sequence=1, now=now - timedelta(days=29, hours=12))
    stored_sample(device, json_sample(n=2), sequence=2, now=now - timedelta(days=25))
    stored_sample(device, json_sample(n=3), sequence=3)
    stored_sample(device, json_sample(n=4), sequence=4, linked=False)
    schedule = ledger.deletion_schedule_for_org(org=world.a.org, now=timezone.now())
    assert (schedule.held, schedule.due_24h, schedule.due_7d) == (4, 1, 2)
    assert (schedule.pending, schedule.unmatched_due_24h) == (1, 1)
    assert schedule.is_default


def test_exports_older_than_the_retention_are_deleted_file_and_row(
    world, gateway, version, django_capture_on_commit_callbacks
):
    device, _ = gateway
    reviewed_sample(device, json_sample(), sequence=1)
    old = exports.create_labelled_export(organization=world.a.org, actor=SYSTEM, build_now=True)
    new = exports.create_labelled_export(organization=world.a.org, actor=SYSTEM, build_now=True)
    assert old.options["site_kinds"] == ["dock"]
    # Exports built before they recorded their samples' deletion time: by their own age.
    legacy = {"site_kinds": ["dock"]}
    LabelledExport.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=31), options=legacy
    )
    # 8 days: past a clinic's 7, within a dock's 30: kept (it holds no clinic sample).
    LabelledExport.objects.filter(pk=new.pk).update(
        created_at=timezone.now() - timedelta(days=8), options=legacy
    )
    old_path = storage.open_path(old.object_name)
    assert old_path.exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert exports.delete_expired_exports() == 1
    assert not LabelledExport.objects.filter(pk=old.pk).exists()
    assert not old_path.exists()
    assert storage.open_path(new.object_name).exists()
    event = AuditEvent.objects.get(verb="evidence.deleted", target_type="labelled_export")
    assert event.target_id == str(old.pk)


def test_an_export_holding_clinic_samples_keeps_to_the_clinic_retention(
    world, version, django_capture_on_commit_callbacks
):
    clinic = make_site(world.a.org, "Ward 5", kind="clinic")
    open_evidence_policy(clinic, image_evidence=False)
    device, _ = enroll_device(world.a.org, site=clinic)
    reviewed_sample(device, json_sample(), sequence=1)
    export = exports.create_labelled_export(organization=world.a.org, actor=SYSTEM, build_now=True)
    assert export.options["site_kinds"] == ["clinic"]
    LabelledExport.objects.filter(pk=export.pk).update(
        created_at=timezone.now() - timedelta(days=8), options={"site_kinds": ["clinic"]}
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert exports.delete_expired_exports() == 1
    assert not storage.open_path(export.object_name).exists()


def test_an_export_goes_when_the_first_of_its_samples_would(
    world, gateway, version, django_capture_on_commit_callbacks
):
    device, _ = gateway
    now = timezone.now()
    reviewed_sample(device, json_sample(n=1), sequence=1, now=now - timedelta(days=20))
    reviewed_sample(device, json_sample(n=2), sequence=2)
    export = exports.create_labelled_export(organization=world.a.org, actor=SYSTEM, build_now=True)
    assert export.samples == 2
    first_due = now - timedelta(days=20) + timedelta(days=30)
    assert abs(datetime.fromisoformat(export.options["delete_by"]) - first_due) < timedelta(
        minutes=1
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert exports.delete_expired_exports(now=now + timedelta(days=9)) == 0
        assert exports.delete_expired_exports(now=now + timedelta(days=11)) == 1
    assert not storage.open_path(export.object_name).exists()
