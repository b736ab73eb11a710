"""Queueing ingest tasks from the web process without making a gateway wait on the broker.

The batch is durable once its landing row commits; the task only makes ingestion prompt. With
Redis down, publishing a task blocks for seconds (the client retries its connection), which a
gateway must not pay on every request. So the web process hands batch ids to one publisher
thread; while the broker is failing, ids are not published for a few seconds (the sweep takes
those batches once it is back), and the queue is bounded so an outage cannot grow memory.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time

logger = logging.getLogger(__name__)

QUEUE_LIMIT = 10_000
BACKOFF_SECONDS = 5.0


class IngestDispatcher:
    def __init__(self, publish) -> None:
        self._publish = publish
        self._queue: queue.Queue[str] = queue.Queue(maxsize=QUEUE_LIMIT)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._down_until = 0.0
        self.published = 0
        self.skipped = 0

    def submit(self, batch_id: str) -> bool:
        """Hand over a batch id; False when it is left to the sweep (queue full)."""
        self._ensure_thread()
        try:
            self._queue.put_nowait(batch_id)
        except queue.Full:
            self.skipped += 1
            return False
        return True

    def _ensure_thread(self) -> None:
        # A forked web worker inherits the object but not the thread: start one per process.
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._queue = queue.Queue(maxsize=QUEUE_LIMIT)
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="telemetry-ingest-dispatch", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch_id = self._queue.get()
            if time.monotonic() < self._down_until:
                self.skipped += 1
                continue
            try:
                self._publish(batch_id)
            except Exception:  # noqa: BLE001 - any broker failure: the sweep takes the batch
                self._down_until = time.monotonic() + BACKOFF_SECONDS
                self.skipped += 1
                logger.warning(
                    "the broker refused an ingest task; batches landed in the next %.0f s are "
                    "left to the sweep",
                    BACKOFF_SECONDS,
                )
            else:
                self.published += 1

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until every handed-over id was published or skipped (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while not self._queue.empty() and time.monotonic() < deadline:
            time.sleep(0.01)
