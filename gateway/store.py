"""The agent's store-and-forward queue: telemetry events in a local SQLite file (WAL).

Every event is numbered in the queue's epoch (one per queue file: an agent installation) and
written, with its number, in one transaction: a crash, a reboot or a power cut leaves every
event either queued with its number or never numbered, and the next number is never reused.
The sender reads the oldest events, posts them, and deletes only what the server answered as
stored (``held``) or refused for good; so after any interruption it resumes exactly where it
stopped, and the server's (device, epoch, sequence) key makes a resent event count once.

Bounds (the anchors: AWS Greengrass stream manager's size limit, TTL and overflow strategy;
Azure IoT Edge hub's store-and-forward time to live):

- ``max_events`` and ``max_bytes``: when full, ``overflow="drop_oldest"`` evicts the oldest
  events to make room (the default: fresh data matters more at a site that comes back);
  ``"drop_newest"`` refuses the new event instead.
- ``ttl_s``: events older than this are evicted before each read.

Nothing is lost silently: every eviction is counted, and the next health event carries the
counts (``evicted``, and ``buffered``: events queued while the link was down) since the
previous one. A health event that is itself evicted hands its counts on to the next.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import msgspec

from protocol.telemetry import DeviceEpoch, HealthEvent, InferenceEvent, TelemetryEvent

__all__ = ["EventQueue", "QueueCounts", "QueuedBatch"]

Overflow = Literal["drop_oldest", "drop_newest"]
OVERFLOWS: tuple[str, ...] = ("drop_oldest", "drop_newest")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    queued_at REAL NOT NULL,
    size INTEGER NOT NULL,
    handed_buffered INTEGER NOT NULL DEFAULT 0,
    handed_evicted INTEGER NOT NULL DEFAULT 0,
    body BLOB NOT NULL
);
"""
_COUNTERS = (
    "next_seq",
    "depth",
    "enqueued",
    "sent",
    "refused",
    "evicted_overflow",
    "evicted_ttl",
    "unreported_buffered",
    "unreported_evicted",
    "bytes",
)
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(InferenceEvent | HealthEvent)


@dataclass(frozen=True)
class QueuedBatch:
    """The oldest queued events, ready to post: their numbers and the batch body."""

    device_epoch: DeviceEpoch
    sequences: tuple[int, ...]
    body: bytes  # the JSON batch (not compressed)

    def __len__(self) -> int:
        return len(self.sequences)


@dataclass(frozen=True)
class QueueCounts:
    depth: int
    bytes: int
    enqueued: int
    sent: int
    refused: int
    evicted_overflow: int
    evicted_ttl: int

    @property
    def evicted(self) -> int:
        return self.evicted_overflow + self.evicted_ttl


class EventQueue:
    """A bounded, durable FIFO of telemetry events; safe to share between threads."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_events: int = 1_000_000,
        max_bytes: int = 512 * 1024 * 1024,
        ttl_s: float = 7 * 24 * 3600,
        overflow: Overflow = "drop_oldest",
        clock: Callable[[], float] = time.time,
        synchronous: Literal["FULL", "NORMAL"] = "NORMAL",
    ) -> None:
        if overflow not in OVERFLOWS:
            raise ValueError(f"overflow must be one of {', '.join(OVERFLOWS)}, not {overflow!r}")
        if max_events < 1 or max_bytes < 1 or ttl_s <= 0:
            raise ValueError("max_events, max_bytes and ttl_s must be positive")
        self.path = Path(path)
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self.overflow = overflow
        self._clock = clock
        self._lock = threading.Lock()
        # Set by the sender while the server cannot be reached: what is queued meanwhile is
        # counted as ``buffered`` in the next health event.
        self.link_down = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a power cut may lose the last transactions, never corrupt the
        # file; FULL also survives that (at a cost per commit).
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self.synchronous = synchronous
        self._db.executescript(_SCHEMA)
        with self._tx():
            self._init_meta()
        self.device_epoch = DeviceEpoch(
            epoch=self._meta_text("epoch"),
            started_at=datetime.fromisoformat(self._meta_text("epoch_started_at")),
        )

    # --- plumbing

    def _tx(self):
        queue = self

        class _Tx:
            def __enter__(self_inner):
                queue._lock.acquire()
                try:
                    queue._db.execute("BEGIN IMMEDIATE")
                except BaseException:
                    queue._lock.release()  # another process holds the file: fail, not hang
                    raise
                return queue._db

            def __exit__(self_inner, kind, value, tb):
                try:
                    queue._db.execute("COMMIT" if kind is None else "ROLLBACK")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        queue._db.execute("ROLLBACK")
                    raise
                finally:
                    queue._lock.release()
                return False

        return _Tx()

    def _init_meta(self) -> None:
        if self._meta_text("epoch", None) is None:
            now = datetime.now(UTC)
            self._set("epoch", uuid.uuid4().hex)
            self._set("epoch_started_at", now.isoformat())
        for name in _COUNTERS:
            if self._meta_text(name, None) is None:
                self._set(name, "0")

    def _meta_text(self, key: str, default: str | None = "") -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else row[0]

    def _get(self, key: str) -> int:
        return int(self._meta_text(key, "0") or 0)

    def _set(self, key: str, value: str | int) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, str(value)),
        )

    def _add(self, key: str, amount: int) -> None:
        if amount:
            self._set(key, self._get(key) + amount)

    # --- writing

    def enqueue(
        self, make: Callable[[int], TelemetryEvent] | Sequence[Callable[[int], TelemetryEvent]]
    ) -> list[int]:
        """Number and store events: ``make(sequence)`` builds each one with its number.
        Returns the numbers given (an event refused by ``drop_newest`` gets none)."""
        makers = [make] if callable(make) else list(make)
        given: list[int] = []
        with self._tx():
            self._expire()
            seq = self._get("next_seq")
            rows = []
            for maker in makers:
                body = _encoder.encode(maker(seq))
                rows.append((seq, body))
                seq += 1
            self._set("next_seq", seq)
            self._store(rows, given)
        return given

    def enqueue_health(self, make: Callable[[int, int, int, int], HealthEvent]) -> int | None:
        """Store a health event built by ``make(sequence, queue_depth, buffered, evicted)``
        with the loss counts since the last report, and reset those counts (one transaction,
        so a count is reported exactly once)."""
        with self._tx():
            self._expire()
            seq = self._get("next_seq")
            buffered, evicted = self._get("unreported_buffered"), self._get("unreported_evicted")
            depth = self._depth()
            event = make(seq, depth, buffered, evicted)
            self._set("next_seq", seq + 1)
            self._set("unreported_buffered", 0)
            self._set("unreported_evicted", 0)
            given: list[int] = []
            self._store([(seq, _encoder.encode(event))], given, handed=(buffered, evicted))
        return given[0] if given else None

    def note_lost(self, count: int) -> None:
        """Count events dropped for good (the server refuses them): reported as evicted."""
        if count:
            with self._tx():
                self._add("unreported_evicted", count)

    def note_buffered(self, count: int) -> None:
        """Count events queued while the link was down (reported as ``buffered``)."""
        if count:
            with self._tx():
                self._add("unreported_buffered", count)

    def _store(
        self, rows: list[tuple[int, bytes]], given: list[int], *, handed: tuple[int, int] = (0, 0)
    ) -> None:
        now = self._clock()
        if self.overflow == "drop_oldest" and len(rows) > self.max_events:
            # More new events than the whole queue holds: the oldest of them go at once.
            excess = len(rows) - self.max_events
            rows = rows[excess:]
            self._add("evicted_overflow", excess)
            self._add("unreported_evicted", excess)
        size = sum(len(body) for _, body in rows)
        depth, used = self._depth(), self._get("bytes")
        over_count = depth + len(rows) - self.max_events
        over_bytes = used + size - self.max_bytes
        if over_count > 0 or over_bytes > 0:
            if self.overflow == "drop_newest":
                room = min(self.max_events - depth, len(rows))
                kept, free = [], self.max_bytes - used
                for row in rows[: max(0, room)]:
                    if len(row[1]) > free:
                        break
                    kept.append(row)
                    free -= len(row[1])
                refused = len(rows) - len(kept)
                self._add("evicted_overflow", refused)
                self._add("unreported_evicted", refused)
                if refused and handed != (0, 0):
                    # The health event itself was refused: its counts go to the next one.
                    self._add("unreported_buffered", handed[0])
                    self._add("unreported_evicted", handed[1])
                rows = kept
                size = sum(len(body) for _, body in rows)
            else:
                self._evict_oldest(max(0, over_count), max(0, over_bytes))
        self._db.executemany(
            "INSERT INTO events (seq, queued_at, size, handed_buffered, handed_evicted, body)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(seq, now, len(body), handed[0], handed[1], body) for seq, body in rows],
        )
        self._add("bytes", size)
        self._add("depth", len(rows))
        self._add("enqueued", len(rows))
        if self.link_down:
            self._add("unreported_buffered", len(rows))
        given.extend(seq for seq, _ in rows)

    def _evict_oldest(self, count: int, nbytes: int) -> None:
        victims: list[tuple[int, int, int, int]] = []
        freed = 0
        cursor = self._db.execute(
            "SELECT seq, size, handed_buffered, handed_evicted FROM events ORDER BY seq"
        )
        for row in cursor:
            if len(victims) >= count and freed >= nbytes:
                break
            victims.append(row)
            freed += row[1]
        cursor.close()
        self._drop(victims, counter="evicted_overflow")

    def _expire(self) -> None:
        # Events are queued in time order, so the expired ones are the oldest: read from the
        # head and stop at the first that is still fresh (usually one row).
        cutoff = self._clock() - self.ttl_s
        head = self._db.execute("SELECT queued_at FROM events ORDER BY seq LIMIT 1").fetchone()
        if head is None or head[0] >= cutoff:
            return
        victims: list[tuple[int, int, int, int]] = []
        while True:
            rows = self._db.execute(
                "SELECT seq, size, handed_buffered, handed_evicted, queued_at FROM events"
                " WHERE seq > ? ORDER BY seq LIMIT 500",
                (victims[-1][0] if victims else -1,),
            ).fetchall()
            fresh = False
            for row in rows:
                if row[4] >= cutoff:
                    fresh = True
                    break
                victims.append(row[:4])
            if fresh or len(rows) < 500:
                break
        self._drop(victims, counter="evicted_ttl")

    def _drop(self, victims: list[tuple[int, int, int, int]], *, counter: str) -> None:
        if not victims:
            return
        self._delete([seq for seq, *_ in victims])
        self._add("depth", -len(victims))
        self._add(counter, len(victims))
        self._add("unreported_evicted", len(victims) + sum(v[3] for v in victims))
        self._add("unreported_buffered", sum(v[2] for v in victims))
        self._add("bytes", -sum(v[1] for v in victims))

    def _delete(self, sequences: Sequence[int]) -> None:
        for begin in range(0, len(sequences), 500):
            part = sequences[begin : begin + 500]
            self._db.execute(
                f"DELETE FROM events WHERE seq IN ({','.join('?' * len(part))})",  # noqa: S608
                part,
            )

    def _depth(self) -> int:
        return self._get("depth")

    # --- reading and settling

    def peek(self, limit: int) -> QueuedBatch | None:
        """The oldest ``limit`` events as one batch body, or None when the queue is empty."""
        with self._tx():
            self._expire()
            rows = self._db.execute(
                "SELECT seq, body FROM events ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        if not rows:
            return None
        if self.synchronous != "FULL":
            # Make everything numbered so far durable before any of it can reach the server:
            # under synchronous=NORMAL a power cut may undo the last commits, and numbers the
            # server already holds would then be given to new events. A checkpoint syncs the
            # WAL (one fsync per batch posted, not per event).
            with self._lock:
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        epoch = _encoder.encode(self.device_epoch)
        body = b'{"device_epoch":' + epoch + b',"events":[' + b",".join(r[1] for r in rows) + b"]}"
        return QueuedBatch(self.device_epoch, tuple(r[0] for r in rows), body)

    def events(self, batch: QueuedBatch) -> list[TelemetryEvent]:
        """Decode a batch's events (tests and diagnostics)."""
        placeholders = ",".join("?" * len(batch.sequences))
        rows = self._db.execute(
            f"SELECT body FROM events WHERE seq IN ({placeholders}) ORDER BY seq",  # noqa: S608
            batch.sequences,
        ).fetchall()
        return [_decoder.decode(r[0]) for r in rows]

    def settle(self, *, stored: Sequence[int], refused: Sequence[int] = ()) -> None:
        """Delete what the server stored (and what it refused for good), counted apart."""
        gone = list(stored) + list(refused)
        if not gone:
            return
        with self._tx():
            placeholders = ",".join("?" * len(gone))
            present = self._db.execute(
                "SELECT seq, size, handed_buffered, handed_evicted FROM events"  # noqa: S608
                f" WHERE seq IN ({placeholders})",
                gone,
            ).fetchall()
            sizes = {row[0]: row[1] for row in present}
            refused_rows = [row for row in present if row[0] in set(refused)]
            # A refused health event's loss counts go to the next one, like an evicted one's.
            self._add("unreported_buffered", sum(row[2] for row in refused_rows))
            self._add("unreported_evicted", sum(row[3] for row in refused_rows))
            self._delete(list(sizes))
            self._add("depth", -len(sizes))
            refused_set = set(refused)
            self._add("sent", sum(1 for seq in sizes if seq not in refused_set))
            self._add("refused", sum(1 for seq in sizes if seq in refused_set))
            self._add("bytes", -sum(sizes.values()))

    def head(self) -> tuple[int, float | None]:
        """How many events are queued and when the oldest was queued (clock seconds)."""
        with self._lock:
            row = self._db.execute("SELECT queued_at FROM events ORDER BY seq LIMIT 1").fetchone()
            return self._depth(), (row[0] if row else None)

    def now(self) -> float:
        return self._clock()

    def oldest_sequence(self) -> int | None:
        """The number of the oldest event still queued (None when the queue is empty):
        every lower number of this epoch has left the queue."""
        with self._lock:
            row = self._db.execute("SELECT MIN(seq) FROM events").fetchone()
            return None if row is None or row[0] is None else int(row[0])

    def counts(self) -> QueueCounts:
        with self._lock:
            return QueueCounts(
                depth=self._depth(),
                bytes=self._get("bytes"),
                enqueued=self._get("enqueued"),
                sent=self._get("sent"),
                refused=self._get("refused"),
                evicted_overflow=self._get("evicted_overflow"),
                evicted_ttl=self._get("evicted_ttl"),
            )

    @property
    def next_sequence(self) -> int:
        with self._lock:
            return self._get("next_seq")

    def close(self) -> None:
        with self._lock:
            self._db.close()
