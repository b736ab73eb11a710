"""Fleet reads: group member counts, all groups in one query."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fleet import selectors
from tests.factories import make_device, make_group, make_site, make_target

pytestmark = pytest.mark.django_db


def test_member_counts_match_members_of_and_take_one_query(world):
    org = world.a.org
    dock, clinic = make_site(org, "Dock"), make_site(org, "Clinic", kind="clinic")
    target = make_target(org)
    tagged = make_device(org, dock, tags=["pilot", "cold"], hardware_target=target)
    make_device(org, dock, placement="on_device")
    pinned = make_device(org, clinic)
    make_device(org, dock, status="retired", tags=["pilot"])  # retired devices never count
    make_device(world.b.org, make_site(world.b.org), tags=["pilot"])  # nor other tenants'
    rules = {
        "by site": {"site_ids": [dock.pk]},
        "by kind and placement": {"site_kinds": ["dock"], "placements": ["on_device"]},
        "by tag": {"tags": ["pilot"]},
        "by target": {"target_ids": [target.pk]},
        "static only": {},
        "static and rules": {"tags": ["cold"]},
        "nobody": {},
        "no match": {"site_kinds": ["field"]},
    }
    groups = {name: make_group(org, name, rules=r) for name, r in rules.items()}
    groups["static only"].static_members.add(pinned)
    groups["static and rules"].static_members.add(pinned, tagged)

    listed = list(selectors.groups_for_org(org=org))
    with CaptureQueriesContext(connection) as ctx:
        counted = selectors.with_member_counts(org=org, groups=listed)
    assert len(ctx.captured_queries) == 1
    got = {g.name: g.member_count for g in counted}
    expected = {name: selectors.members_of(g).count() for name, g in groups.items()}
    assert got == expected
    assert expected == {
        "by site": 2,
        "by kind and placement": 1,
        "by tag": 1,
        "by target": 1,
        "static only": 1,
        "static and rules": 2,
        "nobody": 0,
        "no match": 0,
    }


def test_no_groups_no_query(world):
    with CaptureQueriesContext(connection) as ctx:
        assert selectors.with_member_counts(org=world.a.org, groups=[]) == []
    assert ctx.captured_queries == []


def test_groups_page_and_api_show_the_counts(world, client):
    from opshero.roles import Role

    org = world.a.org
    site = make_site(org)
    make_device(org, site)
    make_device(org, site)
    group = make_group(org, "Docks", rules={"site_ids": [site.pk]})
    pinned = make_device(org, make_site(org))
    group.static_members.add(pinned)
    client.force_login(world.a.user(Role.VIEWER))
    row = client.get("/api/v1/orgs/acme/groups/").json()["results"][0]
    assert row["member_count"] == 3 and row["static_members"] == [pinned.pk]
    assert row == client.get(f"/api/v1/orgs/acme/groups/{group.pk}/").json()
    html = client.get("/o/acme/fleet/groups/").content.decode()
    assert "<td>3</td>" in html
