"""Issue 18: the registered fleet pre-fills the wizard's fleet step (editable), and a fleet with
scanners and gateways is not told it has "no suitable hardware yet"."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from fleet.models import Device, ExecutionProvider
from opshero.roles import Role
from tests.factories import make_device, make_site, make_target
from tests.roi.views.test_wizard import STEPS, step_url

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def dock_fleet(world):
    org = world.a.org
    nnapi = make_target(org, execution_provider=ExecutionProvider.NNAPI)
    cpu = make_target(org, execution_provider=ExecutionProvider.CPU)
    for name in ("Dock A", "Dock B"):
        site = make_site(org, name, kind="dock")
        make_device(org, site, placement="near_edge", hardware_target=cpu, status="active")
        for _ in range(3):
            make_device(org, site, placement="on_device", hardware_target=nnapi, status="active")
    clinic = make_site(org, "Clinic", kind="clinic")
    make_device(org, clinic, placement="on_device", status="active")
    # Retired hardware is not part of the fleet any more.
    make_device(org, make_site(org, "Dock C", kind="dock"), placement="near_edge", status="retired")
    return org


def answer_until_fleet(client):
    for step, data in STEPS[:-1]:
        response = client.post(step_url("acme", step), {**data, "go": "next"})
        assert response.status_code == 302, step


def checked(body: str) -> set[str]:
    return set(re.findall(r'name="existing_hardware" value="([a-z_]+)"[^>]*checked', body))


def value_of(body: str, name: str) -> str:
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', body).group(0)
    return re.search(r'value="([^"]*)"', tag).group(1)


def test_fleet_step_starts_from_the_registered_devices_of_the_workflows_sites(
    client, world, dock_fleet
):
    client.force_login(world.a.user(Role.PLANNER))
    answer_until_fleet(client)  # the workflow is the logistics dock
    body = client.get(step_url("acme", "fleet")).content.decode()
    assert value_of(body, "sites") == "2"  # the two docks in service, not the clinic
    assert value_of(body, "devices_per_site") == "3"  # handhelds per dock
    assert checked(body) == {"phones_tablets", "site_gateway"}
    note = re.search(r'data-testid="fleet-prefill">(.*?)</div>', body, re.S).group(1)
    assert "Dock A, Dock B" in note and "6 handheld" in note and "2 site gateways" in note


def test_prefilled_fleet_stays_editable_and_typed_answers_win(client, world, dock_fleet):
    client.force_login(world.a.user(Role.PLANNER))
    answer_until_fleet(client)
    fleet = {**STEPS[-1][1], "sites": "5", "existing_hardware": ["jetson_class"]}
    client.post(step_url("acme", "fleet"), {**fleet, "go": "next"})
    body = client.get(step_url("acme", "fleet")).content.decode()
    assert value_of(body, "sites") == "5"
    assert checked(body) == {"jetson_class"}


def test_a_registered_fleet_is_not_told_it_has_no_suitable_hardware(client, world, dock_fleet):
    client.force_login(world.a.user(Role.PLANNER))
    answer_until_fleet(client)
    body = client.get(step_url("acme", "fleet")).content.decode()
    prefilled = {
        "sites": value_of(body, "sites"),
        "devices_per_site": value_of(body, "devices_per_site"),
        "model_complexity": "medium",
        "existing_hardware": sorted(checked(body)),
        "go": "next",
    }
    client.post(step_url("acme", "fleet"), prefilled)
    result = client.get(step_url("acme", "result")).content.decode()
    assert "Recommended placement" in result
    assert "No suitable hardware yet" not in result


def test_without_registered_devices_the_fleet_step_keeps_its_plain_defaults(client, world):
    client.force_login(world.a.user(Role.PLANNER))
    answer_until_fleet(client)
    body = client.get(step_url("acme", "fleet")).content.decode()
    assert 'data-testid="fleet-prefill"' not in body
    assert value_of(body, "sites") == "1"
    assert checked(body) == set()


def test_another_organisations_fleet_never_prefills(client, world, dock_fleet):
    client.force_login(world.b.user(Role.PLANNER))
    for step, data in STEPS[:-1]:
        client.post(
            reverse("roi:wizard-step", kwargs={"org": "globex", "step": step}),
            {**data, "go": "next"},
        )
    body = client.get(
        reverse("roi:wizard-step", kwargs={"org": "globex", "step": "fleet"})
    ).content.decode()
    assert 'data-testid="fleet-prefill"' not in body
    assert Device.objects.filter(organization=world.a.org).count() == 10  # they exist
