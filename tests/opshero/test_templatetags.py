"""Presentation filters: audit details a person reads, never Python reprs."""

import pytest

from opshero.actors import Actor
from opshero.roles import Role
from opshero.services import record_audit_event
from opshero.templatetags.opshero import audit_details


def test_audit_details_are_readable():
    data = {
        "reasons": [],
        "error": None,
        "note": "",
        "name": ["Dock 7", "Dock 8"],
        "tags": [["a"], ["a", "b"]],
        "rules": {"site_kinds": ["dock"], "tags": []},
        "passed": True,
        "latency_ms": 12.5,
        "to": "planner",
    }
    assert audit_details(data) == [
        ("reasons", "—"),
        ("error", "—"),
        ("note", "—"),
        ("name", "Dock 7, Dock 8"),
        ("tags", '["a"], ["a","b"]'),
        ("rules", '{"site_kinds":["dock"],"tags":[]}'),
        ("passed", "yes"),
        ("latency_ms", "12.5"),
        ("to", "planner"),
    ]


def test_empty_and_odd_data():
    assert audit_details({}) == []
    assert audit_details(None) == []
    assert audit_details(["x", None]) == [("data", "x, —")]


@pytest.mark.django_db
def test_the_audit_page_shows_readable_details(world, client):
    record_audit_event(
        organization=world.a.org,
        actor=Actor.system("worker"),
        verb="validation.finished",
        target_label="run 3",
        data={"reasons": [], "error": None, "checks": ["opset", "size"], "gate": {"p95": 150}},
    )
    client.force_login(world.a.user(Role.APPROVER))
    html = client.get("/o/acme/audit/").content.decode()
    table = html[html.index('data-testid="audit-table"') :]
    for shown in (
        "<div>reasons: —</div>",
        "<div>error: —</div>",
        "<div>checks: opset, size</div>",
        "<div>gate: {&quot;p95&quot;:150}</div>",
    ):
        assert shown in table
    for repr_text in ("reasons=[]", "error=None", "[&#x27;opset&#x27;", "None"):
        assert repr_text not in table
