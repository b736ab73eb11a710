"""Field accuracy from real reviews in the database (``review.field_accuracy``) and the plan's
field sources for accuracy and ECE (``roi.sources.review``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from opshero.actors import Actor
from protocol import telemetry as wire
from review.accuracy import MIN_REVIEWS
from review.field_accuracy import field_accuracy_for_org, review_counts, review_tally
from review.models import EvidenceSample
from review.services import submit_review
from roi import services as roi_services
from roi.measurements import planned_vs_measured
from roi.models import Plan
from roi.plan import MeasureKey, Provenance, Tracking
from telemetry import rollups
from tests.roi.builders import SYSTEM, make_plan

from .builders import json_sample, low_confidence, post_evidence, store_events

pytestmark = pytest.mark.django_db

REVIEWER = Actor.system("tests")
_next_seq = iter(range(1, 10_000_000))


def make_reviews(client, gateway, cases, *, model: wire.ModelRef | None = None, feedback=()):
    """Reviewed cases through the real path: the inference events land, the gateway sends each
    case as evidence (linked to its event), a reviewer confirms or corrects it.

    ``cases``: (predicted, true class, confidence, reason). ``feedback``: thumbs ("up"/"down")
    on extra inferences of the same batch (no evidence)."""
    device, key = gateway
    extra = {"model": model} if model is not None else {}
    seqs = [next(_next_seq) for _ in cases]
    events = [
        low_confidence(seq, predicted=predicted, confidence=confidence, **extra)
        for seq, (predicted, _true, confidence, _reason) in zip(seqs, cases, strict=True)
    ]
    for thumbs in feedback:
        events.append(
            low_confidence(
                next(_next_seq), confidence=0.9, feedback=wire.Feedback(thumbs=thumbs), **extra
            )
        )
    store_events(device, events)
    reviews = []
    for seq, (_predicted, true, _confidence, reason) in zip(seqs, cases, strict=True):
        response = post_evidence(client, device, key, json_sample(), sequence=seq, reason=reason)
        assert response.status_code == 201, response.content
        sample = EvidenceSample.objects.get(device=device, sequence=seq)
        assert sample.status == "linked", sample.status
        reviews.append(submit_review(sample=sample, actor=REVIEWER, true_class=true))
    return reviews


def audit_cases(right: int, wrong: int, *, confidence: float = 0.9):
    return [("dent", "dent", confidence, "audit")] * right + [
        ("dent", "ok", confidence, "audit")
    ] * wrong


def low_cases(right: int, wrong: int, *, confidence: float = 0.41):
    return [("dent", "dent", confidence, "low_confidence")] * right + [
        ("dent", "scratch", confidence, "low_confidence")
    ] * wrong


# --- review.field_accuracy ----------------------------------------------------------------------


def test_a_scope_has_its_reviews_strata_thumbs_and_estimate(client, world, gateway, version, dock):
    # Policy threshold 0.6 (standard default). 4 low-confidence reviews (1 right) at 0.41 and
    # 6 audit reviews (5 right) at 0.9; 3 thumbs up and 1 down on other inferences.
    make_reviews(
        client, gateway, low_cases(1, 3) + audit_cases(5, 1), feedback=("up", "up", "up", "down")
    )
    rollups.roll_up_marked()
    result = field_accuracy_for_org(org=world.a.org)
    assert len(result.rows) == 1
    row = result.rows[0]
    assert (row.site_name, row.model_version, row.version_id) == ("North dock", "v3", version.pk)
    assert row.class_names == ["dent", "scratch", "crush", "ok"]
    assert row.threshold == pytest.approx(0.6)
    summary = row.summary
    assert (summary.reviewed.successes, summary.reviewed.total) == (6, 10)
    assert summary.by_reason["low_confidence"].value == pytest.approx(0.25)
    assert summary.by_reason["audit"].value == pytest.approx(5 / 6)
    assert summary.reviewed.note == "too few reviews to judge"
    assert summary.confusion.cell("scratch", "dent") == 3
    assert summary.confusion.cell("ok", "dent") == 1
    assert (row.thumbs.successes, row.thumbs.total) == (3, 4)
    # 14 inferences: 4 at 0.41, 10 at 0.9 -> mean confidence (4 * 0.41 + 10 * 0.9) / 14
    assert row.inferences == 14
    assert row.estimated == pytest.approx((4 * 0.41 + 10 * 0.9) / 14)
    # P(low) = 4 / 14; stratified: 4/14 * 0.25 + 10/14 * 5/6
    assert row.low_share == pytest.approx(4 / 14)
    assert summary.stratified.value == pytest.approx(4 / 14 * 0.25 + 10 / 14 * 5 / 6)
    assert row.lab is None
    assert result.selected is row
    today = [p for p in result.series if p.reviewed.total]
    assert len(today) == 1 and today[0].reviewed.total == 10
    assert sum(p.thumbs.total for p in result.series) == 4


def test_another_organisations_reviews_are_not_counted(client, world, gateway, version):
    make_reviews(client, gateway, audit_cases(3, 0))
    assert field_accuracy_for_org(org=world.b.org).rows == []
    assert review_tally(org=world.b.org).reviews == 0


def test_scope_filters_and_the_query_count_is_fixed(client, world, gateway, version, dock):
    make_reviews(client, gateway, audit_cases(2, 1))
    rollups.roll_up_marked()
    assert field_accuracy_for_org(org=world.a.org, site_id=dock.pk + 999).rows == []
    assert field_accuracy_for_org(org=world.a.org, version_id=version.pk + 999).rows == []
    only = field_accuracy_for_org(org=world.a.org, site_id=dock.pk, version_id=version.pk)
    assert only.rows[0].reviews == 3
    with CaptureQueriesContext(connection) as few:
        field_accuracy_for_org(org=world.a.org)
    make_reviews(client, gateway, audit_cases(5, 2) + low_cases(3, 3))
    rollups.roll_up_marked()
    with CaptureQueriesContext(connection) as more:
        field_accuracy_for_org(org=world.a.org)
    assert len(more.captured_queries) == len(few.captured_queries)


def test_review_counts_for_a_gate(client, world, gateway, version, dock):
    make_reviews(client, gateway, audit_cases(4, 1) + low_cases(0, 2))
    assert review_counts(org=world.a.org, site_ids=[dock.pk], version_ids=[version.pk]) == (4, 7)
    assert review_counts(org=world.a.org, site_ids=[dock.pk + 1], version_ids=[version.pk]) == (
        0,
        0,
    )


# --- roi.sources.review -------------------------------------------------------------------------


def _plan(org, model):
    plan = make_plan(org)
    Plan.objects.filter(pk=plan.pk).update(created_at=timezone.now() - timedelta(hours=1))
    plan.refresh_from_db()
    return roi_services.update_plan(plan=plan, actor=SYSTEM, model=model)


def _status(measured, key):
    return next(s for s in measured.statuses if s.metric.key == key)


def test_the_plan_has_no_field_accuracy_below_the_minimum_of_reviews(
    client, world, gateway, version
):
    make_reviews(client, gateway, audit_cases(MIN_REVIEWS - 2, 1))  # 29 reviews
    measured = planned_vs_measured(_plan(world.a.org, version.model))
    assert measured.measurement(MeasureKey.ACCURACY, Provenance.FIELD) is None
    assert measured.measurement(MeasureKey.ECE, Provenance.FIELD) is None
    assert _status(measured, "accuracy").state is Tracking.NOT_MEASURED


def test_reviewed_cases_give_the_plan_field_accuracy_and_ece(client, world, gateway, version):
    # 30 audit cases at 0.9 confidence, 27 right: accuracy 0.9, ECE |0.9 - 0.9| = 0 in bin 13.
    make_reviews(client, gateway, audit_cases(27, 3))
    measured = planned_vs_measured(_plan(world.a.org, version.model))
    accuracy = measured.measurement(MeasureKey.ACCURACY, Provenance.FIELD)
    assert accuracy is not None
    assert accuracy.value == pytest.approx(0.9)
    assert accuracy.provenance is Provenance.FIELD
    assert "reviewed cases" in accuracy.source and "30 reviews" in accuracy.source
    assert accuracy.sites == ("North dock",) and accuracy.device_count == 1
    assert accuracy.window_start <= accuracy.window_end
    ece = measured.measurement(MeasureKey.ECE, Provenance.FIELD)
    assert ece is not None and ece.value == pytest.approx(0.0, abs=1e-9)
    assert ece.unit == "ratio"
    assert _status(measured, "accuracy").state is not Tracking.NOT_MEASURED


def test_low_confidence_reviews_alone_are_no_accuracy_figure(client, world, gateway, version):
    make_reviews(client, gateway, low_cases(10, 25))
    measured = planned_vs_measured(_plan(world.a.org, version.model))
    assert measured.measurement(MeasureKey.ACCURACY, Provenance.FIELD) is None
    # ECE is still measured on the reviewed cases (35 of them).
    assert measured.measurement(MeasureKey.ECE, Provenance.FIELD) is not None


def test_the_accuracy_source_keeps_the_figure_with_more_cases(
    client, world, gateway, version, monkeypatch
):
    from roi.sources import review as review_source
    from telemetry import selectors as telemetry_selectors
    from telemetry.selectors import FieldFigure

    make_reviews(client, gateway, audit_cases(27, 3))
    plan = _plan(world.a.org, version.model)
    now = timezone.now()

    def labelled(count):
        def figure(**kwargs):
            return FieldFigure(
                value=0.5,
                unit="share",
                count=count,
                device_count=1,
                site_names=("North dock",),
                window_start=now - timedelta(hours=1),
                window_end=now,
                detail=f"{count} labelled inferences",
            )

        return figure

    # More labelled inferences (500) than reviewed cases (30): telemetry's figure.
    monkeypatch.setattr(telemetry_selectors, "field_accuracy", labelled(500))
    chosen = review_source.field_accuracy({**_context(plan)})
    assert chosen.value == pytest.approx(0.5) and "labelled inferences" in chosen.source
    # Fewer (10): the reviews'.
    monkeypatch.setattr(telemetry_selectors, "field_accuracy", labelled(10))
    chosen = review_source.field_accuracy({**_context(plan)})
    assert chosen.value == pytest.approx(0.9) and "reviewed cases" in chosen.source


def _context(plan):
    from roi.measurements import measurement_context

    return measurement_context(plan)
