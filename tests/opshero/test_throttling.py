"""Every throttle keys on the one client address (``opshero.actors.client_ip``), and the admin
sign-in shares the app's login lockout (issue 11)."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

ENROLL = "/api/v1/device/enroll"
TOKEN = "/api/v1/auth/token/"


def _enroll(client, i, **headers):
    payload = {"token": f"ohe_guess{i:040d}", "public_key": "AAAA", "serial": f"GW-{i}"}
    return client.post(ENROLL, payload, content_type="application/json", **headers).status_code


def test_forty_enrollments_with_forged_forwarded_for_are_throttled(client, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    codes = [_enroll(client, i, HTTP_X_FORWARDED_FOR=f"203.0.113.{i}") for i in range(40)]
    assert 429 in codes
    assert codes.index(429) == 20  # the enroll rate is 20/min for the one real client
    assert set(codes[20:]) == {429}


def test_token_requests_with_forged_forwarded_for_are_throttled(client, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    make_user("ada")
    codes = [
        client.post(
            TOKEN,
            {"username": f"u{i}", "password": "x"},
            content_type="application/json",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{i}",
        ).status_code
        for i in range(15)
    ]
    assert codes[:10] == [401] * 10
    assert set(codes[10:]) == {429}


def test_the_trusted_proxy_count_is_honoured(client, settings):
    """Behind one proxy, the address that proxy appended is the client: distinct clients are
    counted apart, and what a client prepends itself is ignored."""
    settings.TRUSTED_PROXY_COUNT = 1
    spoofed = [_enroll(client, i, HTTP_X_FORWARDED_FOR=f"10.9.9.{i}, 192.0.2.7") for i in range(21)]
    assert spoofed[20] == 429  # same real client (192.0.2.7) whatever it prepends
    others = [_enroll(client, i, HTTP_X_FORWARDED_FOR=f"192.0.2.{100 + i}") for i in range(21)]
    assert 429 not in others  # 21 different clients, one request each


def _views(resolver=None):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _views(entry)
        elif isinstance(entry, URLPattern):
            view = getattr(entry.callback, "view_class", None) or getattr(
                entry.callback, "cls", None
            )
            if view is not None:
                yield entry, view


def test_every_throttle_of_every_view_uses_the_one_client_address():
    from opshero.throttling import ClientAddressThrottle

    checked = 0
    for pattern, view in _views():
        for throttle in getattr(view, "throttle_classes", []):
            checked += 1
            assert issubclass(throttle, ClientAddressThrottle), (pattern.pattern, throttle)
    assert checked >= 2  # the token and enrollment endpoints at least


# --- /admin/login/ ---------------------------------------------------------------------------


def test_admin_login_failures_lock_the_app_login(client, settings):
    make_user("root", is_staff=True, is_superuser=True)
    for _ in range(settings.LOGIN_MAX_FAILURES):
        client.post("/admin/login/", {"username": "root", "password": "guess"})
    response = client.post("/login/", {"username": "root", "password": PASSWORD})
    assert response.status_code == 200
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_app_login_failures_lock_the_admin_login(client, settings):
    make_user("root", is_staff=True, is_superuser=True)
    for _ in range(settings.LOGIN_MAX_FAILURES):
        client.post("/login/", {"username": "root", "password": "guess"})
    response = client.post("/admin/login/?next=/admin/", {"username": "root", "password": PASSWORD})
    assert response.status_code == 200
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_admin_login_still_works_for_staff(client):
    make_user("root", is_staff=True, is_superuser=True)
    response = client.post("/admin/login/?next=/admin/", {"username": "root", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
