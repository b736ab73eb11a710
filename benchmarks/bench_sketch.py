"""Benchmark: the mergeable latency sketch (telemetry/sketch.py), issue 14 item 1.

10 million lognormal latencies (median 20 ms, sigma 0.8; ``--slow-fraction`` mixes in a slow
lognormal tail around 800 ms): relative error of P50/P95/P99/P99.9 against numpy
(method="lower", the sketch's rank convention, and numpy's default "linear"), add_many
throughput, the merge of 1,440 minute sketches into a day (checked equal to the sketch of all
values), and the serialised size. One run, a few seconds; no Django. From the repository root:

    .venv/bin/python benchmarks/bench_sketch.py [--values 10000000] [--seed 14] [--slow-fraction 0]
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from telemetry.sketch import LatencySketch

QUANTILES = (0.5, 0.95, 0.99, 0.999)
MINUTES = 1440


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--slow-fraction", type=float, default=0.0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    values = rng.lognormal(mean=math.log(20), sigma=0.8, size=args.values)
    slow = rng.random(args.values) < args.slow_fraction
    values[slow] = rng.lognormal(mean=math.log(800), sigma=0.5, size=int(slow.sum()))

    # Throughput: one add_many call over all values (best of 3 so a busy host shows less).
    timings, cpu_timings = [], []
    for _ in range(3):
        sketch = LatencySketch()
        cpu_start, start = time.process_time(), time.perf_counter()
        sketch.add_many(values)
        timings.append(time.perf_counter() - start)
        cpu_timings.append(time.process_time() - cpu_start)
    add_seconds, add_cpu = min(timings), min(cpu_timings)

    # The same indices counted with np.unique instead of np.bincount, for comparison.
    start = time.perf_counter()
    indices = np.ceil(np.log(values) / math.log((1 + sketch.alpha) / (1 - sketch.alpha)))
    np.unique(indices.astype(np.int64), return_counts=True)
    unique_seconds = time.perf_counter() - start

    # Accuracy against numpy.
    errors = []
    for q in QUANTILES:
        estimate = sketch.quantile(q)
        lower = float(np.quantile(values, q, method="lower"))
        linear = float(np.quantile(values, q))
        errors.append((q, estimate, lower, abs(estimate - lower) / lower, linear))

    # 1,440 minute sketches (consecutive slices) merged into the day.
    minutes = []
    minute_start = time.perf_counter()
    for chunk in np.array_split(values, MINUTES):
        minute = LatencySketch()
        minute.add_many(chunk)
        minutes.append(minute)
    build_minutes_seconds = time.perf_counter() - minute_start
    merge_timings = []
    for _ in range(3):
        start = time.perf_counter()
        day = LatencySketch.merged(*minutes)
        merge_timings.append(time.perf_counter() - start)
    equal = day.to_dict() == sketch.to_dict()

    # Storage form.
    day_json = json.dumps(day.to_dict(), separators=(",", ":")).encode()
    minute_json = [json.dumps(m.to_dict(), separators=(",", ":")).encode() for m in minutes]
    start = time.perf_counter()
    restored = LatencySketch.from_dict(json.loads(day_json))
    from_json_ms = (time.perf_counter() - start) * 1000
    assert restored == day

    load = os.getloadavg()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"load average (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"python {platform.python_version()}, numpy {np.__version__}")
    tail = f", {args.slow_fraction:.1%} tail ~800 ms" if args.slow_fraction else ""
    print(f"values: {args.values:,} lognormal (median 20 ms, sigma 0.8{tail})")
    print(f"alpha: {sketch.alpha}, buckets in the dense run: {len(day.to_dict()['counts'])}")
    print("quantile  sketch ms  numpy lower ms  rel. error  numpy linear ms")
    for q, estimate, lower, error, linear in errors:
        print(f"P{q * 100:<7g} {estimate:10.3f} {lower:15.3f} {error:10.4%} {linear:16.3f}")
    print(
        f"add_many: {add_seconds * 1000:.0f} ms wall, {add_cpu * 1000:.0f} ms CPU "
        f"(best of 3) = {args.values / add_seconds / 1e6:.1f} M values/s"
    )
    print(f"np.unique counting instead of np.bincount (index + count only): {unique_seconds:.2f} s")
    print(
        f"{MINUTES} minute sketches (~{args.values // MINUTES:,} values each) built in "
        f"{build_minutes_seconds:.2f} s; merged in {min(merge_timings) * 1000:.1f} ms "
        f"(best of 3; {min(merge_timings) / MINUTES * 1e6:.1f} µs per sketch)"
    )
    print(f"merged day == sketch of all values (to_dict): {equal}")
    print(
        f"serialised day: {len(day_json):,} B JSON, {len(gzip.compress(day_json)):,} B gzip; "
        f"from_dict(json.loads) {from_json_ms:.2f} ms"
    )
    sizes = sorted(len(m) for m in minute_json)
    print(
        f"serialised minute: median {sizes[len(sizes) // 2]:,} B, max {sizes[-1]:,} B JSON "
        f"(dense runs of {min(len(m.to_dict()['counts']) for m in minutes)}-"
        f"{max(len(m.to_dict()['counts']) for m in minutes)} buckets)"
    )


if __name__ == "__main__":
    main()
