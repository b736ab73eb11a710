"""Platform pages: overview content, audit filters, HTMX fragments, members management."""

import pytest

from opshero import services
from opshero.actors import Actor
from opshero.models import Membership
from opshero.roles import Role
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_overview_shows_organisation_members_and_recent_events(world, client):
    services.change_member_role(
        membership=world.a.members[Role.VIEWER],
        role=Role.PLANNER,
        actor=Actor.for_user(world.a.user(Role.ADMIN)),
    )
    client.force_login(world.a.user(Role.APPROVER))
    html = client.get("/o/acme/").content.decode()
    assert "Acme Docks" in html
    for membership in world.a.members.values():
        assert membership.user.username in html
    assert "member.role_changed" in html
    assert world.b.user(Role.ADMIN).username not in html


def test_viewers_see_no_audit_events_on_the_overview(world, client):
    client.force_login(world.a.user(Role.VIEWER))
    html = client.get("/o/acme/").content.decode()
    assert "visible to approvers and admins" in html
    assert "/o/acme/audit/" not in html


def test_audit_page_filters_and_answers_htmx_with_the_table_only(world, client):
    actor = Actor.for_user(world.a.user(Role.ADMIN))
    services.change_member_role(
        membership=world.a.members[Role.VIEWER], role=Role.PLANNER, actor=actor
    )
    services.add_member(
        organization=world.a.org, username=make_user("newbie").username, role="viewer", actor=actor
    )
    client.force_login(world.a.user(Role.ADMIN))
    full = client.get("/o/acme/audit/?verb=member.added").content.decode()
    assert "<html" in full and "newbie" in full and "member.role_changed</code>" not in full
    fragment = client.get("/o/acme/audit/?verb=member.role_changed", HTTP_HX_REQUEST="true")
    body = fragment.content.decode()
    assert "<html" not in body and body.lstrip().startswith('<div id="audit-table">')
    assert "member.role_changed" in body and "newbie" not in body
    assert "HX-Request" in fragment["Vary"]
    # A malformed date is reported, not a crash.
    bad = client.get("/o/acme/audit/?since=31/12/2026").content.decode()
    assert "Ignored a date" in bad


def test_member_role_change_over_htmx_returns_the_row(world, client):
    target = world.a.members[Role.VIEWER]
    client.force_login(world.a.user(Role.ADMIN))
    response = client.post(
        f"/o/acme/members/{target.pk}/role/", {"role": "approver"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="member-{target.pk}">')
    assert 'value="approver" selected' in html
    target.refresh_from_db()
    assert target.role == Role.APPROVER


def test_demoting_the_last_admin_shows_the_reason_in_the_row(world, client):
    admin = world.a.members[Role.ADMIN]
    client.force_login(admin.user)
    response = client.post(
        f"/o/acme/members/{admin.pk}/role/", {"role": "viewer"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 409
    assert "last admin" in response.content.decode()
    admin.refresh_from_db()
    assert admin.role == Role.ADMIN


def test_add_member_form_keeps_input_and_shows_field_error(world, client):
    client.force_login(world.a.user(Role.ADMIN))
    response = client.post("/o/acme/members/add/", {"username": "nobody-here", "role": "planner"})
    assert response.status_code == 422
    html = response.content.decode()
    assert "No such user." in html and 'value="nobody-here"' in html
    assert not Membership.objects.filter(user__username="nobody-here").exists()


def test_error_pages_are_product_pages_not_debug_pages(world, client):
    client.force_login(world.a.user(Role.VIEWER))
    not_found = client.get("/o/acme/no-such-page/")
    assert not_found.status_code == 404
    assert "This page does not exist" in not_found.content.decode()
    forbidden = client.get("/o/acme/audit/")
    assert forbidden.status_code == 403
    assert "Your role does not allow this" in forbidden.content.decode()


def test_overview_shows_the_fleet_cards_from_the_fleet_app(world, client):
    from django.utils import timezone

    from tests.factories import make_device, make_site

    site = make_site(world.a.org)
    make_device(world.a.org, site, status="active", last_seen_at=timezone.now())
    make_device(world.a.org, site, status="active", last_seen_at=None)
    make_device(world.b.org, status="active", last_seen_at=timezone.now())
    client.force_login(world.a.user(Role.VIEWER))
    html = client.get("/o/acme/").content.decode()
    assert "Devices online" in html and "1 / 2" in html
    assert "1 offline" in html and "0 signed" in html
