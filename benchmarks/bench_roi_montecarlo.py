"""Benchmark: ROI Monte Carlo (10,000 draws x 4 placements) plus the tornado.

Target from DESIGN.md: <= 100 ms. Runs the logistics dock-vision preset (80 inputs, every one
a range), warms up, then times the Monte Carlo plus the tornado for each repetition and prints
one figure per line (wall-clock, plus the process CPU time so a busy machine shows up).
Side by side in the same run, a baseline: the same preset drawn independently (no paired
groups) with every site live from month 1, i.e. what the model cost before paired draws and
the ramp. Run from the repository root:

    .venv/bin/python benchmarks/bench_roi_montecarlo.py [--repetitions 50] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from roi.engine import DEFAULT_DRAWS, INPUT_NAMES, PLACEMENTS, preset, simulate, tornado
from roi.rules import Workflow

TARGET_MS = 100.0


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="sampling threads")
    args = parser.parse_args()
    if args.repetitions < 30:
        parser.error("use at least 30 repetitions for a meaningful P95")

    inputs = preset(workflow=Workflow.LOGISTICS_DOCK_VISION)
    uncertain = sum(not inputs.estimates[name].is_exact for name in INPUT_NAMES)
    baseline = replace(
        inputs.with_scenario(build_months=0, pilot_sites=0, pilot_months=0),
        correlations=(),
    )

    def run_baseline() -> float:
        start = time.perf_counter()
        simulate(inputs=baseline, draws=DEFAULT_DRAWS, seed=0, workers=args.workers)
        return (time.perf_counter() - start) * 1000

    def run() -> tuple[float, float, float]:
        cpu_start = time.process_time()  # all threads of this process
        start = time.perf_counter()
        simulate(inputs=inputs, draws=DEFAULT_DRAWS, seed=0, workers=args.workers)
        middle = time.perf_counter()
        tornado(inputs=inputs)
        end = time.perf_counter()
        cpu = time.process_time() - cpu_start
        return (middle - start) * 1000, (end - middle) * 1000, cpu * 1000

    for _ in range(args.warmup):
        run()
        run_baseline()
    baselines: list[float] = []
    monte_carlo: list[float] = []
    tornadoes: list[float] = []
    totals: list[float] = []
    cpu_totals: list[float] = []
    for _ in range(args.repetitions):
        mc_ms, tornado_ms, cpu_ms = run()
        monte_carlo.append(mc_ms)
        tornadoes.append(tornado_ms)
        totals.append(mc_ms + tornado_ms)
        cpu_totals.append(cpu_ms)
        baselines.append(run_baseline())

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    p95 = percentile(totals, 95)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"load average (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"python {platform.python_version()}, numpy {np.__version__}")
    print("scenario: logistics dock vision preset")
    print(f"uncertain inputs: {uncertain} of {len(INPUT_NAMES)}")
    print(f"draws per input: {DEFAULT_DRAWS}")
    print(f"placements: {len(PLACEMENTS)}")
    print(f"sampling threads: {args.workers}")
    print(f"repetitions: {args.repetitions} (after {args.warmup} warm-up runs)")
    print(f"monte carlo P50 ms: {percentile(monte_carlo, 50):.1f}")
    print(f"monte carlo P95 ms: {percentile(monte_carlo, 95):.1f}")
    print(
        f"baseline monte carlo (independent draws, no ramp) P50 ms: {percentile(baselines, 50):.1f}"
    )
    print(f"baseline monte carlo P95 ms: {percentile(baselines, 95):.1f}")
    print(f"tornado P50 ms: {percentile(tornadoes, 50):.1f}")
    print(f"tornado P95 ms: {percentile(tornadoes, 95):.1f}")
    print(f"monte carlo + tornado P50 ms: {percentile(totals, 50):.1f}")
    print(f"monte carlo + tornado P95 ms: {p95:.1f}")
    # CPU time summed over threads: far below wall time x threads means other load was running.
    print(f"monte carlo + tornado CPU time P50 ms: {percentile(cpu_totals, 50):.1f}")
    print(f"target ms: <= {TARGET_MS:.0f} (P95 {'meets' if p95 <= TARGET_MS else 'misses'} it)")


if __name__ == "__main__":
    main()
