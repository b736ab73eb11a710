"""Every organisation-scoped URL answers 404 to members of other organisations."""

import pytest

from opshero.roles import Role
from tests.isolation import (
    CASES,
    assert_insider_allowed,
    assert_outsider_gets_404,
    org_scoped_url_names,
)


def test_every_org_scoped_url_has_an_isolation_case():
    missing = org_scoped_url_names() - set(CASES)
    assert not missing, f"add isolation cases in tests/isolation.py for: {sorted(missing)}"
    stale = set(CASES) - org_scoped_url_names()
    assert not stale, f"isolation cases for URLs that no longer exist: {sorted(stale)}"


@pytest.mark.django_db
@pytest.mark.parametrize("url_name", sorted(CASES))
def test_outsider_gets_404_and_insider_is_served(url_name, world, client):
    outsider = world.b.user(Role.ADMIN)
    for probe in CASES[url_name](world):
        assert_outsider_gets_404(client, probe, outsider)
        assert_insider_allowed(client, probe, world.a.user(probe.insider_role))


@pytest.mark.django_db
def test_unknown_organisation_is_404_for_pages_and_api(world, client):
    client.force_login(world.a.user(Role.ADMIN))
    assert client.get("/o/does-not-exist/").status_code == 404
    response = client.get("/api/v1/orgs/does-not-exist/members/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
