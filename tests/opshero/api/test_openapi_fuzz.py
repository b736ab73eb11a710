"""Schemathesis over the whole OpenAPI schema: the API answers what the schema says.

Every operation of the user API (as an admin of a real organisation, with a real personal
token) and of the device API (requests signed with a real enrolled device's key) gets a few
generated requests. Each answer must not be a 5xx, must use a documented status and must
match the documented body (the success serializer or the error shape). Generation is bounded
(explicit examples plus a few generated ones per operation, no shrinking) so the run stays
well under three minutes on two cores.

The signing happens in a WSGI wrapper around the real application, after schemathesis has
serialised the body, so the signature covers exactly the bytes and the path that were sent.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from opshero.roles import Role
from opshero.services import issue_api_token
from protocol import device_auth
from tests.factories import enroll_device, make_device, make_group, make_site, make_target

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(600)]

EXAMPLES_PER_OPERATION = 6
DEVICE_PREFIX = "/api/v1/device/"
ENROLL = "/api/v1/device/enroll"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def signing_app(app: Callable, *, user_token: str, device_id: str, key) -> Callable:
    """The real WSGI app, with credentials added to each request as a client would send them:
    a bearer token on the user API, an Ed25519 signature on the device API (except enroll)."""

    def wrapped(environ, start_response):
        # As Django's test client does: the request must not close the test's connection
        # (the test transaction holds the world these requests act on).
        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)
        try:
            return app(_with_credentials(environ), start_response)
        finally:
            signals.request_started.connect(close_old_connections)
            signals.request_finished.connect(close_old_connections)

    def _with_credentials(environ):
        path = environ.get("PATH_INFO", "")
        if path.startswith(DEVICE_PREFIX) and path != ENROLL:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            # The same rule the server applies, so the hook cannot drift from it.
            raw_path = device_auth.signed_path(environ=environ, decoded_path=path)
            headers = device_auth.sign_request(
                private_key=key,
                device_id=device_id,
                method=environ["REQUEST_METHOD"],
                path=raw_path,
                query=environ.get("QUERY_STRING", ""),
                body=body,
            )
            for name, value in headers.items():
                environ[f"HTTP_{name.upper().replace('-', '_')}"] = value
        elif "HTTP_AUTHORIZATION" not in environ:
            environ["HTTP_AUTHORIZATION"] = f"Bearer {user_token}"
        return environ

    return wrapped


@pytest.fixture
def fuzz_schema(world):
    from django.core.wsgi import get_wsgi_application
    from drf_spectacular.generators import SchemaGenerator

    org = world.a.org
    admin = world.a.user(Role.ADMIN)
    _, token = issue_api_token(user=admin, name="schemathesis")
    signer, key = enroll_device(org)  # the device the device API speaks for
    site = make_site(org)
    real_ids = {
        "org": org.slug,
        "site_id": site.pk,
        "device_id": make_device(org, site=site).pk,  # never the signer: revoke/retire hit this
        "group_id": make_group(org).pk,
        "target_id": make_target(org).pk,
        "membership_id": world.a.members[Role.VIEWER].pk,
    }
    document = SchemaGenerator().get_schema(request=None, public=True)
    schema = schemathesis.openapi.from_dict(document)
    schema.app = signing_app(
        get_wsgi_application(), user_token=token, device_id=str(signer.uid), key=key
    )
    return schema, real_ids


def fuzz_operation(operation, overrides: dict, failures: list[str], seen: set) -> int:
    """Send this operation's explicit examples and a few generated requests; returns the count.

    ``seen`` collects (method, path, status) so the test can prove the credentials worked."""
    calls = 0

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        phases=[Phase.explicit, Phase.generate],
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(path_parameters=overrides))
    def run(case):
        nonlocal calls
        calls += 1
        response = case.call()
        seen.add((operation.method.upper(), operation.path, response.status_code))
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as exc:  # every failure is collected, reported together at the end
            failures.append(
                f"{operation.method.upper()} {operation.path} -> {response.status_code}: "
                f"{str(exc).strip()[:1500]}"
            )

    run()
    return calls


def test_every_operation_answers_as_documented(fuzz_schema):
    schema, real_ids = fuzz_schema
    failures: list[str] = []
    seen: set[tuple[str, str, int]] = set()
    operations = calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        names = {p.name for p in operation.path_parameters}
        overrides = {name: value for name, value in real_ids.items() if name in names}
        calls += fuzz_operation(operation, overrides, failures, seen)
        operations += 1

    assert operations >= 50, operations
    # The credentials really worked: a signed device request and a token request got through.
    assert ("GET", "/api/v1/device/me", 200) in seen
    assert ("GET", "/api/v1/orgs/{org}/sites/", 200) in seen
    assert ("GET", "/api/v1/orgs/{org}/devices/{device_id}/", 200) in seen
    print(f"schemathesis: {operations} operations, {calls} requests")
    assert not failures, f"{len(failures)} failures in {calls} calls:\n\n" + "\n\n".join(failures)
