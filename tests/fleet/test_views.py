"""Fleet pages: fixed query counts, HTMX fragments, the token shown once, forms keep input."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from fleet.models import Device, EnrollmentToken, Site
from opshero.roles import Role
from tests.factories import enroll_device, make_site

pytestmark = pytest.mark.django_db


def add_devices(org, count: int, sites: int = 5) -> None:
    site_objs = [make_site(org, f"Site {i}") for i in range(sites)]
    now = timezone.now()
    Device.objects.bulk_create(
        Device(
            organization=org,
            site=site_objs[i % sites],
            name=f"dev-{i:05d}",
            serial=f"S{i:06d}",
            status="active",
            last_seen_at=now,
            tags=["pilot"] if i % 2 else [],
        )
        for i in range(count)
    )


def queries_for(client, url: str, **headers) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, **headers)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize(
    "url",
    [
        "/o/acme/fleet/",
        "/o/acme/fleet/?status=online&ordering=-last_seen&tag=pilot",
        "/o/acme/fleet/?page=2",
        "/api/v1/orgs/acme/devices/",
        "/api/v1/orgs/acme/sites/",
    ],
)
def test_fleet_list_query_count_does_not_grow_with_the_fleet(world, client, url):
    client.force_login(world.a.user(Role.VIEWER))
    add_devices(world.a.org, 120)
    client.get("/o/acme/")  # the first visit of an organisation records it in the session
    small = queries_for(client, url)
    add_devices(world.b.org, 10)  # another tenant's rows must not matter either
    Device.objects.filter(organization=world.a.org).delete()
    Site.objects.filter(organization=world.a.org).delete()
    add_devices(world.a.org, 1000, sites=40)
    large = queries_for(client, url)
    assert small == large, f"{url}: {small} queries for 120 devices, {large} for 1,000"


def test_htmx_filter_answers_the_table_and_the_counters_out_of_band(world, client):
    client.force_login(world.a.user(Role.VIEWER))
    add_devices(world.a.org, 30)
    Device.objects.filter(name="dev-00003").update(last_seen_at=None)
    response = client.get("/o/acme/fleet/?status=offline", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "<html" not in html and html.lstrip().startswith('<div id="device-table"')
    assert "dev-00003" in html and "dev-00004" not in html
    assert 'id="fleet-counts" hx-swap-oob="true"' in html
    assert re.search(r'data-testid="count-offline">1<', html)
    assert 'hx-trigger="every 30s"' in html  # status badges keep refreshing


def test_bad_filter_values_are_ignored_not_errors(world, client):
    client.force_login(world.a.user(Role.VIEWER))
    response = client.get("/o/acme/fleet/?site=abc&status=exploded&ordering=DROP&page=-4")
    assert response.status_code == 200
    api = client.get("/api/v1/orgs/acme/devices/?status=exploded")
    assert api.status_code == 400
    assert "status" in api.json()["error"]["fields"]


def test_enrollment_token_is_shown_once_with_the_gateway_command(world, client):
    site = make_site(world.a.org, "Dock 7")
    client.force_login(world.a.user(Role.ADMIN))
    response = client.post(
        "/o/acme/fleet/enroll/",
        {"site": site.pk, "placement": "near_edge", "expires_in_hours": 4},
    )
    assert response.status_code == 302  # a reload of the result page creates nothing
    response = client.get(response.headers["Location"])
    html = response.content.decode()
    token = re.search(r'data-testid="token-value">?[^>]*value="(ohe_[^"]+)"', html) or re.search(
        r'value="(ohe_[A-Za-z0-9_-]+)"', html
    )
    assert token, html
    token = token.group(1)
    assert (
        f"--token {token}" in html and "python -m gateway enroll --server http://testserver" in html
    )
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    record = EnrollmentToken.objects.get()
    assert token not in (record.token_hash, record.prefix) and token.startswith(record.prefix)
    again = client.get("/o/acme/fleet/enroll/").content.decode()
    assert token not in again and record.prefix in again


def test_only_admins_create_tokens_and_approvers_revoke(world, client):
    device, _ = enroll_device(world.a.org)
    client.force_login(world.a.user(Role.APPROVER))
    assert client.get("/o/acme/fleet/enroll/").status_code == 403
    response = client.post(f"/o/acme/fleet/devices/{device.pk}/revoke/", {"reason": "lost"})
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.status == "revoked" and not device.credentials.filter(revoked_at=None)
    client.force_login(world.a.user(Role.VIEWER))
    assert client.post(f"/o/acme/fleet/devices/{device.pk}/retire/").status_code == 403


def test_site_form_keeps_what_was_typed_and_marks_the_field(world, client):
    client.force_login(world.a.user(Role.APPROVER))
    response = client.post(
        "/o/acme/fleet/sites/",
        {
            "name": "Dock 9",
            "kind": "dock",
            "time_zone": "Atlantis/Capital",
            "expected_connectivity": 97,
            "maintenance_windows": "Sun 02:00-05:00\nsometime",
        },
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert "Atlantis/Capital" in html and 'value="Dock 9"' in html
    assert "Line 2: write it as" in html
    assert not Site.objects.filter(name="Dock 9").exists()
    response = client.post(
        "/o/acme/fleet/sites/",
        {
            "name": "Dock 9",
            "kind": "dock",
            "time_zone": "Atlantis/Capital",
            "expected_connectivity": 97,
            "maintenance_windows": "Sun 02:00-05:00",
        },
    )
    assert response.status_code == 422
    assert "is not an IANA time zone" in response.content.decode()


def test_device_page_shows_identity_and_history(world, client):
    device, _key = enroll_device(world.a.org, serial="GW-777")
    client.force_login(world.a.user(Role.VIEWER))
    html = client.get(f"/o/acme/fleet/devices/{device.pk}/").content.decode()
    fingerprint = device.credentials.get().fingerprint
    assert fingerprint in html and "GW-777" in html and "device.enrolled" in html
    assert "Revoke key" not in html  # viewers see no actions
    client.force_login(world.a.user(Role.APPROVER))
    assert "Revoke key" in client.get(f"/o/acme/fleet/devices/{device.pk}/").content.decode()


def test_group_preview_shows_matches_before_saving(world, client):
    dock = make_site(world.a.org, "Dock", kind="dock")
    clinic = make_site(world.a.org, "Clinic", kind="clinic")
    Device.objects.create(organization=world.a.org, site=dock, name="a", serial="1")
    Device.objects.create(organization=world.a.org, site=clinic, name="b", serial="2")
    client.force_login(world.a.user(Role.APPROVER))
    html = client.post(
        "/o/acme/fleet/groups/preview/", {"site_kinds": ["dock"]}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert re.search(r'data-testid="preview-count">1<', html) and ">a <" in html


def test_operator_table_filters_over_htmx(world, client):
    from fleet.models import HardwareTarget

    nnapi = HardwareTarget.objects.get(builtin_key="nnapi")
    client.force_login(world.a.user(Role.VIEWER))
    html = client.get(
        f"/o/acme/fleet/targets/{nnapi.pk}/?op=conv", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert html.lstrip().startswith('<div id="operator-table"')
    ops = re.findall(r'<td class="font-monospace">(\w+)</td>', html)
    assert ops and all("conv" in op.lower() for op in ops)
