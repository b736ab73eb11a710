"""List pages and list endpoints run a fixed number of queries, whatever the row count."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from opshero.roles import Role
from tests.roi.builders import make_plan, make_scenario, make_scorecard

pytestmark = pytest.mark.django_db

PAGES = [
    "roi:home",
    "roi:assessments",
    "roi:scorecards",
    "roi:scenarios",
    "roi:plans",
    "api-roi-assessments",
    "api-roi-scorecards",
    "api-roi-scenarios",
    "api-roi-plans",
]


def _rows(org, count: int) -> None:
    for index in range(count):
        scenario = make_scenario(org, name=f"Scenario {index}")
        plan = make_plan(org, scenario=scenario, name=f"Plan {index}")
        make_scorecard(org, name=f"Stacks {index}", assessment=plan.assessment)


def _queries(client, name: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse(name, kwargs={"org": "acme"}))
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("name", PAGES)
def test_list_queries_do_not_grow_with_rows(client, world, name):
    client.force_login(world.a.user(Role.VIEWER))
    _rows(world.a.org, 1)
    _queries(client, name)  # warm the session and the content-type cache
    few = _queries(client, name)
    _rows(world.a.org, 5)
    many = _queries(client, name)
    assert many == few, f"{name}: {few} queries with 1 row of each, {many} with 6"
