"""Hostile bodies against every JSON write endpoint of both APIs: never a server error.

The org API endpoints come from the URLconf through the tenancy probes of tests/isolation.py
(each builds the real objects its URL names, in tenant a, and a valid body); every write method
the view has is then sent the valid body with one field replaced by a hostile value, and whole
hostile bodies (deep nesting, wrong top-level type, oversized). The device API is fuzzed with
signed requests of a real enrolled device, enrollment with a real token.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.cache import cache
from django.urls import resolve

from fleet.api.serializers import RotateKeyRequestSerializer, StatusRequestSerializer
from opshero.roles import Role
from tests.factories import enroll_device
from tests.fleet.api.test_device_views import ENROLL, enroll_body, new_token, signed
from tests.isolation import CASES

pytestmark = pytest.mark.django_db

WRITE_METHODS = ("post", "put", "patch")
OVERFLOW = "__overflowing_number__"  # json.dumps cannot write 1e999999; substituted as text
# One field at a time takes each of these in place of its valid value.
HOSTILE_VALUES: dict[str, Any] = {
    "nul": "a\x00b",
    "lone surrogate": "a\ud800b",
    "overflowing number": OVERFLOW,
    "huge integer": 10**30,
    "negative": -1,
    "list of lists": [["x"]],
    "object": {"x": {"y": 1}},
    "list of objects": [{"x": 1}],
    "string": "x",
    "long string": "x" * 10_000,
    "integer": 7,
    "null": None,
    "true": True,
}


def _text(body: Any) -> str:
    return json.dumps(body).replace(f'"{OVERFLOW}"', "1e999999")


def hostile_bodies(valid: dict[str, Any] | None) -> list[tuple[str, bytes]]:
    """(label, raw JSON) pairs: each field of ``valid`` spoiled in turn, then whole bodies."""
    valid = dict(valid or {})
    keys = list(valid) or ["name"]
    out: list[tuple[str, bytes]] = []
    for key in keys:
        for label, value in HOSTILE_VALUES.items():
            out.append((f"{key}={label}", _text({**valid, key: value}).encode()))
        deep: Any = "x"
        for _ in range(70):
            deep = {"d": deep}
        out.append((f"{key}=70 deep", _text({**valid, key: deep}).encode()))
        out.append((f"key with NUL next to {key}", _text({**valid, f"{key}\x00": 1}).encode()))
    out += [
        ("5000 deep", ("[" * 5000 + "]" * 5000).encode()),
        ("top-level list", _text([valid]).encode()),
        ("top-level string", b'"x"'),
        ("top-level number", b"1e999999"),
        ("top-level null", b"null"),
        ("not JSON", b"{'a': 1"),
        ("not UTF-8", b'{"name": "\xff\xfe"}'),
        ("oversized", b'{"name": "' + b"a" * 2_700_000 + b'"}'),
    ]
    return out


def _problems(responses: list[tuple[str, Any]]) -> list[str]:
    problems = []
    for label, response in responses:
        if response.status_code >= 500:
            problems.append(f"{label}: {response.status_code} {response.content[:200]!r}")
        elif response.status_code >= 400 and not response["Content-Type"].startswith(
            "application/json"
        ):
            problems.append(f"{label}: {response.status_code} is not JSON")
    return problems


API_CASES = sorted(name for name in CASES if name.startswith("api-"))


def test_the_fuzz_covers_the_org_api():
    # A guard against the enumeration silently shrinking (e.g. CASES renamed).
    assert {"api-roi-assessments", "api-sites", "api-model-versions", "api-members"} <= set(
        API_CASES
    ), API_CASES


@pytest.mark.parametrize("url_name", API_CASES)
def test_hostile_bodies_to_org_api_writes_are_never_a_server_error(url_name, world, api_as):
    responses = []
    for probe in CASES[url_name](world):
        view = getattr(resolve(probe.url).func, "cls", None)
        allowed = getattr(view, "http_method_names", ())
        methods = [m for m in WRITE_METHODS if hasattr(view, m) and m in allowed]
        for method in methods:
            valid = probe.data if probe.method.lower() == method else None
            client = api_as(world.a.user(probe.insider_role))
            for label, body in hostile_bodies(valid if isinstance(valid, dict) else None):
                cache.clear()  # throttles would otherwise end the run early
                response = getattr(client, method)(probe.url, body, content_type="application/json")
                responses.append((f"{method.upper()} {probe.url} {label}", response))
    assert _problems(responses) == []


def test_hostile_bodies_to_the_token_endpoint_are_never_a_server_error(client, world):
    valid = {"username": world.a.user(Role.ADMIN).username, "password": "x", "name": "fuzz"}
    responses = []
    for label, body in hostile_bodies(valid):
        cache.clear()
        response = client.post("/api/v1/auth/token/", body, content_type="application/json")
        responses.append((label, response))
    assert _problems(responses) == []


def test_hostile_enrollments_are_never_a_server_error(client, world):
    responses = []
    for label, body in hostile_bodies(enroll_body("placeholder")):
        _, token = new_token(world.a.org)
        cache.clear()
        body = body.replace(b'"placeholder"', json.dumps(token).encode())
        responses.append((label, client.post(ENROLL, body, content_type="application/json")))
    assert _problems(responses) == []


@pytest.mark.parametrize(
    ("path", "serializer"),
    [
        ("/api/v1/device/status", StatusRequestSerializer),
        ("/api/v1/device/rotate-key", RotateKeyRequestSerializer),
    ],
)
def test_hostile_signed_device_requests_are_never_a_server_error(client, world, path, serializer):
    device, key = enroll_device(world.a.org)
    valid = dict.fromkeys(serializer().fields, "x")
    responses = []
    for label, body in hostile_bodies(valid):
        cache.clear()
        responses.append((label, signed(client, "POST", path, key, device.uid, body)))
    assert _problems(responses) == []
