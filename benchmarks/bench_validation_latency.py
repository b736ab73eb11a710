"""Validation latency benchmarks (issue 4): measurement overhead and full-run wall time.

(i)  The latency step (``onnxcheck.latency.check_latency``: session creation, warm-up, the
     stopping rule, percentiles, peak memory) against a bare onnxruntime loop
     (``t0 = perf_counter_ns(); sess.run(None, feed)``) over the SAME feed in the SAME process.
     The two alternate (step first on even rounds, bare first on odd ones) so a machine that
     slows down halfway biases neither; the bare loop runs as many timed runs as the step did.
     Overhead = P50(step) / P50(bare) - 1, per round and for the median of rounds. Target ≤ 10 %.
(ii) ``run_validation`` wall time, with a per-step breakdown, for ResNet50 (light, synthetic
     inputs, CPU target) and for the digits MLP (uploaded inputs with labels, buckets 1 and 8).

Run: ``.venv/bin/python benchmarks/bench_validation_latency.py [--rounds 3] [--threads N]``.
Figures vary with the machine and its load; compare side by side within one run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

from onnxcheck.gates import GateThresholds  # noqa: E402
from onnxcheck.inputs import synthesize_inputs  # noqa: E402
from onnxcheck.inspection import inspect_model, sha256_file  # noqa: E402
from onnxcheck.latency import LatencyRule, check_latency, machine_description  # noqa: E402
from onnxcheck.operators import builtin_profile  # noqa: E402
from onnxcheck.pipeline import InputsSpec, run_validation  # noqa: E402
from tests import onnx_models  # noqa: E402


def bare_loop(
    model_path: Path, feed: dict[str, np.ndarray], *, runs: int, warmup: int, threads: int | None
) -> np.ndarray:
    """The reference: a plain onnxruntime session and a plain timed loop."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(
        str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    for _ in range(warmup + 1):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        session.run(None, feed)
        times.append(time.perf_counter_ns() - t0)
    return np.asarray(times) / 1e6


def overhead(name: str, *, rounds: int, threads: int | None, rule: LatencyRule) -> float:
    """Print per-round P50s and return the median per-round overhead in percent.

    The median of per-round ratios is the headline: on a shared machine one busy round can
    double either side, and pairing each step measurement with an adjacent bare one cancels
    slow drifts.
    """
    path = onnx_models.light_model_path(name)
    inputs = synthesize_inputs(inputs=inspect_model(path=path).inputs)
    feed = dict(inputs.bucket_feeds[0])
    print(f"\n## {name}: latency step vs bare onnxruntime loop ({rounds} alternating rounds)")
    print(
        f"{'round':>5} {'order':>10} {'runs':>5} {'step P50':>9} {'bare P50':>9} "
        f"{'overhead':>9} {'step mean':>10} {'bare mean':>10} {'stopped by':>12} {'load':>5}"
    )
    overheads, step_p50s, bare_p50s = [], [], []
    runs = 0  # the bare loop repeats the step's latest run count (round 0 runs the step first)
    for round_index in range(rounds):
        order = ("step", "bare") if round_index % 2 == 0 else ("bare", "step")
        step_bucket: dict = {}
        bare_ms = np.array([])
        for which in order:
            if which == "step":
                result = check_latency(
                    model_path=path, inputs=inputs, rule=rule, intra_op_num_threads=threads
                )
                step_bucket = result.data["buckets"][0]
                runs = step_bucket["runs"]
            else:
                bare_ms = bare_loop(path, feed, runs=runs, warmup=rule.warmup_runs, threads=threads)
        bare_p50 = float(np.percentile(bare_ms, 50))
        step_p50 = step_bucket["p50_ms"]
        step_p50s.append(step_p50)
        bare_p50s.append(bare_p50)
        overheads.append(100 * (step_p50 / bare_p50 - 1))
        print(
            f"{round_index:>5} {'/'.join(order):>10} {step_bucket['runs']:>5} "
            f"{step_p50:>9.2f} {bare_p50:>9.2f} {overheads[-1]:>+8.1f}% "
            f"{step_bucket['mean_ms']:>10.2f} {bare_ms.mean():>10.2f} "
            f"{step_bucket['stopped_by']:>12} {os.getloadavg()[0]:>5.2f}"
        )
    median = statistics.median(overheads)
    print(
        f"{name}: median per-round overhead {median:+.1f} % (target ≤ 10 %); median P50 step "
        f"{statistics.median(step_p50s):.2f} ms, bare {statistics.median(bare_p50s):.2f} ms"
    )
    return median


def full_run(label: str, **kwargs) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-validation-") as workdir:
        started = time.perf_counter()
        report = run_validation(workdir=workdir, **kwargs)
        wall = time.perf_counter() - started
    print(f"\n## run_validation: {label}: {wall:.1f} s wall, passed={report.passed}")
    print(f"{'step':<20} {'status':<8} {'wall s':>8} {'compute s':>10}")
    for step in report.steps:
        compute = step.data.get("compute_ms", step.duration_ms) / 1000
        print(f"{step.name:<20} {step.status:<8} {step.duration_ms / 1000:>8.2f} {compute:>10.2f}")
    latency = report.step("latency")
    for bucket in latency.data.get("buckets", []):
        print(
            f"  latency {bucket['label']}: P50 {bucket['p50_ms']:.2f} ms, "
            f"P95 {bucket['p95_ms']:.2f} ms, {bucket['runs']} runs, stopped by "
            f"{bucket['stopped_by']}"
        )
    if latency.data:
        print(
            f"  session creation {latency.data['session_creation_ms']:.0f} ms, first inference "
            f"{latency.data['first_inference_ms']:.1f} ms, peak RSS delta "
            f"{latency.data['peak_rss_delta_bytes'] / 2**20:.0f} MiB"
        )
    for reason in report.reasons:
        print(f"  reason: {reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="max measuring time of each step round"
    )
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads")
    parser.add_argument("--skip-full", action="store_true", help="only the overhead part")
    args = parser.parse_args()

    machine = machine_description(intra_op_num_threads=args.threads)
    print(
        f"# machine: {machine['cpu_model']}, {machine['usable_cpus']} usable CPUs, "
        f"onnxruntime {machine['onnxruntime']}, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    rule = LatencyRule(max_seconds=args.seconds)
    results = {
        name: overhead(name, rounds=args.rounds, threads=args.threads, rule=rule)
        for name in ("squeezenet", "resnet50")
    }
    print("\noverhead summary: " + ", ".join(f"{k} {v:+.1f} %" for k, v in results.items()))
    if args.skip_full:
        return
    resnet = onnx_models.light_model_path("resnet50")
    full_run(
        "ResNet50 (light), synthetic 1x3x224x224, CPU target",
        model_path=resnet,
        expected_sha256=sha256_file(resnet),
        target=builtin_profile("cpu"),
        inputs=InputsSpec(),
        gates=GateThresholds(),
        intra_op_num_threads=args.threads,
    )
    digits = onnx_models.digits_mlp()
    full_run(
        "digits MLP, 540 labelled samples, buckets X[0]=1,8, NNAPI target",
        model_path=digits.model_path,
        expected_sha256=sha256_file(digits.model_path),
        target=builtin_profile("nnapi"),
        inputs=InputsSpec(npz_path=digits.inputs_path, shape_buckets={"X[0]": [1, 8]}),
        gates=GateThresholds(latency_budget_ms=5.0),
        intra_op_num_threads=args.threads,
    )


if __name__ == "__main__":
    main()
