"""The telemetry ingest page: lag percentiles, backlog, held batches, totals, tenancy, roles."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from opshero.roles import Role
from telemetry.models import IngestedBatch, LandedBatch
from telemetry.routers import telemetry_db
from telemetry.selectors import percentile
from tests.factories import make_device

pytestmark = pytest.mark.django_db


def make_ingested(org, device, *, lag: float, ago: timedelta, events=10, **counts):
    ingested_at = timezone.now() - ago
    return IngestedBatch.objects.using(telemetry_db()).create(
        batch_id=uuid.uuid4(),
        organization_id=org.pk,
        device_id=device.pk,
        epoch_id=1,
        received_at=ingested_at - timedelta(seconds=lag),
        ingested_at=ingested_at,
        events=events,
        stored=counts.get("stored", events),
        duplicates=counts.get("duplicates", 0),
        conflicts=counts.get("conflicts", 0),
    )


def make_landed(org, device, *, ago=timedelta(seconds=30), events=5, attempts=0, last_error=""):
    return LandedBatch.objects.using(telemetry_db()).create(
        organization_id=org.pk,
        device_id=device.pk,
        epoch="epoch-1",
        epoch_started_at=timezone.now() - timedelta(days=1),
        received_at=timezone.now() - ago,
        event_count=events,
        first_sequence=1,
        last_sequence=events,
        payload=b"[]",
        attempts=attempts,
        last_error=last_error,
    )


def url(org) -> str:
    return reverse("telemetry:ingest", kwargs={"org": org.slug})


def text_of(html: str, name: str) -> str:
    """The text of the first element with ``data-testid=name`` (no nested tags)."""
    match = re.search(rf'data-testid="{name}"[^>]*>([^<]*)<', html)
    assert match, f"no {name} in the page"
    return match.group(1).strip()


def card(html: str, index: int) -> str:
    start = html.index(f'data-testid="window-{index}"')
    end = html.find('data-testid="window-', start + 1)
    return html[start : end if end != -1 else None]


def test_percentile_interpolates_like_percentile_cont():
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 0.5) == pytest.approx(10.5)
    assert percentile(values, 0.95) == pytest.approx(19.05)
    assert percentile([3.0], 0.95) == 3.0


def test_page_shows_lag_percentiles_per_window(world, client):
    org = world.a.org
    device = make_device(org, name="dock-cam-1")
    for lag in range(1, 21):  # 1 s .. 20 s within the hour
        make_ingested(org, device, lag=float(lag), ago=timedelta(minutes=lag))
    make_ingested(org, device, lag=100.0, ago=timedelta(hours=3))  # only in the 24 h window
    make_ingested(org, device, lag=999.0, ago=timedelta(days=2))  # in neither

    client.force_login(world.a.user(Role.VIEWER))
    response = client.get(url(org))
    assert response.status_code == 200
    html = response.content.decode()

    hour, day = card(html, 1), card(html, 2)
    assert text_of(hour, "lag-p50") == "10.50 s"
    assert text_of(hour, "lag-p95") == "19.05 s"
    assert text_of(hour, "lag-max") == "20.00 s"
    assert text_of(hour, "lag-batches") == "from 20 batches"
    # 21 lags: 1..20 and 100; P95 at position 19 is 20 + (100 - 20) * 0.0
    assert text_of(day, "lag-p95") == "20.00 s"
    assert text_of(day, "lag-p50") == "11.00 s"
    assert text_of(day, "lag-max") == "100.00 s"
    assert text_of(day, "lag-batches") == "from 21 batches"
    assert "999.00 s" not in html


def test_no_batches_is_said_not_shown_as_zero(world, client):
    org = world.a.org
    make_ingested(org, make_device(org), lag=4.0, ago=timedelta(hours=2))
    client.force_login(world.a.user(Role.VIEWER))
    html = client.get(url(org)).content.decode()
    hour, day = card(html, 1), card(html, 2)
    assert text_of(hour, "lag-none") == "No batches ingested in the last hour."
    assert 'data-testid="lag-p95"' not in hour
    assert text_of(day, "lag-p95") == "4.00 s"


def test_backlog_and_held_batches(world, client):
    org = world.a.org
    waiting_device = make_device(org, name="waiting-cam")
    broken = make_device(org, name="broken-cam")
    make_landed(org, waiting_device, ago=timedelta(seconds=120), events=7)
    make_landed(org, waiting_device, ago=timedelta(seconds=10), events=3, attempts=1)
    make_landed(
        org, broken, attempts=5, last_error="IntegrityError: duplicate key", ago=timedelta(hours=1)
    )

    client.force_login(world.a.user(Role.VIEWER))
    html = client.get(url(org)).content.decode()
    assert text_of(html, "waiting-batches") == "2"
    assert text_of(html, "waiting-events") == "10"
    assert 120 <= int(text_of(html, "oldest-waiting").removesuffix(" s")) < 180
    assert text_of(html, "held-batches") == "1"
    held = html[html.index('data-testid="held-table"') :]
    assert "broken-cam" in held
    assert "IntegrityError: duplicate key" in held
    assert "waiting-cam" not in held.split("</table>")[0]


def test_totals_and_top_devices_with_names(world, client):
    org = world.a.org
    busy = make_device(org, name="busy-cam")
    quiet = make_device(org, name="quiet-cam")
    make_ingested(org, busy, lag=1, ago=timedelta(hours=2), events=50, stored=45, duplicates=4)
    make_ingested(org, busy, lag=1, ago=timedelta(hours=5), events=30, stored=29, conflicts=1)
    make_ingested(org, quiet, lag=1, ago=timedelta(hours=1, minutes=1), events=5)

    client.force_login(world.a.user(Role.VIEWER))
    html = client.get(url(org)).content.decode()
    assert text_of(html, "total-batches") == "3"
    assert text_of(html, "total-events") == "85"
    assert text_of(html, "total-stored") == "79"
    assert text_of(html, "total-duplicates") == "4"
    assert text_of(html, "total-conflicts") == "1"
    table = html[html.index('data-testid="device-table"') :]
    assert table.index("busy-cam") < table.index("quiet-cam")
    assert table.count('data-testid="device-row"') == 2


def test_other_organisations_batches_never_appear(world, client):
    a, b = world.a.org, world.b.org
    mine = make_device(a, name="mine-cam")
    theirs = make_device(b, name="theirs-cam")
    make_ingested(a, mine, lag=2.0, ago=timedelta(minutes=5), events=10)
    make_ingested(b, theirs, lag=777.0, ago=timedelta(minutes=5), events=500)
    make_landed(b, theirs, events=40)
    make_landed(b, theirs, attempts=9, last_error="globex secret failure")

    client.force_login(world.a.user(Role.VIEWER))
    html = client.get(url(a)).content.decode()
    assert text_of(card(html, 1), "lag-max") == "2.00 s"
    assert text_of(html, "total-events") == "10"
    assert text_of(html, "waiting-batches") == "0"
    assert text_of(html, "held-batches") == "0"
    for leaked in ("theirs-cam", "777.00 s", "globex secret failure"):
        assert leaked not in html

    assert client.get(url(b)).status_code == 404


def test_a_device_of_another_organisation_is_not_named(world, client):
    """A batch row naming a device id of another organisation shows the id, not its name."""
    a = world.a.org
    foreign = make_device(world.b.org, name="foreign-cam")
    make_ingested(a, foreign, lag=1.0, ago=timedelta(minutes=1))
    client.force_login(world.a.user(Role.VIEWER))
    html = client.get(url(a)).content.decode()
    assert "foreign-cam" not in html
    assert f"device #{foreign.pk}" in html


def test_htmx_poll_gets_only_the_panel(world, client):
    org = world.a.org
    make_ingested(org, make_device(org), lag=3.0, ago=timedelta(minutes=1))
    client.force_login(world.a.user(Role.VIEWER))
    response = client.get(url(org), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.startswith('<div id="ingest-panel"')
    assert 'hx-trigger="every 5s"' in html
    assert "<html" not in html
    assert "HX-Request" in response["Vary"]
    full = client.get(url(org)).content.decode()
    assert "<html" in full and 'id="ingest-panel"' in full


def test_navigation_links_to_the_page(world, client):
    client.force_login(world.a.user(Role.VIEWER))
    html = client.get(url(world.a.org)).content.decode()
    assert f'href="{url(world.a.org)}" aria-current="page"' in html


def test_anonymous_is_sent_to_login(world, client):
    response = client.get(url(world.a.org))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
