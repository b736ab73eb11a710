"""The telemetry batch: round trip, every per-event refusal by index, envelope refusals, gzip."""

from __future__ import annotations

import gzip
import json
import tracemalloc
import zlib
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from protocol.telemetry import (
    BATCH_REJECTION_STATUS,
    DeviceEpoch,
    Feedback,
    HealthEvent,
    InferenceEvent,
    ModelRef,
    TelemetryRejected,
    decode_batch,
    encode_batch,
    gunzip_limited,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
EPOCH = "0f8c2a4e-6b1d-4c3e-9a7f-2d5e8b1c4a90"
SHA = "ab" * 32


def inference(sequence: int, **overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "inference",
        "epoch": EPOCH,
        "sequence": sequence,
        "timestamp": "2026-12-01T11:59:00Z",
        "model": {"name": "parcel-damage", "version": "v3", "sha256": SHA},
        "latency_ms": 11.5,
        "confidence": 0.9,
        "predicted_class": "dent",
        "shape_bucket": "1x3x224x224",
    }
    event.update(overrides)
    return event


def health(sequence: int, **overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "health",
        "epoch": EPOCH,
        "sequence": sequence,
        "timestamp": "2026-12-01T11:59:30Z",
        "cpu_utilisation": 0.5,
        "power_w": 6.5,
        "temperature_c": 70.0,
        "throttled": False,
        "memory_mb": 800.0,
        "queue_depth": 2,
        "buffered": 10,
        "evicted": 0,
    }
    event.update(overrides)
    return event


def body(*events: dict[str, Any] | str, epoch: str = EPOCH) -> bytes:
    """A batch; an event given as a string is spliced in verbatim (for numbers JSON can't say)."""
    parts = [e if isinstance(e, str) else json.dumps(e) for e in events]
    envelope = json.dumps({"epoch": epoch, "started_at": "2026-12-01T08:00:00Z"})
    return f'{{"device_epoch": {envelope}, "events": [{", ".join(parts)}]}}'.encode()


def decode(data: bytes, **kwargs: Any):
    kwargs.setdefault("now", NOW)
    return decode_batch(data, **kwargs)


def test_a_valid_batch_round_trips_through_encode_and_decode() -> None:
    device_epoch = DeviceEpoch(epoch=EPOCH, started_at=datetime(2026, 12, 1, 8, tzinfo=UTC))
    events = [
        InferenceEvent(
            epoch=EPOCH,
            sequence=7,
            timestamp=datetime(2026, 12, 1, 11, 58, tzinfo=UTC),
            model=ModelRef(name="parcel-damage", version="v3", sha256=SHA),
            latency_ms=12.25,
            time_to_action_ms=180.0,
            confidence=1.0,
            predicted_class="dent",
            label="scratch",
            feedback=Feedback(thumbs="down", reason="it is a scratch"),
            shape_bucket="1x3x224x224",
            workflow_fields={"damage_type": "dent", "label_confidence": 0.8, "n": 3, "ok": True},
        ),
        HealthEvent(
            epoch=EPOCH,
            sequence=8,
            timestamp=datetime(2026, 12, 1, 11, 59, tzinfo=UTC),
            cpu_utilisation=0.0,
            npu_utilisation=0.25,
            power_w=0.0,
            temperature_c=-20.5,
            throttled=True,
            memory_mb=512.0,
            queue_depth=0,
            online=False,
            buffered=0,
            evicted=4,
        ),
    ]

    decoded = decode(encode_batch(device_epoch=device_epoch, events=events))

    assert decoded.device_epoch == device_epoch
    assert decoded.epoch == EPOCH
    assert [(a.index, a.event) for a in decoded.events] == [(0, events[0]), (1, events[1])]
    assert decoded.rejected == []
    assert decoded.duplicates == []
    # workflow values keep their JSON type: an int stays an int, a bool a bool
    assert type(decoded.events[0].event.workflow_fields["n"]) is int
    assert decoded.events[0].event.workflow_fields["ok"] is True


def test_optional_members_are_omitted_on_the_wire_and_default_on_decode() -> None:
    event = HealthEvent(
        epoch=EPOCH,
        sequence=0,
        timestamp=NOW,
        power_w=1.0,
        temperature_c=40.0,
        throttled=False,
        memory_mb=1.0,
        queue_depth=0,
        buffered=0,
        evicted=0,
    )
    device_epoch = DeviceEpoch(epoch=EPOCH, started_at=NOW)
    wire = json.loads(encode_batch(device_epoch=device_epoch, events=[event]))
    assert "online" not in wire["events"][0]
    assert "gpu_utilisation" not in wire["events"][0]
    assert wire["events"][0]["type"] == "health"

    decoded = decode(body(inference(1)))
    assert decoded.events[0].event.label is None
    assert decoded.events[0].event.feedback is None
    assert decoded.events[0].event.workflow_fields == {}


def test_encode_batch_can_gzip() -> None:
    device_epoch = DeviceEpoch(epoch=EPOCH, started_at=NOW)
    plain = encode_batch(device_epoch=device_epoch, events=[])
    compressed = encode_batch(device_epoch=device_epoch, events=[], compress=True)
    assert gunzip_limited(compressed, 10_000) == plain


def test_encode_batch_refuses_non_finite_floats_rather_than_writing_null() -> None:
    device_epoch = DeviceEpoch(epoch=EPOCH, started_at=NOW)
    event = msgspec.convert(inference(3), InferenceEvent)
    with pytest.raises(ValueError, match="latency_ms is not finite"):
        encode_batch(
            device_epoch=device_epoch,
            events=[msgspec.structs.replace(event, latency_ms=float("nan"))],
        )
    with pytest.raises(ValueError, match=r"workflow_fields\['x'\] is not finite"):
        encode_batch(
            device_epoch=device_epoch,
            events=[msgspec.structs.replace(event, workflow_fields={"x": float("inf")})],
        )


# Each bad event sits between two good ones: it is refused by its index, the others are kept.
BAD_EVENTS = [
    pytest.param('{"type": "inference", "sequence": 5}', "invalid_event", id="missing-members"),
    pytest.param(
        json.dumps(inference(5))[:-1] + ', "latency_ms": 1e400}', "non_finite_number", id="inf"
    ),
    pytest.param(inference(5, latency_ms=-0.1), "out_of_range", id="negative-latency"),
    pytest.param(inference(5, time_to_action_ms=-1), "out_of_range", id="negative-tta"),
    pytest.param(inference(5, confidence=1.01), "out_of_range", id="confidence-above-1"),
    pytest.param(inference(5, confidence=-0.01), "out_of_range", id="confidence-below-0"),
    pytest.param(inference(-1), "out_of_range", id="negative-sequence"),
    pytest.param(inference(2**63), "out_of_range", id="sequence-past-bigint"),
    pytest.param(health(5, gpu_utilisation=1.5), "out_of_range", id="utilisation"),
    pytest.param(health(5, evicted=-3), "out_of_range", id="negative-count"),
    pytest.param(
        json.dumps(health(5))[:-1] + ', "temperature_c": -1e999}', "non_finite_number", id="-inf"
    ),
    pytest.param(inference(5, predicted_class="x" * 201), "string_too_long", id="long-class"),
    pytest.param(inference(5, label="x" * 201), "string_too_long", id="long-label"),
    pytest.param(inference(5, shape_bucket="1" * 101), "string_too_long", id="long-bucket"),
    pytest.param(
        inference(5, feedback={"thumbs": "up", "reason": "r" * 501}),
        "string_too_long",
        id="long-reason",
    ),
    pytest.param(
        inference(5, workflow_fields={f"k{i}": i for i in range(17)}),
        "workflow_fields_too_large",
        id="17-workflow-fields",
    ),
    pytest.param(
        inference(5, workflow_fields={"k" * 41: 1}),
        "workflow_fields_too_large",
        id="long-workflow-key",
    ),
    pytest.param(
        inference(5, workflow_fields={"note": "v" * 201}),
        "workflow_fields_too_large",
        id="long-workflow-value",
    ),
    pytest.param(
        json.dumps(inference(5))[:-1] + ', "workflow_fields": {"x": 1e400}}',
        "non_finite_number",
        id="inf-workflow-value",
    ),
    pytest.param(
        inference(5, workflow_fields={"nested": {"a": 1}}), "invalid_event", id="nested-workflow"
    ),
    pytest.param(inference(5, workflow_fields={"": 1}), "invalid_event", id="empty-workflow-key"),
    pytest.param(inference(5, feedback={"thumbs": "sideways"}), "invalid_event", id="thumbs"),
    pytest.param(
        inference(5, model={"name": "m", "version": "1", "sha256": "AB" * 32}),
        "invalid_event",
        id="upper-case-sha256",
    ),
    pytest.param(inference(5, timestamp="2026-12-01T11:59:00"), "invalid_event", id="naive-time"),
    pytest.param(inference(5, confidence="high"), "invalid_event", id="wrong-type"),
    pytest.param(inference(5, extra=1), "invalid_event", id="unknown-member"),
    pytest.param({**inference(5), "type": "gossip"}, "invalid_event", id="unknown-type"),
    pytest.param("[1, 2]", "invalid_event", id="not-an-object"),
    pytest.param(inference(5, epoch="another-epoch-0001"), "epoch_mismatch", id="epoch"),
    pytest.param(inference(5, timestamp="2026-12-01T12:05:01Z"), "future_timestamp", id="future"),
]


@pytest.mark.parametrize(("bad", "code"), BAD_EVENTS)
def test_a_bad_event_is_refused_by_index_and_the_rest_kept(bad: Any, code: str) -> None:
    decoded = decode(body(inference(1), bad, health(9)))

    assert [(r.index, r.code) for r in decoded.rejected] == [(1, code)]
    assert decoded.rejected[0].reason  # says why, for the gateway's log
    assert [(a.index, a.event.sequence) for a in decoded.events] == [(0, 1), (2, 9)]


def test_reasons_name_the_member_at_fault() -> None:
    decoded = decode(body(inference(1, latency_ms=-5), inference(2, confidence=2)))
    reasons = [r.reason for r in decoded.rejected]
    assert "$.latency_ms" in reasons[0]
    assert "$.confidence" in reasons[1]


def test_the_clock_window_is_inclusive_and_configurable() -> None:
    at_edge = inference(1, timestamp="2026-12-01T12:05:00Z")
    just_past = inference(2, timestamp="2026-12-01T12:05:00.001Z")
    decoded = decode(body(at_edge, just_past))
    assert [a.index for a in decoded.events] == [0]
    assert [(r.index, r.code) for r in decoded.rejected] == [(1, "future_timestamp")]

    wide = decode(body(at_edge, just_past), clock_window_s=3600)
    assert [a.index for a in wide.events] == [0, 1]

    # old events are the server's business (retention), not the decoder's
    old = decode(body(inference(3, timestamp="2020-01-01T00:00:00+02:00")))
    assert old.rejected == []


def test_the_clock_window_compares_instants_across_offsets() -> None:
    # 13:04+01:00 is 12:04Z: inside the window
    decoded = decode(body(inference(1, timestamp="2026-12-01T13:04:00+01:00")))
    assert decoded.rejected == []


def test_unknown_classes_are_refused_only_when_classes_are_known() -> None:
    events = (
        inference(1, predicted_class="dent"),
        inference(2, predicted_class="gremlin"),
        inference(3, predicted_class="dent", label="gremlin"),
        health(4),
    )
    assert decode(body(*events)).rejected == []

    decoded = decode(body(*events), known_classes=["dent", "scratch"])
    assert [(r.index, r.code) for r in decoded.rejected] == [
        (1, "unknown_class"),
        (2, "unknown_class"),
    ]
    assert "label" in decoded.rejected[1].reason
    assert [a.index for a in decoded.events] == [0, 3]


def test_an_identical_repeat_of_a_sequence_is_kept_once() -> None:
    decoded = decode(body(inference(1), health(2), inference(1)))
    assert [(a.index, a.event.sequence) for a in decoded.events] == [(0, 1), (1, 2)]
    assert decoded.duplicates == [2]
    assert decoded.rejected == []


def test_an_identical_repeat_is_judged_by_content_not_bytes() -> None:
    same = dict(reversed(list(inference(1).items())))  # other member order, other offset
    same["timestamp"] = "2026-12-01T12:59:00+01:00"
    decoded = decode(body(inference(1), same))
    assert decoded.duplicates == [1]


def test_a_reused_sequence_with_other_content_is_refused_and_the_first_kept() -> None:
    decoded = decode(
        body(inference(1, confidence=0.9), inference(1, confidence=0.3), health(1), health(2))
    )
    assert [(a.index, a.event.confidence) for a in decoded.events[:1]] == [(0, 0.9)]
    assert [a.index for a in decoded.events] == [0, 3]
    assert [(r.index, r.code) for r in decoded.rejected] == [
        (1, "sequence_conflict"),
        (2, "sequence_conflict"),
    ]
    assert "sequence 1" in decoded.rejected[0].reason


def test_a_refused_event_does_not_claim_its_sequence() -> None:
    decoded = decode(body(inference(1, latency_ms=-1), inference(1)))
    assert [(r.index, r.code) for r in decoded.rejected] == [(0, "out_of_range")]
    assert [a.index for a in decoded.events] == [1]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_a_nan_or_infinity_literal_refuses_its_event_only(literal: str) -> None:
    good = inference(1)
    bad = json.dumps(inference(2)).replace('"latency_ms": 11.5', f'"latency_ms": {literal}')
    nested = json.dumps(inference(3, workflow_fields={"x": 1.25})).replace(
        '"x": 1.25', f'"x": {literal}'
    )
    assert literal in bad and literal in nested
    decoded = decode(body(good, bad, inference(4), nested))
    assert [a.event.sequence for a in decoded.events] == [1, 4]
    assert [(r.index, r.code) for r in decoded.rejected] == [
        (1, "non_finite_number"),
        (3, "non_finite_number"),
    ]


def test_python_json_dumps_of_a_nan_event_is_refused_per_event() -> None:
    # What a gateway written with the standard library would send for float("nan").
    event = inference(1) | {"confidence": float("nan")}
    data = json.dumps(
        {
            "device_epoch": {"epoch": EPOCH, "started_at": "2026-12-01T08:00:00Z"},
            "events": [event, inference(2)],
        }
    ).encode()
    decoded = decode(data)
    assert [(r.index, r.code) for r in decoded.rejected] == [(0, "non_finite_number")]
    assert [a.event.sequence for a in decoded.events] == [2]


def test_an_empty_batch_is_accepted() -> None:
    decoded = decode(body())
    assert decoded.events == [] and decoded.rejected == [] and decoded.epoch == EPOCH


@pytest.mark.parametrize(
    ("data", "code"),
    [
        pytest.param(b"{not json", "malformed_json", id="not-json"),
        pytest.param(b"", "malformed_json", id="empty"),
        pytest.param(body(inference(1))[:-1] + b"]}", "malformed_json", id="trailing"),
        pytest.param(b'{"device_epoch": NaN, "events": []}', "malformed_json", id="nan-envelope"),
        pytest.param(b'{"events": [NaN, ]}', "malformed_json", id="nan-and-broken"),
        pytest.param(b"[]", "invalid_batch", id="array"),
        pytest.param(b'{"events": []}', "invalid_batch", id="no-device-epoch"),
        pytest.param(body(epoch="x"), "invalid_batch", id="short-epoch"),
        pytest.param(body(epoch="has spaces in it"), "invalid_batch", id="bad-epoch"),
        pytest.param(
            b'{"device_epoch": {"epoch": "%s", "started_at": "2026-12-01T08:00:00Z"},'
            b' "events": {}}' % EPOCH.encode(),
            "invalid_batch",
            id="events-not-a-list",
        ),
        pytest.param(
            b'{"device_epoch": {"epoch": "%s", "started_at": "2026-12-01T08:00:00"},'
            b' "events": []}' % EPOCH.encode(),
            "invalid_batch",
            id="naive-started-at",
        ),
        pytest.param(
            body()[:-1] + b', "extra": 1}',
            "invalid_batch",
            id="unknown-member",
        ),
    ],
)
def test_an_unusable_envelope_refuses_the_whole_batch(data: bytes, code: str) -> None:
    with pytest.raises(TelemetryRejected) as caught:
        decode(data)
    assert caught.value.code == code
    assert caught.value.status == 400


def test_too_many_events_is_refused_with_413() -> None:
    events = [health(i) for i in range(6)]
    assert len(decode(body(*events), max_events=6).events) == 6
    with pytest.raises(TelemetryRejected) as caught:
        decode(body(*events), max_events=5)
    assert caught.value.code == "too_many_events"
    assert caught.value.status == 413
    assert "6 events" in caught.value.message


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decode_batch(body(), now=datetime(2026, 12, 1, 12))


def test_every_batch_refusal_code_has_a_status() -> None:
    assert set(BATCH_REJECTION_STATUS) == {
        "malformed_gzip",
        "decompressed_too_large",
        "malformed_json",
        "invalid_batch",
        "too_many_events",
    }


def test_gunzip_limited_inflates_up_to_the_limit() -> None:
    data = body(*(inference(i) for i in range(50)))
    compressed = gzip.compress(data)
    assert gunzip_limited(compressed, len(data)) == data
    with pytest.raises(TelemetryRejected) as caught:
        gunzip_limited(compressed, len(data) - 1)
    assert caught.value.code == "decompressed_too_large"
    assert caught.value.status == 413


def test_gunzip_limited_refuses_a_bomb_without_inflating_it() -> None:
    # 128 MiB of zeros in ~130 KB: refused once the limit is passed, never inflated whole
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    bomb = b"".join(compressor.compress(block) for _ in range(128)) + compressor.flush()
    assert len(bomb) < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(TelemetryRejected) as caught:
            gunzip_limited(bomb, 1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.code == "decompressed_too_large"
    assert peak < 16 << 20  # inflating it whole would take 128 MiB


def test_gunzip_limited_joins_concatenated_members() -> None:
    assert gunzip_limited(gzip.compress(b"ab") + gzip.compress(b"cd"), 4) == b"abcd"
    with pytest.raises(TelemetryRejected) as caught:
        gunzip_limited(gzip.compress(b"ab") + gzip.compress(b"cd"), 3)
    assert caught.value.code == "decompressed_too_large"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"plain json, not gzip", id="not-gzip"),
        pytest.param(gzip.compress(b"x" * 1000)[:-10], id="truncated"),
        pytest.param(gzip.compress(b"x") + b"junk", id="trailing-junk"),
        pytest.param(gzip.compress(b"x")[:-8] + b"\0" * 8, id="bad-crc"),
    ],
)
def test_gunzip_limited_refuses_a_malformed_body(data: bytes) -> None:
    with pytest.raises(TelemetryRejected) as caught:
        gunzip_limited(data, 1 << 20)
    assert caught.value.code == "malformed_gzip"
    assert caught.value.status == 400


def test_a_gzipped_batch_decodes_end_to_end() -> None:
    compressed = gzip.compress(body(inference(1), inference(2, confidence=7)))
    decoded = decode(gunzip_limited(compressed, 1 << 20))
    assert [a.index for a in decoded.events] == [0]
    assert [(r.index, r.code) for r in decoded.rejected] == [(1, "out_of_range")]


def test_a_health_event_from_a_device_without_power_or_thermal_sensors_is_kept() -> None:
    event = health(0)
    del event["power_w"], event["temperature_c"]
    decoded = decode(body(event, health(1, power_w=-1.0)))
    assert [accepted.index for accepted in decoded.events] == [0]
    assert decoded.events[0].event.power_w is None
    assert decoded.events[0].event.temperature_c is None
    assert [(r.index, r.code) for r in decoded.rejected] == [(1, "out_of_range")]
