"""What left the sites: the ledger counts telemetry batches and evidence uploads on arrival, and its
reads, CSV and chart show them per site, day and kind."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from review import ledger
from telemetry import services as telemetry_services
from telemetry.models import DataSent
from telemetry.services import record_data_sent
from tests.factories import enroll_device, make_site
from tests.telemetry.builders import batch_body

from .builders import json_sample, low_confidence, open_evidence_policy, png_bytes, post_evidence

pytestmark = pytest.mark.django_db


def _land(device, events) -> bytes:
    body = batch_body(events)
    receipt = telemetry_services.land_batch(
        device=device, body=body, content_type="application/json", enqueue=False
    )
    assert receipt.batch_id
    return body


def test_batches_and_evidence_are_counted_per_site_day_and_kind(client, world, gateway, version):
    device, key = gateway
    first = _land(device, [low_confidence(1), low_confidence(2)])
    second = _land(device, [low_confidence(3)])
    sample = png_bytes(size=2000)
    assert (
        post_evidence(client, device, key, sample, sequence=1, content_type="image/png").status_code
        == 201
    )
    assert post_evidence(client, device, key, json_sample(), sequence=2).status_code == 201
    sent = ledger.data_sent_for_org(org=world.a.org, days=7)
    totals = {(t.site_name, t.kind): (t.records, t.bytes, t.requests) for t in sent.totals}
    assert totals == {
        ("North dock", "events"): (3, len(first) + len(second), 2),
        ("North dock", "evidence"): (2, len(sample) + len(json_sample()), 2),
    }
    assert sent.total_bytes == len(first) + len(second) + len(sample) + len(json_sample())
    assert sent.total_records == 5
    assert [row.day for row in sent.rows] == [timezone.now().date()] * 2


def test_a_refused_sample_still_left_the_site_and_is_counted(client, world, gateway):
    device, key = gateway
    response = post_evidence(client, device, key, b"not json at all", sequence=1)
    assert response.status_code >= 400
    (row,) = DataSent.objects.filter(site_id=device.site_id, kind="evidence")
    assert (row.records, row.bytes) == (1, len(b"not json at all"))


def _seed(org, site, *, day, kind="events", records=1, size=100):
    record_data_sent(
        organization_id=org.pk, site_id=site.pk, kind=kind, records=records, size=size, day=day
    )


def test_the_window_and_the_site_filter(world):
    today = timezone.now().date()
    north, south = make_site(world.a.org, "North"), make_site(world.a.org, "South")
    _seed(world.a.org, north, day=today, size=100)
    _seed(world.a.org, north, day=today - timedelta(days=6), size=200)
    _seed(world.a.org, north, day=today - timedelta(days=7), size=400)  # outside 7 days
    _seed(world.a.org, south, day=today, kind="evidence", size=1000)
    foreign = make_site(world.b.org, "Globex ward")
    _seed(world.b.org, foreign, day=today, size=99999)
    week = ledger.data_sent_for_org(org=world.a.org, days=7, today=today)
    assert week.total_bytes == 1300 and (week.start, week.end) == (today - timedelta(6), today)
    month = ledger.data_sent_for_org(org=world.a.org, days="30", today=today)
    assert month.total_bytes == 1700
    only_north = ledger.data_sent_for_org(org=world.a.org, days=7, site_id=str(north.pk))
    assert only_north.site == north and only_north.total_bytes == 300
    # Another organisation's site, or nonsense, shows every site of this one (never theirs).
    assert ledger.data_sent_for_org(org=world.a.org, days=7, site_id=foreign.pk).total_bytes == 1300
    assert ledger.data_sent_for_org(org=world.a.org, days=7, site_id="x").site is None
    assert ledger.data_sent_for_org(org=world.a.org, days=13).days == ledger.DEFAULT_DAYS


def test_the_csv_has_one_row_a_site_day_and_kind(world):
    today = timezone.now().date()
    site = make_site(world.a.org, "=cmd|' /C calc'!A0")
    _seed(world.a.org, site, day=today, records=4, size=321)
    _seed(world.a.org, site, day=today, kind="evidence", records=1, size=5000)
    text = ledger.ledger_csv(ledger.data_sent_for_org(org=world.a.org, days=7))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(ledger.CSV_COLUMNS)
    assert rows[1:] == [
        ["'=cmd|' /C calc'!A0", today.isoformat(), "events", "4", "321", "1"],
        ["'=cmd|' /C calc'!A0", today.isoformat(), "evidence", "1", "5000", "1"],
    ]


def test_the_chart_stacks_bytes_per_day_by_site_and_kind(world):
    today = timezone.now().date()
    site = make_site(world.a.org, "North")
    _seed(world.a.org, site, day=today, size=100)
    _seed(world.a.org, site, day=today - timedelta(days=2), size=50)
    _seed(world.a.org, site, day=today, kind="evidence", size=7)
    figure = ledger.ledger_figure(ledger.data_sent_for_org(org=world.a.org, days=7, today=today))
    assert figure["layout"]["barmode"] == "stack"
    events, evidence = figure["data"]
    assert len(events["x"]) == 7 and events["x"][-1] == today.isoformat()
    assert events["y"] == [0, 0, 0, 0, 50, 0, 100]
    assert evidence["y"][-1] == 7 and sum(evidence["y"]) == 7
    assert "North" in events["name"] and "evidence" in evidence["name"]


def test_many_sites_are_charted_as_the_busiest_and_the_rest(world):
    today = timezone.now().date()
    for i in range(ledger.CHARTED_SITES + 3):
        _seed(world.a.org, make_site(world.a.org, f"Site {i:02d}"), day=today, size=10 + i)
    figure = ledger.ledger_figure(ledger.data_sent_for_org(org=world.a.org, days=7, today=today))
    names = [trace["name"] for trace in figure["data"]]
    assert len(names) == ledger.CHARTED_SITES + 1
    assert names[-1].startswith("Other sites")
    assert figure["data"][-1]["y"][-1] == 10 + 11 + 12  # the three quietest sites summed


def test_an_empty_window_draws_a_message_not_axes(world):
    figure = ledger.ledger_figure(ledger.data_sent_for_org(org=world.a.org, days=7))
    assert figure["data"] == []
    assert "nothing was received" in figure["layout"]["annotations"][0]["text"]


def test_a_removed_sites_bytes_are_still_shown(world):
    site = make_site(world.a.org, "Gone dock")
    _seed(world.a.org, site, day=timezone.now().date(), size=10)
    site_id = site.pk
    site.delete()
    (total,) = ledger.data_sent_for_org(org=world.a.org, days=7).totals
    assert total.site_name == f"site {site_id} (removed)"


def test_a_second_site_of_the_org_is_its_own_row(world, gateway):
    device, _ = gateway
    clinic = make_site(world.a.org, "Ward 1", kind="clinic")
    open_evidence_policy(clinic, image_evidence=False)
    other, _ = enroll_device(world.a.org, site=clinic)
    _land(device, [low_confidence(1)])
    _land(other, [low_confidence(1)])
    sites = {t.site_name for t in ledger.data_sent_for_org(org=world.a.org, days=7).totals}
    assert sites == {"North dock", "Ward 1"}
