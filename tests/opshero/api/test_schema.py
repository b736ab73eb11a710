"""The OpenAPI schema says what the API really does (issue 11, item 8)."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from opshero.roles import Role


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def test_every_operation_documents_its_errors_with_the_error_shape(schema):
    error_ref = {"$ref": "#/components/schemas/Error"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert "401" in operation["responses"], (method, path)
            for code, response in operation["responses"].items():
                if code.startswith("4"):
                    body = response["content"]["application/json"]["schema"]
                    assert body == error_ref, (method, path, code)
    enroll = schema["paths"]["/api/v1/device/enroll"]["post"]["responses"]
    assert {"400", "401", "409", "413", "422", "429"} <= set(enroll)


def test_fields_that_can_be_null_are_nullable(schema):
    components = schema["components"]["schemas"]
    for component, field in [
        ("Device", "hardware_target_name"),
        ("HardwareTarget", "cloned_from"),
        ("VersionDetail", "derived_from"),
    ]:
        matches = [c for name, c in components.items() if name.startswith(component)]
        assert any(c["properties"].get(field, {}).get("nullable") for c in matches), field


def test_token_example_of_201_is_a_response(schema):
    operation = schema["paths"]["/api/v1/auth/token/"]["post"]
    example = operation["responses"]["201"]["content"]["application/json"]["examples"]
    assert all("token" in e["value"] for e in example.values())
    assert "password" in str(operation["requestBody"])


def test_post_only_actions_document_only_post(schema):
    for path in (
        "/api/v1/orgs/{org}/devices/{device_id}/revoke/",
        "/api/v1/orgs/{org}/hardware-targets/{target_id}/clone/",
    ):
        assert set(schema["paths"][path]) == {"post"}, path


@pytest.mark.django_db
@pytest.mark.parametrize("page_size", ["null", "0", "501", "-1", "1e3"])
def test_a_bad_page_size_is_refused(api_as, world, page_size):
    api = api_as(world.a.user(Role.VIEWER))
    response = api.get(f"/api/v1/orgs/acme/sites/?page_size={page_size}")
    assert response.status_code == 400
    assert "page_size" in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_site_create_answers_with_its_counts(api_as, world):
    api = api_as(world.a.user(Role.ADMIN))
    body = {"name": "Dock 9", "kind": "dock", "time_zone": "Europe/Amsterdam"}
    response = api.post("/api/v1/orgs/acme/sites/", body, format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["device_count"], response.json()["online_count"]) == (0, 0)
