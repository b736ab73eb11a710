"""The audit log's one FilterSet: the same filters on the page and the API."""

from datetime import datetime

import pytest
from django.utils import timezone

from opshero import selectors
from opshero.actors import Actor
from opshero.filters import AuditEventFilterSet
from opshero.models import AuditEvent
from opshero.roles import Role
from opshero.services import record_audit_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def events(world):
    org = world.a.org
    tz = timezone.get_current_timezone()
    made = {}
    for name, day, actor in [
        ("early", datetime(2026, 3, 1, 0, 0, tzinfo=tz), Actor.system("cron")),
        ("late", datetime(2026, 3, 2, 23, 59, tzinfo=tz), Actor.for_user(world.a.user(Role.ADMIN))),
        ("next", datetime(2026, 3, 3, 0, 0, tzinfo=tz), Actor.system("cron")),
    ]:
        event = record_audit_event(
            organization=org, actor=actor, verb=f"test.{name}", target_label=f"Dock {name}"
        )
        AuditEvent.objects.filter(pk=event.pk).update(at=day)
        made[name] = event
    return made


def verbs(org, **params) -> list[str]:
    qs = selectors.audit_events_for_org(org=org, filters=AuditEventFilterSet(params))
    return [e.verb for e in qs]


def test_dates_are_whole_days_inclusive(world, events):
    org = world.a.org
    assert verbs(org) == ["test.next", "test.late", "test.early"]
    assert verbs(org, since="2026-03-02") == ["test.next", "test.late"]
    assert verbs(org, until="2026-03-02") == ["test.late", "test.early"]
    assert verbs(org, since="2026-03-01", until="2026-03-01") == ["test.early"]


def test_search_kind_verb_and_object(world, events):
    org = world.a.org
    assert verbs(org, q="dock LATE") == ["test.late"]
    assert verbs(org, actor_kind="user") == ["test.late"]
    assert verbs(org, verb="test.next") == ["test.next"]
    assert verbs(org, target_type="nothing") == []


def test_the_page_drops_a_bad_date_and_says_so(world, client, events):
    client.force_login(world.a.user(Role.ADMIN))
    html = client.get("/o/acme/audit/?since=2026-13-01&verb=test.late").content.decode()
    assert "Ignored a date that is not YYYY-MM-DD: since." in html
    assert "Dock late" in html and "Dock early" not in html


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=yesterday", "since"),
        ("until=03/02/2026", "until"),
        ("actor_kind=robot", "actor_kind"),
        ("verb=" + "v" * 65, "verb"),
    ],
)
def test_the_api_refuses_bad_values(world, client, query, field):
    client.force_login(world.a.user(Role.APPROVER))
    response = client.get(f"/api/v1/orgs/acme/audit-events/?{query}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and list(error["fields"]) == [field]


def test_the_api_filters_like_the_page(world, client, events):
    client.force_login(world.a.user(Role.APPROVER))
    body = client.get("/api/v1/orgs/acme/audit-events/?until=2026-03-02&actor_kind=system").json()
    assert [e["verb"] for e in body["results"]] == ["test.early"]
