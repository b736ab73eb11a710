"""Platform services write their change and its audit event together, or neither."""

import pytest

from opshero import services
from opshero.actors import Actor
from opshero.errors import Conflict, InvalidInput
from opshero.models import ApiToken, AuditEvent, Membership, Organization
from opshero.roles import Role
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_create_organization_makes_the_creator_admin_and_audits_it():
    user = make_user("founder")
    org = services.create_organization(
        name="Delta Field Service", actor=Actor.for_user(user, "10.0.0.9")
    )
    assert org.slug == "delta-field-service"
    assert Membership.objects.get(organization=org, user=user).role == Role.ADMIN
    event = AuditEvent.objects.get(organization=org)
    assert (event.verb, event.actor_label, event.ip) == (
        "organization.created",
        "founder",
        "10.0.0.9",
    )
    assert event.target_type == "opshero.organization" and event.target_id == str(org.pk)


def test_duplicate_slug_is_a_conflict_and_writes_nothing():
    user = make_user()
    services.create_organization(name="Acme", actor=Actor.for_user(user))
    with pytest.raises(Conflict):
        services.create_organization(name="ACME", actor=Actor.for_user(user))
    assert Organization.objects.count() == 1
    assert AuditEvent.objects.count() == 1


def test_role_change_records_from_and_to(world):
    target = world.a.members[Role.VIEWER]
    actor = Actor.for_user(world.a.user(Role.ADMIN))
    services.change_member_role(membership=target, role=Role.APPROVER, actor=actor)
    event = AuditEvent.objects.get(verb="member.role_changed")
    assert event.data == {"from": "viewer", "to": "approver"}
    assert event.organization == world.a.org
    assert event.target_label == target.user.username


def test_the_last_admin_cannot_be_demoted_or_removed(world):
    admin = world.a.members[Role.ADMIN]
    actor = Actor.for_user(admin.user)
    with pytest.raises(Conflict) as err:
        services.change_member_role(membership=admin, role=Role.VIEWER, actor=actor)
    assert err.value.code == "last_admin"
    with pytest.raises(Conflict):
        services.remove_member(membership=admin, actor=actor)
    admin.refresh_from_db()
    assert admin.role == Role.ADMIN
    assert not AuditEvent.objects.filter(verb__startswith="member.").exists()
    # With a second admin the first one can step down.
    services.change_member_role(
        membership=world.a.members[Role.APPROVER], role=Role.ADMIN, actor=actor
    )
    services.change_member_role(membership=admin, role=Role.VIEWER, actor=actor)
    admin.refresh_from_db()
    assert admin.role == Role.VIEWER


def test_add_member_errors_name_the_field(world):
    actor = Actor.for_user(world.a.user(Role.ADMIN))
    with pytest.raises(InvalidInput) as err:
        services.add_member(organization=world.a.org, username="nobody", role="viewer", actor=actor)
    assert err.value.fields == {"username": ["No such user."]}
    with pytest.raises(InvalidInput) as err:
        services.add_member(
            organization=world.a.org,
            username=world.b.user("viewer").username,
            role="owner",
            actor=actor,
        )
    assert "role" in err.value.fields
    with pytest.raises(Conflict):
        services.add_member(
            organization=world.a.org,
            username=world.a.user("viewer").username,
            role="viewer",
            actor=actor,
        )
    assert AuditEvent.objects.count() == 0


def test_audit_events_stay_inside_their_organisation(world, api_as):
    actor_a = Actor.for_user(world.a.user(Role.ADMIN))
    actor_b = Actor.for_user(world.b.user(Role.ADMIN))
    services.change_member_role(membership=world.a.members["viewer"], role="planner", actor=actor_a)
    services.change_member_role(
        membership=world.b.members["viewer"], role="approver", actor=actor_b
    )
    body = api_as(world.a.user(Role.APPROVER)).get("/api/v1/orgs/acme/audit-events/").json()
    assert body["count"] == 1
    assert body["results"][0]["data"] == {"from": "viewer", "to": "planner"}


def test_device_and_system_actors_are_recorded_without_a_user(world):
    services.record_audit_event(
        organization=world.a.org,
        actor=Actor.for_device("42", "dock-gw-01", ip="192.0.2.7"),
        verb="device.enrolled",
        target_type="fleet.device",
        target_id="42",
        target_label="dock-gw-01",
    )
    event = AuditEvent.objects.get()
    assert (event.actor_kind, event.actor_user, event.actor_device_id) == ("device", None, "42")
    assert event.ip == "192.0.2.7"


# --- personal API tokens ---------------------------------------------------------------------


def test_issuing_a_token_is_audited_on_the_account_and_no_organisation_shows_it(
    world, client, api_as
):
    owner = world.a.user(Role.APPROVER)
    record, token = services.issue_api_token(
        user=owner, name="laptop", actor=Actor.for_user(owner, "10.0.0.5")
    )
    event = AuditEvent.objects.get(verb="api_token.issued")
    assert event.organization is None
    assert (event.actor_user, event.ip) == (owner, "10.0.0.5")
    assert (event.target_type, event.target_id) == ("opshero.apitoken", str(record.pk))
    assert event.data == {"name": "laptop", "prefix": record.prefix}
    assert token not in str(event.data) and token not in event.target_label
    # The owner's own organisation does not show it: not the page, nor the API, nor the facets.
    client.force_login(owner)
    assert "api_token." not in client.get("/o/acme/audit/").content.decode()
    body = api_as(owner).get("/api/v1/orgs/acme/audit-events/").json()
    assert not [e for e in body["results"] if e["verb"].startswith("api_token.")]
    assert AuditEvent.objects.filter(verb__startswith="api_token.").count() == 2  # + api_as


def test_a_token_and_its_audit_event_are_written_together_or_not_at_all(monkeypatch):
    user = make_user("ops-lead")

    def fail(**kwargs):
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(services, "record_audit_event", fail)
    with pytest.raises(RuntimeError):
        services.issue_api_token(user=user, name="laptop")
    assert not ApiToken.objects.exists()


def test_revoking_a_token_is_audited_once(world):
    owner = world.a.user(Role.VIEWER)
    record, _ = services.issue_api_token(user=owner, name="ci")
    actor = Actor.for_user(owner, "10.0.0.6")
    services.revoke_api_token(token=record, actor=actor)
    assert not ApiToken.objects.filter(pk=record.pk).exists()
    event = AuditEvent.objects.get(verb="api_token.revoked")
    assert (event.organization, event.actor_user, event.ip) == (None, owner, "10.0.0.6")
    assert event.target_id == str(record.pk) and event.data["prefix"] == record.prefix
    # A second revocation of the same (stale) token changes nothing and records nothing.
    services.revoke_api_token(token=record, actor=actor)
    assert AuditEvent.objects.filter(verb="api_token.revoked").count() == 1


def test_a_revocation_that_fails_keeps_the_token_and_records_nothing(world, monkeypatch):
    owner = world.a.user(Role.VIEWER)
    record, _ = services.issue_api_token(user=owner)

    def fail(self, *args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(ApiToken, "delete", fail)
    with pytest.raises(RuntimeError):
        services.revoke_api_token(token=record, actor=Actor.for_user(owner))
    assert ApiToken.objects.filter(pk=record.pk).exists()
    assert not AuditEvent.objects.filter(verb="api_token.revoked").exists()
