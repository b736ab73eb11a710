"""Evidence samples on the gateway: which cases to send, an encrypted queue, the uploader.

The site policy (the desired state's ``policy``) decides what may leave the site besides the
structured events (protocol.evidence is the wire contract):

- `EvidenceSampler` draws per inference: a ``low_confidence`` sample when the confidence is
  under ``review_threshold`` and a draw falls under ``evidence_sampling_rate``; otherwise an
  ``audit`` sample when a second draw falls under ``evidence_audit_rate`` (a share of *all*
  cases, so that confident ones are checked too). Never more than ``evidence_daily_cap`` a UTC
  day (counted in the queue's file, so a restart does not reset it); never anything at cap 0.
- `build_sample` turns the case into the bytes that go: a PNG when the input looks like a
  grayscale image and ``image_evidence`` allows images, else one JSON object (the inputs as
  given, or a summary of them when they would not fit in ``MAX_JSON_BYTES``). No device
  identifier is in either; the request names the event by (epoch, sequence) only.
- `EvidenceQueue` keeps samples until the server has them: a bounded SQLite file (WAL) in the
  state directory, every body encrypted with AES-256-GCM under a key kept in a 0600 file
  beside it. The associated data binds a body to its row's (epoch, sequence, reason, media
  type), so a body moved to another row, or altered, does not decrypt; it is dropped and
  counted, never sent.
- `EvidenceUploader` posts the oldest sample (signed, the query string included) and settles
  it by the answer: stored (200/201) or refused for good (deleted and counted by code), held
  until the cap resets (429 ``evidence_cap``), or kept and retried with backoff.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import sqlite3
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from protocol.evidence import (
    AUDIT,
    EVIDENCE_PATH,
    IMAGE_PNG,
    JSON,
    LOW_CONFIDENCE,
    MAX_IMAGE_BYTES,
    MAX_JSON_BYTES,
    EvidenceRef,
    EvidenceRefused,
    check_json_sample,
    evidence_query,
)

from .transport import NETWORK_ERRORS, SignedTransport

__all__ = [
    "EVIDENCE_FILE",
    "KEY_FILE",
    "EvidenceCounts",
    "EvidencePolicy",
    "EvidenceQueue",
    "EvidenceSample",
    "EvidenceSampler",
    "EvidenceUploader",
    "QueuedSample",
    "build_sample",
    "encode_png",
    "grayscale_image",
    "read_status",
    "utc_day",
]

EVIDENCE_FILE = "evidence.sqlite3"
KEY_FILE = "evidence.key"
_AAD_PREFIX = b"opshero-evidence/1"
_NONCE_BYTES = 12
# A flat input vector is taken for a square image from this side up (8x8: the digits model).
MIN_IMAGE_SIDE = 8
MAX_IMAGE_SIDE = 1024
# Small images are upscaled by whole pixels so that a reviewer can see them (8x8 -> 64x64).
MAX_UPSCALE = 8
UPSCALE_TARGET = 256
# More numbers than this cannot fit in a JSON sample whatever they are: summarised at once.
_MAX_JSON_SCALARS = MAX_JSON_BYTES // 2
_MAX_SUMMARISED_TENSORS = 16
# Refusals that blame the sample itself (protocol.evidence's table): the sample is deleted.
_SAMPLE_REFUSALS = frozenset(
    {
        (400, "invalid_reference"),
        (403, "evidence_disabled"),
        (403, "image_evidence_disabled"),
        (404, "event_not_found"),
        (409, "evidence_conflict"),
    }
)
# These statuses say the body is wrong whatever code comes with them (a proxy's 413 has none).
_BODY_STATUSES = frozenset({413, 415, 422})
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_MAX_HOLD_S = 25 * 3600.0
log = logging.getLogger("opshero.gateway.evidence")


def utc_day(when: float) -> str:
    """The UTC calendar day of a clock reading, ``YYYY-MM-DD`` (the cap's day)."""
    return datetime.fromtimestamp(when, UTC).date().isoformat()


def _next_utc_midnight(when: float) -> float:
    day = datetime.fromtimestamp(when, UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


# --- the policy and the sampler -----------------------------------------------------------------


def _rate(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return min(1.0, max(0.0, number)) if math.isfinite(number) else 0.0


@dataclass(frozen=True)
class EvidencePolicy:
    """The evidence keys of a site policy; anything missing or malformed sends nothing."""

    review_threshold: float = 0.0
    sampling_rate: float = 0.0
    audit_rate: float = 0.0
    daily_cap: int = 0
    image_evidence: bool = False
    site_kind: str = ""

    @classmethod
    def from_policy(cls, policy: Mapping[str, Any]) -> EvidencePolicy:
        try:
            cap = int(policy.get("evidence_daily_cap") or 0)
        except (TypeError, ValueError):
            cap = 0
        return cls(
            review_threshold=_rate(policy.get("review_threshold")),
            sampling_rate=_rate(policy.get("evidence_sampling_rate")),
            audit_rate=_rate(policy.get("evidence_audit_rate")),
            daily_cap=max(0, cap),
            image_evidence=policy.get("image_evidence") is True,
            site_kind=str(policy.get("site_kind") or ""),
        )


class EvidenceSampler:
    """Decides per inference whether a sample goes, and why (``low_confidence``, ``audit``).

    Both draws are made for every case, so a seeded ``rng`` gives the same decisions for the
    same cases whatever the policy. The cap is read here and enforced again by
    `EvidenceQueue.enqueue` (in the transaction that stores the sample)."""

    def __init__(
        self,
        queue: EvidenceQueue,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.queue = queue
        self.rng = rng or random.Random()  # noqa: S311 - sampling, not security
        self.capped = 0  # cases chosen but not sent: the day's cap was reached

    def decide(self, *, confidence: float, policy: EvidencePolicy) -> str | None:
        low_draw, audit_draw = self.rng.random(), self.rng.random()
        reason = None
        if confidence < policy.review_threshold and low_draw < policy.sampling_rate:
            reason = LOW_CONFIDENCE
        elif audit_draw < policy.audit_rate:
            reason = AUDIT
        if reason is None:
            return None
        if policy.daily_cap <= 0 or self.queue.today_count() >= policy.daily_cap:
            self.capped += 1
            return None
        return reason


# --- the sample's bytes -------------------------------------------------------------------------


@dataclass(frozen=True)
class EvidenceSample:
    media_type: str
    body: bytes


def _plain(value: Any) -> Any:
    """The value as JSON-able Python (numpy arrays and scalars included), or ValueError."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    raise ValueError(f"{type(value).__name__} is not JSON")


def _flat(value: Any, out: list[Any]) -> None:
    if isinstance(value, list):
        for item in value:
            _flat(item, out)
    else:
        out.append(value)


def _shape(value: Any) -> list[int] | None:
    """The shape of a rectangular nested list (``[]`` for a scalar), else None."""
    if not isinstance(value, list):
        return []
    if not value:
        return [0]
    inner = [_shape(item) for item in value]
    if any(s is None or s != inner[0] for s in inner):
        return None
    return [len(value), *inner[0]]


def _count_scalars(value: Any) -> int:
    if isinstance(value, list):
        return sum(_count_scalars(v) for v in value)
    if isinstance(value, dict):
        return sum(_count_scalars(v) for v in value.values())
    return 1


def _numbers(values: list[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]


def _summary(inputs: Any) -> dict[str, Any]:
    tensors = inputs if isinstance(inputs, dict) else {"input": inputs}
    summary: dict[str, Any] = {}
    for name in list(tensors)[:_MAX_SUMMARISED_TENSORS]:
        value = tensors[name]
        flat: list[Any] = []
        _flat(value, flat)
        numbers = _numbers(flat)
        summary[name[:100]] = {
            "shape": _shape(value),
            "count": len(flat),
            **(
                {
                    "min": min(numbers),
                    "max": max(numbers),
                    "mean": round(sum(numbers) / len(numbers), 6),
                }
                if numbers
                else {}
            ),
        }
    if len(tensors) > _MAX_SUMMARISED_TENSORS:
        summary["..."] = {"more_tensors": len(tensors) - _MAX_SUMMARISED_TENSORS}
    return summary


def _json_body(payload: dict[str, Any]) -> bytes | None:
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    if len(body) > MAX_JSON_BYTES:
        return None
    try:
        check_json_sample(body)  # the server's own check: one object, not nested too deep
    except EvidenceRefused:
        return None
    return body


def json_sample(
    *,
    inputs: Any,
    predicted_class: str,
    confidence: float,
    model_name: str,
    model_version: str,
    timestamp: datetime,
) -> bytes:
    """The JSON sample: the inputs as given (``inputs_summary`` instead when they do not
    fit), the prediction, the model and when. Always within the server's JSON limits."""
    case = {
        "predicted_class": predicted_class,
        "confidence": confidence,
        "model": {"name": model_name, "version": model_version},
        "timestamp": timestamp.astimezone(UTC).isoformat(),
    }
    try:
        plain = _plain(inputs)
    except (ValueError, RecursionError):
        plain, convertible = None, False
    else:
        convertible = True
    if convertible and _count_scalars(plain) <= _MAX_JSON_SCALARS:
        body = _json_body({"inputs": plain, **case})
        if body is not None:
            return body
    summary = _summary(plain) if convertible else {"input": {"type": type(inputs).__name__}}
    body = _json_body({"inputs_summary": summary, **case})
    if body is None:  # pathological names or shapes: the case without its inputs
        body = _json_body({"inputs_summary": {}, **case})
    assert body is not None
    return body


def grayscale_image(inputs: Any) -> list[list[int]] | None:
    """The input as 8-bit grayscale rows when it looks like one image, else None.

    Looks like an image: one tensor whose shape, without its axes of length 1, is H x W
    (both at least 8) or a flat vector of a square length (8x8 and up; the digits model's
    ``[1, 64]``), of numbers from 0. Values scale to 0..255 by their range: up to 1 (x255),
    up to 16 (4-bit, as the digits data; x255/16), up to 255 (as they are); above, no image.
    """
    if isinstance(inputs, Mapping):
        if len(inputs) != 1:
            return None
        inputs = next(iter(inputs.values()))
    try:
        value = _plain(inputs)
    except (ValueError, RecursionError):
        return None
    shape = _shape(value)
    if not shape:
        return None
    flat: list[Any] = []
    _flat(value, flat)
    if not flat or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in flat):
        return None
    dims = [d for d in shape if d != 1]
    if len(dims) == 1:
        side = math.isqrt(dims[0])
        if side * side != dims[0]:
            return None
        dims = [side, side]
    if len(dims) != 2:
        return None
    height, width = dims
    if not all(MIN_IMAGE_SIDE <= side <= MAX_IMAGE_SIDE for side in (height, width)):
        return None
    low, high = min(flat), max(flat)
    if low < 0 or high > 255:
        return None
    scale = 255.0 if high <= 1 else 255.0 / 16.0 if high <= 16 else 1.0
    pixels = [min(255, max(0, round(v * scale))) for v in flat]
    return [pixels[row * width : (row + 1) * width] for row in range(height)]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(rows: Sequence[Sequence[int]], *, scale: int = 1) -> bytes:
    """An 8-bit grayscale PNG of ``rows`` (values 0..255), each pixel ``scale`` x ``scale``.

    Deterministic: the same pixels give the same bytes (no time or text chunks)."""
    if not rows or not rows[0] or any(len(r) != len(rows[0]) for r in rows):
        raise ValueError("a PNG needs rows of one non-zero width")
    if scale < 1:
        raise ValueError("scale must be at least 1")
    width, height = len(rows[0]) * scale, len(rows) * scale
    lines = []
    for row in rows:
        line = b"\x00" + bytes(v for v in row for _ in range(scale))  # filter type 0: none
        lines.extend([line] * scale)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(lines), 9))
        + _chunk(b"IEND", b"")
    )


def build_sample(
    *,
    inputs: Any,
    predicted_class: str,
    confidence: float,
    model_name: str,
    model_version: str,
    timestamp: datetime,
    image_allowed: bool,
) -> EvidenceSample:
    """A PNG when images may leave and the input looks like one, else the JSON sample."""
    if image_allowed:
        rows = grayscale_image(inputs)
        if rows is not None:
            scale = max(1, min(MAX_UPSCALE, UPSCALE_TARGET // max(len(rows), len(rows[0]))))
            png = encode_png(rows, scale=scale)
            if len(png) <= MAX_IMAGE_BYTES:
                return EvidenceSample(IMAGE_PNG, png)
    body = json_sample(
        inputs=inputs,
        predicted_class=predicted_class,
        confidence=confidence,
        model_name=model_name,
        model_version=model_version,
        timestamp=timestamp,
    )
    return EvidenceSample(JSON, body)


# --- the encrypted queue ------------------------------------------------------------------------


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    epoch TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    reason TEXT NOT NULL,
    media_type TEXT NOT NULL,
    queued_at REAL NOT NULL,
    size INTEGER NOT NULL,
    sealed BLOB NOT NULL,
    UNIQUE (epoch, sequence)
);
"""
_REFUSED_PREFIX = "refused:"


def _load_or_create_key(path: Path) -> bytes:
    """The queue's AES-256 key: created once (mode 0600, never rewritten); a key file that is
    not 32 bytes is set aside (what it sealed can no longer be read, and is dropped)."""
    for _ in range(3):
        try:
            key = path.read_bytes()
        except FileNotFoundError:
            key = None
        if key is not None:
            if len(key) == 32:
                if path.stat().st_mode & 0o077:
                    os.chmod(path, 0o600)
                return key
            aside = path.with_name(f"{path.name}.bad-{int(time.time())}")
            os.replace(path, aside)
            log.error(
                "evidence key unreadable; a new one is made and queued samples are dropped",
                extra={"fields": {"set_aside": str(aside)}},
            )
        fresh = AESGCM.generate_key(bit_length=256)
        try:
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue  # another process made it a moment ago: read that one
        try:
            os.write(handle, fresh)
            os.fsync(handle)
        finally:
            os.close(handle)
        return fresh
    raise OSError(f"cannot create the evidence key {path}")


def _aad(epoch: str, sequence: int, reason: str, media_type: str) -> bytes:
    return b"\n".join(
        [_AAD_PREFIX, epoch.encode(), str(sequence).encode(), reason.encode(), media_type.encode()]
    )


@dataclass(frozen=True)
class QueuedSample:
    id: int
    ref: EvidenceRef
    media_type: str
    body: bytes  # decrypted


@dataclass(frozen=True)
class EvidenceCounts:
    queued: int
    bytes: int
    enqueued: int
    sent: int
    refused: dict[str, int]
    dropped: int
    unreadable: int
    today: int
    day: str


class EvidenceQueue:
    """A bounded, durable FIFO of encrypted evidence samples; safe to share between threads.

    ``max_samples`` and ``max_bytes`` bound it; a new sample evicts the oldest ones to fit
    (counted as ``dropped``). The count per UTC day (the policy's cap) lives in the file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        key_path: str | os.PathLike[str] | None = None,
        max_samples: int = 1000,
        max_bytes: int = 64 * 1024 * 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_samples < 1 or max_bytes < 1:
            raise ValueError("max_samples and max_bytes must be positive")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.key_path = Path(key_path) if key_path else self.path.with_name(KEY_FILE)
        self._aead = AESGCM(_load_or_create_key(self.key_path))
        self.max_samples = max_samples
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)

    # --- plumbing

    @contextlib.contextmanager
    def _tx(self):
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _get(self, key: str, default: str = "0") -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else row[0]

    def _set(self, key: str, value: str | int) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, str(value)),
        )

    def _add(self, key: str, amount: int) -> None:
        if amount:
            self._set(key, int(self._get(key)) + amount)

    def _today(self) -> tuple[str, int]:
        day = utc_day(self._clock())
        return day, int(self._get("day_count")) if self._get("day", "") == day else 0

    # --- writing

    def enqueue(self, ref: EvidenceRef, *, media_type: str, body: bytes, daily_cap: int) -> bool:
        """Seal and store a sample for its event, counted in today's cap; False (nothing
        stored) when the cap is reached, the event has a sample already, or it cannot fit."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(
            nonce, body, _aad(ref.epoch, ref.sequence, ref.reason, media_type)
        )
        with self._tx():
            day, count = self._today()
            if daily_cap <= 0 or count >= daily_cap:
                return False
            if len(sealed) > self.max_bytes:
                self._add("dropped", 1)
                return False
            exists = self._db.execute(
                "SELECT 1 FROM samples WHERE epoch = ? AND sequence = ?", (ref.epoch, ref.sequence)
            ).fetchone()
            if exists:
                return False
            self._make_room(len(sealed))
            self._db.execute(
                "INSERT INTO samples (epoch, sequence, reason, media_type, queued_at, size, sealed)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    ref.epoch,
                    ref.sequence,
                    ref.reason,
                    media_type,
                    self._clock(),
                    len(sealed),
                    sealed,
                ),
            )
            self._set("day", day)
            self._set("day_count", count + 1)
            self._add("enqueued", 1)
        return True

    def _make_room(self, size: int) -> None:
        depth, used = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM samples"
        ).fetchone()
        over_count = depth + 1 - self.max_samples
        over_bytes = used + size - self.max_bytes
        if over_count <= 0 and over_bytes <= 0:
            return
        victims, freed = [], 0
        for sample_id, victim_size in self._db.execute("SELECT id, size FROM samples ORDER BY id"):
            if len(victims) >= over_count and freed >= over_bytes:
                break
            victims.append(sample_id)
            freed += victim_size
        self._db.executemany("DELETE FROM samples WHERE id = ?", [(v,) for v in victims])
        self._add("dropped", len(victims))
        log.warning(
            "evidence queue full; oldest samples dropped",
            extra={"fields": {"dropped": len(victims)}},
        )

    # --- reading and settling

    def head(self) -> EvidenceRef | None:
        """The oldest sample's reference, without decrypting it (None when empty)."""
        with self._lock:
            row = self._db.execute(
                "SELECT epoch, sequence, reason FROM samples ORDER BY id LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        return EvidenceRef(epoch=str(row[0]), sequence=int(row[1]), reason=str(row[2]))

    def peek(self) -> QueuedSample | None:
        """The oldest sample, decrypted. A row that does not decrypt (altered, or sealed with
        a lost key) is deleted and counted as ``unreadable``, and the next one is tried."""
        while True:
            with self._lock:
                row = self._db.execute(
                    "SELECT id, epoch, sequence, reason, media_type, sealed FROM samples"
                    " ORDER BY id LIMIT 1"
                ).fetchone()
            if row is None:
                return None
            sample_id, epoch, sequence, reason, media_type, sealed = row
            try:
                body = self._aead.decrypt(
                    bytes(sealed[:_NONCE_BYTES]),
                    bytes(sealed[_NONCE_BYTES:]),
                    _aad(str(epoch), int(sequence), str(reason), str(media_type)),
                )
            except (InvalidTag, ValueError, TypeError):
                with self._tx():
                    self._db.execute("DELETE FROM samples WHERE id = ?", (sample_id,))
                    self._add("unreadable", 1)
                log.error(
                    "evidence sample does not decrypt (altered on disk?); dropped",
                    extra={"fields": {"epoch": epoch, "sequence": sequence}},
                )
                continue
            return QueuedSample(
                id=int(sample_id),
                ref=EvidenceRef(epoch=str(epoch), sequence=int(sequence), reason=str(reason)),
                media_type=str(media_type),
                body=body,
            )

    def settle(self, sample_id: int, *, refused_code: str | None = None) -> None:
        """Delete a sample the server stored, or refused for good (counted by its code)."""
        with self._tx():
            gone = self._db.execute("DELETE FROM samples WHERE id = ?", (sample_id,)).rowcount
            if gone:
                if refused_code is None:
                    self._add("sent", 1)
                else:
                    self._add(_REFUSED_PREFIX + (refused_code or "unknown"), 1)

    def drop_before(self, moment: float) -> int:
        """Drop the samples queued before ``moment`` (counted as ``dropped``): when the server's
        daily cap is used up, a backlog from earlier days would otherwise hold back every fresh
        case for days (the server takes a cap's worth a day, the site makes as many)."""
        with self._tx():
            gone = self._db.execute("DELETE FROM samples WHERE queued_at < ?", (moment,)).rowcount
            if gone:
                self._add("dropped", gone)
        return gone

    def today_count(self) -> int:
        with self._lock:
            return self._today()[1]

    def counts(self) -> EvidenceCounts:
        with self._lock:
            return _counts(self._db, self._clock())

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _counts(db: sqlite3.Connection, now: float) -> EvidenceCounts:
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    queued, used = db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM samples").fetchone()
    day = utc_day(now)
    return EvidenceCounts(
        queued=int(queued),
        bytes=int(used),
        enqueued=int(meta.get("enqueued", 0)),
        sent=int(meta.get("sent", 0)),
        refused={
            k.removeprefix(_REFUSED_PREFIX): int(v)
            for k, v in sorted(meta.items())
            if k.startswith(_REFUSED_PREFIX)
        },
        dropped=int(meta.get("dropped", 0)),
        unreadable=int(meta.get("unreadable", 0)),
        today=int(meta.get("day_count", 0)) if meta.get("day") == day else 0,
        day=day,
    )


def status_block(counts: EvidenceCounts, *, daily_cap: int) -> dict[str, Any]:
    """The ``evidence`` block of the agent's status."""
    return {
        "queued": counts.queued,
        "bytes": counts.bytes,
        "enqueued": counts.enqueued,
        "sent": counts.sent,
        "refused": dict(counts.refused),
        "dropped": counts.dropped,
        "unreadable": counts.unreadable,
        "today": counts.today,
        "daily_cap": daily_cap,
    }


def read_status(state_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The evidence block from a state directory, read-only (``opshero-gateway status``
    while the daemon runs): the queue file's counts and the cached policy's cap."""
    state = Path(state_dir)
    cap = 0
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        policy = json.loads((state / "desired.json").read_text()).get("policy") or {}
        cap = EvidencePolicy.from_policy(policy).daily_cap
    path = state / EVIDENCE_FILE
    if not path.exists():
        empty = EvidenceCounts(0, 0, 0, 0, {}, 0, 0, 0, utc_day(time.time()))
        return status_block(empty, daily_cap=cap)
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return status_block(_counts(db, time.time()), daily_cap=cap)
    except sqlite3.Error as exc:
        return {"error": f"cannot read {path}: {exc}"}
    finally:
        db.close()


# --- the uploader -------------------------------------------------------------------------------


@dataclass
class UploaderCounts:
    requests: int = 0
    network_errors: int = 0
    http_errors: int = 0
    last_error: str = ""
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=1000))


def _seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return max(0.0, number) if math.isfinite(number) else None


class EvidenceUploader:
    """Posts queued samples oldest first; call `drain_once` in a loop (one sample a call).

    ``ready(ref)`` may hold a sample back (the agent holds it until its event's telemetry
    batch was accepted, so the server can link it at once); None sends at once."""

    def __init__(
        self,
        queue: EvidenceQueue,
        transport: SignedTransport,
        *,
        ready: Callable[[EvidenceRef], bool] | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        backoff_s: float = 2.0,
        max_backoff_s: float = 300.0,
    ) -> None:
        self.queue = queue
        self.transport = transport
        self.ready = ready
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.counts = UploaderCounts()
        self.held_until: float | None = None  # the server's daily cap is used up until then
        self._failures = 0
        self._not_before = 0.0
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter

    def wait_s(self) -> float:
        """Seconds until the next attempt is allowed (0: now)."""
        return max(0.0, self._not_before - self._clock())

    def drain(self, *, max_samples: int | None = None) -> int:
        """Post until the queue is empty, a sample is not ready, an attempt fails or is held,
        or ``max_samples`` posts; returns the samples settled (stored or refused)."""
        settled = 0
        while max_samples is None or settled < max_samples:
            if self.drain_once() not in ("sent", "refused"):
                break
            settled += 1
        return settled

    def drain_once(self) -> str:
        """One attempt: "sent", "refused" (deleted: the server blames the sample), "empty",
        "holding" (the oldest sample's event is not accepted yet), "capped" (the server's
        daily cap: held until it resets), "waiting" (backing off) or "failed"."""
        now = self._clock()
        if self.held_until is not None:
            if now < self.held_until:
                return "capped"
            self.held_until = None
        if now < self._not_before:
            return "waiting"
        head = self.queue.head()
        if head is None:
            return "empty"
        if self.ready is not None and not self.ready(head):
            return "holding"
        sample = self.queue.peek()  # the head, or the next one if the head does not decrypt
        if sample is None:
            return "empty"
        if self.ready is not None and not self.ready(sample.ref):
            return "holding"
        self.counts.requests += 1
        began = self._clock()
        try:
            answer = self.transport.call(
                "POST",
                f"{EVIDENCE_PATH}?{evidence_query(sample.ref)}",
                body=sample.body,
                headers={"Content-Type": sample.media_type},
            )
        except NETWORK_ERRORS as exc:
            self.counts.network_errors += 1
            self._fail(f"server unreachable: {exc.__class__.__name__}: {exc}")
            return "failed"
        self.counts.latencies_ms.append((self._clock() - began) * 1000.0)
        if answer.status in (200, 201):
            self.queue.settle(sample.id)
            self._succeed()
            return "sent"
        self.counts.http_errors += 1
        code = answer.error_code()
        if (answer.status, code) in _SAMPLE_REFUSALS or answer.status in _BODY_STATUSES:
            self.queue.settle(sample.id, refused_code=code or str(answer.status))
            log.warning(
                "evidence sample refused by the server; dropped",
                extra={
                    "fields": {
                        "epoch": sample.ref.epoch,
                        "sequence": sample.ref.sequence,
                        "status": answer.status,
                        "code": code,
                        "why": answer.error_message()[:200],
                    }
                },
            )
            self._succeed()
            return "refused"
        retry_after = _seconds(answer.headers.get("retry-after"))
        if answer.status == 429 and code == "evidence_cap":
            # Today's cap is spent: what was queued on earlier days goes, so tomorrow's quota
            # serves tomorrow's cases rather than a backlog that never shrinks.
            day_start = _next_utc_midnight(now) - 86_400
            stale = self.queue.drop_before(day_start)
            if stale:
                log.warning(
                    "evidence from earlier days dropped after the server's cap",
                    extra={"fields": {"stale": stale}},
                )
            until = now + retry_after if retry_after is not None else _next_utc_midnight(now)
            self.held_until = min(until, now + _MAX_HOLD_S)
            self.counts.last_error = "429 evidence_cap: the day's samples are used up"
            until_text = datetime.fromtimestamp(self.held_until, UTC).isoformat()
            log.info(
                "evidence daily cap reached on the server; samples held",
                extra={"fields": {"until": until_text}},
            )
            return "capped"
        if answer.status in _RETRY_STATUSES:
            self._fail(f"{answer.status} {code or 'error'}", retry_after=retry_after)
        else:
            # 401, an unknown 4xx, a proxy's 404: nothing says the sample is bad; keep it.
            self._fail(f"{answer.status} {code or 'error'}: {answer.error_message()}", floor=60.0)
        return "failed"

    def _succeed(self) -> None:
        self._failures = 0
        self._not_before = 0.0
        self.counts.last_error = ""

    def _fail(self, why: str, *, retry_after: float | None = None, floor: float = 0.0) -> None:
        self._failures += 1
        self.counts.last_error = why
        cap = min(self.max_backoff_s, self.backoff_s * 2 ** min(self._failures - 1, 30))
        delay = max(self._rng.uniform(cap / 2, cap), floor, min(retry_after or 0.0, 3600.0))
        self._not_before = self._clock() + delay

    def status(self) -> dict[str, Any]:
        held = self.held_until
        return {
            "held_until": datetime.fromtimestamp(held, UTC).isoformat() if held else None,
            "retry_in_s": round(self.wait_s(), 1),
            "last_error": self.counts.last_error,
        }
