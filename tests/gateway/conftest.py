"""Fixtures for the reference gateway agent: it talks to the real server over HTTP.

The agent uses urllib against a base URL, so these tests run it against pytest-django's
``live_server`` (a real WSGI server on a local port, the test database behind it).
"""

import socket

import pytest

from fleet import services
from opshero.actors import Actor
from tests.factories import make_site

SITE_NAME = "Rotterdam Dock 4"


@pytest.fixture
def site(world):
    return make_site(world.a.org, name=SITE_NAME, time_zone="Europe/Amsterdam")


@pytest.fixture
def new_token(site):
    """new_token(**options) -> a fresh one-time enrollment token for ``site``."""

    def _new(**options) -> str:
        _, token = services.create_enrollment_token(
            organization=site.organization, site=site, actor=Actor.system("tests"), **options
        )
        return token

    return _new


@pytest.fixture
def unreachable_url():
    """A local URL on which nothing listens (the port was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
