"""POST /api/v1/device/evidence: what is stored, what is refused, and that nothing else is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from review.models import EvidenceSample
from telemetry.models import DataSent
from tests.factories import enroll_device, make_site
from tests.telemetry.builders import EPOCH, health

from .builders import (
    jpeg_bytes,
    json_sample,
    low_confidence,
    open_evidence_policy,
    png_bytes,
    post_evidence,
    store_events,
)

pytestmark = pytest.mark.django_db


def _error(response) -> str:
    return response.json()["error"]["code"]


def _stored_files(root: Path) -> list[Path]:
    return list(root.rglob("*.bin")) if root.exists() else []


def test_a_sample_for_a_stored_event_is_linked_encrypted_and_counted(
    client, gateway, version, evidence_root
):
    device, key = gateway
    store_events(device, [low_confidence(7)])
    body = png_bytes()
    response = post_evidence(client, device, key, body, sequence=7, content_type="image/png")
    assert response.status_code == 201, response.content
    answer = response.json()
    assert answer["status"] == "linked"
    sample = EvidenceSample.objects.get(pk=answer["evidence"])
    assert (sample.predicted_class, sample.confidence) == ("dent", 0.41)
    assert sample.model_version == version
    assert sample.media_type == "image/png" and sample.size_bytes == len(body)
    files = _stored_files(evidence_root)
    assert len(files) == 1
    assert body not in files[0].read_bytes()  # ciphertext only on disk
    ledger = DataSent.objects.get(site_id=device.site_id, kind="evidence")
    assert (ledger.records, ledger.bytes) == (1, len(body))


def test_a_sample_before_its_event_waits_and_links_when_the_event_lands(client, gateway, version):
    from review.services import link_pending_evidence

    device, key = gateway
    response = post_evidence(client, device, key, json_sample(), sequence=3)
    assert response.status_code == 201
    assert response.json()["status"] == "pending"
    assert link_pending_evidence() == {"linked": 0, "unmatched": 0}
    store_events(device, [low_confidence(3, predicted="scratch")])
    assert link_pending_evidence() == {"linked": 1, "unmatched": 0}
    sample = EvidenceSample.objects.get()
    assert (sample.status, sample.predicted_class) == ("linked", "scratch")


def test_the_same_sample_again_is_answered_as_the_first_time(client, gateway):
    device, key = gateway
    first = post_evidence(client, device, key, json_sample(), sequence=4)
    again = post_evidence(client, device, key, json_sample(), sequence=4)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    other = post_evidence(client, device, key, json_sample(note="other"), sequence=4)
    assert other.status_code == 409 and _error(other) == "evidence_conflict"
    assert EvidenceSample.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"GIF89a......", "image/gif", 415, "unsupported_media_type"),
        (b"", "application/octet-stream", 415, "unsupported_media_type"),
        (json_sample(), "image/png", 422, "content_mismatch"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "image/png", 422, "invalid_image"),
        (b"[1, 2, 3]", "application/json", 422, "content_mismatch"),
        (b'{"a": NaN}', "application/json", 422, "invalid_json"),
        (b"{" + b'"a":{' * 20 + b"}" * 21, "application/json", 422, "invalid_json"),
        (b'{"a": "' + b"x" * 70_000 + b'"}', "application/json", 413, "too_large"),
        (png_bytes()[:-20], "image/png", 422, "invalid_image"),
        (jpeg_bytes(), "image/png", 422, "content_mismatch"),
    ],
)
def test_bad_samples_are_refused_precisely_and_nothing_is_stored(
    client, gateway, evidence_root, body, content_type, status, code
):
    device, key = gateway
    response = post_evidence(client, device, key, body, sequence=5, content_type=content_type)
    assert response.status_code == status, response.content
    assert _error(response) == code
    assert EvidenceSample.objects.count() == 0
    assert _stored_files(evidence_root) == []


def test_an_oversized_image_is_refused(client, gateway):
    device, key = gateway
    body = png_bytes(size=1_200_000)
    response = post_evidence(client, device, key, body, sequence=5, content_type="image/png")
    assert response.status_code == 413 and _error(response) == "too_large"


def test_a_decompression_bomb_is_refused_before_it_is_inflated(client, gateway):
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("1", (5000, 5000)).save(out, format="PNG")  # tiny file, 25 M pixels
    device, key = gateway
    response = post_evidence(client, device, key, out.getvalue(), content_type="image/png")
    assert response.status_code == 422 and _error(response) == "invalid_image"
    assert "pixels" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "query",
    [
        "epoch=epoch-0001-aaaa&sequence=1",
        "epoch=bad&sequence=1&reason=audit",
        "epoch=epoch-0001-aaaa&sequence=-1&reason=audit",
        "epoch=epoch-0001-aaaa&sequence=1&reason=curious",
        "epoch=epoch-0001-aaaa&sequence=1&reason=audit&device=7",
        "epoch=epoch-0001-aaaa&sequence=1&sequence=2&reason=audit",
        "epoch=epoch-0001-aaaa&sequence=%C2%B2&reason=audit",  # a superscript two
        "epoch=epoch-0001-aaaa&sequence=99999999999999999999&reason=audit",
        "epoch=epoch-0001-aaaa%0A&sequence=1&reason=audit",  # a trailing newline
        "epoch=" + "a" * 64 + "%0A&sequence=1&reason=audit",
    ],
)
def test_a_bad_reference_is_a_400(client, gateway, query):
    device, key = gateway
    response = post_evidence(client, device, key, json_sample(), query=query)
    assert response.status_code == 400 and _error(response) == "invalid_reference"
    assert EvidenceSample.objects.count() == 0


def test_another_devices_event_and_a_health_event_are_not_found(client, world, gateway, dock):
    device, key = gateway
    other, _ = enroll_device(world.a.org, site=dock)
    store_events(other, [low_confidence(1, epoch="epoch-other-bbbb")], epoch="epoch-other-bbbb")
    response = post_evidence(client, device, key, json_sample(), epoch="epoch-other-bbbb")
    assert response.status_code == 404 and _error(response) == "event_not_found"
    store_events(device, [health(2)])
    response = post_evidence(client, device, key, json_sample(), sequence=2)
    assert response.status_code == 404 and _error(response) == "event_not_found"
    assert "health" in response.json()["error"]["message"]
    assert EvidenceSample.objects.count() == 0


def test_the_daily_cap_is_a_429_with_retry_after(client, world):
    site = make_site(world.a.org, kind="dock")
    open_evidence_policy(site, evidence_daily_cap=2)
    device, key = enroll_device(world.a.org, site=site)
    for seq in (1, 2):
        assert post_evidence(client, device, key, json_sample(), sequence=seq).status_code == 201
    response = post_evidence(client, device, key, json_sample(), sequence=3)
    assert response.status_code == 429 and _error(response) == "evidence_cap"
    assert 0 < int(response["Retry-After"]) <= 86_400
    assert EvidenceSample.objects.count() == 2


def test_a_clinic_sends_nothing_by_default_and_no_images_unless_allowed(client, world):
    clinic = make_site(world.a.org, kind="clinic")
    device, key = enroll_device(world.a.org, site=clinic)
    response = post_evidence(client, device, key, json_sample())
    assert response.status_code == 403 and _error(response) == "evidence_disabled"
    open_evidence_policy(clinic, image_evidence=False)  # cap > 0, images still kept on site
    response = post_evidence(client, device, key, png_bytes(), content_type="image/png")
    assert response.status_code == 403 and _error(response) == "image_evidence_disabled"
    assert post_evidence(client, device, key, json_sample(), sequence=9).status_code == 201


def test_an_unsigned_or_wrongly_signed_upload_is_refused(client, gateway):
    response = client.generic(
        "POST",
        f"/api/v1/device/evidence?epoch={EPOCH}&sequence=1&reason=audit",
        json_sample(),
        content_type="application/json",
    )
    assert response.status_code == 401
    assert EvidenceSample.objects.count() == 0


def test_answers_are_json_with_the_api_error_shape(client, gateway):
    device, key = gateway
    response = post_evidence(client, device, key, b"nope", content_type="text/plain")
    body = json.loads(response.content)
    assert set(body["error"]) >= {"code", "message", "fields"}
