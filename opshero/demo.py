"""Demo organisations and one user per role, created through the services (so audited).

Idempotent: running it again changes nothing except restoring the demo passwords.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from . import services
from .actors import Actor
from .models import Membership, Organization
from .roles import Role

DEMO_PASSWORD = "opshero-demo"  # noqa: S105 - printed by seed_demo; refused in production


@dataclass(frozen=True)
class DemoUser:
    username: str
    first_name: str
    last_name: str
    role: Role


DEMO_ORG = ("Northwind Logistics", "northwind")
SECOND_ORG = ("Harbor Clinics", "harbor-clinics")

DEMO_USERS = (
    DemoUser("demo-admin", "Alex", "Admin", Role.ADMIN),
    DemoUser("demo-approver", "Tara", "Nakamura", Role.APPROVER),
    DemoUser("demo-approver2", "Ben", "Okafor", Role.APPROVER),
    DemoUser("demo-planner", "Priya", "Shah", Role.PLANNER),
    DemoUser("demo-reviewer", "Rosa", "Almeida", Role.REVIEWER),
    DemoUser("demo-viewer", "Victor", "Lind", Role.VIEWER),
)


def _ensure_user(spec: DemoUser):
    user, _ = get_user_model().objects.get_or_create(
        username=spec.username,
        defaults={
            "first_name": spec.first_name,
            "last_name": spec.last_name,
            "email": f"{spec.username}@example.com",
        },
    )
    if not user.check_password(DEMO_PASSWORD):
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    return user


def _ensure_org(name: str, slug: str, owner) -> Organization:
    org = Organization.objects.filter(slug=slug).first()
    if org is None:
        org = services.create_organization(name=name, slug=slug, actor=Actor.for_user(owner))
    return org


@transaction.atomic
def seed(stdout=None) -> dict:
    """Create (or find) the demo organisations and users; returns what later seeders need."""
    users = {spec.username: _ensure_user(spec) for spec in DEMO_USERS}
    admin = users["demo-admin"]
    org = _ensure_org(*DEMO_ORG, owner=admin)
    actor = Actor.for_user(admin)
    for spec in DEMO_USERS:
        if not Membership.objects.filter(user=users[spec.username], organization=org).exists():
            services.add_member(
                organization=org, username=spec.username, role=spec.role, actor=actor
            )
    # A second organisation, so the switcher and tenant isolation can be seen.
    second = _ensure_org(*SECOND_ORG, owner=admin)
    return {"org": org, "second_org": second, "users": users, "actor": actor}


def credentials() -> list[tuple[str, str, str]]:
    return [(spec.username, DEMO_PASSWORD, spec.role.label) for spec in DEMO_USERS]
