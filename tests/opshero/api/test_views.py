"""API base: authentication, the JSON error shape on every failure, pagination, tokens."""

import pytest
from django.test import override_settings
from django.urls import path

from opshero.models import ApiToken
from opshero.roles import Role
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


def test_without_auth_the_api_answers_401_json(client):
    err = assert_error(client.get("/api/v1/me/"), 401, "not_authenticated")
    assert "credentials" in err["message"].lower()
    assert client.get("/api/v1/me/")["WWW-Authenticate"].startswith("Bearer")


def test_bad_and_unknown_tokens_are_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer ohu_not-a-real-token")
    assert_error(api_client.get("/api/v1/me/"), 401, "authentication_failed")
    api_client.credentials(HTTP_AUTHORIZATION="Bearer sk_live_123")
    assert_error(api_client.get("/api/v1/me/"), 401, "authentication_failed")


def test_token_login_flow_stores_only_a_hash(api_client):
    user = make_user("ops-lead")
    response = api_client.post(
        "/api/v1/auth/token/", {"username": "ops-lead", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 201
    token = response.json()["token"]
    assert token.startswith("ohu_") and len(token) > 40
    stored = ApiToken.objects.get(user=user)
    assert token not in (stored.key_hash, stored.prefix)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api_client.get("/api/v1/me/").json()["username"] == "ops-lead"
    # Revoking makes it stop working at once.
    assert api_client.delete(f"/api/v1/auth/tokens/{stored.pk}/").status_code == 204
    assert_error(api_client.get("/api/v1/me/"), 401, "authentication_failed")


def test_token_login_and_revocation_are_audited_with_the_address(api_client):
    from opshero.models import AuditEvent

    user = make_user("field-tech")
    response = api_client.post(
        "/api/v1/auth/token/",
        {"username": "field-tech", "password": PASSWORD},
        format="json",
        REMOTE_ADDR="198.51.100.4",
    )
    assert response.status_code == 201
    stored = ApiToken.objects.get(user=user)
    issued = AuditEvent.objects.get(verb="api_token.issued")
    assert (issued.actor_user, issued.ip, issued.organization) == (user, "198.51.100.4", None)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")
    assert api_client.delete(f"/api/v1/auth/tokens/{stored.pk}/").status_code == 204
    revoked = AuditEvent.objects.get(verb="api_token.revoked")
    assert (revoked.actor_user, revoked.target_id) == (user, str(stored.pk))


def test_token_endpoint_throttles_guessing(api_client, settings):
    make_user("target")
    for _ in range(settings.LOGIN_MAX_FAILURES):
        r = api_client.post(
            "/api/v1/auth/token/", {"username": "target", "password": "x"}, format="json"
        )
        assert_error(r, 401, "authentication_failed")
    r = api_client.post(
        "/api/v1/auth/token/", {"username": "target", "password": PASSWORD}, format="json"
    )
    assert_error(r, 429, "throttled")


def test_malformed_json_is_400_json(world, api_as):
    api = api_as(world.a.user(Role.ADMIN))
    response = api.generic(
        "POST", "/api/v1/orgs/acme/members/", "{not json", content_type="application/json"
    )
    err = assert_error(response, 400, "parse_error")
    assert "JSON" in err["message"]


def test_wrong_content_type_is_415(world, api_as):
    api = api_as(world.a.user(Role.ADMIN))
    response = api.generic("POST", "/api/v1/orgs/acme/members/", "a=b", content_type="text/plain")
    assert_error(response, 415, "unsupported_media_type")


def test_validation_errors_name_each_field(world, api_as):
    api = api_as(world.a.user(Role.ADMIN))
    err = assert_error(
        api.post("/api/v1/orgs/acme/members/", {"role": "emperor"}, format="json"), 400, "invalid"
    )
    assert set(err["fields"]) == {"username", "role"}
    err = assert_error(
        api.post(
            "/api/v1/orgs/acme/members/", {"username": "ghost", "role": "viewer"}, format="json"
        ),
        422,
        "invalid_input",
    )
    assert err["fields"] == {"username": ["No such user."]}


def test_unknown_url_and_wrong_method_are_json(world, api_as):
    api = api_as(world.a.user(Role.ADMIN))
    assert_error(api.get("/api/v1/nothing-here/"), 404, "not_found")
    err = assert_error(api.get("/api/v1/me"), 404, "not_found")
    assert "/api/v1/me/" in err["message"]
    response = api.delete("/api/v1/me/")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


def _boom(request):
    raise RuntimeError("kaboom")


urlpatterns = [path("api/v1/boom/", _boom)]


@override_settings(ROOT_URLCONF=__name__, DEBUG=True)
def test_an_uncaught_error_under_api_is_a_json_500_even_in_debug(client):
    client.raise_request_exception = False
    err = assert_error(client.get("/api/v1/boom/"), 500, "server_error")
    assert "kaboom" not in err["message"]


def test_pagination_has_count_and_links(world, api_as):
    api = api_as(world.a.user(Role.ADMIN))
    body = api.get("/api/v1/orgs/acme/members/?page_size=2").json()
    assert body["count"] == 5  # one member per role
    assert len(body["results"]) == 2
    assert body["next"].endswith("page=2&page_size=2")
    assert_error(api.get("/api/v1/orgs/acme/members/?page=99"), 404, "not_found")


def test_members_api_changes_roles_with_audit(world, api_as):
    api = api_as(world.a.user(Role.ADMIN))
    viewer = world.a.members[Role.VIEWER]
    response = api.patch(
        f"/api/v1/orgs/acme/members/{viewer.pk}/", {"role": "approver"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["role"] == "approver"
    events = api.get("/api/v1/orgs/acme/audit-events/?verb=member.role_changed").json()
    assert events["count"] == 1
    last_admin = world.a.members[Role.ADMIN]
    err = assert_error(
        api.patch(f"/api/v1/orgs/acme/members/{last_admin.pk}/", {"role": "viewer"}, format="json"),
        409,
        "last_admin",
    )
    assert "last admin" in err["message"]


def test_audit_filters_are_validated(world, api_as):
    api = api_as(world.a.user(Role.APPROVER))
    err = assert_error(api.get("/api/v1/orgs/acme/audit-events/?since=yesterday"), 400, "invalid")
    assert "since" in err["fields"]


def test_openapi_schema_and_offline_docs(client, world):
    client.force_login(world.a.user(Role.VIEWER))
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/orgs/{org}/audit-events/" in paths
    docs = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in docs and "cdn" not in docs.lower() and "https://" not in docs
    redoc = client.get("/api/redoc/").content.decode()
    assert "redoc" in redoc.lower() and "https://cdn" not in redoc


def test_openapi_schema_generates_without_warnings(tmp_path):
    from django.core.management import call_command

    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for expected in ("/api/v1/device/enroll:", "/api/v1/orgs/{org}/devices/:", "deviceSignature"):
        assert expected in text
