"""Pending samples meet their events; what never does is refused, and nothing is left behind."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from protocol import evidence as wire
from review import services, storage
from review.models import EvidenceDeletionRun, EvidenceSample

from .builders import json_sample, low_confidence, store_events

pytestmark = pytest.mark.django_db


def _receive(device, sequence: int, *, now=None, body=None):
    return services.receive_evidence(
        device=device,
        body=body or json_sample(n=sequence),
        content_type="application/json",
        query=wire.evidence_query(
            wire.EvidenceRef(epoch="epoch-0001-aaaa", sequence=sequence, reason="audit")
        ),
        now=now,
    ).sample


def test_only_samples_looked_up_are_refused_as_unmatched(gateway):
    device, _ = gateway
    old = timezone.now() - timedelta(hours=30)
    # Received a minute apart: the first is the oldest, so a one-sample page takes it.
    first = _receive(device, 1, now=old - timedelta(minutes=1))
    second = _receive(device, 2, now=old)
    # The second one's event is stored, but this pass only looks at one sample (the oldest).
    store_events(device, [low_confidence(2)])
    outcome = services.link_pending_evidence(limit=1, max_pages=1)
    assert outcome == {"linked": 0, "unmatched": 1}
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == "unmatched" and first.wrapped_key is None
    assert second.status == "pending"  # not refused unseen
    assert services.link_pending_evidence(limit=1, max_pages=1) == {"linked": 1, "unmatched": 0}
    run = EvidenceDeletionRun.objects.get()
    assert (run.cause, run.samples) == ("unmatched", 1)


def test_a_sample_within_the_link_window_keeps_waiting(gateway):
    device, _ = gateway
    sample = _receive(device, 5, now=timezone.now() - timedelta(hours=23))
    assert services.link_pending_evidence() == {"linked": 0, "unmatched": 0}
    sample.refresh_from_db()
    assert sample.status == "pending"


def test_an_object_left_behind_by_a_lost_unlink_is_swept(gateway):
    device, _ = gateway
    sample = _receive(device, 3)
    path = Path(settings.EVIDENCE_ROOT) / sample.object_name
    ciphertext = path.read_bytes()
    later = timezone.now() + timedelta(days=31)
    assert services.apply_evidence_retention(now=later) == 1
    assert not path.exists()
    storage.write_object(sample.object_name, ciphertext)  # as if the unlink had been lost
    assert services.apply_evidence_retention(now=later) == 0
    assert not path.exists()
    sample.refresh_from_db()
    assert sample.status == "deleted" and sample.wrapped_key is None
    assert EvidenceSample.objects.filter(status="deleted").count() == 1


def test_a_sample_whose_event_waits_in_a_landed_batch_is_not_refused(gateway):
    from telemetry import services as telemetry_services
    from tests.telemetry.builders import batch_body

    device, _ = gateway
    sample = _receive(device, 8, now=timezone.now() - timedelta(hours=30))
    # The batch holding its event landed (durable) but no worker has expanded it: an outage.
    receipt = telemetry_services.land_batch(
        device=device,
        body=batch_body([low_confidence(7), low_confidence(8), low_confidence(9)]),
        content_type="application/json",
        enqueue=False,
    )
    assert services.link_pending_evidence() == {"linked": 0, "unmatched": 0}
    sample.refresh_from_db()
    assert sample.status == "pending"
    telemetry_services.ingest_landed_batch(batch_id=receipt.batch_id)
    assert services.link_pending_evidence() == {"linked": 1, "unmatched": 0}


def test_what_a_reviewer_typed_goes_with_the_evidence(gateway, version):
    from opshero.actors import Actor
    from review.models import Review

    device, _ = gateway
    store_events(device, [low_confidence(4)])
    sample = _receive(device, 4)
    services.link_pending_evidence()
    sample.refresh_from_db()
    services.submit_review(
        sample=sample,
        actor=Actor.system("tests"),
        true_class="scratch",
        reason="patient Jane Doe, bed 4",
    )
    services.apply_evidence_retention(now=timezone.now() + timedelta(days=31))
    review = Review.objects.get(sample=sample)
    assert review.reason == ""
    assert (review.verdict, review.true_class, review.predicted_class) == (
        "corrected",
        "scratch",
        "dent",
    )


def test_an_epoch_of_another_organisation_is_just_unknown(gateway):
    from tests.factories import enroll_device, make_org

    device, _ = gateway
    foreign, _ = enroll_device(make_org())
    store_events(
        foreign, [low_confidence(1, epoch="epoch-of-another-org")], epoch="epoch-of-another-org"
    )
    sample = services.receive_evidence(
        device=device,
        body=json_sample(),
        content_type="application/json",
        query=wire.evidence_query(
            wire.EvidenceRef(epoch="epoch-of-another-org", sequence=1, reason="audit")
        ),
    ).sample
    assert sample.status == "pending"  # nothing about the other tenant is confirmed


def test_samples_that_never_match_do_not_hold_up_newer_ones(gateway):
    device, _ = gateway
    for sequence in (1, 2, 3):  # older, never matched (within the link window still)
        _receive(device, sequence, now=timezone.now() - timedelta(hours=2))
    newer = _receive(device, 10)
    store_events(device, [low_confidence(10)])
    # Pages of two: the newer sample is on the second page and still linked in one pass.
    assert services.link_pending_evidence(limit=2) == {"linked": 1, "unmatched": 0}
    newer.refresh_from_db()
    assert newer.status == "linked"
