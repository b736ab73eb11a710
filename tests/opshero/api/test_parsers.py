"""The request-parsing layer of both APIs: limits answered with a 4xx in the error shape.

Each HTTP test here answered 500 (RequestDataTooBig, RecursionError, DataError) or a CSRF 403
before opshero/api/parsers.py and the 413 paths in opshero/api/errors.py existed.
"""

from __future__ import annotations

import io
import json
from urllib.parse import urlencode

import pytest
from django.core.exceptions import RequestDataTooBig
from django.test import Client, RequestFactory
from django.utils import timezone

from fleet.models import Device, DeviceCredential
from modelregistry.services import parse_io_contract
from opshero.api.parsers import (
    MAX_JSON_DEPTH,
    REQUEST_BODY_LIMITS,
    ApiFormParser,
    ApiJSONParser,
    UnacceptableBody,
    check_json_value,
)
from opshero.roles import Role
from opshero.urls import handle_400
from tests.factories import enroll_device
from tests.fleet.api.test_device_views import ENROLL, enroll_body, new_token, signed

TOO_BIG = 2_621_440 + 1


def error_of(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    return response.json()["error"]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# --- the checks themselves -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "code", "field"),
    [
        ({"hardware": {"cpu": "x86\x00"}}, "invalid_text", "hardware.cpu"),
        ({"hardware": {"cpu": "\ud800"}}, "invalid_text", "hardware.cpu"),
        ({"tags": ["ok", "\udfff"]}, "invalid_text", "tags.1"),
        ({"hardware": {"c\x00pu": 1}}, "invalid_text", "hardware"),
        ({"hardware": {"ram": float("inf")}}, "invalid_number", "hardware.ram"),
        ({"hardware": {"ram": float("nan")}}, "invalid_number", "hardware.ram"),
        ({"cores": 2**63}, "invalid_number", "cores"),
        ({"cores": -(2**63) - 1}, "invalid_number", "cores"),
        ("\x00", "invalid_text", "non_field_errors"),
    ],
)
def test_unstorable_values_are_refused_naming_the_field(data, code, field):
    with pytest.raises(UnacceptableBody) as caught:
        check_json_value(data)
    assert caught.value.code == code
    assert list(caught.value.fields) == [field]
    assert caught.value.status == 400


def test_the_documented_body_limits_are_the_settings_in_force(settings):
    for endpoint, limit in REQUEST_BODY_LIMITS.items():
        assert getattr(settings, limit["setting"]) == limit["bytes"], endpoint
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == TOO_BIG - 1


def test_storable_values_pass():
    check_json_value(
        {"emoji": "\U0001f600", "max": 2**63 - 1, "min": -(2**63), "f": 1e308, "n": None, "b": True}
    )


def test_depth_is_limited_just_above_the_limit():
    check_json_value(json.loads(nested(MAX_JSON_DEPTH)))
    with pytest.raises(UnacceptableBody) as caught:
        check_json_value(json.loads(nested(MAX_JSON_DEPTH + 1)))
    assert caught.value.code == "too_deep"


def parse(text: str):
    return ApiJSONParser().parse(io.BytesIO(text.encode()), "application/json", {})


def test_the_json_parser_refuses_what_pythons_json_would_crash_on_or_let_through():
    with pytest.raises(UnacceptableBody) as caught:
        parse(nested(5000))  # json.loads alone: RecursionError
    assert caught.value.code == "too_deep"
    with pytest.raises(UnacceptableBody) as caught:
        parse('{"hardware": {"ram": 1e999999}}')  # json.loads alone: inf
    assert caught.value.fields == {"hardware.ram": ["Numbers must be finite (this one overflows)."]}
    with pytest.raises(UnacceptableBody) as caught:
        parse('{"serial": "GW\\u0000"}')
    assert list(caught.value.fields) == ["serial"]
    with pytest.raises(UnacceptableBody) as caught:
        parse('{"serial": "GW\\ud83d"}')
    assert list(caught.value.fields) == ["serial"]
    assert parse('{"serial": "GW\\ud83d\\ude00"}') == {"serial": "GW\U0001f600"}


def test_the_form_parser_refuses_nul_in_a_field():
    body = b"name=ok&notes=a%00b"
    with pytest.raises(UnacceptableBody) as caught:
        ApiFormParser().parse(
            io.BytesIO(body), "application/x-www-form-urlencoded", {"encoding": "utf-8"}
        )
    assert list(caught.value.fields) == ["notes"]


# --- through the HTTP stack ----------------------------------------------------------------------


@pytest.mark.django_db
def test_oversized_bodies_are_413_on_enroll_and_token(client, world):
    body = b'{"token": "' + b"a" * TOO_BIG + b'"}'
    for url in (ENROLL, "/api/v1/auth/token/"):
        response = client.post(url, body, content_type="application/json")
        assert response.status_code == 413, (url, response.content[:200])
        assert error_of(response)["code"] == "payload_too_large"


@pytest.mark.django_db
def test_oversized_signed_device_requests_are_413(client, world):
    device, key = enroll_device(world.a.org)
    body = b'{"model_version": "' + b"a" * TOO_BIG + b'"}'
    response = signed(client, "POST", "/api/v1/device/status", key, device.uid, body)
    assert response.status_code == 413, response.content[:200]
    assert error_of(response)["code"] == "payload_too_large"
    # A known device without a usable key: refused, never a server error.
    DeviceCredential.objects.filter(device=device).update(revoked_at=timezone.now())
    response = signed(client, "POST", "/api/v1/device/status", key, device.uid, body)
    assert response.status_code in (401, 413), response.content[:200]
    assert error_of(response)["code"] in ("payload_too_large", "device_revoked", "unknown_device")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("spoil", "code", "field"),
    [
        (lambda text: "[" * 5000 + "]" * 5000, "too_deep", "non_field_errors"),
        (
            lambda text: text.replace('"cores": 4', '"cores": 4, "ram": 1e999999'),
            "invalid_number",
            "hardware.ram",
        ),
        (
            lambda text: text.replace('"cores"', '"cpu": "x86\\u0000", "cores"'),
            "invalid_text",
            "hardware.cpu",
        ),
        (lambda text: text.replace('"GW-0001"', '"GW-\\ud800"'), "invalid_text", "serial"),
        (lambda text: text.replace('"dock-gw"', '"gw\\u0000"'), "invalid_text", "name"),
    ],
    ids=["5000 deep", "1e999999", "NUL", "lone surrogate", "NUL in name"],
)
def test_hostile_json_on_enroll_is_400_naming_the_field_and_enrolls_nothing(
    client, world, spoil, code, field
):
    _, token = new_token(world.a.org)
    text = spoil(json.dumps(enroll_body(token)))
    response = client.post(ENROLL, text.encode(), content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    error = error_of(response)
    assert (error["code"], list(error["fields"])) == (code, [field])
    assert not Device.objects.exists()


@pytest.mark.django_db
def test_multipart_text_fields_are_checked_too(api_as, world):
    client = api_as(world.a.user(Role.ADMIN))
    upload = io.BytesIO(b"serial,name\nGW-1,gw\n")
    upload.name = "devices.csv"
    response = client.post(
        "/api/v1/orgs/acme/devices/import/",
        {"file": upload, "note": "a\x00b"},
        format="multipart",
    )
    assert response.status_code == 400, response.content[:300]
    assert error_of(response)["fields"] == {
        "note": ["Text may not contain the NUL character (\\u0000)."]
    }


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_writes_to_unknown_api_paths_are_the_same_404_as_get(method, db):
    client = Client(enforce_csrf_checks=True)
    get = client.get("/api/v1/auth/tokenz/")
    response = getattr(client, method)(
        "/api/v1/auth/tokenz/", b"{}", content_type="application/json"
    )
    assert response.status_code == 404
    assert error_of(response) == error_of(get)
    hinted = getattr(client, method)("/api/v1/auth/token", b"{}", content_type="application/json")
    assert hinted.status_code == 404
    assert "did you mean /api/v1/auth/token/?" in error_of(hinted)["message"]


def test_an_oversized_body_read_before_any_view_is_413():
    request = RequestFactory().post("/api/v1/anything/")
    response = handle_400(request, RequestDataTooBig("too big"))
    assert response.status_code == 413
    assert json.loads(response.content)["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("value", "code", "field"),
    [
        ("[" * 5000 + "]" * 5000, "too_deep", "shape_buckets"),
        ('{"x": ["a\\u0000"]}', "invalid_text", "shape_buckets.x.0"),
        ('{"x": 1e999999}', "invalid_number", "shape_buckets.x"),
    ],
)
def test_json_sent_as_a_form_field_gets_the_json_checks(value, code, field):
    body = urlencode({"version": "1.0", "shape_buckets": value}).encode()
    with pytest.raises(UnacceptableBody) as caught:
        ApiFormParser().parse(
            io.BytesIO(body), "application/x-www-form-urlencoded", {"encoding": "utf-8"}
        )
    assert (caught.value.code, list(caught.value.fields)) == (code, [field])


def test_form_fields_that_merely_look_like_json_are_left_to_their_field():
    body = urlencode({"release_notes": "[draft] {wip"}).encode()
    data = ApiFormParser().parse(
        io.BytesIO(body), "application/x-www-form-urlencoded", {"encoding": "utf-8"}
    )
    assert data["release_notes"] == "[draft] {wip"


def test_an_io_contract_sent_as_json_text_gets_the_json_checks():
    with pytest.raises(UnacceptableBody) as caught:
        parse_io_contract("[" * 5000 + "]" * 5000, outputs=None)  # was RecursionError
    assert list(caught.value.fields) == ["io_contract"]
    with pytest.raises(UnacceptableBody) as caught:
        parse_io_contract('{"labels": ["a\\u0000"]}', outputs=None)  # was a jsonb DataError
    assert list(caught.value.fields) == ["io_contract.labels.0"]
