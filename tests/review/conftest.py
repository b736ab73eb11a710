import pytest

from tests.factories import enroll_device, make_site

from .builders import open_evidence_policy, registered_model


@pytest.fixture(autouse=True)
def evidence_root(settings, tmp_path):
    settings.EVIDENCE_ROOT = tmp_path / "evidence"
    return settings.EVIDENCE_ROOT


@pytest.fixture
def dock(world):
    site = make_site(world.a.org, name="North dock", kind="dock")
    open_evidence_policy(site)
    return site


@pytest.fixture
def gateway(world, dock):
    return enroll_device(world.a.org, site=dock)


@pytest.fixture
def version(world):
    return registered_model(world.a.org)
