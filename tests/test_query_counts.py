"""Every list URL runs a fixed number of queries, whatever the number of rows it shows."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.query_counts import NOT_LISTS, PROBES, ListProbe, list_url_names, url_names

ROWS = 2  # measured with ROWS rows, then with 3 * ROWS


def test_every_list_url_has_a_query_count_probe():
    missing = list_url_names() - set(PROBES)
    assert not missing, f"add query-count probes in tests/query_counts.py for: {sorted(missing)}"
    stale = (set(PROBES) | set(NOT_LISTS)) - url_names()
    assert not stale, f"probes or exemptions for URLs that no longer exist: {sorted(stale)}"
    both = set(PROBES) & set(NOT_LISTS)
    assert not both, f"probed and declared not a list: {sorted(both)}"


def _queries(client, probe: ListProbe) -> int:
    send = getattr(client, probe.method.lower())
    with CaptureQueriesContext(connection) as ctx:
        response = send(probe.url, data=probe.data) if probe.data else send(probe.url)
    assert response.status_code == 200, f"{probe.method} {probe.url}: {response.status_code}"
    return len(ctx.captured_queries)


@pytest.mark.django_db
@pytest.mark.parametrize("url_name", sorted(PROBES))
def test_list_queries_do_not_grow_with_rows(url_name, world, client):
    probe = PROBES[url_name](world)
    client.force_login(world.a.user(probe.role))
    probe.add_rows(ROWS)
    _queries(client, probe)  # the first visit records the organisation in the session
    few = _queries(client, probe)
    probe.add_rows(2 * ROWS)
    many = _queries(client, probe)
    assert many == few, f"{url_name}: {few} queries with {ROWS} rows, {many} with {3 * ROWS}"
