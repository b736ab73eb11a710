"""Sign-in: one generic error for any wrong credentials, then throttling."""

import pytest

from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

GENERIC = "Please enter a correct username and password"


def test_wrong_password_and_unknown_user_get_the_same_message(client):
    make_user("real-user")
    wrong_password = client.post("/login/", {"username": "real-user", "password": "nope"})
    unknown_user = client.post("/login/", {"username": "ghost", "password": "nope"})
    for response in (wrong_password, unknown_user):
        assert response.status_code == 200
        assert GENERIC in response.content.decode()
    # The typed username is kept so the user does not retype it.
    assert 'value="real-user"' in wrong_password.content.decode()


def test_repeated_failures_lock_the_username_even_with_the_right_password(client, settings):
    make_user("target")
    for _ in range(settings.LOGIN_MAX_FAILURES):
        client.post("/login/", {"username": "target", "password": "guess"})
    response = client.post("/login/", {"username": "target", "password": PASSWORD})
    assert response.status_code == 200
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_success_resets_the_counter_and_lands_on_the_organisation(client, world, settings):
    user = world.a.user("planner")
    for _ in range(settings.LOGIN_MAX_FAILURES - 1):
        client.post("/login/", {"username": user.username, "password": "guess"})
    response = client.post("/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").headers["Location"] == "/o/acme/"
    client.logout()
    client.post("/login/", {"username": user.username, "password": "guess"})
    assert (
        client.post("/login/", {"username": user.username, "password": PASSWORD}).status_code == 302
    )


def test_pages_require_login(client, world):
    response = client.get("/o/acme/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login/?next=/o/acme/")


def test_user_without_organisation_sees_an_explanation(client):
    client.force_login(make_user("loner"))
    response = client.get("/")
    assert response.status_code == 200
    assert "not a member of any organisation" in response.content.decode()
