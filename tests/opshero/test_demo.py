"""seed_demo creates one user per role and is idempotent."""

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from opshero.demo import DEMO_PASSWORD
from opshero.models import AuditEvent, Membership, Organization
from opshero.roles import Role

pytestmark = pytest.mark.django_db


def _counts():
    return (Organization.objects.count(), Membership.objects.count(), AuditEvent.objects.count())


def test_seed_demo_creates_every_role_and_running_it_again_changes_nothing(capsys):
    call_command("seed_demo")
    out = capsys.readouterr().out
    first = _counts()
    roles = set(
        Membership.objects.filter(organization__slug="northwind").values_list("role", flat=True)
    )
    assert roles == set(Role.values)
    for username in ("demo-admin", "demo-approver", "demo-planner", "demo-viewer"):
        assert username in out
        assert authenticate(username=username, password=DEMO_PASSWORD) is not None
    call_command("seed_demo")
    assert _counts() == first


def test_seed_demo_refuses_production(settings):
    from django.core.management.base import CommandError

    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="production"):
        call_command("seed_demo")
    assert Organization.objects.count() == 0
