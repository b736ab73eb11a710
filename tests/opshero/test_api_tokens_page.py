"""The personal API tokens page: create (shown once), list, revoke; only your own tokens."""

import pytest
from django.urls import reverse

from opshero.models import ApiToken, AuditEvent
from opshero.roles import Role
from opshero.services import issue_api_token
from opshero.tokens import hash_token

pytestmark = pytest.mark.django_db

PAGE = "/account/api-tokens/"


def test_the_user_menu_links_to_the_page(login, world):
    client = login(world.a.user(Role.VIEWER))
    page = client.get(reverse("overview", kwargs={"org": "acme"})).content.decode()
    assert f'href="{PAGE}"' in page


def test_creating_a_token_shows_it_once_and_it_authenticates(login, world, api_client):
    user = world.a.user(Role.PLANNER)
    client = login(user)
    response = client.post(PAGE, {"name": "CI pipeline"})
    assert response.status_code == 201
    token = response.context["new_token"]
    assert token.startswith("ohu_") and token in response.content.decode()
    record = ApiToken.objects.get(user=user)
    assert (record.name, record.key_hash) == ("CI pipeline", hash_token(token))
    event = AuditEvent.objects.get(verb="api_token.issued")
    assert event.data == {"name": "CI pipeline", "prefix": record.prefix}
    # Shown once: the list shows the prefix only, never the whole token again.
    again = client.get(PAGE).content.decode()
    assert record.prefix in again and token not in again
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api_client.get("/api/v1/me/").json()["username"] == user.username


def test_a_token_without_a_name_is_refused_inline(login, world):
    client = login(world.a.user(Role.VIEWER))
    response = client.post(PAGE, {"name": ""})
    assert response.status_code == 422
    assert response.context["form"].errors["name"]
    assert not ApiToken.objects.exists()


def test_the_list_shows_only_your_tokens_with_last_use(login, world):
    mine, _ = issue_api_token(user=world.a.user(Role.VIEWER), name="my laptop")
    theirs, _ = issue_api_token(user=world.a.user(Role.ADMIN), name="admin laptop")
    other_org, _ = issue_api_token(user=world.b.user(Role.VIEWER), name="globex laptop")
    ApiToken.objects.filter(pk=mine.pk).update(last_used_at="2026-11-30T10:00:00Z")
    page = login(world.a.user(Role.VIEWER)).get(PAGE)
    assert [t.pk for t in page.context["tokens"]] == [mine.pk]
    html = page.content.decode()
    assert "my laptop" in html and mine.prefix in html and "2026-11-30" in html
    assert "admin laptop" not in html and theirs.prefix not in html
    assert "globex laptop" not in html and other_org.prefix not in html


def test_revoking_deletes_your_token_and_audits_it(login, world, api_client):
    user = world.a.user(Role.VIEWER)
    record, token = issue_api_token(user=user, name="old")
    client = login(user)
    response = client.post(reverse("api-token-revoke-page", kwargs={"token_id": record.pk}))
    assert response.status_code == 302 and response["Location"] == PAGE
    assert not ApiToken.objects.filter(pk=record.pk).exists()
    assert AuditEvent.objects.filter(verb="api_token.revoked").count() == 1
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api_client.get("/api/v1/me/").status_code == 401


def test_another_users_token_cannot_be_revoked(login, world):
    record, _ = issue_api_token(user=world.b.user(Role.ADMIN), name="globex ci")
    client = login(world.a.user(Role.ADMIN))
    url = reverse("api-token-revoke-page", kwargs={"token_id": record.pk})
    assert client.post(url).status_code == 404
    assert ApiToken.objects.filter(pk=record.pk).exists()
    assert not AuditEvent.objects.filter(verb="api_token.revoked").exists()


def test_revoke_is_post_only_and_the_page_needs_a_login(client, login, world):
    record, _ = issue_api_token(user=world.a.user(Role.VIEWER), name="x")
    assert client.get(PAGE).status_code == 302  # to the login page
    url = reverse("api-token-revoke-page", kwargs={"token_id": record.pk})
    assert login(world.a.user(Role.VIEWER)).get(url).status_code == 405
