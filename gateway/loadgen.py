"""Telemetry load generator: simulated devices posting signed batches, many processes at once.

    python -m gateway.loadgen --fleet fleet.json --processes 4 --batch-size 500 \\
        --events-per-device 20000 [--replay-fraction 0.2] [--duration 60]
    python -m gateway.loadgen --fleet fleet.json --history-minutes 90 \\
        --inferences-per-minute 120 --drift 30:50 --throttle 60:80

The second form posts the last 90 minutes of every device's life with a drift (class mix and
confidence) from minute 30 to 50 and thermal throttling from 60 to 80: what fleet health's
signals and alerts are tried against.

The fleet file lists the server and each device's id and private key (the benchmark writes it
after creating the devices). Every process pre-generates its devices' events and encodes their
first batches before the clock starts, so the figure measures the server, not the simulator.
One JSON line summarises the run.

Each device has a ``TelemetrySender``: an in-memory store-and-forward queue that posts signed
gzip batches to ``POST /api/v1/device/telemetry`` and applies the answer as a gateway must:
events in a ``held`` range and refused events leave the queue, the rest stay and are sent
again; 429, 5xx and network errors are retried with backoff; ``413 too_many_events`` halves the
batch. Standard library HTTP (one keep-alive ``http.client`` connection per process).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import queue
import random
import sys
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol import device_auth
from protocol.telemetry import DeviceEpoch, TelemetryEvent, encode_batch

from .sender import settled
from .simulation import (
    Drift,
    Scenario,
    SimDevice,
    SimModel,
    SiteProfile,
    Throttling,
    default_model,
    generate_history,
)
from .transport import NETWORK_ERRORS, ServerConnection

__all__ = [
    "TELEMETRY_PATH",
    "FleetDevice",
    "FleetFile",
    "RunOptions",
    "SenderStats",
    "ServerConnection",
    "TelemetrySender",
    "main",
    "run_fleet",
    "sim_device_for",
    "summarise",
]

TELEMETRY_PATH = "/api/v1/device/telemetry"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


# --- the fleet file -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FleetDevice:
    device_id: str
    private_key_pem: str
    # The models the server knows the device runs (their classes are the known classes);
    # absent, the simulator's default model.
    models: tuple[SimModel, ...] = ()

    def private_key(self) -> Ed25519PrivateKey:
        key = serialization.load_pem_private_key(self.private_key_pem.encode(), None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"device {self.device_id}: the key is not an Ed25519 key")
        return key


@dataclass(frozen=True, kw_only=True)
class FleetFile:
    """``{"server": ..., "devices": [{"device_id": ..., "private_key_pem": ...}, ...]}``.

    A device may also list ``"models": [{"name", "version", "sha256", "classes"}, ...]``.
    """

    server: str
    devices: tuple[FleetDevice, ...]

    @classmethod
    def load(cls, path: str | Path) -> FleetFile:
        return cls.from_json(json.loads(Path(path).read_text()))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FleetFile:
        devices = []
        for item in data["devices"]:
            models = tuple(
                SimModel(
                    name=m["name"],
                    version=m["version"],
                    sha256=m["sha256"],
                    classes=tuple(m["classes"]),
                )
                for m in item.get("models", ())
            )
            devices.append(
                FleetDevice(
                    device_id=item["device_id"],
                    private_key_pem=item["private_key_pem"],
                    models=models,
                )
            )
        return cls(server=data["server"].rstrip("/"), devices=tuple(devices))

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "devices": [
                {
                    "device_id": d.device_id,
                    "private_key_pem": d.private_key_pem,
                    **(
                        {
                            "models": [
                                {
                                    "name": m.name,
                                    "version": m.version,
                                    "sha256": m.sha256,
                                    "classes": list(m.classes),
                                }
                                for m in d.models
                            ]
                        }
                        if d.models
                        else {}
                    ),
                }
                for d in self.devices
            ],
        }

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2))


def sim_device_for(
    device: FleetDevice, *, inferences_per_minute: float = 600.0, health_interval_s: float = 10.0
) -> SimDevice:
    """The simulated device behind a fleet entry; its seed comes from its id (stable)."""
    return SimDevice(
        device_id=device.device_id,
        seed=zlib.crc32(device.device_id.encode()),
        models=device.models or (default_model(),),
        site=SiteProfile(inferences_per_minute=inferences_per_minute),
        health_interval_s=health_interval_s,
    )


# --- HTTP ---------------------------------------------------------------------------------------


# --- the sender ---------------------------------------------------------------------------------


@dataclass
class SenderStats:
    """What one sender (or, summed, a whole run) did."""

    events: int = 0  # queued for sending
    accepted: int = 0  # reported accepted (first landing)
    held: int = 0  # left the queue because held
    duplicates: int = 0  # indexes reported as identical repeats
    rejected: int = 0  # left the queue because refused
    failed: int = 0  # dropped after a final refusal of the whole batch (400, 413, 415, ...)
    unsent: int = 0  # still queued when the sender stopped
    requests: int = 0
    replays: int = 0  # batches sent a second time on purpose
    http_errors: int = 0  # answers other than 200
    network_errors: int = 0
    retries: int = 0
    splits: int = 0  # halvings after 413 too_many_events
    latencies_ms: list[float] = field(default_factory=list)

    def add(self, other: SenderStats) -> None:
        for name, value in asdict(other).items():
            if name == "latencies_ms":
                self.latencies_ms.extend(other.latencies_ms)
            else:
                setattr(self, name, getattr(self, name) + value)


class _Chunk:
    """Events of one epoch to post together, and their encoded body once built."""

    __slots__ = ("body", "device_epoch", "events")

    def __init__(self, device_epoch: DeviceEpoch, events: list[TelemetryEvent]) -> None:
        self.device_epoch = device_epoch
        self.events = events
        self.body: bytes | None = None

    def encoded(self) -> bytes:
        if self.body is None:
            self.body = encode_batch(
                device_epoch=self.device_epoch, events=self.events, compress=True
            )
        return self.body


class TelemetrySender:
    """One device's store-and-forward queue and the loop that empties it into the server."""

    def __init__(
        self,
        *,
        device_id: str,
        private_key: Ed25519PrivateKey,
        connection: ServerConnection,
        batch_size: int = 500,
        replay_fraction: float = 0.0,
        max_attempts: int = 8,
        backoff_s: float = 0.05,
        max_backoff_s: float = 2.0,
        seed: int = 0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if not 0.0 <= replay_fraction <= 1.0:
            raise ValueError("replay_fraction must be in [0, 1]")
        self.device_id = device_id
        self.private_key = private_key
        self.connection = connection
        self.batch_size = batch_size
        self.replay_fraction = replay_fraction
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.stats = SenderStats()
        self.queue: deque[_Chunk] = deque()
        self.stopped = False
        self._retry_after: float | None = None
        self._rng = random.Random(seed)  # noqa: S311 - jitter and replay choice, not security
        self._sleep = sleep
        self._clock = clock

    # --- the queue

    def enqueue(self, device_epoch: DeviceEpoch, events: Sequence[TelemetryEvent]) -> None:
        """Add events (all numbered in ``device_epoch``) to the end of the queue."""
        events = list(events)
        for begin in range(0, len(events), self.batch_size):
            self.queue.append(_Chunk(device_epoch, events[begin : begin + self.batch_size]))
        self.stats.events += len(events)

    def prepare(self) -> None:
        """Encode every queued batch now (before a timed run)."""
        for chunk in self.queue:
            chunk.encoded()

    @property
    def pending_events(self) -> int:
        return sum(len(chunk.events) for chunk in self.queue)

    @property
    def done(self) -> bool:
        return self.stopped or not self.queue

    # --- sending

    def run(self, *, deadline: float | None = None) -> SenderStats:
        """Send until the queue is empty, the sender stops, or ``deadline`` (perf_counter)."""
        while not self.done and (deadline is None or self._clock() < deadline):
            self.send_one()
        self.stats.unsent = self.pending_events
        return self.stats

    def send_one(self) -> None:
        """Post the batch at the head of the queue once (with its retries), apply the answer."""
        chunk = self.queue[0]
        if len(chunk.events) > self.batch_size:
            self._split_head()
            chunk = self.queue[0]
        attempts = 0
        while True:
            attempts += 1
            if self._post(chunk) != "retry":
                return
            if attempts >= self.max_attempts:
                # The server keeps failing: stop, keeping the events (reported as unsent).
                self.stopped = True
                return
            self.stats.retries += 1
            self._backoff(attempts, self._retry_after)

    def _backoff(self, attempt: int, retry_after: float | None) -> None:
        delay = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
        delay *= 0.5 + self._rng.random()  # jitter, so a fleet does not retry in step
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_backoff_s * 4))
        self._sleep(delay)

    def _signed_post(self, chunk: _Chunk) -> tuple[int, dict, bytes]:
        body = chunk.encoded()
        headers = device_auth.sign_request(
            private_key=self.private_key,
            device_id=self.device_id,
            method="POST",
            path=self.connection.prefix + TELEMETRY_PATH,
            body=body,
        )
        headers["Content-Type"] = "application/json"
        headers["Content-Encoding"] = "gzip"
        self.stats.requests += 1
        began = self._clock()
        try:
            return self.connection.post(TELEMETRY_PATH, body, headers)
        finally:
            self.stats.latencies_ms.append((self._clock() - began) * 1000.0)

    def _post(self, chunk: _Chunk) -> str:
        """One request: "done" (the head batch is settled or changed), "retry" or "stop"."""
        self._retry_after = None
        try:
            status, headers, raw = self._signed_post(chunk)
        except NETWORK_ERRORS:
            self.stats.network_errors += 1
            return "retry"
        if status == 200:
            answer = _json(raw)
            if not isinstance(answer, dict) or answer.get("epoch") != chunk.device_epoch.epoch:
                self.stats.http_errors += 1  # not an answer we can apply: keep the events
                return "retry"
            replay = self.replay_fraction > 0 and self._rng.random() < self.replay_fraction
            if replay:
                self.stats.replays += 1
                self._replay(chunk)
            progressed = self._apply(chunk, answer)
            return "done" if progressed else "retry"
        self.stats.http_errors += 1
        error = _json(raw)
        code = error.get("error", {}).get("code") if isinstance(error, dict) else None
        if status == 413 and code == "too_many_events" and len(chunk.events) > 1:
            self.batch_size = max(1, len(chunk.events) // 2)
            self._split_head()
            self.stats.splits += 1
            return "done"
        if status in RETRY_STATUSES:
            self._retry_after = _retry_after(headers.get("retry-after"))
            return "retry"
        if status == 401:
            self.stopped = True
            return "stop"
        # 400, 415, another 413: the server will never take this body; resending cannot help.
        self.queue.popleft()
        self.stats.failed += len(chunk.events)
        return "done"

    def _replay(self, chunk: _Chunk) -> None:
        # The same body again under a fresh signature, as a gateway whose answer was lost would.
        try:
            status, _, raw = self._signed_post(chunk)
        except NETWORK_ERRORS:
            self.stats.network_errors += 1
            return
        if status != 200:
            self.stats.http_errors += 1
            return
        answer = _json(raw)
        if isinstance(answer, dict):
            self.stats.duplicates += len(answer.get("duplicates") or ())

    def _apply(self, chunk: _Chunk, answer: dict[str, Any]) -> bool:
        """Drop the held and refused events of the head batch; True when any left the queue."""
        stored, refused = settled(answer, [event.sequence for event in chunk.events])
        gone = set(stored) | set(refused)
        self.stats.accepted += int(answer.get("accepted") or 0)
        self.stats.duplicates += len(answer.get("duplicates") or ())
        self.stats.rejected += len(refused)
        self.stats.held += len(stored)
        keep = [event for event in chunk.events if event.sequence not in gone]
        if len(keep) == len(chunk.events):
            return False  # nothing left the queue: the same batch (and body) goes again
        self.queue.popleft()
        if keep:
            self.queue.appendleft(_Chunk(chunk.device_epoch, keep))
        return True

    def _split_head(self) -> None:
        chunk = self.queue.popleft()
        size = self.batch_size
        parts = [
            _Chunk(chunk.device_epoch, chunk.events[begin : begin + size])
            for begin in range(0, len(chunk.events), size)
        ]
        self.queue.extendleft(reversed(parts))


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


# --- a run: many devices over many processes ----------------------------------------------------


def _percentile(values: Sequence[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return round(ordered[rank], 2)


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    batch_size: int = 500
    events_per_device: int = 1000
    replay_fraction: float = 0.0
    duration_s: float | None = None
    timeout_s: float = 30.0
    # History mode: every device posts the last ``history_minutes`` of its life (starting on a
    # ten-minute boundary, so signal windows line up with the injections), at this rate.
    history_minutes: float | None = None
    inferences_per_minute: float = 600.0
    health_interval_s: float = 10.0
    # Injections, as (start, end) minutes after the history starts, on every device.
    drift: tuple[float, float] | None = None
    throttling: tuple[float, float] | None = None


#: What an injected drift does: the first class five times as common, confidence 0.15 lower.
DRIFT_CLASS_FACTOR = 5.0
DRIFT_CONFIDENCE_DROP = 0.15


def history_start(now: datetime, minutes: float) -> datetime:
    """The history's start: ``minutes`` before ``now``, down to a ten-minute boundary."""
    start = now - timedelta(minutes=minutes)
    return start.replace(minute=start.minute - start.minute % 10, second=0, microsecond=0)


def scenario_for(sim: SimDevice, options: RunOptions, start: datetime) -> Scenario:
    """The injections of ``options`` as a simulator scenario starting at ``start``."""
    drifts, episodes = [], []
    if options.drift is not None:
        begin, end = options.drift
        model = sim.models[0]
        drifts.append(
            Drift(
                at=start + timedelta(minutes=begin),
                until=start + timedelta(minutes=end),
                class_weights={model.classes[0]: DRIFT_CLASS_FACTOR * max(model.weights())},
                confidence_drop=DRIFT_CONFIDENCE_DROP,
            )
        )
    if options.throttling is not None:
        begin, end = options.throttling
        episodes.append(
            Throttling(
                start=start + timedelta(minutes=begin), duration=timedelta(minutes=end - begin)
            )
        )
    return Scenario(drifts=drifts, throttling=episodes)


def _generate(device: FleetDevice, options: RunOptions, now: datetime):
    sim = sim_device_for(
        device,
        inferences_per_minute=options.inferences_per_minute,
        health_interval_s=options.health_interval_s,
    )
    if options.history_minutes is not None:
        start = history_start(now, options.history_minutes)
        return generate_history(
            sim,
            start,
            now - timedelta(seconds=1),
            scenario_for(sim, options, start),
            batch_size=options.batch_size,
        )
    rate = sim.site.inferences_per_minute / 60.0 + 1.0 / sim.health_interval_s
    # Timestamps end shortly before now (the server refuses future ones).
    start = now - timedelta(seconds=options.events_per_device / rate * 1.5 + 60.0)
    return generate_history(
        sim,
        start,
        now,
        batch_size=options.batch_size,
        max_events=options.events_per_device,
    )


def _worker(
    server: str,
    devices: Sequence[FleetDevice],
    options: RunOptions,
    barrier: Any,
    results: Any,
) -> None:
    """One process: generate, encode, wait for the others, then post round-robin."""
    gen_wall, gen_cpu = time.perf_counter(), time.process_time()
    connection = ServerConnection(server, timeout=options.timeout_s)
    now = datetime.now(UTC)
    senders = []
    for device in devices:
        sender = TelemetrySender(
            device_id=device.device_id,
            private_key=device.private_key(),
            connection=connection,
            batch_size=options.batch_size,
            replay_fraction=options.replay_fraction,
            seed=zlib.crc32(device.device_id.encode()),
        )
        for device_epoch, events in _generate(device, options, now):
            sender.enqueue(device_epoch, events)
        sender.prepare()
        senders.append(sender)
    generation = {
        "generation_s": time.perf_counter() - gen_wall,
        "generation_cpu_s": time.process_time() - gen_cpu,
    }
    if barrier is not None:
        barrier.wait()
    began, cpu = time.time(), time.process_time()
    deadline = None if options.duration_s is None else time.perf_counter() + options.duration_s
    active = list(senders)
    while active and (deadline is None or time.perf_counter() < deadline):
        for sender in active:
            sender.send_one()
        active = [s for s in active if not s.done]
    ended = time.time()
    connection.close()
    total = SenderStats()
    for sender in senders:
        sender.stats.unsent = sender.pending_events
        total.add(sender.stats)
    results.put(
        {
            "stats": asdict(total),
            "began": began,
            "ended": ended,
            "cpu_s": time.process_time() - cpu,
            **generation,
        }
    )


def run_fleet(fleet: FleetFile, *, processes: int, options: RunOptions) -> dict[str, Any]:
    """Run the whole fleet and return the summary (what the CLI prints)."""
    processes = max(1, min(processes, len(fleet.devices)))
    shares = [fleet.devices[i::processes] for i in range(processes)]
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    barrier = context.Barrier(processes)
    workers = [
        context.Process(target=_worker, args=(fleet.server, share, options, barrier, results))
        for share in shares
    ]
    for worker in workers:
        worker.start()
    reports = []
    try:
        while len(reports) < len(workers):
            try:
                reports.append(results.get(timeout=1.0))
            except queue.Empty:
                dead = [w for w in workers if w.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(
                        f"{len(dead)} load generator process(es) failed "
                        f"(exit codes {[w.exitcode for w in dead]})"
                    ) from None
    finally:
        for worker in workers:
            if reports and len(reports) == len(workers):
                worker.join()
            else:
                worker.terminate()
                worker.join()
    return summarise(reports, processes=processes, options=options)


def summarise(
    reports: Sequence[dict[str, Any]], *, processes: int, options: RunOptions
) -> dict[str, Any]:
    total = SenderStats()
    for report in reports:
        total.add(SenderStats(**report["stats"]))
    elapsed = max(r["ended"] for r in reports) - min(r["began"] for r in reports)
    settled = total.held + total.rejected
    generation_s = max(r["generation_s"] for r in reports)
    return {
        "processes": processes,
        "batch_size": options.batch_size,
        "replay_fraction": options.replay_fraction,
        "events_generated": total.events,
        "accepted": total.accepted,
        "held": total.held,
        "duplicates_reported": total.duplicates,
        "rejected": total.rejected,
        "failed": total.failed,
        "unsent": total.unsent,
        "requests": total.requests,
        "replays": total.replays,
        "http_errors": total.http_errors,
        "network_errors": total.network_errors,
        "retries": total.retries,
        "splits": total.splits,
        "began_at": min(r["began"] for r in reports),  # epoch seconds, when posting began
        "elapsed_s": round(elapsed, 3),
        "events_per_s": round(settled / elapsed, 1) if elapsed > 0 else None,
        "requests_per_s": round(total.requests / elapsed, 1) if elapsed > 0 else None,
        "latency_p50_ms": _percentile(total.latencies_ms, 0.50),
        "latency_p95_ms": _percentile(total.latencies_ms, 0.95),
        "client_cpu_s": round(sum(r["cpu_s"] for r in reports), 3),
        "generation_s": round(generation_s, 3),
        "generation_cpu_s": round(sum(r["generation_cpu_s"] for r in reports), 3),
        "generated_events_per_s": round(total.events / generation_s, 1) if generation_s else None,
    }


def _span(text: str) -> tuple[float, float]:
    try:
        begin, end = (float(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:END in minutes, not {text!r}") from None
    if not 0 <= begin < end:
        raise argparse.ArgumentTypeError(f"START must be >= 0 and before END, not {text!r}")
    return begin, end


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.loadgen", description=__doc__)
    parser.add_argument("--fleet", required=True, help="the fleet JSON file")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--events-per-device", type=int, default=1000)
    parser.add_argument(
        "--history-minutes",
        type=float,
        default=None,
        help="post the last N minutes of each device's life instead of --events-per-device",
    )
    parser.add_argument("--inferences-per-minute", type=float, default=600.0)
    parser.add_argument("--health-interval", type=float, default=10.0, help="seconds")
    parser.add_argument(
        "--drift", type=_span, default=None, help="START:END minutes into the history"
    )
    parser.add_argument(
        "--throttle", type=_span, default=None, help="START:END minutes into the history"
    )
    parser.add_argument("--replay-fraction", type=float, default=0.0)
    parser.add_argument("--duration", type=float, default=None, help="stop posting after S s")
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    args = parser.parse_args(argv)
    fleet = FleetFile.load(args.fleet)
    if not fleet.devices:
        print("The fleet file lists no devices.", file=sys.stderr)
        return 1
    options = RunOptions(
        batch_size=args.batch_size,
        events_per_device=args.events_per_device,
        replay_fraction=args.replay_fraction,
        duration_s=args.duration,
        timeout_s=args.timeout,
        history_minutes=args.history_minutes,
        inferences_per_minute=args.inferences_per_minute,
        health_interval_s=args.health_interval,
        drift=args.drift,
        throttling=args.throttle,
    )
    print(json.dumps(run_fleet(fleet, processes=args.processes, options=options)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
