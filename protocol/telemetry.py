"""The telemetry batch: what a gateway posts to the server, decoded and judged event by event.

No Django here: the server's ingest endpoint and the gateway agent (and its simulator) both
import this module, so the two ends cannot drift apart.

Wire format
-----------
One JSON object (UTF-8, optionally ``Content-Encoding: gzip``)::

    {
      "device_epoch": {"epoch": "0f8c2a4e-6b1d-4c3e-9a7f-2d5e8b1c4a90",
                       "started_at": "2026-12-01T08:00:00Z"},
      "events": [
        {"type": "inference", "epoch": "0f8c2a4e-6b1d-4c3e-9a7f-2d5e8b1c4a90", "sequence": 41,
         "timestamp": "2026-12-01T11:40:02.125Z",
         "model": {"name": "parcel-damage", "version": "v3", "sha256": "<64 lower-case hex>"},
         "latency_ms": 11.4, "time_to_action_ms": 180.0, "confidence": 0.93,
         "predicted_class": "dent", "label": "dent",
         "feedback": {"thumbs": "down", "reason": "it is a scratch"},
         "shape_bucket": "1x3x224x224",
         "workflow_fields": {"damage_type": "dent", "label_confidence": 0.8, "rework": false}},
        {"type": "health", "epoch": "0f8c2a4e-6b1d-4c3e-9a7f-2d5e8b1c4a90", "sequence": 42,
         "timestamp": "2026-12-01T11:40:05Z",
         "cpu_utilisation": 0.61, "gpu_utilisation": null, "npu_utilisation": 0.2,
         "power_w": 6.5, "temperature_c": 71.0, "throttled": false, "memory_mb": 812.0,
         "queue_depth": 3, "online": true, "buffered": 120, "evicted": 0}
      ]
    }

- ``device_epoch.epoch`` is an opaque id the agent picks at install (a UUID fits): 8 to 64
  characters of ``A-Z a-z 0-9 _ -``, starting with a letter or digit. A reinstalled or wiped
  agent picks a new one, so its restarted sequence numbers are never mistaken for replays.
  Every event repeats the epoch it was numbered in, and it must be the batch's.
- ``sequence`` is an integer in [0, 2**63 - 1] (it fits a PostgreSQL ``bigint``), assigned
  monotonically within an epoch and shared by both event types. (device, epoch, sequence)
  identifies an event; batches may overlap and arrive out of order, and the events inside a
  batch need not be sorted.
- Timestamps are RFC 3339 with a UTC offset (a time without one is refused).
- Optional members may be omitted or ``null``. Unknown members are refused (a misspelt member
  would otherwise be silently dropped).
- ``inference``: ``latency_ms`` and ``time_to_action_ms`` (capture to action, optional) >= 0;
  ``confidence`` (top-1) in [0, 1]; ``predicted_class`` and ``label`` at most 200 characters;
  ``feedback.thumbs`` is ``"up"`` or ``"down"`` with a ``reason`` of at most 500 characters
  (``label`` and ``feedback`` are independent and both optional); ``shape_bucket`` at most 100
  characters; ``workflow_fields`` at most 16 keys of 1 to 40 characters, each value a string of
  at most 200 characters, a number or a boolean.
- ``health``: utilisations in [0, 1], each optional (``null`` when the device has no such
  unit); ``power_w`` (optional) and ``memory_mb`` >= 0; ``temperature_c`` (optional) any
  finite number, both omitted when the device has no such sensor; ``throttled``
  a boolean; ``queue_depth``, ``buffered``, ``evicted`` (events buffered and evicted since the
  last report) integers >= 0; ``online`` is ``true``/``false`` when the device came online or
  went offline at ``timestamp``, omitted otherwise.

JSON cannot carry NaN or infinity, but some encoders write them anyway (Python's ``json``
writes ``NaN``, ``Infinity`` and ``-Infinity``). An event holding such a literal, or a number
too large for a float (``1e400``), is refused by index as ``non_finite_number`` and the rest of
the batch is kept; a body that is not JSON for any other reason is ``malformed_json``.
``encode_batch`` refuses non-finite floats before they could be written as ``null``.

Rejection codes
---------------
The whole batch is refused (``TelemetryRejected``, with the HTTP status the server answers):

==========================  ======  ==========================================================
``malformed_gzip``          400     the gzip stream is corrupt, truncated or has trailing bytes
``decompressed_too_large``  413     the body inflates beyond the limit (a gzip bomb)
``malformed_json``          400     not JSON
``invalid_batch``           400     JSON, but not a batch: ``device_epoch`` missing or invalid,
                                    ``events`` not a list, unknown members
``too_many_events``         413     more than ``max_events`` events
==========================  ======  ==========================================================

One event is refused (``EventRejection(index, code, reason)``) and the rest are kept:

=============================  =========================================================
``invalid_event``              not an event: not an object, unknown ``type``, a member
                               missing, unknown or of the wrong type, a bad ``sha256``,
                               ``thumbs`` or ``epoch``, a timestamp without an offset
``non_finite_number``          a number too large to be a finite float
``out_of_range``               a number outside its bounds: negative latency, confidence
                               or utilisation outside [0, 1], a negative count or sequence
``string_too_long``            a class, label, feedback reason, shape bucket, model name
                               or version longer than its limit
``workflow_fields_too_large``  more than 16 workflow fields, a key longer than 40 or a
                               string value longer than 200 characters
``epoch_mismatch``             the event's ``epoch`` is not the batch's
``future_timestamp``           ``timestamp`` later than ``now`` plus the clock window
``unknown_class``              ``predicted_class`` or ``label`` not among the known classes
``sequence_conflict``          a sequence already used earlier in the batch by an event
                               with different content (the earlier event is kept)
=============================  =========================================================

A sequence repeated with identical content is kept once; the later copies' indexes are listed
in ``DecodedBatch.duplicates`` (they are not refusals: the event is held).
"""

from __future__ import annotations

import gzip
import json
import math
import re
import zlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Final, Literal, NamedTuple

import msgspec

__all__ = [
    "BATCH_REJECTION_STATUS",
    "DEFAULT_CLOCK_WINDOW_S",
    "DEFAULT_MAX_EVENTS",
    "MAX_CLASS_CHARS",
    "MAX_FEEDBACK_REASON_CHARS",
    "MAX_SEQUENCE",
    "MAX_SHAPE_BUCKET_CHARS",
    "MAX_WORKFLOW_FIELDS",
    "MAX_WORKFLOW_KEY_CHARS",
    "MAX_WORKFLOW_VALUE_CHARS",
    "AcceptedEvent",
    "DecodedBatch",
    "DeviceEpoch",
    "EventRejection",
    "Feedback",
    "HealthEvent",
    "InferenceEvent",
    "ModelRef",
    "TelemetryBatch",
    "TelemetryEvent",
    "TelemetryRejected",
    "decode_batch",
    "encode_batch",
    "gunzip_limited",
]

DEFAULT_MAX_EVENTS: Final = 5000
DEFAULT_CLOCK_WINDOW_S: Final = 300
MAX_SEQUENCE: Final = 2**63 - 1
MAX_COUNT: Final = 2**63 - 1
MAX_CLASS_CHARS: Final = 200
MAX_FEEDBACK_REASON_CHARS: Final = 500
MAX_SHAPE_BUCKET_CHARS: Final = 100
MAX_MODEL_NAME_CHARS: Final = 200
MAX_MODEL_VERSION_CHARS: Final = 100
MAX_WORKFLOW_FIELDS: Final = 16
MAX_WORKFLOW_KEY_CHARS: Final = 40
MAX_WORKFLOW_VALUE_CHARS: Final = 200

# The HTTP status the server answers for each whole-batch refusal.
BATCH_REJECTION_STATUS: Final[dict[str, int]] = {
    "malformed_gzip": 400,
    "decompressed_too_large": 413,
    "malformed_json": 400,
    "invalid_batch": 400,
    "too_many_events": 413,
}

EpochId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{7,63}$")]
SequenceNumber = Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQUENCE)]
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNT)]
Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]
ClassName = Annotated[str, msgspec.Meta(max_length=MAX_CLASS_CHARS)]
WorkflowKey = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_WORKFLOW_KEY_CHARS)]
WorkflowString = Annotated[str, msgspec.Meta(max_length=MAX_WORKFLOW_VALUE_CHARS)]
WorkflowValue = WorkflowString | int | float | bool
WorkflowFields = Annotated[
    dict[WorkflowKey, WorkflowValue], msgspec.Meta(max_length=MAX_WORKFLOW_FIELDS)
]


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


class DeviceEpoch(_Strict):
    """The agent installation that numbered the batch's events, announced in every batch."""

    epoch: EpochId
    started_at: Timestamp


class ModelRef(_Strict):
    """Which model made an inference: a gateway may run several. From the model's manifest."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_MODEL_NAME_CHARS)]
    version: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_MODEL_VERSION_CHARS)]
    sha256: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]


class Feedback(_Strict):
    """An operator's verdict on one inference."""

    thumbs: Literal["up", "down"]
    reason: Annotated[str, msgspec.Meta(max_length=MAX_FEEDBACK_REASON_CHARS)] = ""


class _Event(_Strict, tag_field="type", omit_defaults=True):
    epoch: EpochId
    sequence: SequenceNumber
    timestamp: Timestamp


class InferenceEvent(_Event, tag="inference", kw_only=True):
    """One inference on the device: what the model said, how fast, and what came of it."""

    model: ModelRef
    latency_ms: NonNegative
    time_to_action_ms: NonNegative | None = None
    confidence: Fraction
    predicted_class: ClassName
    label: ClassName | None = None
    feedback: Feedback | None = None
    shape_bucket: Annotated[str, msgspec.Meta(max_length=MAX_SHAPE_BUCKET_CHARS)]
    workflow_fields: WorkflowFields = msgspec.field(default_factory=dict)


class HealthEvent(_Event, tag="health", kw_only=True):
    """A periodic snapshot of the device and of the agent's own queue."""

    cpu_utilisation: Fraction | None = None
    gpu_utilisation: Fraction | None = None
    npu_utilisation: Fraction | None = None
    power_w: NonNegative | None = None  # many gateways have no power or thermal sensor
    temperature_c: float | None = None
    throttled: bool
    memory_mb: NonNegative
    queue_depth: Count
    online: bool | None = None
    buffered: Count
    evicted: Count


TelemetryEvent = InferenceEvent | HealthEvent


class TelemetryBatch(_Strict):
    """A whole batch as the gateway builds it (``encode_batch`` writes this)."""

    device_epoch: DeviceEpoch
    events: list[TelemetryEvent]


class _Envelope(_Strict):
    # The events stay undecoded so that each is judged on its own.
    device_epoch: DeviceEpoch
    events: list[msgspec.Raw]


class TelemetryRejected(Exception):
    """The whole batch is refused; ``status`` is the HTTP status the server answers."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = BATCH_REJECTION_STATUS[code]


class AcceptedEvent(NamedTuple):
    """A valid event and its position in the batch's ``events``."""

    index: int
    event: TelemetryEvent


class EventRejection(NamedTuple):
    """A refused event: its position in ``events``, a code (module docstring) and why."""

    index: int
    code: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class DecodedBatch:
    """A decoded batch: the valid events (one per sequence), the refused ones, the repeats."""

    device_epoch: DeviceEpoch
    events: list[AcceptedEvent]
    rejected: list[EventRejection]
    duplicates: list[int] = field(default_factory=list)

    @property
    def epoch(self) -> str:
        return self.device_epoch.epoch


_envelope_decoder = msgspec.json.Decoder(_Envelope)
_batch_decoder = msgspec.json.Decoder(TelemetryBatch)
_event_decoder = msgspec.json.Decoder(TelemetryEvent)
_encoder = msgspec.json.Encoder()

_BOUND_ERROR = re.compile(r"^Expected `(int|float)` (>=|<=|>|<) ")
_LENGTH_ERROR = re.compile(r"^Expected `\w+` of length <= ")


def decode_batch(
    body: bytes,
    *,
    max_events: int = DEFAULT_MAX_EVENTS,
    now: datetime,
    clock_window_s: float = DEFAULT_CLOCK_WINDOW_S,
    known_classes: Collection[str] | None = None,
) -> DecodedBatch:
    """Decode a batch (already gunzipped) and judge each event on its own.

    Raises ``TelemetryRejected`` when the envelope itself is unusable; otherwise every event
    is either accepted, refused by index with a code, or listed as an identical duplicate.
    ``known_classes``, when given, is every class the device's models can predict.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    # The common case, a batch whose every event is well-formed, is decoded in one typed pass;
    # anything else falls back to judging each event on its own (the same verdicts, slower).
    try:
        whole = _batch_decoder.decode(body)
    except msgspec.DecodeError:  # ValidationError included
        whole = None
    if whole is not None:
        device_epoch, count = whole.device_epoch, len(whole.events)
        decoded_events: Iterable[tuple[int, TelemetryEvent | str]] = enumerate(whole.events)
    else:
        non_finite: set[int] = set()
        try:
            envelope = _envelope_decoder.decode(body)
        except msgspec.ValidationError as exc:
            raise TelemetryRejected("invalid_batch", f"not a telemetry batch: {exc}") from None
        except msgspec.DecodeError as exc:
            envelope, non_finite = _without_non_finite_literals(body, exc)
        device_epoch, count = envelope.device_epoch, len(envelope.events)
        decoded_events = _decode_each(envelope.events, non_finite)
    if count > max_events:
        raise TelemetryRejected(
            "too_many_events",
            f"{count} events in one batch, the limit is {max_events}",
        )

    epoch = device_epoch.epoch
    latest = now + timedelta(seconds=clock_window_s)
    classes = known_classes
    if classes is not None and not isinstance(classes, (set, frozenset)):
        classes = frozenset(classes)

    accepted: list[AcceptedEvent] = []
    rejected: list[EventRejection] = []
    duplicates: list[int] = []
    by_sequence: dict[int, TelemetryEvent] = {}
    for index, event in decoded_events:
        if isinstance(event, str):  # the validation message of an event that did not decode
            rejected.append(EventRejection(index, _classify(event), event))
            continue
        refusal = _judge(event, epoch=epoch, latest=latest, known_classes=classes)
        if refusal is not None:
            rejected.append(EventRejection(index, *refusal))
            continue
        earlier = by_sequence.get(event.sequence)
        if earlier is None:
            by_sequence[event.sequence] = event
            accepted.append(AcceptedEvent(index, event))
        elif earlier == event:
            duplicates.append(index)
        else:
            rejected.append(
                EventRejection(
                    index,
                    "sequence_conflict",
                    f"sequence {event.sequence} is used earlier in the batch by a different event",
                )
            )
    return DecodedBatch(
        device_epoch=device_epoch,
        events=accepted,
        rejected=rejected,
        duplicates=duplicates,
    )


_NON_FINITE_MESSAGE = "Number out of range: NaN or Infinity is not a JSON number"


def _decode_each(
    raws: list[msgspec.Raw], non_finite: Collection[int] = ()
) -> Iterable[tuple[int, TelemetryEvent | str]]:
    for index, raw in enumerate(raws):
        if index in non_finite:
            yield index, _NON_FINITE_MESSAGE
            continue
        try:
            yield index, _event_decoder.decode(raw)
        except msgspec.ValidationError as exc:
            yield index, str(exc)


def _without_non_finite_literals(body: bytes, error: msgspec.DecodeError):
    """The envelope of a body that is JSON but for NaN/Infinity literals inside some events,
    and the indexes of those events (refused one by one); anything else is ``malformed_json``.
    """
    malformed = TelemetryRejected("malformed_json", str(error))
    found: list[bool] = []

    def constant(name: str) -> float:
        found.append(True)
        return math.nan

    try:
        loose = json.loads(body, parse_constant=constant)
    except (ValueError, RecursionError):
        raise malformed from None
    if not found or not isinstance(loose, dict) or not isinstance(loose.get("events"), list):
        raise malformed from None
    events = loose["events"]
    non_finite = {i for i, event in enumerate(events) if _holds_non_finite(event)}
    if not non_finite or _holds_non_finite({k: v for k, v in loose.items() if k != "events"}):
        raise malformed from None
    for index in non_finite:
        events[index] = None  # a placeholder: the event is refused as non_finite_number
    try:
        envelope = _envelope_decoder.decode(_encoder.encode(loose))
    except msgspec.ValidationError as exc:
        raise TelemetryRejected("invalid_batch", f"not a telemetry batch: {exc}") from None
    except msgspec.DecodeError:  # pragma: no cover - re-encoded JSON always parses
        raise malformed from None
    return envelope, non_finite


def _holds_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_holds_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_non_finite(v) for v in value)
    return False


def _classify(message: str) -> str:
    # msgspec's messages are the only structured account of what failed; the tests pin each.
    if message.startswith("Number out of range"):
        return "non_finite_number"
    if "$.workflow_fields" in message:
        return "workflow_fields_too_large" if _LENGTH_ERROR.match(message) else "invalid_event"
    if _BOUND_ERROR.match(message):
        return "out_of_range"
    if _LENGTH_ERROR.match(message) and message.startswith("Expected `str`"):
        return "string_too_long"
    return "invalid_event"


def _judge(
    event: TelemetryEvent,
    *,
    epoch: str,
    latest: datetime,
    known_classes: Collection[str] | None,
) -> tuple[str, str] | None:
    if event.epoch != epoch:
        return "epoch_mismatch", f"event epoch {event.epoch!r} is not the batch's {epoch!r}"
    if event.timestamp > latest:
        return (
            "future_timestamp",
            f"timestamp {event.timestamp.isoformat()} is beyond the clock window "
            f"(latest accepted {latest.isoformat()})",
        )
    if known_classes is not None and isinstance(event, InferenceEvent):
        if event.predicted_class not in known_classes:
            return "unknown_class", f"predicted_class {event.predicted_class!r} is not known"
        if event.label is not None and event.label not in known_classes:
            return "unknown_class", f"label {event.label!r} is not known"
    return None


def encode_batch(
    *,
    device_epoch: DeviceEpoch,
    events: Sequence[TelemetryEvent],
    compress: bool = False,
) -> bytes:
    """The wire bytes of a batch (gzip-compressed when ``compress``), for gateways and tests.

    Refuses a non-finite float with ValueError: JSON would carry it as ``null``.
    """
    for position, event in enumerate(events):
        name = _non_finite_member(event)
        if name is not None:
            raise ValueError(f"event {position} (sequence {event.sequence}): {name} is not finite")
    body = _encoder.encode(TelemetryBatch(device_epoch=device_epoch, events=list(events)))
    return gzip.compress(body, mtime=0) if compress else body


def _non_finite_member(event: TelemetryEvent) -> str | None:
    for name in event.__struct_fields__:
        value: Any = getattr(event, name)
        if isinstance(value, float) and not math.isfinite(value):
            return name
    if isinstance(event, InferenceEvent):
        for key, value in event.workflow_fields.items():
            if isinstance(value, float) and not math.isfinite(value):
                return f"workflow_fields[{key!r}]"
    return None


def gunzip_limited(body: bytes, max_bytes: int) -> bytes:
    """Inflate a gzip body, refusing it as soon as the output would pass ``max_bytes``.

    Inflates in bounded steps, so a bomb costs at most ``max_bytes`` of memory. Concatenated
    gzip members are joined (RFC 1952 allows them); anything else after the last is refused.
    """
    out = bytearray()
    pending = body
    while True:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        while not inflater.eof:
            try:
                chunk = inflater.decompress(pending, max_bytes - len(out) + 1)
            except zlib.error as exc:
                raise TelemetryRejected("malformed_gzip", f"not a valid gzip body: {exc}") from None
            out += chunk
            if len(out) > max_bytes:
                raise TelemetryRejected(
                    "decompressed_too_large",
                    f"the body inflates to more than {max_bytes} bytes",
                )
            pending = inflater.unconsumed_tail
            if not pending and not chunk and not inflater.eof:
                raise TelemetryRejected("malformed_gzip", "the gzip body is truncated")
        pending = inflater.unused_data
        if not pending:
            return bytes(out)
