"""The telemetry sender: drains the store-and-forward queue into ``POST /api/v1/device/telemetry``.

Each batch is the oldest queued events, numbered in the queue's epoch, gzip-compressed and
signed. The answer decides what leaves the queue (`settled`): events inside a ``held`` range
are durably stored on the server (first time or a repeat), refused events will never be
accepted; everything else stays and goes again. Nothing is deleted before the server said so,
so a crash between the post and the delete only resends events the server counts once.

Failures back off exponentially with full jitter (capped, and never sooner than a
``Retry-After``), so a fleet coming back from an outage does not retry in step.
"""

from __future__ import annotations

import bisect
import gzip
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .store import EventQueue
from .transport import NETWORK_ERRORS, SignedTransport

__all__ = ["TELEMETRY_PATH", "Sender", "SenderCounts", "settled"]

TELEMETRY_PATH = "/api/v1/device/telemetry"
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Whole-batch refusals that blame the body (protocol.telemetry.BATCH_REJECTION_STATUS): only
# these isolate and drop a poison event; any other refusal keeps the events.
_POISON = frozenset(
    {
        (400, "malformed_gzip"),
        (400, "malformed_json"),
        (400, "invalid_batch"),
        (413, "decompressed_too_large"),
    }
)
log = logging.getLogger("opshero.gateway.sender")


def settled(answer: dict[str, Any], sequences: Sequence[int]) -> tuple[list[int], list[int]]:
    """The sequences of a batch that the answer stored (held) and refused for good.

    ``held`` lists inclusive ``[first, last]`` sequence ranges durably stored on the server;
    ``rejected`` lists ``{"index": position in the batch, ...}``."""
    ranges = sorted((int(a), int(b)) for a, b in answer.get("held") or ())
    starts = [a for a, _ in ranges]
    refused_positions = {int(r["index"]) for r in answer.get("rejected") or ()}
    stored, refused = [], []
    for position, sequence in enumerate(sequences):
        if position in refused_positions:
            refused.append(sequence)
            continue
        at = bisect.bisect_right(starts, sequence) - 1
        if at >= 0 and sequence <= ranges[at][1]:
            stored.append(sequence)
    return stored, refused


@dataclass
class SenderCounts:
    requests: int = 0
    batches_settled: int = 0
    stored: int = 0
    refused: int = 0
    dead_lettered: int = 0
    network_errors: int = 0
    http_errors: int = 0
    retries: int = 0
    last_error: str = ""
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=1000))


class Sender:
    """Drains one queue; call `drain_once` in a loop (it says how long to wait)."""

    def __init__(
        self,
        queue: EventQueue,
        transport: SignedTransport,
        *,
        batch_size: int = 500,
        backoff_s: float = 1.0,
        max_backoff_s: float = 300.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.queue = queue
        self.transport = transport
        self.batch_size = max(1, batch_size)
        self.max_batch_size = self.batch_size
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        # Hold a partial batch until its oldest event is this old (the site policy's
        # telemetry interval): a gateway posts about once an interval, not once per event.
        # 0 sends whatever is queued at once. A full batch, or a backlog, goes at once.
        self.flush_interval_s = 0.0
        self.counts = SenderCounts()
        self.online: bool | None = None  # unknown until the first attempt
        self._failures = 0
        self._not_before = 0.0
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._clock = clock

    def retry_now(self) -> None:
        """Allow the next attempt at once (a final flush on shutdown)."""
        self._not_before = 0.0

    def wait_s(self) -> float:
        """Seconds until the next attempt is allowed (0 now)."""
        return max(0.0, self._not_before - self._clock())

    def drain(self, *, max_batches: int | None = None, flush: bool = False) -> int:
        """Send batches until the queue is empty (or holds only a partial batch younger than
        the flush interval, unless ``flush``), a failure backs off, or ``max_batches``."""
        sent = 0
        while max_batches is None or sent < max_batches:
            outcome = self.drain_once(flush=flush)
            if outcome != "sent":
                break
            sent += 1
        return sent

    def drain_once(self, *, flush: bool = False) -> str:
        """One attempt: "sent", "empty", "holding" (a partial batch younger than the flush
        interval), "waiting" (backing off) or "failed"."""
        if self.wait_s() > 0:
            return "waiting"
        if self.flush_interval_s > 0 and not flush:
            depth, oldest = self.queue.head()
            if depth == 0:
                return "empty"
            young = oldest is not None and self.queue.now() - oldest < self.flush_interval_s
            if depth < self.batch_size and young:
                return "holding"
        batch = self.queue.peek(self.batch_size)
        if batch is None:
            return "empty"
        body = gzip.compress(batch.body, compresslevel=6, mtime=0)
        self.counts.requests += 1
        began = self._clock()
        try:
            answer = self.transport.call(
                "POST",
                TELEMETRY_PATH,
                body=body,
                headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            )
        except NETWORK_ERRORS as exc:
            self.counts.network_errors += 1
            self._fail(f"server unreachable: {exc.__class__.__name__}: {exc}", offline=True)
            return "failed"
        self.counts.latencies_ms.append((self._clock() - began) * 1000.0)
        if answer.status == 200:
            data = answer.json()
            if not isinstance(data, dict) or data.get("epoch") != batch.device_epoch.epoch:
                self.counts.http_errors += 1
                self._fail("an answer that does not acknowledge this batch")
                return "failed"
            stored, refused = settled(data, batch.sequences)
            self.queue.settle(stored=stored, refused=refused)
            for item in data.get("rejected") or ():
                log.warning(
                    "event refused by the server",
                    extra={"fields": {"index": item.get("index"), "code": item.get("code")}},
                )
            self.counts.stored += len(stored)
            self.counts.refused += len(refused)
            if not stored and not refused:
                self._fail("the server stored none of the batch")
                return "failed"
            self._succeed()
            # Grow back towards the configured size after a split.
            self.batch_size = min(self.max_batch_size, self.batch_size * 2)
            return "sent"
        self.counts.http_errors += 1
        code = answer.error_code()
        if answer.status == 413 and code == "too_many_events" and len(batch) > 1:
            self.batch_size = max(1, len(batch) // 2)
            return "sent"
        if answer.status in RETRY_STATUSES:
            self._fail(
                f"{answer.status} {code or 'error'}",
                retry_after=_retry_after(answer.headers.get("retry-after")),
            )
            return "failed"
        if answer.status in (401, 403):
            # Revoked, or the key is being rotated: keep every event and wait long.
            self._fail(f"{answer.status} {code}: {answer.error_message()}", floor=60.0)
            return "failed"
        if (answer.status, code) not in _POISON:
            # A proxy's 404, a 415, an answer we do not know: nothing says the events are
            # bad, so keep every one and try again later.
            self._fail(f"{answer.status} {code or 'error'}: {answer.error_message()}", floor=60.0)
            return "failed"
        # The server says this body can never be taken. Halve until the one event that
        # poisons it is isolated; then set that event aside (counted as lost, logged).
        if len(batch) > 1:
            self.batch_size = max(1, len(batch) // 2)
            return "sent"
        self.queue.settle(stored=(), refused=batch.sequences)
        self.queue.note_lost(len(batch))
        self.counts.dead_lettered += 1
        log.error(
            "event dropped: the server refuses it",
            extra={
                "fields": {"sequence": batch.sequences[0], "status": answer.status, "code": code}
            },
        )
        self._succeed()
        return "sent"

    def _succeed(self) -> None:
        if self.online is False:
            log.info("server reachable again", extra={"fields": {"after_failures": self._failures}})
        self.online = True
        self.queue.link_down = False
        self._failures = 0
        self._not_before = 0.0
        self.counts.last_error = ""

    def _fail(
        self,
        why: str,
        *,
        offline: bool = False,
        retry_after: float | None = None,
        floor: float = 0.0,
    ) -> None:
        self._failures += 1
        self.counts.retries += 1
        self.counts.last_error = why
        if offline:
            if self.online is not False:
                log.warning(
                    "server unreachable; events stay queued", extra={"fields": {"why": why}}
                )
            self.online = False
            self.queue.link_down = True
        cap = min(self.max_backoff_s, self.backoff_s * 2 ** min(self._failures - 1, 30))
        delay = self._rng.uniform(cap / 2, cap)  # "equal jitter": never a tight loop
        delay = max(delay, floor, retry_after or 0.0)
        self._not_before = self._clock() + delay


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, min(float(value), 3600.0))
    except ValueError:
        return None
