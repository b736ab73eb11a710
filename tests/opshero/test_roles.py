"""The role table and its use by pages and the API."""

import pytest

from opshero.roles import PERMISSIONS, Action, Role, role_can, roles_that_can


def test_every_action_has_an_entry_and_viewers_can_only_view():
    assert set(PERMISSIONS) == set(Action)
    allowed_for_viewer = {a for a in Action if role_can(Role.VIEWER, a)}
    assert allowed_for_viewer == {Action.VIEW}


def test_audit_is_for_approvers_and_admins_and_members_for_admins():
    assert roles_that_can(Action.VIEW_AUDIT) == [Role.APPROVER, Role.ADMIN]
    assert roles_that_can(Action.MANAGE_MEMBERS) == [Role.ADMIN]
    assert not role_can("superuser", Action.VIEW)
    assert not role_can(Role.ADMIN, "made.up")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "status"),
    [(Role.VIEWER, 403), (Role.PLANNER, 403), (Role.APPROVER, 200), (Role.ADMIN, 200)],
)
def test_audit_page_and_api_follow_the_role_table(world, client, api_as, role, status):
    user = world.a.user(role)
    client.force_login(user)
    assert client.get("/o/acme/audit/").status_code == status
    response = api_as(user).get("/api/v1/orgs/acme/audit-events/")
    assert response.status_code == status
    if status == 403:
        assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.django_db
def test_only_admins_change_roles(world, client):
    target = world.a.members[Role.VIEWER]
    client.force_login(world.a.user(Role.APPROVER))
    response = client.post(f"/o/acme/members/{target.pk}/role/", {"role": "admin"})
    assert response.status_code == 403
    target.refresh_from_db()
    assert target.role == Role.VIEWER


@pytest.mark.django_db
def test_a_user_in_two_organisations_switches_between_them(world, client):
    from opshero.models import Membership

    user = world.a.user(Role.PLANNER)
    Membership.objects.create(user=user, organization=world.b.org, role=Role.VIEWER)
    client.force_login(user)
    page = client.get("/o/acme/").content.decode()
    assert "Globex Clinics" in page and 'href="/o/globex/"' in page  # switcher lists both
    assert client.get("/o/globex/").status_code == 200
    # The home page now sends the user to the organisation used last.
    assert client.get("/").headers["Location"] == "/o/globex/"
    assert client.get("/o/acme/").status_code == 200
    assert client.get("/").headers["Location"] == "/o/acme/"
