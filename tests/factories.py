"""Small builders for test data. Each call makes new rows; no test relies on another's."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model

from opshero.models import Membership, Organization
from opshero.roles import Role

PASSWORD = "correct horse battery staple"
_seq = itertools.count(1)


def make_user(username: str | None = None, **extra):
    username = username or f"user{next(_seq)}"
    user = get_user_model().objects.create_user(username=username, password=PASSWORD, **extra)
    return user


def make_org(name: str | None = None, slug: str | None = None) -> Organization:
    n = next(_seq)
    name = name or f"Org {n}"
    return Organization.objects.create(name=name, slug=slug or f"org-{n}")


def make_member(org: Organization, role: str = Role.VIEWER, user=None) -> Membership:
    user = user or make_user(f"{org.slug}-{role}-{next(_seq)}")
    return Membership.objects.create(user=user, organization=org, role=role)


@dataclass
class Tenant:
    org: Organization
    members: dict[str, Membership] = field(default_factory=dict)

    def user(self, role: str):
        return self.members[role].user


@dataclass
class World:
    """Two organisations, each with one member per role. ``b`` admins are the outsiders."""

    a: Tenant
    b: Tenant


def make_tenant(name: str, slug: str) -> Tenant:
    org = make_org(name, slug)
    return Tenant(org=org, members={role.value: make_member(org, role) for role in Role})


def make_world() -> World:
    return World(a=make_tenant("Acme Docks", "acme"), b=make_tenant("Globex Clinics", "globex"))
