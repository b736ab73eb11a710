"""Cost of verifying a signed device request, per request.

(1) The pure check (parse headers, clock window, body digest, Ed25519 verify) in CPU time.
(2) The whole authentication step the device API runs (credential lookup in PostgreSQL,
    verification, nonce recorded in PostgreSQL), CPU time of this process and wall time.
(3) For scale, the same GET /api/v1/device/me request end to end through Django.
"""

from __future__ import annotations

import secrets
import time

import django_env

django_env.setup()

from django.test import Client, RequestFactory  # noqa: E402
from rest_framework.request import Request  # noqa: E402

from fleet import services  # noqa: E402
from fleet.api.device_authentication import DeviceSignatureAuthentication  # noqa: E402
from fleet.models import Site  # noqa: E402
from opshero.actors import Actor  # noqa: E402
from opshero.models import Organization  # noqa: E402
from protocol import device_auth  # noqa: E402

N = 5000
BODY = b'{"model_version": "damage-detector 1.4", "agent_version": "0.1.0"}'


def device_with_key():
    org, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Bench Logistics"})
    site, _ = Site.objects.get_or_create(organization=org, name="Signature bench site")
    _, token = services.create_enrollment_token(
        organization=org, site=site, actor=Actor.system("bench")
    )
    key = device_auth.generate_device_key()
    device = services.enroll_device(
        token=token,
        public_key=device_auth.public_key_text(key),
        facts=services.EnrollmentFacts(serial=f"BENCH-{secrets.token_hex(4)}"),
    )
    return device, key


def headers_for(key, device, path="/api/v1/device/status", body=BODY, method="POST"):
    return device_auth.sign_request(
        private_key=key, device_id=str(device.uid), method=method, path=path, body=body
    )


def main() -> None:
    device, key = device_with_key()
    print(f"machine: {django_env.machine()}")

    # (1) pure verification
    signed_sets = [headers_for(key, device) for _ in range(N)]
    public = key.public_key()
    now = time.time()
    cpu0 = time.process_time()
    for headers in signed_sets:
        parsed = device_auth.parse_signed_headers(headers)
        device_auth.check_freshness(parsed, now=now)
        device_auth.verify_signature(
            parsed,
            public_key=public,
            method="POST",
            path="/api/v1/device/status",
            query="",
            body=BODY,
        )
    pure_us = (time.process_time() - cpu0) / N * 1e6
    print(f"pure signature check: {pure_us:.1f} us CPU per request (target <= 200 us)")

    # (2) the DRF authentication step with the database lookup and the database nonce record
    factory = RequestFactory()
    auth = DeviceSignatureAuthentication()
    requests = []
    for _ in range(N):
        h = headers_for(key, device)
        meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in h.items()}
        requests.append(
            Request(
                factory.post("/api/v1/device/status", BODY, content_type="application/json", **meta)
            )
        )
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for request in requests:
        assert auth.authenticate(request) is not None
    cpu_us = (time.process_time() - cpu0) / N * 1e6
    wall_us = (time.perf_counter() - wall0) / N * 1e6
    print(
        f"full authentication (DB lookup + verify + DB nonce): {cpu_us:.0f} us CPU, "
        f"{wall_us:.0f} us wall per request"
    )

    # (3) whole request for scale
    client = Client()
    times = []
    for _ in range(500):
        h = headers_for(key, device, path="/api/v1/device/me", body=b"", method="GET")
        meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in h.items()}
        started = time.perf_counter()
        response = client.get("/api/v1/device/me", **meta)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.content
    print(
        f"GET /api/v1/device/me end to end: P50 {django_env.percentile(times, 50):.2f} ms, "
        f"P95 {django_env.percentile(times, 95):.2f} ms; signature check share at P50: "
        f"{pure_us / 1000 / django_env.percentile(times, 50) * 100:.0f} %"
    )


if __name__ == "__main__":
    main()
