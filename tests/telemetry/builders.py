"""Telemetry events and signed batch requests for the tests."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from protocol import device_auth
from protocol import telemetry as wire

EPOCH = "epoch-0001-aaaa"
MODEL = wire.ModelRef(name="parcel-damage", version="v3", sha256="a" * 64)
TELEMETRY = "/api/v1/device/telemetry"
# Events default to times just before the tests started, so equal calls give equal events.
BASE = timezone.now() - timedelta(minutes=10)


def device_epoch(epoch: str = EPOCH, started_at: datetime | None = None) -> wire.DeviceEpoch:
    return wire.DeviceEpoch(
        epoch=epoch, started_at=started_at or timezone.now() - timedelta(days=1)
    )


def inference(seq: int, *, epoch: str = EPOCH, at: datetime | None = None, **fields):
    values = {
        "model": MODEL,
        "latency_ms": 10.0 + seq % 7,
        "confidence": 0.9,
        "predicted_class": "dent",
        "shape_bucket": "1x3x224x224",
    }
    values.update(fields)
    at = at or BASE + timedelta(milliseconds=seq)
    return wire.InferenceEvent(epoch=epoch, sequence=seq, timestamp=at.astimezone(UTC), **values)


def health(seq: int, *, epoch: str = EPOCH, at: datetime | None = None, **fields):
    values = {
        "throttled": False,
        "memory_mb": 512.0,
        "queue_depth": 0,
        "buffered": 0,
        "evicted": 0,
        "cpu_utilisation": 0.5,
    }
    values.update(fields)
    at = at or BASE + timedelta(milliseconds=seq)
    return wire.HealthEvent(epoch=epoch, sequence=seq, timestamp=at.astimezone(UTC), **values)


def batch_body(events, *, epoch: str = EPOCH, compress: bool = False) -> bytes:
    return wire.encode_batch(device_epoch=device_epoch(epoch), events=events, compress=compress)


def raw_body(events: list[dict], *, epoch: str = EPOCH) -> bytes:
    """A batch whose events are given as plain JSON objects (to send invalid ones)."""
    envelope = {
        "device_epoch": {"epoch": epoch, "started_at": "2026-01-01T00:00:00Z"},
        "events": events,
    }
    return json.dumps(envelope).encode()


def event_json(event) -> dict:
    return json.loads(wire.encode_batch(device_epoch=device_epoch(event.epoch), events=[event]))[
        "events"
    ][0]


def post_batch(client, device, key, body: bytes, *, gzip_it: bool = False, headers=None, **kw):
    """POST a batch signed over the exact bytes sent."""
    if gzip_it:
        body = gzip.compress(body, mtime=0)
    signature = device_auth.sign_request(
        private_key=key,
        device_id=str(device.uid),
        method="POST",
        path=TELEMETRY,
        query="",
        body=body,
    )
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in signature.items()}
    if gzip_it:
        extra["HTTP_CONTENT_ENCODING"] = "gzip"
    for name, value in (headers or {}).items():
        extra[f"HTTP_{name.upper().replace('-', '_')}"] = value
    content_type = kw.pop("content_type", "application/json")
    return client.generic("POST", TELEMETRY, body, content_type=content_type, **extra)
