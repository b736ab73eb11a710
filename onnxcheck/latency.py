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
3. measured runs until **all** of: at least ``min_runs`` runs, at least ``min_seconds`` elapsed,
   and the distribution-free 95 % confidence interval of the P95 — order statistics at ranks
   ``n·p ∓ 1.96·√(n·p·(1-p))`` — has a half-width within ``target_p95_rel_ci`` (default 5 %) of
   the P95 (needs ~80 runs to be computable at all);
4. or stop early at ``max_runs`` or ``max_seconds``; ``stopped_by`` says which rule ended it.

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

from onnxcheck.inputs import RepresentativeInputs
from onnxcheck.results import FAILED, PASSED, StepResult, StepTimer

REFERENCE_LABEL = "reference measurement on the validation worker's CPU"
_Z95 = 1.959963984540054

ort.set_default_logger_severity(3)  # onnxruntime's warnings go to stderr, not into reports


@dataclass(frozen=True)
class LatencyRule:
    """When to stop measuring; see the module docstring for the exact rule."""

    warmup_runs: int = 10
    warmup_max_seconds: float = 2.0
    min_runs: int = 30
    min_seconds: float = 1.0
    target_p95_rel_ci: float = 0.05
    max_runs: int = 5000
    max_seconds: float = 30.0

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
    stopped_by: str
    measured_seconds: float
    histogram: Mapping[str, Sequence[float]]

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "histogram": {key: list(value) for key, value in self.histogram.items()},
        }


def p95_confidence_interval(
    sorted_ns: np.ndarray, *, quantile: float = 0.95
) -> tuple[float, float] | None:
    """Distribution-free 95 % CI of a quantile from sorted samples, or ``None`` if too few.

    Uses the binomial order-statistic ranks ``n·q ∓ z·√(n·q·(1-q))`` (1-based).
    """
    n = len(sorted_ns)
    if n == 0:
        return None
    centre = n * quantile
    spread = _Z95 * math.sqrt(n * quantile * (1 - quantile))
    low, high = math.floor(centre - spread), math.ceil(centre + spread)
    if low < 1 or high > n:
        return None
    return float(sorted_ns[low - 1]), float(sorted_ns[high - 1])


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
    interval = p95_confidence_interval(times)
    if interval is not None:
        low, high = interval[0] / 1e6, interval[1] / 1e6
        relative = ((high - low) / 2) / p95 if p95 else 0.0
    else:
        low = high = relative = None
    counts, edges = np.histogram(ms, bins=histogram_bins)
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
        stopped_by=stopped_by,
        measured_seconds=measured_seconds,
        histogram={
            "edges_ms": [float(edge) for edge in edges],
            "counts": [int(c) for c in counts],
        },
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


def machine_description(*, intra_op_num_threads: int | None) -> dict[str, Any]:
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
    }


def measure_model_latency(
    *,
    model_path: str | os.PathLike[str],
    bucket_feeds: Sequence[tuple[str, int, Mapping[str, np.ndarray]]],
    rule: LatencyRule,
    intra_op_num_threads: int | None = None,
) -> dict[str, Any]:
    """Create a session, then measure every ``(label, batch_size, feeds)`` bucket in order.

    Returns plain data: session creation time, first inference time (first bucket's first run),
    per-bucket :class:`LatencyStats` with throughput, and peak memory.
    """
    probe = PeakMemoryProbe()
    prepared = [
        (label, batch, {name: np.ascontiguousarray(array) for name, array in feeds.items()})
        for label, batch, feeds in bucket_feeds
    ]
    probe.start()
    session, creation_ms = create_session(model_path, intra_op_num_threads=intra_op_num_threads)
    buckets = []
    for label, batch, feeds in prepared:
        times, first_ns, warmup, stopped_by, seconds = time_runs(
            session=session, feeds=feeds, rule=rule
        )
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
            }
        )
    memory = probe.stop()
    return {
        "label": REFERENCE_LABEL,
        "session_creation_ms": creation_ms,
        "first_inference_ms": buckets[0]["first_run_ms"] if buckets else None,
        "buckets": buckets,
        **memory,
        "rule": rule.to_dict(),
        "machine": machine_description(intra_op_num_threads=intra_op_num_threads),
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
        )
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
        return StepResult(
            "latency", FAILED, timer.ms(), [f"onnxruntime could not run the model: {exc}"]
        )
    data["synthetic_inputs"] = inputs.synthetic
    findings = [REFERENCE_LABEL]
    for bucket in data["buckets"]:
        findings.append(
            f"{bucket['label']}: P50 {bucket['p50_ms']:.2f} ms, P95 {bucket['p95_ms']:.2f} ms, "
            f"P99 {bucket['p99_ms']:.2f} ms over {bucket['runs']} runs "
            f"(stopped by {bucket['stopped_by']})"
        )
    return StepResult("latency", PASSED, timer.ms(), findings, data)
