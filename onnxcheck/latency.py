"""Step (c), ``latency``: measurement with onnxruntime, a tight loop, a documented stopping rule.

:func:`check_latency` is the step: one measurement per shape bucket of the representative inputs
(:func:`measure_model_latency`), with peak memory. The variant steps compare two sessions with
:func:`compare_latency`.

The figures are *reference measurements on the validation worker's CPU*: they rank models and
catch regressions; a device's own numbers come from its telemetry.

Loop. Each run is timed with ``time.perf_counter_ns`` around ``session.run`` only, on feeds
built once before timing (C-contiguous, exact dtype), and stored into a preallocated list. The
stopping rule is evaluated between chunks of runs, outside the timed region, so the measurement
costs the same as a bare ``for``-loop over ``session.run``
(``benchmarks/bench_validation_latency.py`` checks that against the ≤ 10 % target).

Stopping rule (:class:`LatencyRule`), per shape bucket:

1. first run timed on its own (``first_run_ms``: allocation and shape planning for the bucket);
2. warm-up: ``warmup_runs`` more runs, cut short after ``warmup_max_seconds``;
3. measured runs until **all** of: at least ``min_runs`` runs (default 300, so that the P99 has
   its bound: see below), at least ``min_seconds`` elapsed, and the P95's confidence interval
   has a half-width within ``target_p95_rel_ci`` (default 5 %) of the P95;
4. or stop early at ``max_runs`` or at the bucket's time cap ``max_seconds``; ``stopped_by`` says
   which rule ended it and ``capped`` whether the time cap did.

Confidence intervals (:func:`quantile_bounds`). Distribution-free, from order statistics and the
binomial distribution: of ``n`` independent runs, the number below the true quantile ``q`` is
``Binomial(n, q)``, so the ``u``-th smallest run is a 95 % *upper* confidence bound for the
``q``-quantile when ``P[Binomial(n, q) ≤ u - 1] ≥ 0.95`` (smallest such ``u``), and the ``l``-th
smallest a 95 % *lower* bound when ``P[Binomial(n, q) ≥ l] ≥ 0.95`` (largest such ``l``). Each
bound is one-sided at 95 % (so each verdict a gate draws from one, passed or failed, is wrong at
most 5 % of the time); together ``[lower, upper]`` is a two-sided 90 % interval. An upper bound
for the P95 exists only from 59 runs (``1 - 0.95^59 ≥ 0.95``), for the P99 from 299: below that
it is ``None`` and reports say "not available". The runs are assumed independent and identically
distributed, which a busy host breaks: that is why the step also records the load.

Load. The step records the 1-minute load average before and after measuring, and how many CPU
cores *other* processes used while the runs were timed (``other_cpu_cores``: machine busy time
from ``/proc/stat`` minus this process's CPU time, over wall time; steal time counts as busy), so
a gate can tell a slow model from a busy host.

Peak memory. On Linux the resident-set high-water mark (``VmHWM`` in ``/proc/self/status``) is
reset by writing ``5`` to ``/proc/self/clear_refs`` just before the session is created, and read
after the last run: ``peak_rss_delta_bytes`` = peak RSS during session creation and all runs
minus RSS just before. It therefore includes the weights as onnxruntime holds them, its arenas,
activations and thread stacks, but not the Python interpreter or the inputs. If the mark cannot be
reset, ``ru_maxrss`` is used and the figure is only trustworthy in a fresh process (which is how
``run_validation`` runs this step); ``memory_method`` says which was used.
"""

from __future__ import annotations

import math
import os
import platform
import resource
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from scipy.stats import binom

from onnxcheck.inputs import RepresentativeInputs
from onnxcheck.results import FAILED, PASSED, StepResult, StepTimer

REFERENCE_LABEL = "reference measurement on the validation worker's CPU"
CONFIDENCE = 0.95
CI_METHOD = (
    "distribution-free order-statistic bounds (binomial), each one-sided 95 %; "
    "together a 90 % two-sided interval"
)
QUANTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))

ort.set_default_logger_severity(3)  # onnxruntime's warnings go to stderr, not into reports


@dataclass(frozen=True)
class LatencyRule:
    """When to stop measuring; see the module docstring for the exact rule."""

    warmup_runs: int = 10
    warmup_max_seconds: float = 2.0
    min_runs: int = 300  # the P99's 95 % upper bound needs 299 runs
    min_seconds: float = 1.0
    target_p95_rel_ci: float = 0.05
    max_runs: int = 5000
    max_seconds: float = 40.0  # time cap per bucket

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyRule:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})

    def worst_case_seconds(self) -> float:
        """Upper bound on one bucket's measuring time, excluding a single slow run."""
        return self.warmup_max_seconds + self.max_seconds


DEFAULT_LATENCY_RULE = LatencyRule()


@dataclass(frozen=True)
class LatencyStats:
    """Distribution of one bucket's measured runs, in milliseconds."""

    runs: int
    warmup_runs: int
    first_run_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    min_ms: float
    mean_ms: float
    std_ms: float
    p95_ci_low_ms: float | None
    p95_ci_high_ms: float | None
    p95_ci_rel_half_width: float | None
    p50_ci_low_ms: float | None
    p50_ci_high_ms: float | None
    p99_ci_low_ms: float | None
    p99_ci_high_ms: float | None
    stopped_by: str
    measured_seconds: float
    histogram: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "histogram": dict(self.histogram)}


def quantile_bound_ranks(
    n: int, quantile: float, *, confidence: float = CONFIDENCE
) -> tuple[int | None, int | None]:
    """1-based ranks ``(l, u)`` of the one-sided ``confidence`` lower and upper bounds of a
    quantile among ``n`` sorted runs (see the module docstring); ``None`` where ``n`` is too
    small for that bound to exist."""
    if n <= 0:
        return None, None
    cdf = binom.cdf(np.arange(n + 1), n, quantile)  # cdf[k] = P[Binomial(n, q) <= k]
    # Upper: smallest u with P[B <= u-1] >= confidence, and u <= n.
    reaching = np.nonzero(cdf[:n] >= confidence)[0]
    upper = int(reaching[0]) + 1 if len(reaching) else None
    # Lower: largest l with P[B >= l] = 1 - P[B <= l-1] >= confidence, and l >= 1.
    below = np.nonzero(cdf[:n] <= 1 - confidence)[0]
    lower = int(below[-1]) + 1 if len(below) else None
    return lower, upper


def quantile_bounds(
    sorted_values: np.ndarray | Sequence[float],
    *,
    quantile: float,
    confidence: float = CONFIDENCE,
) -> tuple[float | None, float | None]:
    """One-sided ``confidence`` lower and upper bounds of a quantile from *sorted* samples;
    either is ``None`` when there are too few samples for it."""
    lower, upper = quantile_bound_ranks(len(sorted_values), quantile, confidence=confidence)
    return (
        float(sorted_values[lower - 1]) if lower is not None else None,
        float(sorted_values[upper - 1]) if upper is not None else None,
    )


def p95_confidence_interval(
    sorted_ns: np.ndarray, *, quantile: float = 0.95
) -> tuple[float, float] | None:
    """``(lower, upper)`` of :func:`quantile_bounds`, or ``None`` unless both exist."""
    low, high = quantile_bounds(sorted_ns, quantile=quantile)
    if low is None or high is None:
        return None
    return low, high


def latency_histogram(ms: np.ndarray, *, bins: int = 30) -> dict[str, Any]:
    """Counts for the report's chart, from *sorted* run times.

    Adaptive bins: they span the bulk of the runs (fastest to P99), and the slower ones are one
    ``overflow_count`` past ``overflow_from_ms``, so a sub-millisecond model with a few
    millisecond-long scheduler hiccups is not one solid bar beside a long empty axis. A bulk that
    itself spans more than a factor of 10 gets logarithmic bins; ``scale`` tells the chart which
    axis to draw.
    """
    low = float(ms[0])
    top = float(np.percentile(ms, 99))
    if top <= low:
        top = float(ms[-1]) if ms[-1] > low else low + max(low * 1e-3, 1e-6)
    if low > 0 and top > 10 * low:
        edges = np.geomspace(low, top, bins + 1)
        scale = "log"
    else:
        edges = np.linspace(low, top, bins + 1)
        scale = "linear"
    counts, edges = np.histogram(ms[ms <= top], bins=edges)
    return {
        "edges_ms": [float(edge) for edge in edges],
        "counts": [int(c) for c in counts],
        "overflow_count": int(np.count_nonzero(ms > top)),
        "overflow_from_ms": top,
        "max_ms": float(ms[-1]),
        "scale": scale,
    }


def summarize_runs(
    times_ns: Sequence[int] | np.ndarray,
    *,
    warmup_runs: int,
    first_run_ns: int,
    stopped_by: str,
    measured_seconds: float,
    histogram_bins: int = 30,
) -> LatencyStats:
    """Percentiles, mean, CI and a histogram (for the report's Plotly chart) of timed runs."""
    times = np.sort(np.asarray(times_ns, dtype=np.int64))
    ms = times / 1e6
    p50, p90, p95, p99 = (float(v) for v in np.percentile(ms, [50, 90, 95, 99]))
    bounds = {name: quantile_bounds(ms, quantile=q) for name, q in QUANTILES}
    low, high = bounds["p95"]
    relative = ((high - low) / 2) / p95 if low is not None and high is not None and p95 else None
    return LatencyStats(
        runs=len(times),
        warmup_runs=warmup_runs,
        first_run_ms=first_run_ns / 1e6,
        p50_ms=p50,
        p90_ms=p90,
        p95_ms=p95,
        p99_ms=p99,
        max_ms=float(ms[-1]),
        min_ms=float(ms[0]),
        mean_ms=float(ms.mean()),
        std_ms=float(ms.std()),
        p95_ci_low_ms=low,
        p95_ci_high_ms=high,
        p95_ci_rel_half_width=relative,
        p50_ci_low_ms=bounds["p50"][0],
        p50_ci_high_ms=bounds["p50"][1],
        p99_ci_low_ms=bounds["p99"][0],
        p99_ci_high_ms=bounds["p99"][1],
        stopped_by=stopped_by,
        measured_seconds=measured_seconds,
        histogram=latency_histogram(ms, bins=histogram_bins),
    )


def _precise_enough(times: list[int], n: int, rule: LatencyRule) -> bool:
    sample = np.sort(np.asarray(times[:n], dtype=np.int64))
    interval = p95_confidence_interval(sample)
    if interval is None:
        return False
    p95 = float(np.percentile(sample, 95))
    return p95 > 0 and ((interval[1] - interval[0]) / 2) / p95 <= rule.target_p95_rel_ci


def time_runs(
    *,
    session: ort.InferenceSession,
    feeds: Mapping[str, np.ndarray],
    rule: LatencyRule,
    output_names: Sequence[str] | None = None,
) -> tuple[list[int], int, int, str, float]:
    """Run the rule on one session and feed set.

    Returns ``(times_ns, first_run_ns, warmup_runs, stopped_by, measured_seconds)``.
    """
    feed = {name: np.ascontiguousarray(array) for name, array in feeds.items()}
    names = list(output_names) if output_names is not None else None
    run = session.run
    clock = time.perf_counter_ns

    start = clock()
    run(names, feed)
    first_run_ns = clock() - start

    warmup = 0
    warmup_deadline = clock() + int(rule.warmup_max_seconds * 1e9)
    while warmup < rule.warmup_runs and clock() < warmup_deadline:
        run(names, feed)
        warmup += 1

    # Preallocated so the timed loop only stores; grown between chunks, never inside one.
    times = [0] * min(rule.max_runs, 8192)
    n = 0
    started = clock()
    max_ns = int(rule.max_seconds * 1e9)
    min_ns = int(rule.min_seconds * 1e9)
    target = min(rule.min_runs, rule.max_runs)
    while True:
        if target > len(times):
            times.extend([0] * (target - len(times)))
        for index in range(n, target):
            t0 = clock()
            run(names, feed)
            times[index] = clock() - t0
        n = target
        elapsed = clock() - started
        if n >= rule.max_runs:
            stopped_by = "max_runs"
            break
        if elapsed >= max_ns:
            stopped_by = "max_seconds"
            break
        if elapsed >= min_ns and n >= rule.min_runs and _precise_enough(times, n, rule):
            stopped_by = "precision"
            break
        # Next check after ~10 % more runs (at least 10), never past the time or run limits.
        per_run = elapsed / n
        remaining_runs = max(1, int((max_ns - elapsed) / per_run) + 1)
        until_min = max(0, math.ceil((min_ns - elapsed) / per_run)) if elapsed < min_ns else 0
        step = max(10, n // 10, until_min)
        target = min(n + min(step, remaining_runs), rule.max_runs)
    return times[:n], first_run_ns, warmup, stopped_by, (clock() - started) / 1e9


class PeakMemoryProbe:
    """Peak resident memory growth over a region of code (see module docstring)."""

    def __init__(self) -> None:
        self.method = "unavailable"
        self.before_bytes: int | None = None

    @staticmethod
    def _status_kb(field: str) -> int | None:
        try:
            with open("/proc/self/status", encoding="ascii") as status:
                for line in status:
                    if line.startswith(field + ":"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def start(self) -> None:
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
                clear_refs.write("5")
            self.method = "VmHWM after reset (/proc/self/clear_refs)"
        except OSError:
            self.method = "ru_maxrss (process-lifetime peak)"
        self.before_bytes = self._status_kb("VmRSS")
        if self.before_bytes is None:
            self.before_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def stop(self) -> dict[str, Any]:
        peak = self._status_kb("VmHWM") if self.method.startswith("VmHWM") else None
        if peak is None:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        before = self.before_bytes or 0
        return {
            "memory_method": self.method,
            "rss_before_bytes": before,
            "peak_rss_bytes": peak,
            "peak_rss_delta_bytes": max(0, peak - before),
        }


class HostLoadProbe:
    """How busy the host was while runs were timed (see the module docstring, "Load")."""

    def __init__(self) -> None:
        self.started: tuple[float, float, float] | None = None

    @staticmethod
    def _machine_busy_seconds() -> float | None:
        try:
            with open("/proc/stat", encoding="ascii") as stat:
                fields = stat.readline().split()
        except OSError:
            return None
        if not fields or fields[0] != "cpu":
            return None
        # user nice system idle iowait irq softirq steal: everything but idle and iowait.
        values = [int(v) for v in fields[1:9]]
        busy = values[0] + values[1] + values[2] + values[5] + values[6] + values[7]
        return busy / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own_cpu_seconds() -> float:
        times = os.times()
        return times.user + times.system

    def start(self) -> None:
        busy = self._machine_busy_seconds()
        if busy is not None:
            self.started = (time.perf_counter(), busy, self._own_cpu_seconds())

    def stop(self) -> float | None:
        """CPU cores other processes used on average since :meth:`start` (``None`` if unknown)."""
        busy = self._machine_busy_seconds()
        if self.started is None or busy is None:
            return None
        wall = time.perf_counter() - self.started[0]
        if wall <= 0:
            return None
        others = (busy - self.started[1]) - (self._own_cpu_seconds() - self.started[2])
        return max(0.0, others / wall)


def load_average() -> float | None:
    """The 1-minute load average, or ``None`` where the platform has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def session_options(*, intra_op_num_threads: int | None = None) -> ort.SessionOptions:
    """The options every measurement (and the benchmark's bare loop) uses."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if intra_op_num_threads:
        options.intra_op_num_threads = intra_op_num_threads
    return options


def create_session(
    model_path: str | os.PathLike[str], *, intra_op_num_threads: int | None = None
) -> tuple[ort.InferenceSession, float]:
    """A CPU session and how long creating it took (ms)."""
    start = time.perf_counter_ns()
    session = ort.InferenceSession(
        os.fspath(model_path),
        sess_options=session_options(intra_op_num_threads=intra_op_num_threads),
        providers=["CPUExecutionProvider"],
    )
    return session, (time.perf_counter_ns() - start) / 1e6


def machine_description(
    *, intra_op_num_threads: int | None, host_shared: bool | None = None
) -> dict[str, Any]:
    """Enough about the worker to compare reference measurements between runs."""
    cpu_model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    return {
        "cpu_model": cpu_model,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "intra_op_num_threads": intra_op_num_threads or "onnxruntime default",
        "onnxruntime": ort.__version__,
        "python": platform.python_version(),
        # Declared by the deployment (VALIDATION_HOST_SHARED): other services run on this host.
        "host_shared": host_shared,
    }


def measure_model_latency(
    *,
    model_path: str | os.PathLike[str],
    bucket_feeds: Sequence[tuple[str, int, Mapping[str, np.ndarray]]],
    rule: LatencyRule,
    intra_op_num_threads: int | None = None,
    host_shared: bool | None = None,
) -> dict[str, Any]:
    """Create a session, then measure every ``(label, batch_size, feeds)`` bucket in order.

    Returns plain data: session creation time, first inference time (first bucket's first run),
    per-bucket :class:`LatencyStats` with throughput, the CPU share other processes took while
    each bucket was timed, the load average before and after, and peak memory.
    """
    probe = PeakMemoryProbe()
    prepared = [
        (label, batch, {name: np.ascontiguousarray(array) for name, array in feeds.items()})
        for label, batch, feeds in bucket_feeds
    ]
    load_before = load_average()
    probe.start()
    session, creation_ms = create_session(model_path, intra_op_num_threads=intra_op_num_threads)
    buckets = []
    for label, batch, feeds in prepared:
        host = HostLoadProbe()
        host.start()
        times, first_ns, warmup, stopped_by, seconds = time_runs(
            session=session, feeds=feeds, rule=rule
        )
        other_cpu_cores = host.stop()
        stats = summarize_runs(
            times,
            warmup_runs=warmup,
            first_run_ns=first_ns,
            stopped_by=stopped_by,
            measured_seconds=seconds,
        )
        per_second = 1000.0 / stats.mean_ms if stats.mean_ms else 0.0
        buckets.append(
            {
                "label": label,
                "batch_size": batch,
                **stats.to_dict(),
                "throughput_inferences_per_s": per_second,
                "throughput_items_per_s": per_second * batch,
                "other_cpu_cores": other_cpu_cores,
                "time_cap_s": rule.max_seconds,
                "capped": stopped_by == "max_seconds",
            }
        )
    memory = probe.stop()
    return {
        "label": REFERENCE_LABEL,
        "ci_method": CI_METHOD,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "session_creation_ms": creation_ms,
        "first_inference_ms": buckets[0]["first_run_ms"] if buckets else None,
        "buckets": buckets,
        **memory,
        "rule": rule.to_dict(),
        "machine": machine_description(
            intra_op_num_threads=intra_op_num_threads, host_shared=host_shared
        ),
        "model_file": Path(model_path).name,
    }


def compare_latency(
    *,
    sessions: Mapping[str, ort.InferenceSession],
    feeds: Mapping[str, np.ndarray],
    rule: LatencyRule,
    rounds: int = 2,
) -> dict[str, LatencyStats]:
    """Measure several sessions on the same feeds, alternating ``rounds`` times (A B A B) so a
    machine that slows down halfway biases none of them; runs of all rounds are pooled."""
    pooled: dict[str, list[int]] = {name: [] for name in sessions}
    firsts: dict[str, int] = {}
    warmups: dict[str, int] = dict.fromkeys(sessions, 0)
    stops: dict[str, str] = {}
    seconds: dict[str, float] = dict.fromkeys(sessions, 0.0)
    for _ in range(max(1, rounds)):
        for name, session in sessions.items():
            times, first_ns, warmup, stopped_by, measured = time_runs(
                session=session, feeds=feeds, rule=rule
            )
            pooled[name].extend(times)
            firsts.setdefault(name, first_ns)
            warmups[name] += warmup
            stops[name] = stopped_by
            seconds[name] += measured
    return {
        name: summarize_runs(
            pooled[name],
            warmup_runs=warmups[name],
            first_run_ns=firsts[name],
            stopped_by=stops[name],
            measured_seconds=seconds[name],
        )
        for name in sessions
    }


# -- the step -------------------------------------------------------------------------------------


def check_latency(
    *,
    model_path: str | os.PathLike[str],
    inputs: RepresentativeInputs,
    rule: LatencyRule = DEFAULT_LATENCY_RULE,
    intra_op_num_threads: int | None = None,
    host_shared: bool | None = None,
) -> StepResult:
    """onnxruntime CPU latency per shape bucket; see :mod:`onnxcheck.latency` for the rule."""
    timer = StepTimer()
    feeds = [
        (bucket.label, bucket.batch_size, feed)
        for bucket, feed in zip(inputs.buckets, inputs.bucket_feeds, strict=True)
    ]
    try:
        data = measure_model_latency(
            model_path=model_path,
            bucket_feeds=feeds,
            rule=rule,
            intra_op_num_threads=intra_op_num_threads,
            host_shared=host_shared,
        )
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
        return StepResult(
            "latency", FAILED, timer.ms(), [f"onnxruntime could not run the model: {exc}"]
        )
    data["synthetic_inputs"] = inputs.synthetic
    findings = [REFERENCE_LABEL]
    for bucket in data["buckets"]:
        findings.append(bucket_sentence(bucket))
    findings.append(load_sentence(data))
    return StepResult("latency", PASSED, timer.ms(), findings, data)


# -- how the figures read -------------------------------------------------------------------------


def format_ms(value: float | None) -> str:
    """A latency in ms, readable from microseconds to seconds: 0.0134 → "0.0134", 202.63 →
    "202.6"."""
    if value is None:
        return "—"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def interval_text(low: float | None, high: float | None) -> str:
    """``[0.012-0.015]`` (with an en dash), "n/a" for a missing bound."""
    if low is None and high is None:
        return "[interval not available]"
    shown_low = format_ms(low) if low is not None else "n/a"
    shown_high = format_ms(high) if high is not None else "n/a"
    return f"[{shown_low}\u2013{shown_high}]"


def quantile_text(bucket: Mapping[str, Any], name: str) -> str:
    """``P95 0.013 ms [0.012-0.015]``; a P99 without its upper bound is not shown at all."""
    label = name.upper()
    low, high = bucket.get(f"{name}_ci_low_ms"), bucket.get(f"{name}_ci_high_ms")
    if name == "p99" and high is None:
        return f"P99 not available ({bucket.get('runs')} runs; its bound needs 299)"
    return f"{label} {format_ms(bucket.get(f'{name}_ms'))} ms {interval_text(low, high)}"


def bucket_sentence(bucket: Mapping[str, Any]) -> str:
    """One bucket's figures as the report lists them."""
    cap = (
        f", stopped by the {bucket.get('time_cap_s'):g} s time cap"
        if bucket.get("capped")
        else f", stopped by {bucket.get('stopped_by')}"
    )
    return (
        f"{bucket['label']}: {quantile_text(bucket, 'p50')}, {quantile_text(bucket, 'p95')}, "
        f"{quantile_text(bucket, 'p99')}; {bucket['runs']} runs{cap}"
    )


def load_sentence(data: Mapping[str, Any]) -> str:
    """Where and how loaded the measurement ran."""
    machine = data.get("machine") or {}
    others = [b.get("other_cpu_cores") for b in data.get("buckets", [])]
    known = [v for v in others if v is not None]
    shared = machine.get("host_shared")
    host = (
        "host shared with other services"
        if shared
        else ("dedicated host" if shared is False else "host sharing not declared")
    )
    return (
        f"{machine.get('cpu_model')}, {machine.get('usable_cpus')} usable CPUs, "
        f"{machine.get('intra_op_num_threads')} intra-op threads; {host}; load average "
        f"{data.get('load_average_before')} before, {data.get('load_average_after')} after"
        + (
            f"; other processes used up to {max(known):.2f} CPU cores while runs were timed"
            if known
            else ""
        )
    )
