"""The device list's one FilterSet: the page drops bad values, the API refuses them."""

import csv
import io

import pytest
from django.utils import timezone

from fleet import selectors
from fleet.filters import DEVICE_ORDERINGS, DeviceFilterSet
from opshero.roles import Role
from tests.factories import make_device, make_site, make_target

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(world):
    org = world.a.org
    dock, clinic = make_site(org, "Dock 7"), make_site(org, "Clinic 2", kind="clinic")
    target = make_target(org, "Jetson")
    now = timezone.now()
    return {
        "dock": dock,
        "clinic": clinic,
        "target": target,
        "alpha": make_device(
            org, dock, name="alpha", status="active", last_seen_at=now, tags=["pilot"]
        ),
        "bravo": make_device(org, clinic, name="bravo", hardware_target=target),
        "charlie": make_device(org, dock, name="charlie", status="active", placement="on_device"),
    }


def names(devices) -> list[str]:
    return [d.name for d in devices]


def filtered(org, **params) -> list[str]:
    return names(selectors.devices_for_org(org=org, filters=DeviceFilterSet(params)))


def test_each_filter_narrows_the_list(world, fleet):
    org = world.a.org
    assert filtered(org) == ["alpha", "bravo", "charlie"]
    assert filtered(org, q="rav") == ["bravo"]
    assert filtered(org, q=fleet["charlie"].serial) == ["charlie"]
    assert filtered(org, site=str(fleet["dock"].pk)) == ["alpha", "charlie"]
    assert filtered(org, site_kind="clinic") == ["bravo"]
    assert filtered(org, status="online") == ["alpha"]
    assert filtered(org, status="offline") == ["charlie"]
    assert filtered(org, placement="on_device") == ["charlie"]
    assert filtered(org, target=str(fleet["target"].pk)) == ["bravo"]
    assert filtered(org, tag="pilot") == ["alpha"]
    assert filtered(org, ordering="-name") == ["charlie", "bravo", "alpha"]
    assert filtered(org, ordering="site", site_kind="dock") == ["alpha", "charlie"]


def test_bad_values_are_dropped_and_the_rest_still_filters(world, fleet):
    filters = DeviceFilterSet({"site": "abc", "status": "exploded", "ordering": "DROP", "q": "a"})
    devices = selectors.devices_for_org(org=world.a.org, filters=filters)
    assert names(devices) == ["alpha", "bravo", "charlie"]  # q=a matches all three
    assert set(filters.errors) == {"site", "status", "ordering"}
    values = filters.values()
    assert values["site"] is None and values["status"] == "" and values["ordering"] == "name"
    assert values["q"] == "a"


def test_an_id_is_an_integer_not_a_near_match(world, fleet):
    filters = DeviceFilterSet({"site": f"{fleet['dock'].pk}.5"})
    assert "site" in filters.errors


def test_the_page_keeps_its_form_choices(world, client, fleet):
    client.force_login(world.a.user(Role.VIEWER))
    html = client.get("/o/acme/fleet/?status=online&ordering=-name").content.decode()
    assert '<option value="">Any status</option>' in html
    assert '<option value="online" selected>Online</option>' in html
    assert 'name="ordering" value="-name"' in html
    assert "alpha" in html and "charlie" not in html


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=exploded", "status"),
        ("site=abc", "site"),
        ("target=1.5", "target"),
        ("site_kind=moon", "site_kind"),
        ("placement=orbit", "placement"),
        ("ordering=DROP", "ordering"),
        ("q=" + "x" * 101, "q"),
        ("tag=" + "t" * 41, "tag"),
    ],
)
@pytest.mark.parametrize("path", ["devices/", "devices/export/"])
def test_the_api_refuses_bad_values_with_the_error_shape(world, client, fleet, query, field, path):
    client.force_login(world.a.user(Role.VIEWER))
    response = client.get(f"/api/v1/orgs/acme/{path}?{query}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and list(error["fields"]) == [field]


def test_page_csv_and_api_filter_alike(world, client, fleet):
    client.force_login(world.a.user(Role.VIEWER))
    query = f"site={fleet['dock'].pk}&ordering=-name"
    api = [d["name"] for d in client.get(f"/api/v1/orgs/acme/devices/?{query}").json()["results"]]
    for url in (f"/api/v1/orgs/acme/devices/export/?{query}", f"/o/acme/fleet/export.csv?{query}"):
        rows = list(csv.DictReader(io.StringIO(client.get(url).content.decode())))
        assert [row["name"] for row in rows] == api == ["charlie", "alpha"]


def test_openapi_parameters_come_from_the_filterset(client, world):
    client.force_login(world.a.user(Role.VIEWER))
    paths = client.get("/api/schema/?format=json").json()["paths"]
    for path in ("/api/v1/orgs/{org}/devices/", "/api/v1/orgs/{org}/devices/export/"):
        params = {p["name"]: p for p in paths[path]["get"]["parameters"] if p["in"] == "query"}
        assert set(DeviceFilterSet.base_filters) <= set(params)
        assert params["site"]["schema"]["type"] == "integer"
        assert set(params["ordering"]["schema"]["enum"]) == set(DEVICE_ORDERINGS)
        assert "online" in params["status"]["schema"]["enum"]
