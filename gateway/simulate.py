"""``opshero-gateway simulate``: N simulated gateways running the real agent's code paths.

    opshero-gateway simulate --fleet FLEET.json --state-root DIR [--processes P]
        [--duration S] [--inferences-per-minute R] [--health-interval S] [--poll-interval S]
        [--scenario NAME[:ARGS][@FRACTION] ...] [--summary-every S] [--seed N]

Every simulated gateway is a real `gateway.agent.Agent` with its own state directory (SQLite
queue, trust store, installed models) and its own signed connections: desired-state polls,
downloads, envelope and artifact verification, installs, deployment reports and the
store-and-forward sender all run for real against the server. Only the model's computation
(`SyntheticRunner`) and the health sensors (`SimulatedProbe`) are simulated.

One asyncio loop per process schedules the gateways (a tick a second, jittered); the agent's
steps block (sqlite, http.client), so each runs on a bounded thread pool, one step in flight
per gateway. ``--processes`` splits the fleet like the load generator (gateway.loadgen) does.

Every simulated inference sends a small synthetic 8x8 grayscale input, and a share of them
(``HARD_CASE_SHARE``) are hard cases with a confidence in [0.3, 0.6), under any usual review
threshold: so a site's evidence policy samples low-confidence cases and uploads them (as PNG
where the policy allows images, else JSON) through the agent's real evidence queue.

Scenarios (FRACTION of the gateways, chosen by ``--seed``; all when absent):

- ``normal``: nothing happens.
- ``throttle[:START-END]``: thermal throttling from a per-gateway minute in [START, END]
  (default 10-20) for 10 minutes: throttled, +25 °C, latency x1.8.
- ``drift:START``: from minute START the first class is five times commoner, confidence 0.15 lower.
- ``outage:START:MINUTES``: the link is cut (every request raises OSError); events queue.
- ``bad-version:VERSION``: that version fails its health check (the agent refuses it).
- ``slow-version:VERSION[:FACTOR]``: that version's latency x FACTOR (default 3).

One JSON summary line goes to stdout at the end (and every ``--summary-every`` seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import queue as queue_module
import random
import signal
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from protocol.manifest import ModelManifest

from .agent import Agent, InferenceRefused
from .config import AgentConfig
from .health import HealthReading
from .loadgen import DRIFT_CLASS_FACTOR, DRIFT_CONFIDENCE_DROP, FleetDevice, FleetFile
from .logs import configure_logging
from .runner import SyntheticProfile, SyntheticRunner
from .simulation import Drift, Outage, SiteProfile, Throttling
from .transport import NETWORK_ERRORS, StaleConnection

__all__ = [
    "GatewaySpec",
    "ScenarioSpec",
    "SimOptions",
    "SimulatedGateway",
    "SimulatedProbe",
    "Simulation",
    "assign_scenarios",
    "main",
    "parse_scenario",
    "run_fleet",
]

log = logging.getLogger("opshero.gateway.simulate")
TICK_S = 1.0
CONFIRM_EVERY_S = 5.0
THROTTLE_MINUTES = 10.0
THROTTLE_LATENCY_FACTOR = 1.8
THROTTLE_TEMPERATURE_RISE_C = 25.0
SLOW_FACTOR = 3.0
HARD_CASE_SHARE = 0.08


# --- scenarios ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioSpec:
    """One ``--scenario``: its name, its arguments (minutes, a version...) and its share."""

    name: str
    args: tuple[str, ...] = ()
    fraction: float = 1.0
    text: str = ""


_SCENARIOS = ("normal", "throttle", "drift", "outage", "bad-version", "slow-version")


def parse_scenario(text: str) -> ScenarioSpec:
    """``NAME[:ARGS][@FRACTION]``; raises ValueError saying what is wrong."""
    body, at, share = text.partition("@")
    fraction = 1.0
    if at:
        try:
            fraction = float(share)
        except ValueError:
            raise ValueError(f"{text!r}: FRACTION must be a number in [0, 1]") from None
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"{text!r}: FRACTION must be in [0, 1]")
    name, *args = body.split(":")
    if name not in _SCENARIOS:
        raise ValueError(f"{text!r}: unknown scenario {name!r} (known: {', '.join(_SCENARIOS)})")

    def minutes(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{text!r}: {value!r} is not a number of minutes") from None
        if number < 0:
            raise ValueError(f"{text!r}: minutes must not be negative")
        return number

    if name == "normal" and args:
        raise ValueError(f"{text!r}: normal takes no arguments")
    if name == "throttle":
        if len(args) > 1:
            raise ValueError(f"{text!r}: expected throttle[:START-END]")
        if args:
            begin, dash, end = args[0].partition("-")
            if not dash or minutes(begin) > minutes(end):
                raise ValueError(f"{text!r}: expected throttle:START-END minutes, START <= END")
    if name == "drift" and (len(args) != 1 or minutes(args[0]) < 0):
        raise ValueError(f"{text!r}: expected drift:START (minutes)")
    if name == "outage" and (len(args) != 2 or minutes(args[1]) <= 0 or minutes(args[0]) < 0):
        raise ValueError(f"{text!r}: expected outage:START:MINUTES (MINUTES > 0)")
    if name == "bad-version" and (len(args) != 1 or not args[0]):
        raise ValueError(f"{text!r}: expected bad-version:VERSION")
    if name == "slow-version":
        if not 1 <= len(args) <= 2 or not args[0]:
            raise ValueError(f"{text!r}: expected slow-version:VERSION[:FACTOR]")
        if len(args) == 2:
            try:
                if float(args[1]) <= 0:
                    raise ValueError
            except ValueError:
                raise ValueError(f"{text!r}: FACTOR must be a positive number") from None
    return ScenarioSpec(name=name, args=tuple(args), fraction=fraction, text=text)


def assign_scenarios(
    device_ids: Sequence[str], scenarios: Sequence[ScenarioSpec], *, seed: int
) -> dict[str, tuple[ScenarioSpec, ...]]:
    """Which scenarios each gateway plays: round(FRACTION x N) gateways per scenario, chosen
    by a seeded ranking of the device ids (the same seed and fleet give the same choice)."""
    chosen: dict[str, list[ScenarioSpec]] = {d: [] for d in device_ids}
    for index, spec in enumerate(scenarios):
        ranked = sorted(
            device_ids,
            key=lambda d: hashlib.sha256(f"{seed}:{index}:{d}".encode()).digest(),
        )
        for device_id in ranked[: round(spec.fraction * len(device_ids))]:
            chosen[device_id].append(spec)
    return {d: tuple(specs) for d, specs in chosen.items()}


@dataclass(frozen=True)
class GatewaySpec:
    """What one simulated gateway does, decided before it starts (times are epoch seconds)."""

    device: FleetDevice
    seed: int
    throttling: tuple[Throttling, ...] = ()
    drifts: tuple[Drift, ...] = ()
    outages: tuple[Outage, ...] = ()
    bad_versions: frozenset[str] = frozenset()
    slow_versions: tuple[tuple[str, float], ...] = ()

    def profile(self, version: str) -> SyntheticProfile:
        factor = 1.0
        for slow, value in self.slow_versions:
            if slow == version:
                factor *= value
        return SyntheticProfile(
            latency_factor=factor,
            fails_health_check=version in self.bad_versions,
            hard_case_share=HARD_CASE_SHARE,
        )


def gateway_spec(
    device: FleetDevice, scenarios: Sequence[ScenarioSpec], *, seed: int, started: datetime
) -> GatewaySpec:
    own = seed ^ zlib.crc32(device.device_id.encode())
    rng = random.Random(own)  # noqa: S311 - simulation
    throttling, drifts, outages, bad, slow = [], [], [], set(), []
    for spec in scenarios:
        if spec.name == "throttle":
            low, high = (10.0, 20.0)
            if spec.args:
                begin, _, end = spec.args[0].partition("-")
                low, high = float(begin), float(end)
            throttling.append(
                Throttling(
                    start=started + timedelta(minutes=rng.uniform(low, high)),
                    duration=timedelta(minutes=THROTTLE_MINUTES),
                    latency_factor=THROTTLE_LATENCY_FACTOR,
                    temperature_rise_c=THROTTLE_TEMPERATURE_RISE_C,
                )
            )
        elif spec.name == "drift":
            drifts.append(
                Drift(
                    at=started + timedelta(minutes=float(spec.args[0])),
                    confidence_drop=DRIFT_CONFIDENCE_DROP,
                )
            )
        elif spec.name == "outage":
            outages.append(
                Outage(
                    start=started + timedelta(minutes=float(spec.args[0])),
                    duration=timedelta(minutes=float(spec.args[1])),
                )
            )
        elif spec.name == "bad-version":
            bad.add(spec.args[0])
        elif spec.name == "slow-version":
            factor = float(spec.args[1]) if len(spec.args) > 1 else SLOW_FACTOR
            slow.append((spec.args[0], factor))
    return GatewaySpec(
        device=device,
        seed=own,
        throttling=tuple(throttling),
        drifts=tuple(drifts),
        outages=tuple(outages),
        bad_versions=frozenset(bad),
        slow_versions=tuple(slow),
    )


# --- the simulated parts ------------------------------------------------------------------------


def _during(when: datetime, start: datetime, duration: timedelta) -> bool:
    return start <= when < start + duration


class SimulatedProbe:
    """Health sensors of a simulated gateway (simulation.py's site model), throttling aware."""

    def __init__(self, spec: GatewaySpec, site: SiteProfile, clock: Callable[[], float]) -> None:
        self.spec = spec
        self.site = site
        self.clock = clock
        self._rng = random.Random(spec.seed + 1)  # noqa: S311 - simulation

    def throttled_now(self) -> bool:
        now = datetime.fromtimestamp(self.clock(), UTC)
        return any(_during(now, t.start, t.duration) for t in self.spec.throttling)

    def read(self) -> HealthReading:
        rng, site = self._rng, self.site
        cpu = min(1.0, max(0.0, rng.gauss(site.cpu_base, 0.05)))
        temperature = site.ambient_c + 20.0 + 15.0 * cpu + rng.gauss(0.0, 1.0)
        throttled = self.throttled_now()
        if throttled:
            temperature += THROTTLE_TEMPERATURE_RISE_C
            cpu = min(1.0, cpu + 0.3)
        return HealthReading(
            cpu_utilisation=round(cpu, 3),
            memory_mb=round(max(0.0, rng.gauss(820.0, 25.0)), 1),
            temperature_c=round(temperature, 1) if site.has_thermal_sensor else None,
            throttled=throttled,
        )


class Link:
    """A gateway's network link: cut it and every request raises OSError; counts answers."""

    def __init__(self) -> None:
        self.cut = False
        self.requests = 0
        self.network_errors = 0
        self.reconnects = 0  # kept-alive connections the server had closed (sent again)
        self.http_errors = 0

    def wrap(self, connection: Any) -> None:
        request = connection.request

        def guarded(*args: Any, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
            self.requests += 1
            if self.cut:
                self.network_errors += 1
                connection.close()
                raise ConnectionRefusedError("simulated outage: the link is cut")
            try:
                answer = request(*args, **kwargs)
            except StaleConnection:
                self.reconnects += 1
                raise
            except NETWORK_ERRORS:
                self.network_errors += 1
                raise
            if answer[0] >= 400:
                self.http_errors += 1
            return answer

        connection.request = guarded


@dataclass(frozen=True, kw_only=True)
class SimOptions:
    inferences_per_minute: float = 60.0
    health_interval_s: float = 60.0
    min_poll_interval_s: float = 10.0
    batch_size: int = 500
    duration_s: float | None = None
    summary_every_s: float | None = None
    seed: int = 0
    threads: int | None = None


@dataclass
class GatewayCounts:
    inferences: int = 0
    inference_errors: int = 0
    health: int = 0
    polls: int = 0
    installs: int = 0
    step_errors: int = 0
    lag_s: list[float] = field(default_factory=list)


class SimulatedGateway:
    """One real Agent with a synthetic runner and probe, stepped by `Simulation`."""

    def __init__(
        self,
        spec: GatewaySpec,
        *,
        server: str,
        state_root: Path,
        options: SimOptions,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self.options = options
        self.clock = clock
        self.site = SiteProfile(inferences_per_minute=options.inferences_per_minute)
        self.probe = SimulatedProbe(spec, self.site, clock)
        self.counts = GatewayCounts()
        self.runners: list[SyntheticRunner] = []
        self.agent = Agent(
            state_root / spec.device.device_id,
            AgentConfig(
                listen="",
                drop_folder="",
                health_interval_s=options.health_interval_s,
                min_poll_interval_s=options.min_poll_interval_s,
                batch_size=options.batch_size,
            ),
            server=server,
            device_id=spec.device.device_id,
            private_key=spec.device.private_key(),
            load_runner=self._load_runner,
            probe=self.probe,
            clock=clock,
            rng=random.Random(spec.seed),  # noqa: S311 - jitter
            evidence_rng=random.Random(spec.seed + 4),  # noqa: S311 - simulation
        )
        self.link = Link()
        self.link.wrap(self.agent.sender.transport.connection)
        self.link.wrap(self.agent.control.connection)
        self._rng = random.Random(spec.seed + 2)  # noqa: S311 - simulation
        self._inputs_rng = random.Random(spec.seed + 3)  # noqa: S311 - simulation
        self._next_inference: dict[str, float] = {}
        self._next_health = 0.0
        self._next_poll = 0.0
        self._next_confirm = 0.0
        self._served: set[tuple[str, str, str]] = set()
        self.started = False
        self._final: dict[str, Any] | None = None

    def _load_runner(self, path: Path, manifest: ModelManifest) -> SyntheticRunner:
        seed = self.spec.seed ^ zlib.crc32(f"{manifest.model_name}:{manifest.version}".encode())
        runner = SyntheticRunner(manifest, self.spec.profile(manifest.version), seed=seed)
        self.runners = [*self.runners[-3:], runner]
        return runner

    # --- one step (runs on a worker thread; never two at once for one gateway)

    def start(self) -> None:
        self.agent.start()
        self._served = {self._key(s) for s in self.agent.serving.values()}
        self.agent._report_status()  # what the daemon's control loop does first
        now = self.clock()
        self._next_health = now + self._rng.uniform(0.0, self.options.health_interval_s)
        self.started = True

    @staticmethod
    def _key(serving: Any) -> tuple[str, str, str]:
        return (serving.item.model, serving.item.version, serving.item.sha256)

    def _apply_scenarios(self, now: float) -> None:
        when = datetime.fromtimestamp(now, UTC)
        self.link.cut = any(_during(when, o.start, o.duration) for o in self.spec.outages)
        factor = 1.0
        for episode in self.spec.throttling:
            if _during(when, episode.start, episode.duration):
                factor = episode.latency_factor
        drifting = any(
            d.at <= when and (d.until is None or when < d.until) for d in self.spec.drifts
        )
        for serving in list(self.agent.serving.values()):
            runner = serving.runner
            if isinstance(runner, SyntheticRunner):
                runner.extra_latency_factor = factor
                runner.drift = (DRIFT_CLASS_FACTOR, DRIFT_CONFIDENCE_DROP) if drifting else None

    def _infer_due(self, now: float) -> None:
        rate = self.options.inferences_per_minute / 60.0
        if rate <= 0:
            return
        for name in list(self.agent.serving):
            due = self._next_inference.get(name)
            if due is None:
                due = now + self._rng.expovariate(rate)
            while due <= now:
                try:
                    self.agent.infer(name, self.synthetic_input())
                    self.counts.inferences += 1
                except InferenceRefused:  # the model erred: counted, not fatal
                    self.counts.inference_errors += 1
                due += self._rng.expovariate(rate)
            self._next_inference[name] = due
        for name in [n for n in self._next_inference if n not in self.agent.serving]:
            del self._next_inference[name]

    def synthetic_input(self) -> list[list[int]]:
        """An 8x8 grayscale input (values 0..16, like the digits data, flattened to [1, 64]):
        dim noise with one bright rectangle, so that a sample's PNG shows something."""
        rng = self._inputs_rng
        noise = rng.randbytes(64)
        top, left = rng.randrange(6), rng.randrange(6)
        bottom, right = rng.randrange(top + 2, 9), rng.randrange(left + 2, 9)
        return [
            [
                12 + b % 5 if top <= i // 8 < bottom and left <= i % 8 < right else b % 4
                for i, b in enumerate(noise)
            ]
        ]

    def step(self) -> None:
        agent, now = self.agent, self.clock()
        if not self.started:
            self.start()
        self._apply_scenarios(now)
        if now >= self._next_poll:
            self.counts.polls += 1
            try:
                agent.poll_desired()
            finally:
                self._next_poll = self.clock() + agent.poll_interval_s()
            served = {self._key(s) for s in agent.serving.values()}
            self.counts.installs += len(served - self._served)
            self._served = served
            self._apply_scenarios(now)
        if agent.confirmations and now >= self._next_confirm:
            agent.confirm_health()
            self._next_confirm = now + CONFIRM_EVERY_S
        self._infer_due(now)
        if now >= self._next_health:
            agent.record_health()
            self.counts.health += 1
            self._next_health += self.options.health_interval_s
            if self._next_health <= now:
                self._next_health = now + self.options.health_interval_s
        agent.drain(max_batches=4)
        agent.drain_evidence(max_samples=4)

    def close(self) -> None:
        self._final = self.report()  # the queue's counts, kept for summaries after closing
        self.agent.stop()
        self.agent.sender.transport.close()
        self.agent.control.close()
        self.agent.queue.close()
        self.agent.evidence.close()

    def report(self) -> dict[str, Any]:
        if self._final is not None:
            return {**self._final, "refusals": Counter(self._final["refusals"])}
        counts = self.agent.queue.counts()
        evidence = self.agent.evidence.counts()
        return {
            "enqueued": counts.enqueued,
            "sent": counts.sent,
            "queued": counts.depth,
            "evicted": counts.evicted,
            "refused_events": counts.refused,
            "evidence_enqueued": evidence.enqueued,
            "evidence_sent": evidence.sent,
            "evidence_queued": evidence.queued,
            "evidence_refused": sum(evidence.refused.values()),
            "refusals": Counter(self.agent.refused.values()),
        }


# --- one process: an asyncio loop over its share of the fleet ------------------------------------


class Simulation:
    """Many gateways in one asyncio loop; `run` until `stop` (thread- and signal-safe)."""

    def __init__(
        self,
        server: str,
        specs: Sequence[GatewaySpec],
        *,
        state_root: str | Path,
        options: SimOptions,
        on_summary: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.server = server
        self.specs = list(specs)
        self.state_root = Path(state_root)
        self.options = options
        self.on_summary = on_summary
        self.gateways: list[SimulatedGateway] = []
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._began = 0.0
        self._cpu = 0.0

    def stop(self) -> None:
        self._stop.set()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wake.set)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def _sleep(self, seconds: float) -> None:
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, seconds))

    async def _drive(self, gateway: SimulatedGateway, pool: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        await self._sleep(random.Random(gateway.spec.seed).uniform(0.0, TICK_S))  # noqa: S311
        due = time.monotonic()
        while not self.stopping:
            gateway.counts.lag_s.append(max(0.0, time.monotonic() - due))
            del gateway.counts.lag_s[:-100]
            try:
                await loop.run_in_executor(pool, gateway.step)
            except Exception:  # one bad step must not stop the gateway (as the daemon's loops)
                gateway.counts.step_errors += 1
                log.exception(
                    "simulated gateway step failed",
                    extra={"fields": {"device": gateway.spec.device.device_id}},
                )
            due += TICK_S * gateway._rng.uniform(0.9, 1.1)
            await self._sleep(due - time.monotonic())

    async def _summaries(self) -> None:
        every = self.options.summary_every_s
        while every and not self.stopping:
            await self._sleep(every)
            if not self.stopping and self.on_summary is not None:
                self.on_summary(self.summary())

    async def run(self) -> dict[str, Any]:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self._stop.is_set():
            self._wake.set()
        threads = self.options.threads or min(32, 4 * (os.cpu_count() or 1))
        self._began, self._cpu = time.time(), time.process_time()
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sim") as pool:
            self.gateways = list(
                await asyncio.gather(
                    *(self._loop.run_in_executor(pool, self._make, spec) for spec in self.specs)
                )
            )
            tasks = [asyncio.create_task(self._drive(g, pool)) for g in self.gateways]
            tasks.append(asyncio.create_task(self._summaries()))
            if self.options.duration_s is not None:
                tasks.append(asyncio.create_task(self._deadline(self.options.duration_s)))
            try:
                await self._wait_stop()
            finally:
                self.stop()
                await asyncio.gather(*tasks, return_exceptions=True)
                for gateway in self.gateways:
                    gateway.close()
        return self.summary()

    async def _wait_stop(self) -> None:
        assert self._wake is not None
        await self._wake.wait()

    async def _deadline(self, seconds: float) -> None:
        await self._sleep(seconds)
        self.stop()

    def _make(self, spec: GatewaySpec) -> SimulatedGateway:
        return SimulatedGateway(
            spec, server=self.server, state_root=self.state_root, options=self.options
        )

    def summary(self) -> dict[str, Any]:
        total: Counter[str] = Counter()
        refusals: Counter[str] = Counter()
        lags: list[float] = []
        for gateway in self.gateways:
            report = gateway.report()
            refusals.update(report.pop("refusals"))
            total.update(report)
            c = gateway.counts
            total.update(
                inferences=c.inferences,
                inference_errors=c.inference_errors,
                health=c.health,
                polls=c.polls,
                installs=c.installs,
                step_errors=c.step_errors,
                requests=gateway.link.requests,
                http_errors=gateway.link.http_errors,
                network_errors=gateway.link.network_errors,
                reconnects=gateway.link.reconnects,
            )
            lags.extend(c.lag_s)
        return {
            "gateways": len(self.gateways),
            **{k: total.get(k, 0) for k in _COUNTED},
            "refusals": dict(sorted(refusals.items())),
            "elapsed_s": round(time.time() - self._began, 3),
            "cpu_s": [round(time.process_time() - self._cpu, 3)],
            "tick_lag_p95_s": _percentile(lags, 0.95),
        }


_COUNTED = (
    "enqueued",
    "sent",
    "queued",
    "evicted",
    "refused_events",
    "evidence_enqueued",
    "evidence_sent",
    "evidence_queued",
    "evidence_refused",
    "inferences",
    "inference_errors",
    "health",
    "polls",
    "installs",
    "step_errors",
    "requests",
    "http_errors",
    "network_errors",
    "reconnects",
)


def _percentile(values: Sequence[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 3)


def merge(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One summary of several processes' summaries."""
    merged: dict[str, Any] = {"gateways": sum(s["gateways"] for s in summaries)}
    for key in _COUNTED:
        merged[key] = sum(s[key] for s in summaries)
    refusals: Counter[str] = Counter()
    for s in summaries:
        refusals.update(s["refusals"])
    merged["refusals"] = dict(sorted(refusals.items()))
    merged["elapsed_s"] = max(s["elapsed_s"] for s in summaries)
    merged["cpu_s"] = [c for s in summaries for c in s["cpu_s"]]
    lags = [s["tick_lag_p95_s"] for s in summaries if s["tick_lag_p95_s"] is not None]
    merged["tick_lag_p95_s"] = max(lags) if lags else None
    merged["processes"] = len(summaries)
    return merged


def _raise_file_limit() -> None:
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


def _run_share(
    server: str,
    specs: Sequence[GatewaySpec],
    state_root: str,
    options: SimOptions,
    *,
    on_summary: Callable[[dict[str, Any]], None] | None = None,
    stop_event: Any = None,
) -> dict[str, Any]:
    """Run one share of the fleet in this process until the duration, a signal or
    ``stop_event`` (a multiprocessing.Event set by the parent)."""
    _raise_file_limit()
    simulation = Simulation(
        server, specs, state_root=state_root, options=options, on_summary=on_summary
    )

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, simulation.stop)
        watcher = None
        if stop_event is not None:

            def watch() -> None:
                while not simulation.stopping:
                    if stop_event.wait(0.5):
                        simulation.stop()
                        return

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
        try:
            return await simulation.run()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(signum)

    return asyncio.run(main())


def _child(
    index: int,
    server: str,
    specs: Sequence[GatewaySpec],
    state_root: str,
    options: SimOptions,
    log_level: str,
    results: Any,
    stop_event: Any,
) -> None:
    configure_logging(level=log_level)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides (it sets stop_event)
    summary = _run_share(
        server,
        specs,
        state_root,
        options,
        on_summary=lambda s: results.put(("progress", index, s)),
        stop_event=stop_event,
    )
    results.put(("done", index, summary))


def plan(
    fleet: FleetFile, scenarios: Sequence[ScenarioSpec], *, seed: int, started: datetime
) -> list[GatewaySpec]:
    chosen = assign_scenarios([d.device_id for d in fleet.devices], scenarios, seed=seed)
    return [gateway_spec(d, chosen[d.device_id], seed=seed, started=started) for d in fleet.devices]


def run_fleet(
    fleet: FleetFile,
    *,
    state_root: str | Path,
    processes: int = 1,
    scenarios: Sequence[ScenarioSpec] = (),
    options: SimOptions | None = None,
    log_level: str = "WARNING",
    emit: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run the whole fleet (in this process when ``processes`` is 1) and return the summary."""
    options = options or SimOptions()
    specs = plan(fleet, scenarios, seed=options.seed, started=datetime.now(UTC))
    processes = max(1, min(processes, len(specs)))
    if processes == 1:
        return merge([_run_share(fleet.server, specs, str(state_root), options, on_summary=emit)])
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    stop_event = context.Event()
    workers = [
        context.Process(
            target=_child,
            args=(
                i,
                fleet.server,
                specs[i::processes],
                str(state_root),
                options,
                log_level,
                results,
                stop_event,
            ),
        )
        for i in range(processes)
    ]
    previous = {
        s: signal.signal(s, lambda *_: stop_event.set()) for s in (signal.SIGTERM, signal.SIGINT)
    }
    for worker in workers:
        worker.start()
    latest: dict[int, dict[str, Any]] = {}
    done: dict[int, dict[str, Any]] = {}
    fresh: set[int] = set()
    try:
        while len(done) < len(workers):
            try:
                kind, index, summary = results.get(timeout=1.0)
            except queue_module.Empty:
                dead = [w for w in workers if w.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(
                        f"{len(dead)} simulator process(es) failed "
                        f"(exit codes {[w.exitcode for w in dead]})"
                    ) from None
                continue
            (done if kind == "done" else latest)[index] = summary
            if kind == "progress":
                fresh.add(index)
                if emit is not None and len(fresh) == len(workers):
                    emit(merge([latest[i] for i in sorted(latest)]))
                    fresh.clear()  # one line per round of the processes' summaries
    finally:
        stop_event.set()
        for worker in workers:
            worker.join(timeout=60)
            if worker.is_alive():
                worker.terminate()
                worker.join()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return merge([done[i] for i in sorted(done)])


# --- the command line ---------------------------------------------------------------------------


def _scenario_arg(text: str) -> ScenarioSpec:
    try:
        return parse_scenario(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, not {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="opshero-gateway simulate",
        description="Simulated gateways running the real agent against a server.",
    )
    parser.add_argument("--fleet", required=True, help="the fleet JSON file (gateway.loadgen)")
    parser.add_argument("--state-root", required=True, help="one state directory per gateway")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--duration", type=_positive, default=None, help="seconds (default: ∞)")
    parser.add_argument("--inferences-per-minute", type=float, default=60.0)
    parser.add_argument("--health-interval", type=_positive, default=60.0, help="seconds")
    parser.add_argument(
        "--poll-interval", type=_positive, default=10.0, help="minimum desired-state poll, s"
    )
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument(
        "--scenario",
        type=_scenario_arg,
        action="append",
        default=[],
        help="NAME[:ARGS][@FRACTION], repeatable (see the module's documentation)",
    )
    parser.add_argument("--summary-every", type=_positive, default=None, help="seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="worker threads per process")
    parser.add_argument(
        "--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    args = parser.parse_args(argv)
    if args.processes < 1 or args.batch_size < 1 or args.inferences_per_minute < 0:
        parser.error("--processes and --batch-size must be >= 1, --inferences-per-minute >= 0")
    configure_logging(level=args.log_level)
    try:
        fleet = FleetFile.load(args.fleet)
    except (OSError, ValueError, KeyError) as exc:
        print(f"Cannot read the fleet file {args.fleet}: {exc}", file=sys.stderr)
        return 1
    if not fleet.devices:
        print("The fleet file lists no devices.", file=sys.stderr)
        return 1
    options = SimOptions(
        inferences_per_minute=args.inferences_per_minute,
        health_interval_s=args.health_interval,
        min_poll_interval_s=args.poll_interval,
        batch_size=args.batch_size,
        duration_s=args.duration,
        summary_every_s=args.summary_every,
        seed=args.seed,
        threads=args.threads,
    )

    def emit(summary: dict[str, Any]) -> None:
        print(json.dumps(summary), flush=True)

    summary = run_fleet(
        fleet,
        state_root=args.state_root,
        processes=args.processes,
        scenarios=args.scenario,
        options=options,
        log_level=args.log_level,
        emit=emit,
    )
    emit(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
