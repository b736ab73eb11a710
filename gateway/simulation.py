"""A simulated gateway: deterministic telemetry for one device over simulated time.

Pure: no I/O, no clock, no Django. The same ``SimDevice`` (its seed) and ``Scenario`` give
the same events, byte for byte, so the load generator, the benchmarks and the server's demo
seeding can all replay one history.

What a device emits is what a real agent would post (protocol.telemetry): inference events at
a Poisson rate, a health event every ``health_interval_s``, numbered by one sequence per agent
installation (``DeviceEpoch``). The scenario bends the numbers: latency shifts, drift (a
different class mix and lower confidence), throttling episodes, outages (the agent keeps
numbering into a bounded store-and-forward buffer that evicts its oldest events, and replays
what is left when the link returns) and reinstalls (a new epoch, the sequence restarts at 0).
"""

from __future__ import annotations

import hashlib
import math
import random
import uuid
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from protocol.telemetry import (
    DeviceEpoch,
    Feedback,
    HealthEvent,
    InferenceEvent,
    ModelRef,
    TelemetryEvent,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "Drift",
    "LatencyShift",
    "Outage",
    "Reinstall",
    "Scenario",
    "SimDevice",
    "SimModel",
    "SiteProfile",
    "Throttling",
    "default_model",
    "generate_history",
    "model_sha256",
]

DEFAULT_BATCH_SIZE = 500
_DOWN_REASONS = ("wrong class", "it is a {truth}", "blurry image", "bad crop", "")


def model_sha256(name: str, version: str) -> str:
    """A stable stand-in digest for a simulated model (a real one comes from its manifest)."""
    return hashlib.sha256(f"opshero-sim:{name}:{version}".encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class SimModel:
    """A model the device runs: its identity, its classes and how fast it usually is."""

    name: str
    version: str
    sha256: str
    classes: tuple[str, ...]
    # Relative frequency of each class; None is a Zipf-like mix (the first class commonest).
    class_weights: tuple[float, ...] | None = None
    # Relative frequency of top-1 confidence per equal-width bin over [0, 1] (a validation
    # run's confidence histogram, say); None is a Beta(18, 2) draw (mean 0.9).
    confidence_bins: tuple[float, ...] | None = None
    base_latency_ms: float = 12.0
    shape_bucket: str = "1x3x224x224"

    def __post_init__(self) -> None:
        if not self.classes:
            raise ValueError(f"model {self.name!r} has no classes")
        if self.class_weights is not None and len(self.class_weights) != len(self.classes):
            raise ValueError(f"model {self.name!r}: one weight per class")
        if self.confidence_bins is not None and not (
            self.confidence_bins and sum(self.confidence_bins) > 0
        ):
            raise ValueError(f"model {self.name!r}: confidence_bins need a positive weight")

    def draw_confidence(self, rng: random.Random) -> float:
        if self.confidence_bins is None:
            return rng.betavariate(18.0, 2.0)
        width = 1.0 / len(self.confidence_bins)
        (index,) = rng.choices(range(len(self.confidence_bins)), self.confidence_bins)
        return (index + rng.random()) * width

    @property
    def ref(self) -> ModelRef:
        return ModelRef(name=self.name, version=self.version, sha256=self.sha256)

    def weights(self) -> tuple[float, ...]:
        if self.class_weights is not None:
            return self.class_weights
        return tuple(1.0 / (rank + 1) for rank in range(len(self.classes)))


def default_model(name: str = "parcel-damage", version: str = "v3") -> SimModel:
    return SimModel(
        name=name,
        version=version,
        sha256=model_sha256(name, version),
        classes=("ok", "dent", "scratch", "crushed", "wet"),
    )


@dataclass(frozen=True, kw_only=True)
class SiteProfile:
    """How busy, how hot and how well instrumented the device's site is."""

    name: str = "warehouse"
    inferences_per_minute: float = 30.0
    ambient_c: float = 24.0
    cpu_base: float = 0.35
    has_npu: bool = True
    has_power_sensor: bool = True
    has_thermal_sensor: bool = True
    label_rate: float = 0.05  # share of inferences an operator labels
    feedback_rate: float = 0.02  # share that get thumbs up/down
    time_to_action_rate: float = 0.9  # share whose capture-to-action time is measured
    workflow_key: str = "damage_type"


@dataclass(frozen=True, kw_only=True)
class SimDevice:
    """One simulated gateway. ``seed`` fixes every number it will ever emit."""

    device_id: str
    seed: int
    models: tuple[SimModel, ...] = field(default_factory=lambda: (default_model(),))
    site: SiteProfile = field(default_factory=SiteProfile)
    health_interval_s: float = 60.0
    buffer_capacity: int = 10_000  # store-and-forward events kept while offline

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("a device runs at least one model")
        if self.buffer_capacity < 1 or self.health_interval_s <= 0:
            raise ValueError("buffer_capacity and health_interval_s must be positive")

    @property
    def known_classes(self) -> frozenset[str]:
        return frozenset(c for model in self.models for c in model.classes)


# --- scenario ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LatencyShift:
    """From ``at`` on, latency is multiplied by ``factor`` (one model, or all when None)."""

    at: datetime
    factor: float
    model: str | None = None


@dataclass(frozen=True, kw_only=True)
class Drift:
    """From ``at`` on (until ``until``, if given), the class mix changes and confidence drops.

    ``class_weights`` overrides the weight of the classes it names (the others keep theirs);
    ``confidence_drop`` is subtracted from every confidence (clamped at 0).
    """

    at: datetime
    class_weights: Mapping[str, float] = field(default_factory=dict)
    confidence_drop: float = 0.0
    model: str | None = None
    until: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Throttling:
    """A thermal throttling episode: throttled, hotter, slower."""

    start: datetime
    duration: timedelta
    latency_factor: float = 1.75
    temperature_rise_c: float = 18.0


@dataclass(frozen=True, kw_only=True)
class Outage:
    """The device cannot reach the server from ``start`` for ``duration``."""

    start: datetime
    duration: timedelta


@dataclass(frozen=True, kw_only=True)
class Reinstall:
    """The agent is wiped and reinstalled at ``at``: a new epoch, sequence from 0.

    Whatever the old agent still held unsent (its offline buffer) is lost with it.
    """

    at: datetime


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """What happens to the device over the simulated time; empty is a quiet, healthy device."""

    latency_shifts: Sequence[LatencyShift] = ()
    drifts: Sequence[Drift] = ()
    throttling: Sequence[Throttling] = ()
    outages: Sequence[Outage] = ()
    reinstalls: Sequence[Reinstall] = ()


# --- the agent being simulated ----------------------------------------------------------------


class _Agent:
    """The agent's numbering and queues; yields batches as a real agent would post them."""

    def __init__(self, *, rng: random.Random, started_at: datetime, batch_size: int) -> None:
        self.rng = rng
        self.batch_size = batch_size
        self.online = True
        self.pending: list[TelemetryEvent] = []
        self.buffer: deque[TelemetryEvent] = deque()
        self.buffered_since_report = 0
        self.evicted_since_report = 0
        self.numbered = 0
        self.new_epoch(started_at)

    def new_epoch(self, started_at: datetime) -> None:
        epoch_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self.epoch = DeviceEpoch(epoch=epoch_id, started_at=started_at)
        self.sequence = 0
        self.pending = []
        self.buffer.clear()
        self.buffered_since_report = 0
        self.evicted_since_report = 0

    def next_sequence(self) -> int:
        sequence = self.sequence
        self.sequence += 1
        self.numbered += 1
        return sequence

    def record(self, event: TelemetryEvent, capacity: int) -> Iterator[list[TelemetryEvent]]:
        if self.online:
            self.pending.append(event)
            if len(self.pending) >= self.batch_size:
                yield self.take_pending()
            return
        if len(self.buffer) >= capacity:
            evicted = self.buffer.popleft()
            self.evicted_since_report += 1
            if isinstance(evicted, HealthEvent):
                # Its counts never reach the server: the next report carries them instead.
                self.buffered_since_report += evicted.buffered
                self.evicted_since_report += evicted.evicted
        self.buffer.append(event)
        self.buffered_since_report += 1

    def take_pending(self) -> list[TelemetryEvent]:
        batch, self.pending = self.pending, []
        return batch

    def replay_buffer(self) -> Iterator[list[TelemetryEvent]]:
        while self.buffer:
            count = min(self.batch_size, len(self.buffer))
            yield [self.buffer.popleft() for _ in range(count)]

    @property
    def queue_depth(self) -> int:
        return len(self.pending) + len(self.buffer)


def _ms(value: float) -> float:
    return round(value, 3)


def _first(pair: tuple[float, Drift]) -> float:
    return pair[0]


def _clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return min(high, max(low, value))


class _Device:
    """Draws the numbers of one device; ``rng`` is its only source of randomness."""

    def __init__(self, device: SimDevice, scenario: Scenario, start: datetime) -> None:
        self.device = device
        self.start = start
        self.model_weights = {m.name: list(m.weights()) for m in device.models}
        # Scenario times as offsets from start, computed once: these are read per event.
        self.shifts = [(self.offset(s.at), s) for s in scenario.latency_shifts]
        self.drifts = sorted(((self.offset(d.at), d) for d in scenario.drifts), key=_first)
        self.drift_ends = {
            id(d): math.inf if d.until is None else self.offset(d.until) for d in scenario.drifts
        }
        self.episodes = [
            (self.offset(e.start), self.offset(e.start + e.duration), e)
            for e in scenario.throttling
        ]

    def offset(self, when: datetime) -> float:
        return (when - self.start).total_seconds()

    def latency_factor(self, t: float, model: SimModel) -> float:
        factor = 1.0
        for at, shift in self.shifts:
            if t >= at and shift.model in (None, model.name):
                factor *= shift.factor
        episode = self.throttling_at(t)
        if episode is not None:
            factor *= episode.latency_factor
        return factor

    def throttling_at(self, t: float) -> Throttling | None:
        for begin, end, episode in self.episodes:
            if begin <= t < end:
                return episode
        return None

    def drift_at(self, t: float, model: SimModel) -> Drift | None:
        current = None
        for at, drift in self.drifts:
            if t < at:
                break
            if drift.model in (None, model.name) and t < self.drift_ends[id(drift)]:
                current = drift
        return current

    def inference(
        self, rng: random.Random, *, t: float, epoch: str, sequence: int
    ) -> InferenceEvent:
        device = self.device
        site = device.site
        model = device.models[0] if len(device.models) == 1 else rng.choice(device.models)
        weights = self.model_weights[model.name]
        drift = self.drift_at(t, model)
        if drift is not None and drift.class_weights:
            weights = [
                drift.class_weights.get(name, weight)
                for name, weight in zip(model.classes, weights, strict=True)
            ]
        predicted = rng.choices(model.classes, weights)[0]
        confidence = model.draw_confidence(rng)
        if drift is not None:
            confidence -= drift.confidence_drop
        confidence = round(_clamp(confidence), 4)
        # A calibrated model: right as often as it is confident.
        truth = predicted
        if len(model.classes) > 1 and rng.random() > confidence:
            truth = rng.choice([c for c in model.classes if c != predicted])
        latency = model.base_latency_ms * self.latency_factor(t, model)
        latency *= rng.lognormvariate(0.0, 0.25)
        time_to_action = None
        if rng.random() < site.time_to_action_rate:
            time_to_action = _ms(latency + rng.lognormvariate(math.log(150.0), 0.4))
        label = truth if rng.random() < site.label_rate else None
        feedback = None
        if rng.random() < site.feedback_rate:
            if truth == predicted:
                feedback = Feedback(thumbs="up")
            else:
                reason = rng.choice(_DOWN_REASONS).format(truth=truth)
                feedback = Feedback(thumbs="down", reason=reason)
        workflow: dict[str, str | float | bool] = {site.workflow_key: truth}
        if label is not None:
            workflow["label_confidence"] = round(rng.uniform(0.5, 1.0), 2)
            workflow["rework"] = truth != predicted
        return InferenceEvent(
            epoch=epoch,
            sequence=sequence,
            timestamp=self.start + timedelta(seconds=round(t, 3)),
            model=model.ref,
            latency_ms=_ms(latency),
            time_to_action_ms=time_to_action,
            confidence=confidence,
            predicted_class=predicted,
            label=label,
            feedback=feedback,
            shape_bucket=model.shape_bucket,
            workflow_fields=workflow,
        )

    def health(
        self,
        rng: random.Random,
        *,
        t: float,
        epoch: str,
        sequence: int,
        agent: _Agent,
        online: bool | None,
    ) -> HealthEvent:
        site = self.device.site
        episode = self.throttling_at(t)
        cpu = _clamp(rng.gauss(site.cpu_base, 0.05))
        npu = _clamp(rng.gauss(0.3, 0.08)) if site.has_npu else None
        temperature = site.ambient_c + 20.0 + 15.0 * cpu + rng.gauss(0.0, 1.0)
        if episode is not None:
            temperature += episode.temperature_rise_c
            cpu = _clamp(cpu + 0.3)
        power = None
        if site.has_power_sensor:
            power = round(3.0 + 6.0 * cpu + 4.0 * (npu or 0.0) + rng.gauss(0.0, 0.2), 2)
        event = HealthEvent(
            epoch=epoch,
            sequence=sequence,
            timestamp=self.start + timedelta(seconds=round(t, 3)),
            cpu_utilisation=round(cpu, 3),
            npu_utilisation=None if npu is None else round(npu, 3),
            power_w=None if power is None else max(0.0, power),
            temperature_c=round(temperature, 1) if site.has_thermal_sensor else None,
            throttled=episode is not None,
            memory_mb=round(max(0.0, rng.gauss(820.0, 25.0)), 1),
            queue_depth=agent.queue_depth,
            online=online,
            buffered=agent.buffered_since_report,
            evicted=agent.evicted_since_report,
        )
        agent.buffered_since_report = 0
        agent.evicted_since_report = 0
        return event


def generate_history(
    device: SimDevice,
    start: datetime,
    end: datetime | None = None,
    scenario: Scenario | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_events: int | None = None,
) -> Iterator[tuple[DeviceEpoch, list[TelemetryEvent]]]:
    """The batches the device would post from ``start`` until ``end`` (or ``max_events``
    events numbered, whichever comes first), in the order it would post them.

    Each batch has at most ``batch_size`` events of one epoch. An outage posts nothing; its
    events (less those evicted) come as replay batches when it ends. Events still buffered
    when the history ends (an outage not over yet) are not in it.
    """
    if start.tzinfo is None or (end is not None and end.tzinfo is None):
        raise ValueError("start and end must be timezone-aware")
    if end is None and max_events is None:
        raise ValueError("give end, max_events or both")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    scenario = scenario or Scenario()
    rng = random.Random(device.seed)  # noqa: S311 - simulation, not security
    sim = _Device(device, scenario, start)
    agent = _Agent(rng=rng, started_at=start, batch_size=batch_size)
    horizon = math.inf if end is None else (end - start).total_seconds()
    limit = math.inf if max_events is None else max_events
    capacity = device.buffer_capacity

    # Scenario moments that change the agent's state, in time order.
    moments: list[tuple[float, int, str]] = []
    for outage in scenario.outages:
        begin = sim.offset(outage.start)
        moments.append((begin, 0, "offline"))
        moments.append((begin + outage.duration.total_seconds(), 1, "online"))
    for reinstall in scenario.reinstalls:
        moments.append((sim.offset(reinstall.at), 2, "reinstall"))
    moments.sort()
    moments = [m for m in moments if 0 <= m[0] < horizon]
    next_moment = 0

    rate_per_s = device.site.inferences_per_minute / 60.0
    next_inference = rng.expovariate(rate_per_s) if rate_per_s > 0 else math.inf
    next_health = 0.0

    def emit_health(t: float, online: bool | None) -> Iterator[list[TelemetryEvent]]:
        event = sim.health(
            rng,
            t=t,
            epoch=agent.epoch.epoch,
            sequence=agent.next_sequence(),
            agent=agent,
            online=online,
        )
        yield from agent.record(event, capacity)

    while agent.numbered < limit:
        t = min(next_inference, next_health)
        if next_moment < len(moments) and moments[next_moment][0] <= t:
            at, _, kind = moments[next_moment]
            next_moment += 1
            if kind == "offline" and agent.online:
                if agent.pending:
                    yield agent.epoch, agent.take_pending()
                agent.online = False
                for batch in emit_health(at, False):
                    yield agent.epoch, batch
            elif kind == "online" and not agent.online:
                agent.online = True
                # The report counts what is still buffered (queue_depth) before the replay.
                for batch in emit_health(at, True):
                    yield agent.epoch, batch
                for batch in agent.replay_buffer():
                    yield agent.epoch, batch
            elif kind == "reinstall":
                if agent.online and agent.pending:
                    yield agent.epoch, agent.take_pending()
                agent.new_epoch(start + timedelta(seconds=round(at, 3)))
            continue
        if t >= horizon:
            break
        if next_health <= next_inference:
            next_health += device.health_interval_s
            for batch in emit_health(t, None):
                yield agent.epoch, batch
        else:
            next_inference += rng.expovariate(rate_per_s)
            event = sim.inference(rng, t=t, epoch=agent.epoch.epoch, sequence=agent.next_sequence())
            for batch in agent.record(event, capacity):
                yield agent.epoch, batch
    if agent.online and agent.pending:
        yield agent.epoch, agent.take_pending()
