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


# --- fleet ---------------------------------------------------------------------------------------


def make_site(org: Organization, name: str | None = None, **values):
    from fleet.models import Site

    values.setdefault("kind", "dock")
    values.setdefault("time_zone", "Europe/Amsterdam")
    return Site.objects.create(organization=org, name=name or f"Site {next(_seq)}", **values)


def make_device(org: Organization, site=None, **values):
    from fleet.models import Device

    n = next(_seq)
    values.setdefault("name", f"device-{n}")
    values.setdefault("serial", f"SN-{n:06d}")
    return Device.objects.create(organization=org, site=site or make_site(org), **values)


def enroll_device(org: Organization, site=None, serial: str | None = None, **token_values):
    """Enroll a device through the real services; returns (device, private key)."""
    from fleet import services
    from opshero.actors import Actor
    from protocol import device_auth

    site = site or make_site(org)
    _, token = services.create_enrollment_token(
        organization=org, site=site, actor=Actor.system("tests"), **token_values
    )
    key = device_auth.generate_device_key()
    device = services.enroll_device(
        token=token,
        public_key=device_auth.public_key_text(key),
        facts=services.EnrollmentFacts(serial=serial or f"GW-{next(_seq):06d}"),
    )
    return device, key


def make_target(org: Organization, name: str | None = None, **values):
    from fleet.models import HardwareTarget

    values.setdefault("runtime", "onnxruntime 1.32.0")
    values.setdefault("execution_provider", "CPU")
    values.setdefault(
        "operators",
        [{"domain": "", "op_type": "Conv", "min_opset": None, "max_opset": None, "note": ""}],
    )
    return HardwareTarget.objects.create(
        organization=org, name=name or f"Target {next(_seq)}", **values
    )


def make_group(org: Organization, name: str | None = None, rules=None):
    from fleet.models import DeviceGroup

    return DeviceGroup.objects.create(
        organization=org, name=name or f"Group {next(_seq)}", rules=rules or {}
    )
