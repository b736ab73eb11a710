"""POST /api/v1/device/telemetry through the real HTTP stack: what lands, what is refused, why."""

import gzip
import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from fleet import services as fleet_services
from modelregistry.models import MlModel, ModelVersion
from opshero.actors import Actor
from protocol import device_auth
from protocol import telemetry as wire
from telemetry.models import LandedBatch
from telemetry.services import held_ranges
from tests.factories import enroll_device

from .builders import (
    EPOCH,
    batch_body,
    event_json,
    health,
    inference,
    post_batch,
    raw_body,
)

pytestmark = pytest.mark.django_db


def model_version(org, *, labels):
    model = MlModel.objects.create(organization=org, name=f"m-{uuid.uuid4().hex[:8]}")
    return ModelVersion.objects.create(
        model=model,
        version="1.0.0",
        artifact="artifacts/none.onnx",
        file_name="none.onnx",
        sha256=uuid.uuid4().hex * 2,
        size_bytes=1,
        io_contract={"labels": labels, "score_output": "probabilities"},
    )


def error_of(response):
    return response.json()["error"]


def test_a_batch_lands_and_the_answer_says_what_is_held(
    client, gateway, queued, django_capture_on_commit_callbacks
):
    device, key = gateway
    body = batch_body([inference(5), inference(6), health(7), inference(9)])
    with django_capture_on_commit_callbacks(execute=True):
        response = post_batch(client, device, key, body, gzip_it=True)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["accepted"] == 4 and answer["events"] == 4
    assert answer["held"] == [[5, 7], [9, 9]]
    assert answer["rejected"] == [] and answer["duplicates"] == []
    batch = LandedBatch.objects.get()
    assert str(batch.pk) == answer["batch"]
    assert (batch.device_id, batch.organization_id) == (device.pk, device.organization_id)
    assert (batch.first_sequence, batch.last_sequence, batch.event_count) == (5, 9, 4)
    # The ingest task is queued only after the landing row committed.
    assert queued == [answer["batch"]]


def test_plain_json_is_accepted_too(client, gateway, queued):
    device, key = gateway
    response = post_batch(client, device, key, batch_body([inference(1)]))
    assert response.status_code == 200
    assert response.json()["held"] == [[1, 1]]


def test_invalid_events_are_refused_by_index_and_the_rest_kept(client, gateway, queued):
    device, key = gateway
    good = event_json(inference(1))
    negative = {**event_json(inference(2)), "latency_ms": -1.0}
    confident = {**event_json(inference(3)), "confidence": 1.5}
    future = {
        **event_json(inference(4)),
        "timestamp": (timezone.now() + timedelta(hours=2)).isoformat(),
    }
    huge = {**event_json(inference(5)), "workflow_fields": {f"k{i}": i for i in range(17)}}
    wrong_type = {"type": "teleport", "epoch": EPOCH, "sequence": 6}
    body = raw_body([good, negative, confident, future, huge, wrong_type])
    response = post_batch(client, device, key, body)
    assert response.status_code == 200, response.content
    answer = response.json()
    codes = {r["index"]: (r["code"], r["sequence"]) for r in answer["rejected"]}
    assert codes == {
        1: ("out_of_range", 2),
        2: ("out_of_range", 3),
        3: ("future_timestamp", 4),
        4: ("workflow_fields_too_large", 5),
        5: ("invalid_event", 6),
    }
    assert answer["accepted"] == 1 and answer["held"] == [[1, 1]]
    assert all(r["reason"] for r in answer["rejected"])
    assert LandedBatch.objects.get().event_count == 1


def test_a_too_large_number_is_refused_for_its_event_only(client, gateway, queued):
    device, key = gateway
    first, second = event_json(inference(1)), event_json(inference(2))
    body = json.dumps(
        {
            "device_epoch": {"epoch": EPOCH, "started_at": "2026-01-01T00:00:00Z"},
            "events": [first, second],
        }
    ).encode()
    body = body.replace(
        json.dumps(second["latency_ms"]).encode() + b', "confidence"', b'1e400, "confidence"', 1
    )
    response = post_batch(client, device, key, body)
    assert response.status_code == 200
    rejected = response.json()["rejected"]
    assert [(r["index"], r["code"]) for r in rejected] == [(1, "non_finite_number")]


def test_a_nan_literal_refuses_its_event_and_keeps_the_rest(client, gateway, queued):
    device, key = gateway
    body = raw_body([event_json(inference(1)), event_json(inference(2))])
    body = body.replace(b'"confidence": 0.9', b'"confidence": NaN', 1)
    response = post_batch(client, device, key, body)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert [(r["index"], r["code"], r["sequence"]) for r in answer["rejected"]] == [
        (0, "non_finite_number", 1)
    ]
    assert answer["held"] == [[2, 2]]
    assert LandedBatch.objects.get().event_count == 1


def test_a_body_that_is_not_json_refuses_the_batch(client, gateway, queued):
    device, key = gateway
    response = post_batch(client, device, key, b'{"device_epoch": NaN, "events": [}')
    assert response.status_code == 400
    assert error_of(response)["code"] == "malformed_json"
    assert not LandedBatch.objects.exists()


def test_a_sequence_reused_in_one_batch_with_other_content_is_refused(client, gateway, queued):
    device, key = gateway
    body = raw_body(
        [
            event_json(inference(1)),
            event_json(inference(1)),
            event_json(inference(1, predicted_class="scratch")),
        ]
    )
    answer = post_batch(client, device, key, body).json()
    assert answer["duplicates"] == [1]
    assert [(r["index"], r["code"]) for r in answer["rejected"]] == [(2, "sequence_conflict")]
    assert answer["held"] == [[1, 1]]


def test_events_beyond_the_organisations_retention_are_refused(client, gateway, queued, world):
    device, key = gateway
    world.a.org.telemetry_retention_days = 7
    world.a.org.save()
    old = inference(1, at=timezone.now() - timedelta(days=8))
    answer = post_batch(client, device, key, batch_body([old, inference(2)])).json()
    assert [(r["index"], r["code"]) for r in answer["rejected"]] == [(0, "beyond_retention")]
    assert "7-day" in answer["rejected"][0]["reason"]
    assert answer["held"] == [[2, 2]]


def test_unknown_classes_are_refused_for_models_whose_classes_are_known(
    client, gateway, queued, world
):
    device, key = gateway
    version = model_version(world.a.org, labels=["dent", "scratch", "ok"])

    known = wire.ModelRef(name="m", version="1", sha256=version.sha256)
    events = [
        inference(1, model=known, predicted_class="dent"),
        inference(2, model=known, predicted_class="crushed"),
        inference(3, model=known, predicted_class="ok", label="hole"),
        inference(4, predicted_class="anything"),  # an artifact the registry does not know
    ]
    answer = post_batch(client, device, key, batch_body(events)).json()
    assert [(r["index"], r["code"]) for r in answer["rejected"]] == [
        (1, "unknown_class"),
        (2, "unknown_class"),
    ]
    assert answer["held"] == [[1, 1], [4, 4]]


def test_another_organisations_model_classes_are_not_used(client, gateway, queued, world):
    device, key = gateway
    other = model_version(world.b.org, labels=["ok"])
    ref = wire.ModelRef(name="m", version="1", sha256=other.sha256)
    answer = post_batch(client, device, key, batch_body([inference(1, model=ref)])).json()
    assert answer["rejected"] == []


def test_too_many_events_is_413(client, gateway, queued, settings):
    settings.TELEMETRY_MAX_EVENTS_PER_BATCH = 3
    device, key = gateway
    response = post_batch(client, device, key, batch_body([inference(n) for n in range(4)]))
    assert response.status_code == 413
    assert error_of(response)["code"] == "too_many_events"
    assert not LandedBatch.objects.exists()


def test_a_gzip_bomb_is_413(client, gateway, queued, settings):
    settings.TELEMETRY_MAX_DECOMPRESSED_BYTES = 10_000
    device, key = gateway
    body = batch_body([inference(1)]) + b" " * 20_000
    response = post_batch(client, device, key, body, gzip_it=True)
    assert response.status_code == 413
    assert error_of(response)["code"] == "decompressed_too_large"


def test_corrupt_gzip_is_400(client, gateway, queued):
    device, key = gateway
    body = gzip.compress(batch_body([inference(1)]))[:-6]
    response = post_batch(client, device, key, body, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 400
    assert error_of(response)["code"] == "malformed_gzip"


def test_not_a_batch_is_400(client, gateway, queued):
    device, key = gateway
    response = post_batch(client, device, key, b'{"events": []}')
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_batch"


def test_other_content_types_and_encodings_are_415(client, gateway, queued):
    device, key = gateway
    body = batch_body([inference(1)])
    response = post_batch(client, device, key, body, content_type="text/plain")
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"
    response = post_batch(client, device, key, body, headers={"Content-Encoding": "br"})
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_encoding"
    assert not LandedBatch.objects.exists()


def test_unsigned_tampered_and_revoked_are_401(client, gateway, queued):
    device, key = gateway
    body = batch_body([inference(1)])
    response = client.post("/api/v1/device/telemetry", body, content_type="application/json")
    assert response.status_code == 401
    # Signed over other bytes than those sent: the body digest does not match.
    headers = device_auth.sign_request(
        private_key=key,
        device_id=str(device.uid),
        method="POST",
        path="/api/v1/device/telemetry",
        query="",
        body=body,
    )
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    tampered = body.replace(b'"dent"', b'"scratch"')
    response = client.generic(
        "POST", "/api/v1/device/telemetry", tampered, content_type="application/json", **extra
    )
    assert response.status_code == 401
    fleet_services.revoke_device(device=device, actor=Actor.system("tests"), reason="stolen")
    response = post_batch(client, device, key, body)
    assert response.status_code == 401
    assert not LandedBatch.objects.exists()


def test_a_user_session_cannot_post_telemetry(client, world, queued):
    client.force_login(world.a.user("admin"))
    response = client.post(
        "/api/v1/device/telemetry", batch_body([inference(1)]), content_type="application/json"
    )
    assert response.status_code in (401, 403)
    assert not LandedBatch.objects.exists()


def test_a_device_lands_only_as_itself(client, world, queued):
    # There is no way to name another device: the batch belongs to the signer.
    device_a, key_a = enroll_device(world.a.org)
    enroll_device(world.b.org)
    post_batch(client, device_a, key_a, batch_body([inference(1)]))
    batch = LandedBatch.objects.get()
    assert batch.device_id == device_a.pk and batch.organization_id == world.a.org.pk


def test_held_ranges_merge_runs():
    assert held_ranges([]) == []
    assert held_ranges([3, 1, 2, 7, 9, 8, 8]) == [(1, 3), (7, 9)]
